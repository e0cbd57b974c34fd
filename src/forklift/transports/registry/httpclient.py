"""HTTP/1.1 for forklift's clients: httpcore's connection pools, and the small client on top.

The registry client, ``ADD <url>`` downloads and the vulnerability-database
fetch speak HTTP through :class:`HttpClient`. It is httpcore (the connection
pool, TLS, h11's HTTP/1.1) plus what those callers need from a client:
headers, a ``Host`` and body length, redirects (``follow_redirects``), proxies
from the environment, per-request timeouts and a hook that sees every request
(redirect hops included) before it is sent.

Why not httpx, which forklift used before: importing httpx costs about 35 ms
on this class of machine, a quarter of a ``forklift push`` that finds every
blob present (the issue's target is 0.15 s for the whole command), and
forklift used none of what it adds over httpcore (cookies, auth flows,
content decoding, HTTP/2). Bodies are never decoded here: no
``Accept-Encoding`` is sent, so a server answers with the identity encoding,
and blob bytes are hashed as they arrive.

Proxies follow the usual variables, as docker, skopeo and curl read them:
``https_proxy``/``HTTPS_PROXY`` for ``https://`` URLs, ``http_proxy``/
``HTTP_PROXY`` for ``http://`` ones, ``all_proxy``/``ALL_PROXY`` for both (the
lower-case name first), and ``no_proxy``/``NO_PROXY``: ``*``, host names
(``example.com`` and ``.example.com`` both match the domain and every name
under it), IP addresses, CIDR ranges (``10.0.0.0/8``, as Go's clients accept)
and ``host:port``. Upper-case ``HTTP_PROXY`` is ignored in a CGI process
(``REQUEST_METHOD`` set), as Python's and Go's libraries do ("httpoxy").
``localhost`` and loopback addresses are never proxied, as in docker and
skopeo (Go's rule): a proxy cannot reach the user's own loopback anyway.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast, overload
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

import httpcore

from forklift.errors import TransportError

# Every way the transport can fail, as httpcore raises it: connection and TLS
# (NetworkError), timeouts, HTTP framing, proxies, URLs it cannot request.
HTTP_ERRORS: tuple[type[Exception], ...] = (
    httpcore.NetworkError,
    httpcore.TimeoutException,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)

ConnectError = httpcore.ConnectError
ConnectTimeout = httpcore.ConnectTimeout
ReadError = httpcore.ReadError
ReadTimeout = httpcore.ReadTimeout
RemoteProtocolError = httpcore.RemoteProtocolError
LocalProtocolError = httpcore.LocalProtocolError
ProxyError = httpcore.ProxyError
TimeoutException = httpcore.TimeoutException
UnsupportedProtocol = httpcore.UnsupportedProtocol

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 20  # as httpx and curl's default cap (Go's is 10)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# characters kept as they are when a URL is made safe to send: RFC 3986's reserved
# set and '%' (existing escapes); anything else outside the unreserved set (spaces,
# control characters, non-ASCII) is percent-encoded, so no URL can break the request line
_URL_SAFE = ":/?#[]@!$&'()*+,;=%"


class BodyTooLarge(Exception):
    """A response body longer than the reader's limit (the answer is not kept)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit:,} bytes")
        self.limit = limit


class Headers:
    """HTTP headers: ordered, repeatable, looked up without regard to case."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Headers as received (ISO-8859-1, the wire's encoding of header bytes)."""
        return cls((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw)

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        key = name.lower()
        return [v for k, v in self._items if k.lower() == key]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        """The values of ``name`` joined with ``", "`` (RFC 9110's list form), or ``default``."""
        values = self.get_list(name)
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        key = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != key]
        self._items.append((name, value))

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(k.lower() == name.lower() for k, _ in self._items)

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> Headers:
        return Headers(self._items)

    def raw(self) -> list[tuple[bytes, bytes]]:
        """As sent: names in ASCII, values in UTF-8 (h11 rejects CR, LF and NUL in either)."""
        return [(k.encode("ascii", "replace"), v.encode()) for k, v in self._items]

    def __repr__(self) -> str:
        shown = [(k, "[hidden]" if k.lower() == "authorization" else v) for k, v in self._items]
        return f"Headers({shown!r})"


@dataclass(frozen=True)
class Timeout:
    """Seconds for each phase of a request; None waits without limit."""

    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None

    def extension(self) -> dict[str, float | None]:
        return {"connect": self.connect, "read": self.read, "write": self.write, "pool": self.pool}


@dataclass(frozen=True)
class Request:
    """One request as it is about to be sent (each redirect hop is its own)."""

    method: str
    url: str
    headers: Headers
    extensions: dict[str, Any] = field(default_factory=dict)


