"""Blob bodies read straight from the socket: same bytes, same checks, connections reused."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from forklift.errors import DigestMismatch
from forklift.oci import Digest
from forklift.registry.client import RegistryClient
from forklift.transports.registry import httpclient
from forklift.transports.registry.body import open_body

from .conftest import FAST
from .images import random_bytes, sha256
from .proxies import Flip, TcpProxy
from .servers import Distribution, KeyPair, make_keypair, start_distribution

Make = Callable[..., RegistryClient]
SIZE = 3_000_000
PLAIN = replace(FAST, plain_http=True)  # no HTTPS probe: one connection is all a client needs
# a body reader that left h11 waiting for bytes would hang until the read timeout
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stored(registry: Distribution, make_client: Make, repo_name: str) -> tuple[str, bytes]:
    data = random_bytes(SIZE, seed=23)
    make_client(registry.host).upload_blob(
        repo_name, io.BytesIO(data), Digest.parse(sha256(data)), SIZE
    )
    return repo_name, data


def read_all(reader: io.RawIOBase, piece: int = 256 * 1024) -> tuple[bytes, bool]:
    """Everything ``reader`` gives through readinto, and whether the socket was read directly."""
    out = bytearray()
    buf = bytearray(piece)
    direct = False
    while n := reader.readinto(buf):
        direct = direct or reader.download.direct  # type: ignore[attr-defined]
        out += buf[:n]
    return bytes(out), direct


def test_a_blob_is_read_from_the_socket_and_its_connection_reused(
    registry: Distribution, make_client: Make, stored: tuple[str, bytes]
) -> None:
    repo, data = stored
    digest = Digest.parse(sha256(data))
    proxy = TcpProxy(registry.port)
    try:
        client = make_client(proxy.host, options=PLAIN)
        for _ in range(2):
            with client.open_blob(repo, digest, size=SIZE) as reader:
                assert reader.read(0) == b""  # nothing asked, nothing read, not the end
                got, direct = read_all(reader)
            assert got == data
            assert direct, "the body went through httpcore's chunks, not the socket"
        assert client.has_blob(repo, digest)
        # ping, two downloads and a HEAD on one keep-alive connection: a body read
        # past h11 still leaves the connection ready for the next request
        assert proxy.connections == 1
    finally:
        proxy.stop()


def test_an_abandoned_body_closes_its_connection(
    registry: Distribution, make_client: Make, stored: tuple[str, bytes]
) -> None:
    repo, data = stored
    digest = Digest.parse(sha256(data))
    proxy = TcpProxy(registry.port)
    try:
        client = make_client(proxy.host, options=PLAIN)
        reader = client.open_blob(repo, digest, size=SIZE)
        assert reader.read(100_000) and reader.download.direct
        reader.close()
        # the rest of that body is never taken for the next answer
        with client.open_blob(repo, digest, size=SIZE) as again:
            assert read_all(again)[0] == data
        assert client.has_blob(repo, digest)
        assert proxy.connections == 2
    finally:
        proxy.stop()


def test_a_flipped_byte_read_from_the_socket_is_refused(
    registry: Distribution, make_client: Make, stored: tuple[str, bytes]
) -> None:
    repo, data = stored
    proxy = TcpProxy(registry.port, flip=Flip(offset=2_000_000))
    try:
        reader = make_client(proxy.host, options=PLAIN).open_blob(
            repo, Digest.parse(sha256(data)), size=SIZE, what="layer"
        )
        buf = bytearray(1 << 20)
        seen = 0
        with pytest.raises(DigestMismatch) as info, reader:
            while n := reader.readinto(buf):
                assert reader.download.direct
                seen += n
        assert seen == SIZE  # every byte came, and the end was refused, not returned
        assert "digest mismatch for layer" in str(info.value)
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    keys: KeyPair = make_keypair("forklift body test", san_ips=("127.0.0.1",))
    reg = start_distribution(tmp_path_factory.mktemp("distribution-tls-body"), tls=keys)
    yield reg
    reg.stop()


def test_a_blob_over_tls_is_read_from_the_tls_socket(
    tls_registry: Distribution, make_client: Make, repo_name: str
) -> None:
    data = random_bytes(SIZE, seed=29)
    digest = Digest.parse(sha256(data))
    client = make_client(tls_registry.host)  # loopback: TLS without verification
    client.upload_blob(repo_name, io.BytesIO(data), digest, SIZE)
    assert client.ping().base_url.startswith("https://")
    with client.open_blob(repo_name, digest, size=SIZE) as reader:
        got, direct = read_all(reader, piece=100_000)
    assert got == data and direct
    assert client.has_blob(repo_name, digest)


class _Chunked(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    payload = random_bytes(300_000, seed=31)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(self.payload), 70_000):
            part = self.payload[i : i + 70_000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


def test_a_chunked_body_goes_through_httpcore() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Chunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with httpclient.HttpClient(
            ssl_context=httpclient.unverified_context(), timeout=httpclient.Timeout(5, 5, 5, 5)
        ) as web:
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            for direct_wanted in (True, False):
                with web.send("GET", url) as resp:
                    body = open_body(resp, direct=direct_wanted)
                    assert not body.direct  # no Content-Length: h11 decodes the chunks
                    out = bytearray()
                    buf = memoryview(bytearray(50_000))
                    while n := body.readinto(buf):
                        out += buf[:n]
                assert bytes(out) == _Chunked.payload
    finally:
        server.shutdown()
        server.server_close()
