"""A streamed response body read into the caller's buffer, without copies where it can be.

httpcore hands a streamed body out as ``bytes`` chunks, and on the way each
byte is copied twice in user space: into h11's receive buffer and out of it as
``bytes``; the consumer then copies it once more into its own buffer. For a
340 MB pull that was about a fifth of the client's CPU, more than the kernel's
own copies.

:func:`open_body` returns a reader with ``readinto``. For the common case of a
blob download (HTTP/1.1 over a plain or TLS socket, a ``Content-Length``
body), it takes over the rest of the body once httpcore has parsed the headers:
what h11 already holds is handed out first, then the socket is read straight
into the caller's buffer (``recv_into``). When the last byte is in, h11 is
told the body is complete and the response ends through httpcore as usual, so
the connection goes back to the pool for the next request. A body cut short,
or abandoned, leaves h11 waiting for bytes, so closing the response closes the
connection as httpcore always does for an unfinished body.

The take-over needs httpcore's and h11's internals (the connection behind the
response, its socket, h11's length reader); :func:`open_body` checks each piece
and falls back to httpcore's own iteration when anything is not as expected (HTTP/2,
chunked bodies, proxies with TLS in TLS, another httpcore version).
``tests/registry_client/test_body.py`` pins that the fast path is taken with the
versions in ``pyproject.toml``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, Protocol

from forklift.transports.registry import httpclient as http


class Body(Protocol):
    """The rest of a response body: ``readinto`` returns 0 at its end."""

    #: True when the body is read from the socket directly (for tests and benchmarks)
    direct: bool

    def readinto(self, buf: memoryview, /) -> int: ...


class _IterBody:
    """httpcore's own chunks, copied into the caller's buffer."""

    direct = False

    def __init__(self, resp: http.Response) -> None:
        self._chunks: Iterator[bytes] = resp.iter_raw()
        self._pending = memoryview(b"")

    def readinto(self, buf: memoryview) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class _SocketBody:
    """The body's bytes from h11's buffer, then from the socket into the caller's buffer."""

    direct = True

    def __init__(
        self, resp: http.Response, sock: socket.socket, h11_conn: Any, reader: Any
    ) -> None:
        import h11

        self._resp = resp
        self._sock = sock
        self._reader = reader
        self._h11 = h11_conn
        timeout = resp.timeout.read
        sock.settimeout(timeout)
        # what h11 read together with the headers (or in its last read) comes first
        leftover = bytearray()
        try:
            while True:
                event = h11_conn.next_event()
                if isinstance(event, h11.Data):
                    leftover += event.data
                    continue
                break
        except h11.RemoteProtocolError as exc:
            raise http.RemoteProtocolError(str(exc)) from None
        self._pending = memoryview(leftover)
        # an EndOfMessage here means the whole body was in h11's buffer already
        self._remaining = 0 if isinstance(event, h11.EndOfMessage) else reader._remaining
        self._ended = isinstance(event, h11.EndOfMessage)

    def readinto(self, buf: memoryview) -> int:
        if self._pending:
            n = min(len(buf), len(self._pending))
            buf[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        if not self._remaining:
            self._end()
            return 0
        want = min(len(buf), self._remaining)
        try:
            n = self._sock.recv_into(buf, want)
        except TimeoutError as exc:
            raise http.ReadTimeout(str(exc) or "timed out") from None
        except OSError as exc:
            raise http.ReadError(str(exc)) from None
        if n == 0:
            raise http.RemoteProtocolError(
                f"peer closed connection without sending complete message body "
                f"({self._remaining} bytes missing)"
            )
        self._remaining -= n
        return n

    def _end(self) -> None:
        """Tell h11 the body is complete, and let httpcore finish the response."""
        if self._ended:
            return
        self._ended = True
        if self._h11._reader is not self._reader:  # not the h11 this was written for
            raise http.RemoteProtocolError("the HTTP state changed under the body reader")
        # h11 counted down only the bytes it saw; the rest went past it. Its length
        # reader at 0 gives the end of the message, and httpcore ends the response.
        self._reader._remaining = 0
        for chunk in self._resp.iter_raw():
            if chunk:  # cannot happen: h11 has no body bytes left to give
                raise http.RemoteProtocolError("unexpected bytes after the body")


def _connection_of(resp: http.Response) -> Any:
    """httpcore's HTTP/1.1 connection behind a streamed response, or None."""
    stream: Any = resp.raw_stream  # the pool's stream, around the connection's
    for attr in ("_stream", "_connection"):
        stream = getattr(stream, attr, None)
        if stream is None:
            return None
    return stream


def direct_parts(resp: http.Response) -> tuple[socket.socket, Any, Any] | None:
    """The socket, h11 connection and length reader of ``resp``'s body, if it can be
    read directly (see the module's docstring); else None."""
    if resp.is_stream_consumed or resp.is_closed or resp.http_version != "HTTP/1.1":
        return None
    try:
        import h11
        from h11._readers import ContentLengthReader
        from httpcore._backends.sync import SyncStream
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # another layout of httpcore or h11
        return None
    conn = _connection_of(resp)
    if not isinstance(conn, HTTP11Connection):
        return None
    network = getattr(conn, "_network_stream", None)
    h11_conn = getattr(conn, "_h11_state", None)
    if type(network) is not SyncStream or not isinstance(h11_conn, h11.Connection):
        return None
    sock = getattr(network, "_sock", None)
    reader = getattr(h11_conn, "_reader", None)
    if (
        not isinstance(sock, socket.socket)
        or h11_conn.their_state is not h11.SEND_BODY
        or type(reader) is not ContentLengthReader
        or not isinstance(getattr(reader, "_remaining", None), int)
    ):
        return None
    return sock, h11_conn, reader


def open_body(resp: http.Response, *, direct: bool = True) -> Body:
    """A ``readinto`` reader of ``resp``'s (unread, streamed) body.

    With ``direct`` (the default) the body is read from the socket when
    :func:`direct_parts` finds the way; otherwise through httpcore's chunks.
    Errors are httpcore's (:data:`~.httpclient.HTTP_ERRORS`), as from
    ``iter_raw``.
    """
    if direct:
        parts = direct_parts(resp)
        if parts is not None:
            return _SocketBody(resp, *parts)
    return _IterBody(resp)
