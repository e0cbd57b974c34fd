"""Plain HTTP(S) downloads with the registry client's settings (what ``ADD <url>`` uses).

A build that downloads a file must trust the same certificate authorities, go
through the same proxies, retry the same failures and honour the same
insecure-host list as a pull from a registry. :func:`download` does that with
:class:`~forklift.registry.client.ClientOptions`: the system trust store plus
``ca_bundle`` and the docker/podman ``certs.d/<host>`` files, unverified TLS
only for hosts listed as insecure, proxies from the environment
(``HTTP(S)_PROXY``/``NO_PROXY``, as for registries), and retries of what can get
better (resets, 5xx, 429; not a name that does not resolve or a refused
connection, by the client's ``worth_retrying``) with the same backoff, within
the operation's deadline. Redirects are followed (a download URL often points at a
CDN); nothing is sent that a registry would need (no credentials). No
``Accept-Encoding`` is sent, so the file arrives as the server stores it.
"""

from __future__ import annotations

import email.utils
import hashlib
import posixpath
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from forklift import logs
from forklift.errors import TransportError
from forklift.transports.registry import httpclient as http
from forklift.transports.registry.hosts import split_host_port
from forklift.transports.registry.options import ClientOptions
from forklift.transports.registry.retry import Backoff, Deadline, parse_retry_after
from forklift.transports.registry.session import RETRY_STATUSES, _ssl_context, worth_retrying

log = logs.get("forklift.registry.client")


@dataclass(frozen=True)
class Downloaded:
    """What a download wrote: the content's sha256 digest and size, the server's
    ``Last-Modified`` time (seconds, if it sent one) and the file name the URL gives."""

    digest: str
    size: int
    last_modified: float | None
    filename: str


def url_filename(url: str) -> str:
    """The name a downloaded file gets: the last path segment, ``__unnamed__`` without one
    (BuildKit's rule for ``ADD <url> /dir/``)."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return "__unnamed__"
    base = posixpath.basename(path.rstrip("/")) if path not in ("", "/") else ""
    return base or "__unnamed__"


def download(
    url: str,
    out: BinaryIO,
    *,
    options: ClientOptions | None = None,
    deadline: Deadline | None = None,
) -> Downloaded:
    """Stream ``url`` into ``out`` (truncated and rewritten on a retry); return what arrived.

    Raises :class:`~forklift.errors.TransportError` with one line when the
    server cannot be reached or answers with an error status.
    """
    options = options or ClientOptions()
    deadline = deadline or Deadline(options.operation_timeout)
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as exc:
        raise TransportError(f"invalid URL {url!r}: {exc}") from None
    if parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
        raise TransportError(f"invalid URL {url!r}: only http:// and https:// URLs are fetched")
    host = parsed.hostname if port is None else f"{parsed.hostname}:{port}"
    insecure = options.is_insecure(host) or options.is_insecure(split_host_port(host)[0])
    client = http.HttpClient(
        ssl_context=http.unverified_context() if insecure else _ssl_context(options, host),
        timeout=http.Timeout(
            connect=options.connect_timeout, read=options.read_timeout, write=None, pool=None
        ),
        headers={"User-Agent": options.user_agent},
    )
    backoff = Backoff(options.backoff_base, options.backoff_max)
    what = f"download {url}"
    attempt = 0
    with client:
        while True:
            deadline.check(what)
            retry_after: float | None = None
            try:
                with client.send("GET", url, follow_redirects=True) as resp:
                    status = resp.status_code
                    if status in RETRY_STATUSES or status == 429:
                        retry_after = parse_retry_after(resp.headers.get("retry-after"))
                        raise _Retry(f"HTTP {status} {resp.reason_phrase}")
                    if status >= 400:
                        raise TransportError(f"{what}: HTTP {status} {resp.reason_phrase}")
                    return _write(resp, out, url)
            except _RETRIED as exc:
                attempt += 1
                final = not isinstance(exc, _Retry) and not worth_retrying(exc)
                if final or attempt >= options.max_attempts:
                    raise TransportError(f"{what}: {exc or type(exc).__name__}") from None
                wait = backoff.delay(attempt - 1)
                if retry_after is not None:
                    wait = max(wait, min(retry_after, options.max_retry_after))
                log.debug("%s: %s; retry %d in %.2f s", what, exc, attempt, wait)
                deadline.sleep(wait, what)


class _Retry(Exception):
    """A status worth another try (5xx, 429)."""


_RETRIED: tuple[type[Exception], ...] = (_Retry, *http.HTTP_ERRORS)


def _write(resp: http.Response, out: BinaryIO, url: str) -> Downloaded:
    out.seek(0)
    out.truncate()
    h = hashlib.sha256()
    size = 0
    for chunk in resp.iter_raw():
        h.update(chunk)
        out.write(chunk)
        size += len(chunk)
    out.flush()
    modified: float | None = None
    header = resp.headers.get("last-modified")
    if header:
        try:
            modified = email.utils.parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError):
            modified = None
    return Downloaded("sha256:" + h.hexdigest(), size, modified, url_filename(url))
