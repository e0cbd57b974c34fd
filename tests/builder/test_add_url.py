"""ADD <url>: the registry client's HTTP settings, BuildKit's cache key, ``--checksum`` verified.

A small HTTP(S) server in the test serves the files; it counts requests so a
test can tell a cache hit that downloads nothing from one that downloads and
compares.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import ssl
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from forklift.build.builder import build
from forklift.build.options import BuildOptions
from forklift.build.progress import QuietProgress
from forklift.errors import BuildError, TransportError
from forklift.reference import parse_reference
from forklift.registry.client import ClientOptions
from forklift.registry.client.web import download, url_filename
from forklift.store import Store
from tests.registry_client.servers import make_keypair

MODIFIED = 1_600_000_000  # Sun, 13 Sep 2020 12:26:40 GMT


@dataclass
class Site:
    """What the server serves, and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> 503s before a 200
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"


def _serve(site: Site, tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append(self.path)
            path = self.path if self.path.startswith("/") else "/" + self.path.split("/", 3)[3]
            if site.fail_first.get(path, 0) > 0:
                site.fail_first[path] -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = site.files.get(path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", email.utils.formatdate(MODIFIED, usegmt=True))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    yield from _serve(Site())


@pytest.fixture(scope="module")
def tls_keys():  # type: ignore[no-untyped-def]
    return make_keypair("forklift test web", san_ips=("127.0.0.1",))


@pytest.fixture
def tls_site(tls_keys, tmp_path: Path) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    (tmp_path / "cert.pem").write_bytes(tls_keys.cert_pem)
    (tmp_path / "key.pem").write_bytes(tls_keys.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    yield from _serve(Site(), ctx)


# -- the download itself ----------------------------------------------------------------


def test_download_trusts_the_clients_ca_settings(tls_site: Site, tls_keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tls_site.files["/f.txt"] = b"over TLS\n"
    url = tls_site.url("/f.txt", "https")
    strict = ClientOptions(insecure_localhost=False, max_attempts=1)
    with pytest.raises(TransportError) as info:
        download(url, io.BytesIO(), options=strict)
    assert "certificate" in str(info.value).lower() or "ssl" in str(info.value).lower()
    # the CA bundle a pull would trust ...
    ca = tmp_path / "ca.pem"
    ca.write_bytes(tls_keys.cert_pem)
    out = io.BytesIO()
    got = download(url, out, options=ClientOptions(insecure_localhost=False, ca_bundle=ca))
    assert out.getvalue() == b"over TLS\n"
    assert got.digest == "sha256:" + hashlib.sha256(b"over TLS\n").hexdigest()
    assert (got.size, got.last_modified, got.filename) == (9, MODIFIED, "f.txt")
    # ... or certs.d/<host:port>/ca.crt, as for registries
    certs = tmp_path / "certs.d" / f"127.0.0.1:{tls_site.port}"
    certs.mkdir(parents=True)
    (certs / "ca.crt").write_bytes(tls_keys.cert_pem)
    options = ClientOptions(insecure_localhost=False, cert_dirs=(str(tmp_path / "certs.d"),))
    assert download(url, io.BytesIO(), options=options).size == 9
    # and an insecure host (loopback, by default) is reached without verification
    assert download(url, io.BytesIO(), options=ClientOptions()).size == 9


def test_download_retries_what_can_get_better(site: Site) -> None:
    site.files["/busy"] = b"eventually\n"
    site.fail_first["/busy"] = 2
    out = io.BytesIO()
    download(site.url("/busy"), out, options=ClientOptions(backoff_base=0.01))
    assert out.getvalue() == b"eventually\n"
    assert site.requests == ["/busy"] * 3
    site.requests.clear()
    with pytest.raises(TransportError) as info:
        download(site.url("/missing"), io.BytesIO(), options=ClientOptions(backoff_base=0.01))
    assert "HTTP 404" in str(info.value)
    assert site.requests == ["/missing"]  # a 404 is not retried


def test_download_does_not_retry_what_cannot_get_better() -> None:
    # A refused connection fails the same way again: the client's rule says no retry.
    from forklift.transports.registry.retry import Deadline
    from tests.helpers import free_port

    class Counting(Deadline):
        sleeps = 0

        def sleep(self, seconds: float, what: str) -> None:
            Counting.sleeps += 1

    with pytest.raises(TransportError):
        download(
            f"http://127.0.0.1:{free_port()}/x",
            io.BytesIO(),
            options=ClientOptions(max_attempts=6),
            deadline=Counting(None),
        )
    assert Counting.sleeps == 0


def test_download_goes_through_the_environments_proxy(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy answers for a host that does not exist: the request must have gone to it.
    site.files["/via-proxy"] = b"proxied\n"
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{site.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    out = io.BytesIO()
    download("http://files.example.invalid/via-proxy", out, options=ClientOptions())
    assert out.getvalue() == b"proxied\n"
    assert site.requests == ["http://files.example.invalid/via-proxy"]


def test_file_names_follow_buildkit() -> None:
    assert url_filename("https://example.com/a/b.tar.gz?x=1") == "b.tar.gz"
    assert url_filename("https://example.com/") == "__unnamed__"
    assert url_filename("https://example.com") == "__unnamed__"


# -- in a build ---------------------------------------------------------------------------


def _layer_member(store: Store, image: str, name: str) -> tarfile.TarInfo:
    import gzip

    img = store.resolve(image)
    found = None
    for layer in img.manifest.layers:  # type: ignore[union-attr]
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(store.read_blob(layer.digest)))) as tf:
            for m in tf:
                if m.name == name:
                    found = m
    assert found is not None, name
    return found


@pytest.mark.root
def test_add_url_keys_on_content_and_checksum(
    busybox_image: str, site: Site, tmp_path: Path
) -> None:
    site.files["/tool.sh"] = b"echo one\n"
    url = site.url("/tool.sh")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nADD {url} /opt/\n")

    def run() -> list[bool]:
        result = build(
            BuildOptions(context=str(ctx), tags=(parse_reference("add:1"),)),
            progress=QuietProgress(),
        )
        return [s.cached for s in result.steps]

    assert run() == [False]
    member = _layer_member(Store.open(), "add:1", "opt/tool.sh")
    assert (member.mode & 0o7777, member.mtime) == (0o600, MODIFIED)  # BuildKit's defaults
    # the same content again: a hit (BuildKit downloads to compare; so does forklift)
    assert run() == [True]
    assert site.requests == ["/tool.sh", "/tool.sh"]
    site.files["/tool.sh"] = b"echo two\n"
    assert run() == [False]
    # --checksum: the digest stands for the content, so a hit needs no download at all
    digest = "sha256:" + hashlib.sha256(b"echo two\n").hexdigest()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nADD --checksum={digest} {url} /opt/\n")
    assert run() == [False]
    site.requests.clear()
    site.files.clear()  # the server has nothing now
    assert run() == [True] and site.requests == []
    # and a download that does not match is refused
    site.files["/tool.sh"] = b"tampered\n"
    (ctx / "Dockerfile").write_text(f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {url} /opt/\n")
    with pytest.raises(BuildError) as info:
        run()
    got = "sha256:" + hashlib.sha256(b"tampered\n").hexdigest()
    assert info.value.message == f"digest mismatch for {url}: {got} (expected: sha256:{'0' * 64})"


@pytest.mark.root
def test_add_unpacks_local_archives_only(busybox_image: str, tmp_path: Path) -> None:
    import gzip

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("inside.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"in\n"))
    (ctx / "files.tar.gz").write_bytes(gzip.compress(buf.getvalue()))
    (ctx / "notes.txt.gz").write_bytes(gzip.compress(b"just text, not a tar\n"))
    (ctx / "Dockerfile").write_text("FROM busybox\nADD files.tar.gz /a/\nADD notes.txt.gz /b/\n")
    build(
        BuildOptions(context=str(ctx), tags=(parse_reference("add:2"),)), progress=QuietProgress()
    )
    store = Store.open()
    assert _layer_member(store, "add:2", "a/inside.txt").size == 3  # unpacked
    # a gzipped file that is not a tar is copied as it is (BuildKit sniffs the tar header)
    assert _layer_member(store, "add:2", "b/notes.txt.gz").isfile()
