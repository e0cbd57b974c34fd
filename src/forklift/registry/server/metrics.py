"""Prometheus metrics in the text exposition format (no client library needed).

Counters: requests by method/route/status, bytes received and sent, GC runs
and what they removed. A latency histogram per route. Gauges (storage size,
counts) are read from the metadata store when scraped.

Every label takes values from a fixed set, whatever clients send: methods
outside HTTP's usual ones count as ``OTHER``, paths that match no endpoint as
route ``other``, and statuses are the few the server answers with. So no
client can grow the number of series (and the scrape) without bound.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """In-process counters (the server is one process; the event loop owns them)."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.bytes_in = 0
        self.bytes_out = 0
        self.gc_runs = 0
        self.gc_removed: defaultdict[str, int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._hist_sum: defaultdict[str, float] = defaultdict(float)
        self.in_flight = 0

    def observe(
        self, method: str, route: str, status: int, seconds: float, rx: int, tx: int
    ) -> None:
        """Record one finished request (``route`` comes from the router's fixed set)."""
        if method not in METHODS:
            method = "OTHER"
        self.requests[(method, route, status)] += 1
        self.bytes_in += rx
        self.bytes_out += tx
        counts = self._hist.get(route)
        if counts is None:
            counts = self._hist[route] = [0] * (len(_BUCKETS) + 1)
        counts[bisect.bisect_left(_BUCKETS, seconds)] += 1
        self._hist_sum[route] += seconds

    def render(self, gauges: Callable[[], dict[str, int]]) -> bytes:
        """The exposition text."""
        out: list[str] = [
            "# HELP forklift_registry_requests_total HTTP requests by method, route and status.",
            "# TYPE forklift_registry_requests_total counter",
        ]
        for (method, route, status), n in sorted(self.requests.items()):
            out.append(
                f'forklift_registry_requests_total{{method="{method}",route="{route}",'
                f'status="{status}"}} {n}'
            )
        out += [
            "# HELP forklift_registry_request_duration_seconds Request latency by route.",
            "# TYPE forklift_registry_request_duration_seconds histogram",
        ]
        for route, counts in sorted(self._hist.items()):
            acc = 0
            for bound, n in zip(_BUCKETS, counts, strict=False):
                acc += n
                out.append(
                    f'forklift_registry_request_duration_seconds_bucket{{route="{route}",'
                    f'le="{bound}"}} {acc}'
                )
            acc += counts[-1]
            out.append(
                f'forklift_registry_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {acc}'
            )
            out.append(
                f'forklift_registry_request_duration_seconds_sum{{route="{route}"}} '
                f"{self._hist_sum[route]:.6f}"
            )
            out.append(f'forklift_registry_request_duration_seconds_count{{route="{route}"}} {acc}')
        out += [
            "# TYPE forklift_registry_received_bytes_total counter",
            f"forklift_registry_received_bytes_total {self.bytes_in}",
            "# TYPE forklift_registry_sent_bytes_total counter",
            f"forklift_registry_sent_bytes_total {self.bytes_out}",
            "# TYPE forklift_registry_requests_in_flight gauge",
            f"forklift_registry_requests_in_flight {self.in_flight}",
            "# TYPE forklift_registry_gc_runs_total counter",
            f"forklift_registry_gc_runs_total {self.gc_runs}",
            "# TYPE forklift_registry_gc_removed_total counter",
        ]
        for kind, n in sorted(self.gc_removed.items()):
            out.append(f'forklift_registry_gc_removed_total{{kind="{kind}"}} {n}')
        stats = gauges()
        out += [
            "# HELP forklift_registry_storage_bytes Bytes of committed blobs.",
            "# TYPE forklift_registry_storage_bytes gauge",
            f"forklift_registry_storage_bytes {stats.get('blob_bytes', 0)}",
        ]
        for key in ("blobs", "manifests", "repositories", "tags", "uploads"):
            out.append(f"# TYPE forklift_registry_{key} gauge")
            out.append(f"forklift_registry_{key} {stats.get(key, 0)}")
        return ("\n".join(out) + "\n").encode()
