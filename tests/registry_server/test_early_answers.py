"""Answers given before the request body was read leave the connection usable.

Every early-answer path (401 before login, 404 for an unknown upload, 416 for
an out-of-order chunk, 400 for a chunk whose lengths disagree, 413 for a
manifest over the limit) is sent a body of 64 KiB, 1 MiB and 16 MiB by a
client that reuses its connection: a raw socket (which sends the whole body
before reading, as a simple client does) and httpx. The next request on the
same connection must get its own answer. Before the fix the server dropped
the connection without reading the body: the client saw EOF or a broken pipe.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from forklift.registry.server.app import DRAIN_LIMIT
from tests.registry_server.conftest import need
from tests.registry_server.servers import Server, start_forklift

SIZES = [64 << 10, 1 << 20, 16 << 20]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    base = tmp_path_factory.mktemp("early")
    (base / "small.yaml").write_text("max_manifest_size: 1000\n")
    out = subprocess.run(
        [need("htpasswd"), "-Bbn", "alice", "wonderland"],
        capture_output=True,
        text=True,
        check=True,
    )
    (base / "users").write_text(out.stdout)
    open_server = start_forklift(
        base / "open", "--config", str(base / "small.yaml"), "--gc-interval", "0"
    )
    auth_server = start_forklift(
        base / "auth", "--htpasswd", str(base / "users"), "--gc-interval", "0"
    )
    yield {"open": open_server, "auth": auth_server}
    open_server.stop()
    auth_server.stop()


@dataclass(frozen=True)
class Case:
    """One early answer: where, how, and what status proves it was the early path."""

    server: str
    method: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    needs_session: bool = False
    path: str = ""


CASES = {
    "401-before-login": Case("auth", "PATCH", 401, path="/v2/team/app/blobs/uploads/{id}"),
    "404-unknown-upload": Case("open", "PATCH", 404, path="/v2/team/app/blobs/uploads/{id}"),
    "416-out-of-order": Case(
        "open",
        "PATCH",
        416,
        headers=(("content-range", "{first}-{last}"),),
        needs_session=True,
        path="/v2/team/app/blobs/uploads/{id}",
    ),
    "400-lengths-disagree": Case(
        "open",
        "PATCH",
        400,
        headers=(("content-range", "0-9"),),
        needs_session=True,
        path="/v2/team/app/blobs/uploads/{id}",
    ),
    "413-manifest-too-big": Case(
        "open",
        "PUT",
        413,
        headers=(("content-type", "application/vnd.oci.image.manifest.v1+json"),),
        path="/v2/team/app/manifests/v1",
    ),
}


def _target(server: Server, case: Case, size: int) -> tuple[str, dict[str, str]]:
    upload = str(uuid.uuid4())
    if case.needs_session:
        r = httpx.post(f"{server.url}/v2/team/app/blobs/uploads/")
        assert r.status_code == 202
        upload = r.headers["location"].rsplit("/", 1)[1]
    path = case.path.format(id=upload)
    # out of order: claims to start at byte 5 of an empty upload
    fields = {"first": "5", "last": str(5 + size - 1)}
    headers = {k: v.format(**fields) for k, v in case.headers}
    return path, headers


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str]]:
    """Read one HTTP/1.1 response (with Content-Length) from ``sock``; leftovers stay in buf."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError("connection closed before a response")
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise EOFError("connection closed inside a response body")
        rest += data
    buf[:] = rest[length:]
    return status, headers


@pytest.mark.parametrize("size", SIZES, ids=["64KiB", "1MiB", "16MiB"])
@pytest.mark.parametrize("name", list(CASES))
def test_raw_socket_reuses_the_connection_after_an_early_answer(
    servers: dict[str, Server], name: str, size: int
) -> None:
    case = CASES[name]
    server = servers[case.server]
    path, headers = _target(server, case, size)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        head = f"{case.method} {path} HTTP/1.1\r\nHost: {server.host}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {size}\r\n\r\n"
        # the whole body goes out before the answer is read, as simple clients do
        sock.sendall(head.encode() + b"x" * size)
        buf = bytearray()
        status, got = _read_response(sock, buf)
        assert status == case.status
        assert got.get("connection", "").lower() != "close"
        # the same connection serves the next request
        sock.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {server.host}\r\n\r\n".encode())
        status, _ = _read_response(sock, buf)
        assert status == (401 if case.server == "auth" else 200)
    finally:
        sock.close()


@pytest.mark.parametrize("size", SIZES, ids=["64KiB", "1MiB", "16MiB"])
@pytest.mark.parametrize("name", list(CASES))
def test_httpx_reuses_the_connection_after_an_early_answer(
    servers: dict[str, Server], name: str, size: int
) -> None:
    case = CASES[name]
    server = servers[case.server]
    path, headers = _target(server, case, size)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=server.url, limits=limits, timeout=60) as client:
        r = client.request(case.method, path, headers=headers, content=b"y" * size)
        assert r.status_code == case.status
        first = r.extensions["network_stream"].get_extra_info("client_addr")
        r = client.get("/v2/")
        assert r.status_code == (401 if case.server == "auth" else 200)
        # the same TCP connection (same local port), not a silent reconnect
        assert r.extensions["network_stream"].get_extra_info("client_addr") == first


def test_a_body_beyond_the_drain_limit_closes_the_connection(servers: dict[str, Server]) -> None:
    """Past DRAIN_LIMIT the server says ``Connection: close`` instead of reading on."""
    server = servers["open"]
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        head = (
            f"PATCH /v2/team/app/blobs/uploads/{uuid.uuid4()} HTTP/1.1\r\n"
            f"Host: {server.host}\r\nContent-Length: {DRAIN_LIMIT + 1}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"z" * (1 << 20))
        buf = bytearray()
        status, headers = _read_response(sock, buf)
        assert status == 404
        assert headers["connection"].lower() == "close"
        # and it does close: no further bytes, EOF
        sock.settimeout(30)
        while sock.recv(65536):
            pass
    finally:
        sock.close()


def test_the_registry_still_works_after_many_early_answers(
    servers: dict[str, Server], tmp_path: Path
) -> None:
    """Drained bodies are dropped, not appended anywhere: a real upload afterwards is exact."""
    server = servers["open"]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/v2/team/exact/blobs/uploads/")
        location = r.headers["location"]
        for _ in range(3):
            r = client.patch(location, headers={"content-range": "7-8"}, content=b"ab" * 1000)
            assert r.status_code == 416
        data = b"0123456789"
        r = client.patch(location, headers={"content-range": "0-9"}, content=data)
        assert r.status_code == 202 and r.headers["range"] == "0-9"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = client.put(f"{location}?digest={digest}")
        assert r.status_code == 201
        assert client.get(f"/v2/team/exact/blobs/{digest}").content == data
