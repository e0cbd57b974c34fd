"""The small HTTP layer under the registry: requests, responses and sending them over ASGI.

No framework: the registry has a dozen routes, and a bare ASGI callable with a
regex router is measurably faster than any framework on the manifest GET path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]

_FILE_CHUNK = 1 << 20


class ClientGone(Exception):
    """The client disconnected while we were reading its body."""


class Request:
    """One HTTP request: method, path, query, headers and a body stream."""

    __slots__ = (
        "_query",
        "body_done",
        "headers",
        "method",
        "path",
        "receive",
        "received",
        "route",
        "scope",
    )

    def __init__(self, scope: Scope, receive: Any) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.receive = receive
        self.headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            if name in self.headers:
                self.headers[name] += "," + value
            else:
                self.headers[name] = value
        self._query: dict[str, list[str]] | None = None
        self.received = 0
        self.route = "other"  # metrics/log label, set by the router
        # no body announced: nothing to read (HTTP/1.1 bodies need a length or chunking)
        self.body_done = "transfer-encoding" not in self.headers and self.headers.get(
            "content-length", "0"
        ).strip() in ("0", "")

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            qs = self.scope.get("query_string", b"").decode("latin-1")
            self._query = parse_qs(qs, keep_blank_values=True) if qs else {}
        return self._query

    def arg(self, name: str) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def base_url(self) -> str:
        """scheme://host of this request, for absolute URLs such as the token realm."""
        scheme = self.scope.get("scheme", "http")
        host = self.headers.get("host")
        if not host:
            server = self.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"{scheme}://{host}"

    @property
    def content_length(self) -> int | None:
        raw = self.headers.get("content-length")
        if raw is None:
            return None
        try:
            n = int(raw)
        except ValueError:
            return None
        return n if n >= 0 else None

    async def stream(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, as the client sends it."""
        while True:
            msg = await self.receive()
            if msg["type"] == "http.disconnect":
                raise ClientGone()
            chunk = msg.get("body", b"")
            more = msg.get("more_body", False)
            if not more:
                self.body_done = True
            if chunk:
                self.received += len(chunk)
                yield chunk
            if not more:
                return

    async def drain(self, limit: int) -> bool:
        """Read and drop what is left of the body, up to ``limit`` bytes.

        An answer sent before the body was read (401, 404, 416, 413...) must
        leave the connection usable: the client has sent, or is sending, the
        body, and the next request on the connection starts after it. True if
        the body was read to its end; False if it is longer than ``limit`` (the
        caller then closes the connection instead).
        """
        if self.body_done:
            return True
        declared = self.content_length
        if declared is not None and declared - self.received > limit:
            return False
        dropped = 0
        async for chunk in self.stream():
            dropped += len(chunk)
            if dropped > limit:
                return False
        return True

    async def read(self, limit: int) -> bytes | None:
        """The whole body, or None if it is longer than ``limit``."""
        parts: list[bytes] = []
        total = 0
        async for chunk in self.stream():
            total += len(chunk)
            if total > limit:
                return None
            parts.append(chunk)
        return b"".join(parts)


@dataclass
class FileBody:
    """Send ``length`` bytes of the file at ``path`` from ``offset``."""

    path: str
    offset: int
    length: int
    whole: bool


@dataclass
class Response:
    """What a handler returns: ``body`` bytes, a ``file`` or a ``stream`` of ``length`` bytes."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: FileBody | None = None
    head: bool = False  # send headers only (HEAD), with the full Content-Length
    stream: AsyncGenerator[bytes, None] | None = None
    length: int = 0  # of ``stream``


async def send_response(scope: Scope, send: Any, resp: Response) -> int:
    """Send ``resp``; return the number of body bytes sent."""
    if resp.file is not None:
        length = resp.file.length
    elif resp.stream is not None:
        length = resp.length
    else:
        length = len(resp.body)
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers]
    headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
    if resp.head or resp.status in (204, 304):
        if resp.stream is not None:
            await resp.stream.aclose()
        await send({"type": "http.response.body", "body": b""})
        return 0
    if resp.stream is not None:
        sent = 0
        try:
            async for data in resp.stream:
                sent += len(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            await resp.stream.aclose()
        await send({"type": "http.response.body", "body": b""})
        return sent
    if resp.file is None:
        await send({"type": "http.response.body", "body": resp.body})
        return length
    f = resp.file
    extensions = scope.get("extensions") or {}
    if f.whole and "http.response.pathsend" in extensions:
        # the server sends the file itself, without the bytes crossing Python
        await send({"type": "http.response.pathsend", "path": f.path})
        return length
    fd = await asyncio.to_thread(os.open, f.path, os.O_RDONLY)
    try:
        pos, end = f.offset, f.offset + f.length
        while pos < end:
            n = min(_FILE_CHUNK, end - pos)
            data = await asyncio.to_thread(os.pread, fd, n, pos)
            if not data:
                break
            pos += len(data)
            await send({"type": "http.response.body", "body": data, "more_body": pos < end})
        if pos < end or f.length == 0:
            await send({"type": "http.response.body", "body": b""})
    finally:
        os.close(fd)
    return f.length


def json_response(
    status: int, body: bytes, headers: list[tuple[str, str]] | None = None
) -> Response:
    """A JSON response."""
    return Response(status, [("content-type", "application/json"), *(headers or [])], body)
