#!/usr/bin/env python3
"""Manifest GET latency while the server has slow work to do: forklift serve vs distribution.

Three phases, each a wrk run of manifest GETs (good Basic credentials, so the
password check is cached) at 8 connections:

- idle: nothing else happening;
- wrong passwords: 20 requests per second with a wrong password (each a full
  bcrypt check, at the cost ``htpasswd -B`` uses unless ``--cost`` says) arrive
  meanwhile;
- GC: the server's own garbage collector runs meanwhile (forklift only:
  distribution collects offline), over a metadata store of 20,000 untagged
  manifests and 100,000 unreferenced blobs.

Prints p50/p99 and requests per second for each. ``--forklift-src DIR`` runs
forklift from another source tree (e.g. a checkout of an older commit) for a
before/after comparison.

Usage: .venv/bin/python bench/registry_loop.py [--seconds 10] [--forklift-src DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.registry_server.servers import Server, start_distribution, start_forklift  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
USER, PASSWORD = "bench", "bench-password"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def htpasswd(path: Path, cost: int) -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(cost)).decode()
    path.write_text(f"{USER}:{hashed}\n")
    return path


def push_image(base: str) -> str:
    """A small image under bench/app:v1; returns the manifest URL."""
    auth = (USER, PASSWORD)
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(4096)
    with httpx.Client(base_url=base, auth=auth, timeout=60) as c:
        for blob in (config, layer):
            d = "sha256:" + hashlib.sha256(blob).hexdigest()
            r = c.post(f"/v2/bench/app/blobs/uploads/?digest={d}", content=blob)
            if r.status_code != 201:  # distribution 2.8.2: POST then PUT
                loc = c.post("/v2/bench/app/blobs/uploads/").headers["location"]
                c.put(httpx.URL(base).join(loc).copy_add_param("digest", d), content=blob)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        r = c.put(
            "/v2/bench/app/manifests/v1", content=manifest, headers={"content-type": OCI_MANIFEST}
        )
        r.raise_for_status()
    return f"{base}/v2/bench/app/manifests/v1"


def fill_garbage(db: Path, manifests: int = 20_000, blobs: int = 100_000) -> None:
    """Old untagged manifests and unreferenced blob rows for the collector to chew on."""
    old = time.time() - 3 * 86400
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT OR IGNORE INTO repos VALUES('bench/junk', ?)", (old,))
        rows = []
        for i in range(manifests):
            d = "sha256:" + hashlib.sha256(b"m%d" % i).hexdigest()
            rows.append((d, OCI_MANIFEST, 2, b"{}", None, None, None, old))
        con.executemany("INSERT INTO manifests VALUES(?,?,?,?,?,?,?,?)", rows)
        con.executemany(
            "INSERT INTO repo_manifests VALUES('bench/junk', ?, ?)", [(r[0], old) for r in rows]
        )
        blob_rows = [
            ("sha256:" + hashlib.sha256(b"b%d" % i).hexdigest(), 1, old) for i in range(blobs)
        ]
        con.executemany("INSERT INTO blobs VALUES(?,?,?)", blob_rows)
        con.executemany(
            "INSERT INTO repo_blobs VALUES('bench/junk', ?)", [(r[0],) for r in blob_rows]
        )
    con.close()


def wrk(url: str, seconds: int) -> dict[str, float]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c8",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Accept: {OCI_MANIFEST}",
            "-H",
            f"Authorization: Basic {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%")}


class WrongPasswords:
    """20 requests per second with a wrong password, each on its own thread."""

    def __init__(self, base: str, rate: float = 20.0) -> None:
        self.base, self.rate = base, rate
        self.stop = threading.Event()
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run)

    def _one(self, i: int) -> None:
        try:
            r = httpx.get(
                f"{self.base}/v2/bench/app/tags/list", auth=(USER, f"wrong{i}"), timeout=60
            )
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
        except httpx.HTTPError:
            self.statuses[0] = self.statuses.get(0, 0) + 1

    def _run(self) -> None:
        start = time.monotonic()
        i = 0
        while not self.stop.is_set():
            threading.Thread(target=self._one, args=(i,), daemon=True).start()
            i += 1
            self.sent = i
            self.stop.wait(max(0.0, start + i / self.rate - time.monotonic()))

    def __enter__(self) -> WrongPasswords:
        self._thread.start()
        time.sleep(1)  # let the load settle before measuring
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join()


def measure(
    server: Server, seconds: int, start_gc: Callable[[], Server] | None
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    url = push_image(server.url)
    wrk(url, 2)  # warm up: the good password's check is cached from here on
    log(f"  {server.kind}: idle")
    out["idle"] = wrk(url, seconds)
    log(f"  {server.kind}: 20 wrong passwords/s")
    with WrongPasswords(server.url) as load:
        out["wrong passwords"] = wrk(url, seconds)
    log(f"    sent {load.sent}, answers {load.statuses}")
    if start_gc is not None:
        # another registry, whose collector runs all the time over lots of garbage
        gc = start_gc()
        try:
            gc_url = push_image(gc.url)
            wrk(gc_url, 1)
            log(f"  {server.kind}: during GC")
            out["GC"] = wrk(gc_url, seconds)
            metrics = httpx.get(f"{gc.url}/metrics").text
            runs = re.search(r"^forklift_registry_gc_runs_total (\d+)", metrics, re.M)
            log(f"    GC passes finished meanwhile: {runs.group(1) if runs else '?'}")
        finally:
            gc.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--forklift-src", type=Path, help="run forklift from this src/ directory")
    ap.add_argument("--no-distribution", action="store_true")
    ap.add_argument("--cost", type=int, default=5, help="bcrypt cost (htpasswd -B: 5)")
    args = ap.parse_args()
    if args.forklift_src:
        os.environ["PYTHONPATH"] = str(args.forklift_src.resolve())
    work = Path(tempfile.mkdtemp(prefix="forklift-loop-"))
    users = htpasswd(work / "users", args.cost)
    results: dict[str, dict[str, dict[str, float]]] = {}

    def start_gc() -> Server:
        from forklift.registry.server.metadata import SQLiteMetadata

        (work / "f2").mkdir()
        SQLiteMetadata(work / "f2" / "metadata.db").close()
        fill_garbage(work / "f2" / "metadata.db")
        gc_server = start_forklift(
            work / "f2",
            "--htpasswd",
            str(users),
            "--gc-interval",
            "1",
            "--gc-untagged",
            "--access-log",
            "",
        )
        time.sleep(1.5)  # the first pass starts after one interval
        return gc_server

    server = start_forklift(
        work / "f1", "--htpasswd", str(users), "--gc-interval", "0", "--access-log", ""
    )
    try:
        results["forklift"] = measure(server, args.seconds, start_gc)
    finally:
        server.stop()
    if not args.no_distribution:
        dist = start_distribution(work / "d", users)
        try:
            results["distribution"] = measure(dist, args.seconds, None)
        finally:
            dist.stop()
    print(
        f"\nmanifest GET, 8 connections, {args.seconds} s per phase, bcrypt cost {args.cost} "
        "(p50 / p99 ms, req/s)"
    )
    print(f"{'phase':<18} {'forklift':>28} {'distribution 2.8.2':>28}")
    for phase in ("idle", "wrong passwords", "GC"):
        cells = []
        for kind in ("forklift", "distribution"):
            r = results.get(kind, {}).get(phase)
            cells.append(f"{r['p50']:.2f} / {r['p99']:.2f}, {r['rps']:.0f}" if r else "-")
        print(f"{phase:<18} {cells[0]:>28} {cells[1]:>28}")
    f = results["forklift"]
    print(
        f"\nforklift p99 vs its idle p99: wrong passwords x{f['wrong passwords']['p99'] / f['idle']['p99']:.2f}, "
        f"GC x{f['GC']['p99'] / f['idle']['p99']:.2f}"
    )


if __name__ == "__main__":
    main()
