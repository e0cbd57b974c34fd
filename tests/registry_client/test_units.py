"""Small pieces: scopes, Retry-After, deadlines, Link headers, the blob-location cache, bounded_map."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forklift.errors import TransportError
from forklift.registry.client import BlobLocations, bounded_map
from forklift.transports.registry.auth import covers, merge_scopes
from forklift.transports.registry.pagination import next_link
from forklift.transports.registry.retry import Backoff, Deadline, parse_retry_after


def test_merge_scopes_combines_actions_per_resource() -> None:
    assert merge_scopes(
        ["repository:a/b:pull", "repository:a/b:push", "repository:c:pull", "registry:catalog:*"]
    ) == ("registry:catalog:*", "repository:a/b:pull,push", "repository:c:pull")
    # a name may contain ':' (e.g. a port in a plugin name); actions are after the last one
    assert merge_scopes(["repository(plugin):host:5000/x:pull"]) == (
        "repository(plugin):host:5000/x:pull",
    )


def test_covers() -> None:
    granted = ["repository:a:pull,push", "registry:catalog:*"]
    assert covers(granted, ["repository:a:pull"])
    assert covers(granted, ["repository:a:push", "registry:catalog:search"])
    assert not covers(granted, ["repository:b:pull"])
    assert not covers(["repository:a:pull"], ["repository:a:pull,push"])
    assert covers([], [])


_action = st.sampled_from(["pull", "push", "delete"])
_repo = st.sampled_from(["a", "b/c", "d"])


@given(st.lists(st.tuples(_repo, st.lists(_action, min_size=1, max_size=3)), max_size=6))
def test_merged_scopes_cover_their_inputs(items: list[tuple[str, list[str]]]) -> None:
    scopes = [f"repository:{r}:{','.join(a)}" for r, a in items]
    assert covers(merge_scopes(scopes), scopes)


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    when = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    got = parse_retry_after(when, now=now)
    assert got is not None and 29 <= got <= 31
    past = format_datetime(datetime.fromtimestamp(now, UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_backoff_grows_and_is_capped() -> None:
    b = Backoff(base=0.1, cap=1.0)
    for attempt in range(8):
        ceiling = min(1.0, 0.1 * 2**attempt)
        for _ in range(20):
            assert ceiling / 2 <= b.delay(attempt) <= ceiling


def test_deadline() -> None:
    assert Deadline(None).remaining() is None and not Deadline(None).expired()
    d = Deadline(0.2)
    assert d.clip(10) <= 0.2
    with pytest.raises(TransportError) as info:
        d.sleep(5, "push of x")
    assert str(info.value) == "push of x: timed out after 0.2 s"
    time.sleep(0.25)
    with pytest.raises(TransportError):
        d.check("pull")


def test_link_header_variants() -> None:
    assert next_link(['</v2/x/tags/list?n=2&last=b>; rel="next"']) == "/v2/x/tags/list?n=2&last=b"
    assert next_link(["<https://h/v2/_catalog?last=a%2Fb&n=5>; rel=next"]) == (
        "https://h/v2/_catalog?last=a%2Fb&n=5"
    )
    assert next_link(['</a>; rel="prev", </b>; rel="next"']) == "/b"
    assert next_link(['</a>; title="x"; rel="last"']) is None
    assert next_link([]) is None


def test_blob_locations_persist_prefer_recent_and_forget(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "loc.db"
    first = BlobLocations(db)
    first.remember("r.io", "team/a", ["sha256:" + "1" * 64])
    time.sleep(0.01)
    first.remember("r.io", "team/b", ["sha256:" + "1" * 64])
    first.remember("other.io", "team/c", ["sha256:" + "1" * 64])
    first.close()
    again = BlobLocations(db)
    assert again.repositories("r.io", "sha256:" + "1" * 64) == ["team/b", "team/a"]
    assert again.repositories("r.io", "sha256:" + "1" * 64, exclude="team/b") == ["team/a"]
    again.forget("r.io", "team/b", "sha256:" + "1" * 64)
    assert again.repositories("r.io", "sha256:" + "1" * 64) == ["team/a"]
    assert again.repositories("r.io", "sha256:" + "2" * 64) == []


def test_blob_locations_keep_a_bounded_number_per_blob(tmp_path: Path) -> None:
    from forklift.transports.registry.blob_locations import MAX_PER_BLOB

    loc = BlobLocations(tmp_path / "loc.db")
    digest = "sha256:" + "3" * 64
    for i in range(MAX_PER_BLOB + 5):
        loc.remember("r.io", f"repo{i}", [digest])
        time.sleep(0.002)
    got = loc.repositories("r.io", digest)
    assert len(got) == MAX_PER_BLOB and got[0] == f"repo{MAX_PER_BLOB + 4}"


def test_unusable_blob_location_file_is_only_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    loc = BlobLocations(blocker / "loc.db")
    loc.remember("r.io", "a", ["sha256:" + "4" * 64])  # must not raise
    assert loc.repositories("r.io", "sha256:" + "4" * 64) == []


def test_blob_locations_shared_by_threads(tmp_path: Path) -> None:
    loc = BlobLocations(tmp_path / "loc.db")

    def work(i: int) -> None:
        loc.remember("r.io", f"repo{i % 3}", [f"sha256:{i:064x}"])

    bounded_map(work, range(40), limit=8)
    assert sum(len(loc.repositories("r.io", f"sha256:{i:064x}")) for i in range(40)) == 40


def test_bounded_map_limits_concurrency_and_keeps_order() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return x * x

    assert bounded_map(slow, range(12), limit=3) == [x * x for x in range(12)]
    assert peak == 3


def test_bounded_map_raises_the_first_error_and_cancels_the_rest() -> None:
    started: list[int] = []

    def job(x: int) -> int:
        started.append(x)
        if x == 1:
            raise ValueError("boom")
        time.sleep(0.05)
        return x

    with pytest.raises(ValueError, match="boom"):
        bounded_map(job, range(20), limit=2)
    assert len(started) < 20


def test_modules_that_moved_still_import_under_their_old_names() -> None:
    import subprocess
    import sys

    probe = (
        "import forklift.registry.client.transport as old\n"
        "from forklift.registry.client.session import Session\n"
        "import forklift.transports.registry.transport as new\n"
        "import forklift.transports.registry.session as session\n"
        "print(old is new, Session is session.Session, old.__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "True", "forklift.transports.registry.transport"]
