"""The HTTP client under the registry client: proxies, redirects, bodies, URLs, headers.

Against real servers on 127.0.0.1: distribution (plain and TLS) behind a real forward
proxy for the proxy rules, Python's HTTP server for redirects and request framing.
"""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from forklift.errors import TransportError
from forklift.oci import Digest
from forklift.registry.client import RegistryClient
from forklift.transports.registry import httpclient
from forklift.transports.registry.httpclient import (
    Headers,
    HttpClient,
    Timeout,
    merge_query,
    proxy_for,
    safe_url,
    unverified_context,
)

from .conftest import FAST
from .images import random_bytes, sha256
from .proxies import ForwardProxy
from .servers import Distribution, make_keypair, start_distribution

Make = Callable[..., RegistryClient]
PROXY_VARS = (
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
    "no_proxy", "NO_PROXY", "REQUEST_METHOD",
)  # fmt: skip
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


def core_url(url: str) -> object:
    return httpclient._core_url(url)


# -- which proxy the environment names ---------------------------------------------


def test_proxy_variables_pick_by_scheme_lower_case_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "upper:3128")
    monkeypatch.setenv("https_proxy", "http://lower:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain:8080")
    assert proxy_for(core_url("https://reg.example/v2/")) == "http://lower:3128"
    assert proxy_for(core_url("http://reg.example/v2/")) == "http://plain:8080"
    monkeypatch.delenv("https_proxy")
    assert proxy_for(core_url("https://reg.example/v2/")) == "http://upper:3128"  # scheme added


def test_all_proxy_is_the_fallback_and_cgi_ignores_upper_case_http_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://every:1")
    assert proxy_for(core_url("https://reg.example/")) == "http://every:1"
    monkeypatch.setenv("HTTP_PROXY", "http://evil:1")
    monkeypatch.setenv("REQUEST_METHOD", "GET")  # httpoxy: a CGI request's Proxy header
    assert proxy_for(core_url("http://reg.example/")) == "http://every:1"


@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("*", "reg.example", True),
        ("example.com", "example.com", True),
        ("example.com", "a.b.example.com", True),
        (".example.com", "example.com", True),
        (".example.com", "www.example.com", True),
        ("example.com", "badexample.com", False),
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "11.1.2.3", False),
        ("192.168.1.5", "192.168.1.5", True),
        ("reg.example:5000", "reg.example", True),  # port 5000 below
        ("reg.example:443", "reg.example", False),
        (" other.org , reg.example ", "reg.example", True),
        ("fd00::/8", "[fd00::1]", True),
        ("[fd00::1]:5000", "[fd00::1]", True),
        ("[fd00::1]:443", "[fd00::1]", False),
    ],
)
def test_no_proxy_rules(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str, bypassed: bool
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    got = proxy_for(core_url(f"https://{host}:5000/v2/"))
    assert (got is None) == bypassed


def test_loopback_is_never_proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    for host in ("localhost", "127.0.0.1", "127.9.9.9", "[::1]"):
        assert proxy_for(core_url(f"http://{host}:5000/v2/")) is None, host
    assert proxy_for(core_url("http://10.0.0.1:5000/v2/")) == "http://proxy:3128"


def _stored(registry: Distribution, make_client: Make, repo: str) -> tuple[Digest, bytes]:
    data = random_bytes(200_000, seed=41)
    digest = Digest.parse(sha256(data))
    make_client(registry.host).upload_blob(repo, io.BytesIO(data), digest, len(data))
    return digest, data


def test_a_registry_is_reached_through_http_proxy(
    registry: Distribution, make_client: Make, repo_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest, data = _stored(registry, make_client, repo_name)
    proxy = ForwardProxy(registry.port)
    try:
        # a name only the proxy can reach: it sends every request to the registry
        monkeypatch.setenv("http_proxy", f"http://user:p%40ss@{proxy.host}")
        client = make_client(
            "registry.invalid:5000",
            options=replace(FAST, plain_http=True, insecure_registries=("registry.invalid:5000",)),
        )
        with client.open_blob(repo_name, digest, size=len(data)) as reader:
            assert reader.read() == data
        assert proxy.seen and all(
            line.startswith("GET http://registry.invalid:5000/v2/") for line in proxy.seen
        ), proxy.seen
        assert proxy.auth[0] == "Basic dXNlcjpwQHNz"  # user:p@ss
        # the same client with the registry named in no_proxy would not find it
        monkeypatch.setenv("no_proxy", "registry.invalid")
        other = make_client(
            "registry.invalid:5000",
            options=replace(FAST, plain_http=True, insecure_registries=("registry.invalid:5000",)),
        )
        before = len(proxy.seen)
        with pytest.raises(TransportError):
            other.ping()
        assert len(proxy.seen) == before
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Distribution, Path]]:
    """distribution over TLS, its certificate naming ``registry.invalid``; and the CA file."""
    keys = make_keypair("proxied", san_ips=("127.0.0.1",), san_dns=("registry.invalid",))
    work = tmp_path_factory.mktemp("distribution-tls-proxied")
    reg = start_distribution(work, tls=keys)
    ca = work / "ca.pem"
    ca.write_bytes(keys.cert_pem)
    yield reg, ca
    reg.stop()


