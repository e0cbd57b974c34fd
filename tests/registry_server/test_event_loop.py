"""Slow work never holds up other requests: bcrypt, /token, metadata writes, GC.

These tests assert order, not time: a cheap request sent while slow work is
queued must be answered before that work is done. On the old single event
loop (bcrypt inline, one database lock shared with GC) it came last.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from forklift.registry.server.metadata import SQLiteMetadata
from tests.registry_server.conftest import need
from tests.registry_server.servers import Server, start_forklift

COST = 11  # a tenth of a second or more per check here: slow work that is easy to queue


@pytest.fixture(params=["htpasswd", "token"])
def slow_auth_server(request: pytest.FixtureRequest, tmp_path: Path):
    lines = []
    for user, password in (("alice", "wonderland"), ("bob", "builder")):
        out = subprocess.run(
            [need("htpasswd"), "-Bbn", "-C", str(COST), user, password],
            capture_output=True,
            text=True,
            check=True,
        )
        lines.append(out.stdout.strip())
    (tmp_path / "users").write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "r.yaml"
    token = "  token: {}\n" if request.param == "token" else ""
    cfg.write_text(f"auth:\n  htpasswd: {tmp_path / 'users'}\n{token}")
    server = start_forklift(tmp_path / "root", "--config", str(cfg), "--gc-interval", "0")
    server.extra["mode"] = request.param
    yield server
    server.stop()


def _in_flight(client: httpx.Client) -> int:
    text = client.get("/metrics").text
    return int(re.search(r"^forklift_registry_requests_in_flight (\d+)$", text, re.M).group(1))


def test_wrong_passwords_do_not_stall_other_requests(slow_auth_server: Server) -> None:
    """While 10 wrong passwords wait for bcrypt, cheap requests are answered.

    The metrics endpoint shows the checks in flight at the same time as it
    answers; with bcrypt on the event loop, no request could be answered (or
    even started) while a check ran, so in-flight never rose past one or two.
    """
    server = slow_auth_server
    token_mode = server.extra["mode"] == "token"
    with httpx.Client(base_url=server.url, timeout=120) as good:
        if token_mode:
            # one bcrypt check for the token; requests with it need none
            token = good.get(
                "/token", params={"scope": "repository:team/app:pull"}, auth=("alice", "wonderland")
            ).json()["token"]
            good.headers["authorization"] = f"Bearer {token}"
        else:
            good.auth = ("alice", "wonderland")  # checked once, then cached
        assert good.get("/v2/team/app/tags/list").status_code == 404

        done: list[int] = []

        def wrong(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                if token_mode:
                    r = c.get(
                        "/token", params={"scope": "repository:x:pull"}, auth=("bob", f"x{i}")
                    )
                else:
                    r = c.get("/v2/team/app/tags/list", auth=("bob", f"x{i}"))
                assert r.status_code == 401
                done.append(i)

        flood = [threading.Thread(target=wrong, args=(i,)) for i in range(10)]
        for t in flood:
            t.start()
        with httpx.Client(base_url=server.url, timeout=120) as watcher:
            seen = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(done) < 10:
                seen = max(seen, _in_flight(watcher) - 1)  # minus the scrape itself
                if seen >= 6:
                    break
        # answered while password checks are still waiting their turn
        r = good.get("/v2/team/app/tags/list")
        pending = 10 - len(done)
        assert r.status_code == 404
        for t in flood:
            t.join(120)
    assert len(done) == 10
    assert seen >= 6, f"at most {seen} requests were ever in flight at once"
    assert pending > 0


def test_reads_do_not_wait_for_a_write_transaction(tmp_path: Path) -> None:
    """A reader (the event loop) is never blocked by a writer's transaction (GC, a push)."""
    meta = SQLiteMetadata(tmp_path / "m.db")
    meta.add_blob("r", "sha256:" + "a" * 64, 3)
    inside = threading.Event()
    release = threading.Event()

    def long_writer() -> None:
        # what a GC pass does per repository: one write transaction, held a while
        with meta._write() as db:
            db.execute("UPDATE blobs SET touched=0")
            inside.set()
            release.wait(60)

    writer = threading.Thread(target=long_writer)
    writer.start()
    try:
        assert inside.wait(30)
        result: list[int | None] = []
        reader = threading.Thread(
            target=lambda: result.append(meta.blob_size("sha256:" + "a" * 64))
        )
        reader.start()
        reader.join(30)
        # answered while the write transaction is still open
        assert not reader.is_alive() and result == [3]
        assert writer.is_alive()
    finally:
        release.set()
        writer.join(30)
        meta.close()
