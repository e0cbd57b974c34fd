"""``forklift db update`` against a local HTTP server serving the corpus in the upstream layouts.

OSV serves ``<ecosystem>/all.zip``; Debian serves the tracker JSON and the DSA/DLA
lists. The server can cut a response short, corrupt the zip, or fail; every
failure leaves the previous database exactly as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from forklift.errors import InvalidInput, TransportError
from forklift.scan.db.index import Database
from forklift.scan.db.sources import parse_specs
from forklift.scan.db.update import update
from tests.helpers import run_cli
from tests.scan.conftest import DEBIAN_FIXTURE


def _osv_zip(jsonl: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for line in jsonl.read_text().splitlines():
            rec = json.loads(line)
            rec.pop("_source_path", None)
            zf.writestr(f"{rec['id']}.json", json.dumps(rec))
    return buf.getvalue()


class Upstream:
    """What the server serves and how it misbehaves."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.truncate: dict[str, int] = {}  # path -> how many more responses to cut short
        self.fail: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []


def _handler(up: Upstream) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            up.requests.append((self.path, rng))
            if self.path in up.fail:
                self.send_error(500)
                return
            body = up.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-", 1)[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            part = body[start:]
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            if up.truncate.get(self.path, 0) > 0:
                up.truncate[self.path] -= 1
                self.wfile.write(part[: len(part) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(part)

    return H


@pytest.fixture(scope="module")
def upstream(corpus: Path) -> Iterator[tuple[str, Upstream]]:
    v = corpus / "vulndb"
    files = {
        "/PyPI/all.zip": _osv_zip(v / "pypi/pypa-osv.jsonl"),
        "/tracker/data/json": (v / DEBIAN_FIXTURE / "input/debian.json").read_bytes(),
        "/security-tracker/data/DSA/list": (v / "debian/tracker-format/DSA-list").read_bytes(),
        "/security-tracker/data/DLA/list": (v / "debian/tracker-format/DLA-list").read_bytes(),
    }
    zipped = bytearray(files["/PyPI/all.zip"])
    mid = len(zipped) // 2
    zipped[mid : mid + 64] = bytes(64)  # inside some member's compressed data
    files["/broken/all.zip"] = bytes(zipped)
    files["/notzip/all.zip"] = b"<html>not a zip</html>"
    up = Upstream(files)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(up))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", up
    server.shutdown()
    server.server_close()


def _sources(base: str) -> list[str]:
    return [
        f"PyPI={base}/PyPI/all.zip",
        f"debian={base}/tracker/data/json",
        f"debian-dsa={base}/security-tracker/data/DSA/list",
        f"debian-dla={base}/security-tracker/data/DLA/list",
    ]


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_ino


@pytest.fixture
def built(tmp_path: Path, upstream: tuple[str, Upstream]) -> Path:
    base, _ = upstream
    path = tmp_path / "db" / "vuln.db"
    update(parse_specs(_sources(base)), path=path)
    return path


def test_update_from_upstream_layouts(built: Path) -> None:
    with Database(built) as db:
        by_name = {s.name: s for s in db.sources()}
        assert by_name["PyPI"].records == 2661 and by_name["PyPI"].withdrawn == 10
        assert by_name["debian"].records > 0 and by_name["debian-dsa"].records > 10000
        assert all(s.origin.startswith("http://127.0.0.1") for s in by_name.values())
        assert len(by_name["PyPI"].sha256) == 64
        # a lookup is an indexed query, not a scan
        plan = db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM affected WHERE ecosystem = ? AND package = ?",
            ("pypi", "django"),
        ).fetchall()
        assert any("USING INDEX affected_lookup" in str(row) for row in plan)
    # nothing is left behind in the downloads directory
    assert not any((built.parent / "downloads").iterdir())


def test_truncated_download_is_resumed(tmp_path: Path, upstream: tuple[str, Upstream]) -> None:
    base, up = upstream
    up.requests.clear()
    up.truncate["/PyPI/all.zip"] = 1
    path = tmp_path / "vuln.db"
    update(parse_specs([f"PyPI={base}/PyPI/all.zip"]), path=path)
    ranges = [r for p, r in up.requests if p == "/PyPI/all.zip"]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    with Database(path) as db:
        assert db.sources()[0].records == 2661


@pytest.mark.parametrize(
    ("source", "setup", "error", "message"),
    [
        ("PyPI=/PyPI/all.zip", "truncate", TransportError, "download incomplete"),
        ("PyPI=/broken/all.zip", None, InvalidInput, "corrupt zip"),
        ("PyPI=/notzip/all.zip", None, InvalidInput, "not a zip"),
        ("debian=/tracker/data/json", "fail", TransportError, "HTTP 500"),
        ("PyPI=/missing/all.zip", None, TransportError, "HTTP 404"),
    ],
)
def test_failed_update_keeps_the_old_database(
    built: Path,
    upstream: tuple[str, Upstream],
    source: str,
    setup: str | None,
    error: type,
    message: str,
) -> None:
    base, up = upstream
    name, _, path = source.partition("=")
    if setup == "truncate":
        up.truncate[path] = 100
    elif setup == "fail":
        up.fail.add(path)
    before = _fingerprint(built)
    try:
        with pytest.raises(error, match=message):
            update(parse_specs([f"{name}={base}{path}"]), path=built)
    finally:
        up.truncate.pop(path, None)
        up.fail.discard(path)
    assert _fingerprint(built) == before
    with Database(built) as db:
        assert {s.name for s in db.sources()} == {"PyPI", "debian", "debian-dsa", "debian-dla"}
    assert not list(built.parent.glob(".vuln.*"))  # no temporary database left


def test_partial_update_keeps_the_other_sources(built: Path, corpus: Path) -> None:
    update(parse_specs([f"ghsa={corpus}/vulndb/ghsa"]), path=built)
    with Database(built) as db:
        names = {s.name: s.records for s in db.sources()}
    assert names["PyPI"] == 2661 and names["ghsa"] == 13 and "debian-dla" in names


def test_cli_update_error_is_one_line(home: Path, upstream: tuple[str, Upstream]) -> None:
    base, _ = upstream
    r = run_cli("db", "update", "--source", f"PyPI={base}/broken/all.zip")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "corrupt zip" in r.stderr
    r = run_cli("db", "update", "--source", "nosuch=/x")
    assert r.returncode == 2 and "unknown database source" in r.stderr
    r = run_cli("db", "status")
    assert r.returncode == 1 and "forklift db update" in r.stderr


def test_cli_update_and_status(home: Path, upstream: tuple[str, Upstream]) -> None:
    base, _ = upstream
    r = run_cli("db", "update", *[x for s in _sources(base) for x in ("--source", s)])
    assert r.returncode == 0, r.stderr
    assert "PyPI: 2661 records, 10 withdrawn" in r.stdout
    r = run_cli("db", "status", "--format", "json")
    doc = json.loads(r.stdout)
    assert {s["name"]: s["records"] for s in doc["sources"]}["PyPI"] == 2661
    assert all(s["age_seconds"] < 600 for s in doc["sources"])
    table = run_cli("db", "status").stdout
    assert "PyPI" in table and "2661" in table