def test_a_tls_registry_is_reached_through_a_connect_tunnel_and_verified(
    tls_registry: tuple[Distribution, Path],
    make_client: Make,
    repo_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, ca = tls_registry
    digest, data = _stored(registry, make_client, repo_name)
    proxy = ForwardProxy(registry.port)
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.host)
        # verified TLS to the name, end to end through the tunnel
        client = make_client("registry.invalid:5443", options=replace(FAST, ca_bundle=ca))
        assert client.ping().base_url == "https://registry.invalid:5443"
        with client.open_blob(repo_name, digest, size=len(data)) as reader:
            assert reader.read() == data
        assert proxy.seen[0] == "CONNECT registry.invalid:5443 HTTP/1.1"
    finally:
        proxy.stop()


# -- redirects, request framing -----------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).seen.append((self.command, self.path, headers, body))

    def _answer(self) -> None:
        self._record()
        if self.path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", f"/loop{len(self.seen)}")
        elif self.path.startswith("/see-other"):
            self.send_response(303)
            self.send_header("Location", "/done?x=1")
        elif self.path.startswith("/noreason"):
            self.send_response_only(204, "")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        else:
            self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _client(**kwargs: object) -> HttpClient:
    return HttpClient(
        ssl_context=unverified_context(),
        timeout=Timeout(5, 5, 5, 5),
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_redirect_loop_ends_with_one_line(recorder: str) -> None:
    with _client() as web, pytest.raises(TransportError, match="more than 20 redirects"):
        web.send("GET", recorder + "/loop", follow_redirects=True)
    assert len(_Recorder.seen) == 21


def test_303_turns_a_post_into_a_get_without_its_body(recorder: str) -> None:
    with _client() as web:
        resp = web.send("POST", recorder + "/see-other", content=b"secret=1", follow_redirects=True)
        assert resp.read() == b"ok"
    (m1, p1, h1, b1), (m2, p2, h2, b2) = _Recorder.seen
    assert (m1, p1, b1, h1["content-length"]) == ("POST", "/see-other", b"secret=1", "8")
    assert (m2, p2, b2) == ("GET", "/done?x=1", b"")
    assert "content-length" not in h2


def test_a_bodiless_post_says_content_length_zero_and_a_stream_is_chunked(recorder: str) -> None:
    with _client(headers={"User-Agent": "forklift-test"}) as web:
        web.send("POST", recorder + "/a").close()
        web.send("GET", recorder + "/b").close()
    (_, _, post, _), (_, _, get, _) = _Recorder.seen
    assert post["content-length"] == "0" and post["user-agent"] == "forklift-test"
    assert "content-length" not in get and "transfer-encoding" not in get
    assert get["host"] == recorder.removeprefix("http://")
    assert "accept-encoding" not in get  # bodies arrive as stored, never decoded


def test_every_hop_passes_the_before_send_hook(recorder: str) -> None:
    def hook(request: httpclient.Request) -> None:
        if "done" in request.url:
            del request.headers["authorization"]

    with _client(before_send=hook) as web:
        web.send(
            "GET", recorder + "/see-other", headers={"Authorization": "Bearer t"},
            follow_redirects=True,
        ).close()  # fmt: skip
    (_, _, first, _), (_, _, second, _) = _Recorder.seen
    assert first["authorization"] == "Bearer t"
    assert "authorization" not in second


def test_a_missing_reason_phrase_is_the_status_name(recorder: str) -> None:
    with _client() as web, web.send("GET", recorder + "/noreason") as resp:
        assert (resp.status_code, resp.reason_phrase) == (204, "No Content")


# -- URLs and headers ---------------------------------------------------------------


def test_safe_url_cannot_break_the_request_line() -> None:
    got = safe_url("http://h:1/v2/a b\r\nX-Injected: 1/ü?q=a b#f")
    assert " " not in got and "\r" not in got and "\n" not in got
    assert got.startswith("http://h:1/v2/a%20b%0D%0AX-Injected:%201/%C3%BC?q=a%20b")
    assert safe_url("http://h/v2/x?_state=a%2Fb&n=1") == "http://h/v2/x?_state=a%2Fb&n=1"


def test_merge_query_keeps_the_registrys_state_verbatim() -> None:
    loc = "http://h/v2/r/blobs/uploads/u?_state=ab%2Bc%3D&x=1"
    assert merge_query(loc, [("digest", "sha256:00")]) == loc + "&digest=sha256%3A00"
    assert merge_query("http://h/p?digest=old&a=1", [("digest", "new")]) == (
        "http://h/p?a=1&digest=new"
    )
    assert merge_query("http://h/p", [("s", "a b")]) == "http://h/p?s=a+b"
    assert merge_query("http://h/p?a=1", []) == "http://h/p?a=1"


def test_headers_are_case_insensitive_and_repeatable() -> None:
    h = Headers.from_raw([(b"WWW-Authenticate", b"Basic"), (b"www-authenticate", b"Bearer x")])
    assert h.get_list("www-authenticate") == ["Basic", "Bearer x"]
    assert h["WWW-AUTHENTICATE"] == "Basic, Bearer x"
    assert "Www-Authenticate" in h and "location" not in h
    assert h.get("location", "") == ""
    h["Authorization"] = "secret"
    assert "secret" not in repr(h)
    del h["authorization"]
    assert "authorization" not in h


def test_an_unsupported_url_is_a_transport_error_not_a_crash() -> None:
    with _client() as web:
        for url in ("ftp://h/x", "http://h:notaport/x", "http:///nohost"):
            with pytest.raises(httpclient.HTTP_ERRORS):
                web.send("GET", url)


# -- answers without end --------------------------------------------------------------


class _Endless(http.server.BaseHTTPRequestHandler):
    """A registry whose tag list (and token service) never stops sending."""

    protocol_version = "HTTP/1.1"
    sent = 0

    def do_GET(self) -> None:
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b"x" * 65536
        try:
            while type(self).sent < 200 << 20:  # the test fails long before this
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                type(self).sent += len(piece)
        except OSError:
            pass  # the client hung up: what it should do

    def log_message(self, *args: object) -> None:
        pass


def test_an_endless_answer_is_cut_at_the_limit_with_one_line(
    make_client: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forklift.errors import RegistryError
    from forklift.transports.registry import session

    monkeypatch.setattr(session, "ANSWER_LIMIT", 1 << 20)
    _Endless.sent = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = make_client(f"127.0.0.1:{server.server_address[1]}",
                             options=replace(FAST, plain_http=True))  # fmt: skip
        with pytest.raises(RegistryError, match="larger than 1,048,576 bytes"):
            list(client.list_tags("any/repo"))
        # the client stopped reading near the limit instead of holding the stream
        assert _Endless.sent < 8 << 20
    finally:
        server.shutdown()
        server.server_close()


def test_read_with_a_limit_trusts_no_content_length(recorder: str) -> None:
    with _client() as web:
        resp = web.send("GET", recorder + "/x")  # "ok": two bytes
        with pytest.raises(httpclient.BodyTooLarge):
            resp.read(1)
        assert resp.is_closed
        assert web.send("GET", recorder + "/y").read(2) == b"ok"
