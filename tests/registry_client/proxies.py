"""Fault-injecting proxies in front of a real registry (127.0.0.1, random ports).

``TcpProxy`` relays bytes and can cut a connection once N bytes went one way
(either direction), or flip a byte at a given offset of the server's stream.
``HttpFaultProxy`` reads each request and, while a rule matches, answers with
a canned status (500, 429 + Retry-After, 403...) instead of forwarding it.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass, field

UP = "client->server"
DOWN = "server->client"


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


class _Listener:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            t = threading.Thread(target=self.handle, args=(client, upstream), daemon=True)
            t.start()

    def handle(self, client: socket.socket, upstream: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stopped = True
        _close(self.sock)
        with self._lock:
            _close(*self._conns)


@dataclass
class Cut:
    """Cut the connection after ``after`` bytes went ``direction`` on it; ``times`` cuts in all."""

    direction: str
    after: int
    times: int = 1


@dataclass
class Flip:
    """XOR the byte at ``offset`` of every server->client stream with 0xFF."""

    offset: int


class TcpProxy(_Listener):
    """A byte relay with optional cuts and byte flips."""

    def __init__(self, target_port: int, *, cut: Cut | None = None, flip: Flip | None = None):
        self.cut = cut
        self.flip = flip
        self.cuts_done = 0
        self.connections = 0
        self.relayed = {UP: 0, DOWN: 0}
        self._cut_lock = threading.Lock()
        super().__init__(target_port)

    def _should_cut(self) -> bool:
        with self._cut_lock:
            if self.cut is None or self.cuts_done >= self.cut.times:
                return False
            self.cuts_done += 1
            return True

    def handle(self, client: socket.socket, upstream: socket.socket) -> None:
        self.connections += 1
        done = threading.Event()

        def pump(src: socket.socket, dst: socket.socket, direction: str) -> None:
            count = 0
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if self.flip is not None and direction == DOWN:
                        off = self.flip.offset - count
                        if 0 <= off < len(data):
                            buf = bytearray(data)
                            buf[off] ^= 0xFF
                            data = bytes(buf)
                    cut = self.cut
                    if (
                        cut is not None
                        and cut.direction == direction
                        and count + len(data) > cut.after
                        and self._should_cut()
                    ):
                        dst.sendall(data[: max(0, cut.after - count)])
                        break
                    dst.sendall(data)
                    count += len(data)
                    with self._cut_lock:
                        self.relayed[direction] += len(data)
            except OSError:
                pass
            finally:
                done.set()
                _close(client, upstream)

        t = threading.Thread(target=pump, args=(upstream, client, DOWN), daemon=True)
        t.start()
        pump(client, upstream, UP)
        t.join(timeout=30)


@dataclass
class Rule:
    """Answer ``status`` to requests whose method and path match, ``times`` times,
    after letting the first ``after`` matching requests through."""

    method: str
    path: str  # regular expression searched in the request target
    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    after: int = 0
    hits: int = 0
    passed: int = 0


_REASONS = {
    200: "OK",
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpFaultProxy(_Listener):
    """Parses requests (Content-Length bodies) and answers matching ones itself."""

    def __init__(self, target_port: int, rules: list[Rule]) -> None:
        self.rules = rules
        self.seen: list[tuple[str, str]] = []
        self._rule_lock = threading.Lock()
        super().__init__(target_port)

    def _match(self, method: str, target: str) -> Rule | None:
        with self._rule_lock:
            for rule in self.rules:
                if (
                    rule.hits < rule.times
                    and rule.method == method
                    and re.search(rule.path, target)
                ):
                    if rule.passed < rule.after:
                        rule.passed += 1
                        continue
                    rule.hits += 1
                    return rule
        return None

    def handle(self, client: socket.socket, upstream: socket.socket) -> None:
        def down() -> None:
            try:
                while data := upstream.recv(65536):
                    client.sendall(data)
            except OSError:
                pass
            finally:
                _close(client, upstream)

        threading.Thread(target=down, daemon=True).start()
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = client.recv(65536)
                    if not data:
                        return
                    buf += data
                    if len(buf) > 1 << 20 or not re.match(rb"^[A-Z]+ ", buf[:16]):
                        return  # not HTTP (a TLS probe): hang up
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    raise RuntimeError("chunked request bodies are not supported by the test proxy")
                self.seen.append((method, target))
                rule = self._match(method, target)
                if rule is not None:
                    body = rule.body
                    extra = "".join(f"{k}: {v}\r\n" for k, v in rule.headers.items())
                    reason = _REASONS.get(rule.status, "Error")
                    client.sendall(
                        f"HTTP/1.1 {rule.status} {reason}\r\nContent-Length: {len(body)}\r\n"
                        f"Content-Type: application/json\r\n{extra}Connection: close\r\n\r\n".encode()
                        + body
                    )
                    return
                upstream.sendall(head + b"\r\n\r\n")
                while length > 0:
                    if not buf:
                        buf = client.recv(min(length, 1 << 20))
                        if not buf:
                            return
                    piece, buf = buf[:length], buf[length:]
                    upstream.sendall(piece)
                    length -= len(piece)
        except OSError:
            return
        finally:
            _close(client, upstream)


class ForwardProxy(_Listener):
    """An HTTP proxy in front of one server, whatever host a request names.

    ``CONNECT host:port`` is answered 200 and the connection becomes a tunnel to the
    server (how clients reach HTTPS through a proxy); any other request is relayed as it
    came, absolute-form target included (Go's server, distribution's, accepts that).
    ``seen`` holds the first request line of each connection, ``auth`` its
    ``Proxy-Authorization`` (or None).
    """

    def __init__(self, target_port: int) -> None:
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        super().__init__(target_port)

    def handle(self, client: socket.socket, upstream: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(65536)
            if not chunk:
                _close(client, upstream)
                return
            head += chunk
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        auth = re.search(rb"(?im)^proxy-authorization:\s*(.+?)\r$", head)
        with self._lock:
            self.seen.append(first)
            self.auth.append(auth.group(1).decode() if auth else None)
        if first.upper().startswith("CONNECT "):
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
        else:
            rest = head
        if rest:
            upstream.sendall(rest)

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            _close(src, dst)

        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)
