"""A scriptable HTTP server on a loopback address, for hostile-registry tests.

Real registries (CNCF distribution, ``forklift serve``) behave; these tests
need one that does not: it hands out upload ``Location``s and redirects on
another host, names a token service of its choice, or answers with JSON
nested 100,000 levels deep. ``FakeServer`` runs a real HTTP/1.1 server
(``http.server``, one thread per connection) on ``127.0.0.1`` or any other
loopback address (``127.0.0.2`` is "another host"), optionally with TLS,
answers each request with what ``respond`` returns, and records every request
it saw, headers included, so a test can assert what another host received.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .servers import KeyPair

# A JSON document nested far deeper than any parser's recursion limit.
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


@dataclass(frozen=True)
class Seen:
    """One request as the server received it (header names lower-cased)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Respond = Callable[[Seen], Reply]


class FakeServer:
    """Answers every request with ``respond(seen)``; keeps every request in ``seen``."""

    def __init__(
        self, respond: Respond, *, address: str = "127.0.0.1", tls: KeyPair | None = None
    ) -> None:
        self.respond = respond
        self.address = address
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self._body(),
                )
                with server._lock:
                    server.seen.append(seen)
                reply = server.respond(seen)
                self.send_response(reply.status)
                headers = {k.lower(): v for k, v in reply.headers.items()}
                for name, value in headers.items():
                    self.send_header(name, value)
                if "content-length" not in headers:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer((address, 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert.write_bytes(tls.cert_pem)
                key.write_bytes(tls.key_pem)
                ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ctx.load_cert_chain(str(cert), str(key))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def requests(self, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if method is None or s.method == method]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def api_error(status: int, code: str, message: str = "") -> Reply:
    body = f'{{"errors":[{{"code":"{code}","message":"{message or code}"}}]}}'.encode()
    return Reply(status, {"Content-Type": "application/json"}, body)