class Response:
    """A response whose body is read on demand (``iter_raw``, ``read``) and must be closed."""

    def __init__(self, request: Request, raw: httpcore.Response, timeout: Timeout) -> None:
        self.request = request
        self.url = request.url
        self.status_code = raw.status
        self.headers = Headers.from_raw(raw.headers)
        self.timeout = timeout
        ext = raw.extensions
        self.http_version = bytes(ext.get("http_version", b"HTTP/1.1")).decode("ascii", "replace")
        self._reason = bytes(ext.get("reason_phrase", b"")).decode("latin-1")
        self._raw = raw
        self._content: bytes | None = None
        self.is_stream_consumed = False
        self.is_closed = False

    @property
    def reason_phrase(self) -> str:
        if self._reason:
            return self._reason
        from http import HTTPStatus  # only for a server that sent no reason phrase

        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def raw_stream(self) -> Any:
        """httpcore's byte stream of the body (for :mod:`.body`'s direct reads)."""
        return self._raw.stream

    def iter_raw(self) -> Iterator[bytes]:
        """The body's bytes as they arrive; the response is closed at the end."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self.is_stream_consumed:
            raise RuntimeError("the response body was read already")
        self.is_stream_consumed = True
        try:
            for chunk in cast(Iterable[bytes], self._raw.stream):
                if chunk:
                    yield chunk
        finally:
            self.close()

    def read(self, limit: int | None = None) -> bytes:
        """The whole body (kept: ``content`` returns it again).

        With ``limit``, a body longer than that many bytes raises
        :class:`BodyTooLarge` as soon as it shows (by ``Content-Length`` or by what
        arrived), so a hostile server cannot make the client hold an endless answer.
        """
        if self._content is None:
            if limit is not None:
                length = self.headers.get("content-length", "")
                if length.isdigit() and int(length) > limit:
                    self.close()
                    raise BodyTooLarge(limit)
            parts: list[bytes] = []
            size = 0
            for chunk in self.iter_raw():
                size += len(chunk)
                if limit is not None and size > limit:
                    self.close()
                    raise BodyTooLarge(limit)
                parts.append(chunk)
            self._content = b"".join(parts)
        return self._content

    @property
    def content(self) -> bytes:
        return self.read()

    def close(self) -> None:
        """Release the connection (back to the pool after a complete body, else closed)."""
        if not self.is_closed:
            self.is_closed = True
            self._raw.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def safe_url(url: str) -> str:
    """``url`` with everything that may not appear in a request line percent-encoded."""
    return quote(url, safe=_URL_SAFE)


def merge_query(url: str, params: Iterable[tuple[str, str]]) -> str:
    """``url`` with ``params`` added to its query.

    The existing query is kept byte for byte (an upload ``Location`` carries the
    registry's own state there); a parameter of the same name is replaced.
    """
    params = list(params)
    if not params:
        return url
    base, hash_, fragment = url.partition("#")
    path, q, query = base.partition("?")
    names = {k for k, _ in params}
    kept = (
        [p for p in query.split("&") if p and unquote(p.split("=", 1)[0]) not in names] if q else []
    )
    joined = "&".join([*kept, urlencode(params)])
    return f"{path}?{joined}" + (hash_ + fragment if hash_ else "")


def form_body(data: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """A form's body and content type (``application/x-www-form-urlencoded``)."""
    return urlencode(data).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def _core_url(url: str) -> httpcore.URL:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsupportedProtocol(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsupportedProtocol(
            f"cannot fetch {url!r}: only http:// and https:// URLs are supported"
        )
    if not parts.hostname:
        raise UnsupportedProtocol(f"invalid URL {url!r}: no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return httpcore.URL(
        scheme=scheme.encode(),
        host=parts.hostname.encode("ascii", "replace"),
        port=port,
        target=target.encode("ascii", "replace"),
    )


def _host_header(url: httpcore.URL) -> bytes:
    host = url.host
    if b":" in host:  # an IPv6 literal
        host = b"[" + host + b"]"
    default = 443 if url.scheme == b"https" else 80
    return host if url.port in (None, default) else b"%b:%d" % (host, url.port)


# -- proxies from the environment ---------------------------------------------------


def _env(name: str) -> str:
    value = os.environ.get(name.lower())
    if value is None and not (name == "HTTP_PROXY" and "REQUEST_METHOD" in os.environ):
        value = os.environ.get(name)
    return (value or "").strip()


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """True if ``no_proxy`` names ``host`` (or ``host:port``)."""
    host = host.lower().strip("[]")
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        has_port = (entry.startswith("[") and "]:" in entry) or entry.count(":") == 1
        if has_port:  # [v6]:port or host:port
            name, _, entry_port = entry.rpartition(":")
        else:
            name, entry_port = entry, ""
        if entry_port and entry_port != str(port):
            continue
        name = name.strip("[]")
        if "/" in name or name.replace(".", "").isdigit() or ":" in name:
            import ipaddress  # only when no_proxy names addresses

            try:
                net = ipaddress.ip_network(name, strict=False)
                if ipaddress.ip_address(host) in net:
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".").lstrip("*.")
        if host == name or host.endswith("." + name):
            return True
    return False


def _loopback(host: str) -> bool:
    host = host.lower().strip("[]")
    if host == "localhost":
        return True
    if not (host[:1].isdigit() or ":" in host):
        return False
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_for(url: httpcore.URL) -> str | None:
    """The proxy the environment names for ``url``, or None to connect directly."""
    scheme = url.scheme.decode()
    proxy = _env(f"{scheme.upper()}_PROXY") or _env("ALL_PROXY")
    if not proxy:
        return None
    host = url.host.decode()
    if _loopback(host):
        return None
    port = url.port or (443 if scheme == "https" else 80)
    if _bypassed(host, port, _env("NO_PROXY")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class HttpClient:
    """A pool of HTTP/1.1 connections with forklift's defaults; safe to share between threads."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        timeout: Timeout,
        max_connections: int | None = 100,
        keepalive_expiry: float | None = 30.0,
        headers: dict[str, str] | None = None,
        before_send: Callable[[Request], None] | None = None,
    ) -> None:
        self._ssl = ssl_context
        self._timeout = timeout
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._headers = list((headers or {}).items())
        self._before_send = before_send
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        self._proxies: dict[str, httpcore.HTTPProxy] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.close()
        for pool in self._proxies.values():
            pool.close()
        self._proxies.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pool_for(self, url: httpcore.URL) -> httpcore.ConnectionPool | httpcore.HTTPProxy:
        proxy = proxy_for(url)
        if proxy is None:
            return self._pool
        with self._lock:
            return self._proxies.get(proxy) or self._new_proxy(proxy)

    def _new_proxy(self, proxy: str) -> httpcore.HTTPProxy:
        """A pool through ``proxy`` (called under the lock)."""
        parts = urlsplit(proxy)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProxyError(f"unsupported proxy {proxy!r}: only http:// and https:// proxies")
        auth = None
        if parts.username is not None:
            auth = (unquote(parts.username), unquote(parts.password or ""))
        netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        pool = httpcore.HTTPProxy(
            proxy_url=f"{parts.scheme}://{netloc}/",
            proxy_auth=auth,
            ssl_context=self._ssl,
            max_connections=self._max,
            max_keepalive_connections=self._max,
            keepalive_expiry=self._expiry,
        )
        self._proxies[proxy] = pool
        return pool

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] | Iterable[bytes] | None = None,
        timeout: Timeout | None = None,
        extensions: dict[str, Any] | None = None,
        follow_redirects: bool = False,
    ) -> Response:
        """Send a request; return the response with its body unread (close it).

        Raises one of :data:`HTTP_ERRORS` when the transport fails, and
        :class:`~forklift.errors.TransportError` after :data:`MAX_REDIRECTS` hops.
        """
        timeout = timeout or self._timeout
        hdrs = Headers(self._headers)
        for name, value in (headers or {}).items():
            hdrs[name] = value
        for _hop in range(MAX_REDIRECTS + 1):
            resp = self._send_once(method, url, hdrs, content, timeout, extensions or {})
            location = resp.headers.get("location")
            if not follow_redirects or resp.status_code not in REDIRECT_STATUSES or not location:
                return resp
            status = resp.status_code
            if status in (307, 308) and content is not None and not isinstance(content, bytes):
                return resp  # a streamed body cannot be sent again: the caller decides
            resp.close()
            url = urljoin(url, location).partition("#")[0]
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, content = "GET", None
                for name in ("content-length", "transfer-encoding", "content-type"):
                    del hdrs[name]
            del hdrs["host"]
        raise TransportError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")

    def _send_once(
        self,
        method: str,
        url: str,
        headers: Headers,
        content: bytes | Iterator[bytes] | Iterable[bytes] | None,
        timeout: Timeout,
        extensions: dict[str, Any],
    ) -> Response:
        url = safe_url(url)
        core_url = _core_url(url)
        hdrs = headers.copy()
        request = Request(method, url, hdrs, extensions)
        if self._before_send is not None:
            self._before_send(request)
        if "host" not in hdrs:
            hdrs["Host"] = _host_header(core_url).decode("ascii", "replace")
        if "content-length" not in hdrs and "transfer-encoding" not in hdrs:
            if isinstance(content, bytes):
                hdrs["Content-Length"] = str(len(content))
            elif content is not None:
                hdrs["Transfer-Encoding"] = "chunked"
            elif method in _BODY_METHODS:
                hdrs["Content-Length"] = "0"  # proxies answer 411 to a POST without a length
        raw = self._pool_for(core_url).handle_request(
            httpcore.Request(
                method.encode("ascii"),
                core_url,
                headers=hdrs.raw(),
                content=content,
                extensions={"timeout": timeout.extension()},
            )
        )
        return Response(request, raw, timeout)


def unverified_context() -> ssl.SSLContext:
    """TLS that accepts any certificate (registries the user listed as insecure)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
