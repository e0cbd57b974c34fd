"""One registry's HTTP session: endpoint discovery, auth, retries, error mapping.

A :class:`Session` owns one :class:`~.httpclient.HttpClient` (HTTP/1.1
keep-alive pool) and is safe to share between threads. Every request goes
through :meth:`request`, which

* finds the endpoint once (``GET /v2/``): HTTPS, or for insecure registries
  HTTPS without verification falling back to plain HTTP, as docker does;
* adds the ``Authorization`` the registry's challenge asks for, and on a 401
  learns the challenge, refreshes the token once and retries;
* retries what another attempt can get past (5xx answers, connections reset
  or cut mid-answer) with exponential backoff, and 429 after ``Retry-After``;
  a name that does not resolve, a refused connection or a TLS failure fails at
  once;
* turns any other unexpected status into a one-line error.

Credentials stay with the registry's origin: ``Authorization`` goes only to
the scheme, host and port the ping chose. A URL the registry hands out
(an upload ``Location``, a redirect to a CDN, a ``Link`` to the next page) on
another origin is requested without it, and a 401 from there teaches the
client nothing. A hook the HTTP client calls before sending enforces this
for every request and every redirect hop. Token services get stored
credentials only over HTTPS, on the registry's own host, or on a host the
user listed as insecure (see :meth:`Session.may_send_credentials`).
"""

from __future__ import annotations

import errno
import socket
import ssl
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from forklift import logs
from forklift.errors import RegistryError, TransportError, UsageError
from forklift.transports.registry import httpclient as http
from forklift.transports.registry.auth import Authenticator, merge_scopes
from forklift.transports.registry.credentials import Credentials, CredentialStore
from forklift.transports.registry.errors import (
    ERROR_BODY_LIMIT,
    AuthenticationRequired,
    Denied,
    RateLimited,
    Unreachable,
    error_for_status,
    summary,
)
from forklift.transports.registry.hosts import (
    Origin,
    api_host,
    matches_insecure,
    normalize_registry,
    origin_host_port,
    split_host_port,
    url_origin,
)
from forklift.transports.registry.options import ClientOptions
from forklift.transports.registry.retry import Backoff, Deadline, parse_retry_after

log = logs.get("forklift.registry.client")

# The most of an API answer read into memory (tag lists, catalogs, referrers, upload
# answers); blobs and manifests are streamed under their own limits.
ANSWER_LIMIT = 64 << 20

# statuses worth another try: the registry (or a proxy before it) is overloaded or restarting
RETRY_STATUSES = frozenset({500, 502, 503, 504})

Body = Callable[[], Any]


# what reading an error body may raise: the transport's errors, or a body read already
_BODY_ERRORS: tuple[type[Exception], ...] = (*http.HTTP_ERRORS, RuntimeError)


def _read_limited(resp: http.Response, limit: int = ERROR_BODY_LIMIT) -> bytes:
    """Up to ``limit`` bytes of an (unread, streamed) response body, then close it."""
    try:
        out = bytearray()
        for chunk in resp.iter_raw():
            out += chunk
            if len(out) >= limit:
                break
        return bytes(out[:limit])
    except _BODY_ERRORS:
        return b""
    finally:
        resp.close()


def _ssl_context(options: ClientOptions, host: str) -> ssl.SSLContext:
    """System trust store + ``ca_bundle`` + docker/podman ``certs.d/<host>`` files."""
    ctx = ssl.create_default_context()
    if options.ca_bundle is not None:
        try:
            ctx.load_verify_locations(cafile=str(options.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load CA bundle {options.ca_bundle}: {exc}") from None
    for base in options.cert_dirs:
        directory = Path(base) / host
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            try:
                if path.suffix == ".crt":
                    ctx.load_verify_locations(cafile=str(path))
                elif path.suffix == ".cert":
                    key = path.with_suffix(".key")
                    if key.exists():
                        ctx.load_cert_chain(str(path), str(key))
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"cannot load {path}: {exc}") from None
    return ctx


# A request extension naming the one origin a request's Authorization may go to
# (token requests: the realm); without it, the registry's own origin.
CREDENTIALS_ORIGIN = "forklift.credentials_origin"

# errnos of a connection that was there and broke: another attempt can succeed
_TRANSIENT_ERRNOS = frozenset({errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE})


def _causes(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 16:
        out.append(seen)
        seen = seen.__cause__ or seen.__context__
    return out


def _name_not_resolved(exc: BaseException) -> bool:
    return any(isinstance(e, socket.gaierror) for e in _causes(exc))


def worth_retrying(exc: Exception) -> bool:
    """True for connection trouble another attempt can get past.

    Resets, connections closed mid-answer and read/write timeouts can heal;
    a name that does not resolve, a refused or unroutable connection, a TLS
    failure or an unsupported URL will fail the same way again, so they are
    reported at once (docker and skopeo spend 10-15 s retrying them).
    """
    if isinstance(exc, http.ConnectError):
        # a reset during the TCP or TLS handshake is transient; refused is not
        return any(
            isinstance(e, OSError)
            and not isinstance(e, ssl.SSLError)
            and e.errno in _TRANSIENT_ERRNOS
            for e in _causes(exc)
        )
    final = (
        http.ConnectTimeout,
        http.UnsupportedProtocol,
        http.ProxyError,
        http.LocalProtocolError,
    )
    return not isinstance(exc, final)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "ssl" in str(exc).lower() or "certificate" in str(exc).lower()


# Bytes httpcore asks the socket for per read: 64 KiB by default, which makes a
# 340 MB pull about 5,000 trips through h11, httpcore and the verifying
# reader, each taking the GIL; 1 MiB reads take what the socket holds (often
# more than 64 KiB once the other transfers had their turn) in one trip.
READ_SIZE = 1 << 20


def _larger_reads() -> None:
    """Raise httpcore's per-read size (a class attribute of its HTTP/1.1 connection)."""
    try:
        from httpcore._sync.http11 import HTTP11Connection
    except ImportError:  # another httpcore layout: keep its default
        return
    if getattr(HTTP11Connection, "READ_NUM_BYTES", READ_SIZE) < READ_SIZE:
        HTTP11Connection.READ_NUM_BYTES = READ_SIZE


@dataclass(frozen=True)
class PingResult:
    """What ``GET /v2/`` told: the endpoint URL and the auth scheme asked for (if any)."""

    base_url: str
    auth_scheme: str | None
    api_version: str | None


class Session:
    """HTTP access to one registry, with auth, retries and error mapping."""

    def __init__(
        self,
        registry: str,
        options: ClientOptions | None = None,
        credentials: Credentials | CredentialStore | None = None,
    ) -> None:
        self.registry = normalize_registry(registry)
        self.host = api_host(self.registry)
        self.options = options or ClientOptions()
        self.insecure = self.options.is_insecure(self.registry)
        if self.options.plain_http and not self.insecure:
            raise UsageError(
                f"refusing plain HTTP to {self.registry}: only localhost and registries listed "
                "as insecure may be reached without TLS"
            )
        tls = http.unverified_context() if self.insecure else _ssl_context(self.options, self.host)
        o = self.options
        self.http = http.HttpClient(
            ssl_context=tls,
            timeout=http.Timeout(
                connect=o.connect_timeout, read=o.read_timeout, write=o.read_timeout, pool=None
            ),
            max_connections=o.max_connections,
            keepalive_expiry=30.0,
            headers={"User-Agent": o.user_agent},
            before_send=self._keep_credentials_home,
        )
        _larger_reads()
        # clients for token services on other hosts, each verifying TLS as that host needs
        self._other_http: dict[str, http.HttpClient] = {}
        self._backoff = Backoff(o.backoff_base, o.backoff_max)
        if isinstance(credentials, Credentials):
            fixed = credentials
            provider: Callable[[], Credentials | None] = lambda: fixed  # noqa: E731
        else:
            store = credentials or CredentialStore()
            provider = lambda: store.get(self.registry)  # noqa: E731
        self.auth = Authenticator(
            self.registry, self._send_plain, provider, may_send=self.may_send_credentials
        )
        self._base_url: str | None = None
        self._origin: Origin | None = None
        self._ping: PingResult | None = None
        self._ping_lock = threading.Lock()

    def close(self) -> None:
        self.http.close()
        for other in self._other_http.values():
            other.close()
        self._other_http.clear()

    def deadline(self, deadline: Deadline | None = None) -> Deadline:
        """``deadline``, or a new one from ``options.operation_timeout``."""
        return deadline if deadline is not None else Deadline(self.options.operation_timeout)

    # -- endpoint discovery ---------------------------------------------------------

    def _candidates(self) -> list[str]:
        plain = self.options.plain_http
        if plain:
            return [f"http://{self.host}"]
        if plain is False or not self.insecure:
            return [f"https://{self.host}"]
        return [f"https://{self.host}", f"http://{self.host}"]

    def ping(self, deadline: Deadline | None = None) -> PingResult:
        """``GET /v2/`` (once per session): pick the endpoint and learn the auth challenge."""
        if self._ping is not None:
            return self._ping
        with self._ping_lock:
            if self._ping is not None:
                return self._ping
            deadline = self.deadline(deadline)
            candidates = self._candidates()
            last_error: TransportError | None = None
            for i, base in enumerate(candidates):
                try:
                    resp = self._send_plain(
                        "GET",
                        base + "/v2/",
                        what=f"ping {self.registry}",
                        deadline=deadline,
                        tls_probe=i + 1 < len(candidates),
                    )
                except TransportError as exc:
                    last_error = exc
                    if exc.__cause__ is not None and _name_not_resolved(exc.__cause__):
                        break  # plain HTTP will not resolve the name either
                    continue
                body = _read_limited(resp)
                version = resp.headers.get("docker-distribution-api-version")
                scheme: str | None = None
                if resp.status_code == 401:
                    if not self.auth.learn(resp.headers):
                        raise AuthenticationRequired(
                            f"{self.registry} asks for an authentication scheme forklift "
                            f"does not support: {resp.headers.get('www-authenticate', '')!r}"
                        )
                    challenge = self.auth.challenge
                    scheme = challenge.scheme if challenge else None
                elif resp.status_code != 200:
                    raise error_for_status(
                        resp.status_code,
                        resp.reason_phrase,
                        body,
                        registry=self.registry,
                        what="GET /v2/",
                        not_found=f"{self.registry} does not serve the registry API (/v2/ is 404)",
                    )
                self._base_url = base
                self._origin = url_origin(base)
                self._ping = PingResult(base, scheme, version)
                log.debug("registry %s at %s (auth %s)", self.registry, base, scheme)
                return self._ping
            assert last_error is not None
            raise last_error

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            self.ping()
        assert self._base_url is not None
        return self._base_url

    def url(self, path_or_url: str) -> str:
        """An absolute URL for an API path (``/v2/...``) or a registry-given Location."""
        return urljoin(self.base_url + "/", path_or_url)

    @staticmethod
    def follow(resp: http.Response, location: str) -> str:
        """A ``Location`` or ``Link`` target of ``resp``, absolute against the URL that
        answered (RFC 9110), which is not always the registry's."""
        return urljoin(resp.url, location)

    # -- where credentials may go ---------------------------------------------------

    def is_registry_url(self, url: str) -> bool:
        """True if ``url`` is on the registry's own origin (scheme, host and port)."""
        return self._origin is not None and url_origin(url) == self._origin

    def _keep_credentials_home(self, request: http.Request) -> None:
        """Before-send hook: drop an ``Authorization`` bound for another origin.

        Runs for every request this session's pool sends, redirect hops
        included, so no code path can hand the registry's credentials to a
        host the registry pointed at.
        """
        if "authorization" not in request.headers:
            return
        allowed = request.extensions.get(CREDENTIALS_ORIGIN, self._origin)
        if allowed is None or url_origin(request.url) != allowed:
            del request.headers["authorization"]
            log.debug("not sending credentials to %s (not %s)", request.url, self.registry)

    def may_send_credentials(self, realm: str) -> bool:
        """True if stored credentials may go to the token service at ``realm``.

        Over HTTPS, yes (the service proves who it is; a different host is
        normal: Docker Hub's is ``auth.docker.io``). Over plain HTTP only to
        the registry's own host when the registry itself is spoken to over
        plain HTTP, or to a host the user listed as insecure: a registry must
        not be able to send a password in clear text to a host of its choice.
        """
        origin = url_origin(realm)
        if origin is None:
            return False
        scheme, host, _ = origin
        if scheme == "https":
            return True
        own = self._origin
        if own is not None and own[0] == "http" and own[1] == host:
            return True
        return matches_insecure(origin_host_port(origin), self.options.insecure_registries)

    def _client_for(self, url: str) -> http.HttpClient:
        """The pool to reach ``url``: the registry's, or one verifying TLS for another host.

        An insecure registry's pool does not verify certificates; a token
        service on another host is verified unless that host is insecure too.
        """
        origin = url_origin(url)
        own_host = split_host_port(self.host)[0].lower()
        if origin is None or origin[1] == own_host:
            return self.http
        key = origin_host_port(origin)
        with self._ping_lock:
            client = self._other_http.get(key)
            if client is None:
                o = self.options
                tls = (
                    http.unverified_context()
                    if o.is_insecure(key)
                    else _ssl_context(o, key.removesuffix(":443") if origin[0] == "https" else key)
                )
                client = http.HttpClient(
                    ssl_context=tls,
                    timeout=http.Timeout(
                        connect=o.connect_timeout,
                        read=o.read_timeout,
                        write=o.read_timeout,
                        pool=o.read_timeout,
                    ),
                    headers={"User-Agent": o.user_agent},
                    before_send=self._keep_credentials_home,
                )
                self._other_http[key] = client
        return client

    # -- sending ---------------------------------------------------------------------

    def _timeout(self, deadline: Deadline) -> http.Timeout:
        o = self.options
        return http.Timeout(
            connect=deadline.clip(o.connect_timeout),
            read=deadline.clip(o.read_timeout),
            write=deadline.clip(o.read_timeout),
            pool=deadline.clip(o.read_timeout),
        )

    def _send_plain(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: list[tuple[str, str]] | None = None,
        data: dict[str, str] | None = None,
        what: str,
        deadline: Deadline,
        tls_probe: bool = False,
    ) -> http.Response:
        """Send without auth handling; retry connection errors, 5xx and 429.

        Used for the ping and for token services. ``tls_probe`` makes a TLS
        failure fail at once (the caller falls back to plain HTTP).
        """
        attempt = 0
        client = self._client_for(url)
        # the caller (the Authenticator) decided these credentials may go to this URL
        extensions = {CREDENTIALS_ORIGIN: url_origin(url)} if headers else None
        while True:
            deadline.check(what)
            try:
                send_headers = dict(headers or {})
                content: bytes | None = None
                if data is not None:
                    content, form_type = http.form_body(data)
                    send_headers.update(form_type)
                resp = client.send(
                    method,
                    http.merge_query(url, params or ()),
                    headers=send_headers,
                    content=content,
                    timeout=self._timeout(deadline),
                    extensions=extensions,
                )
            except http.HTTP_ERRORS as exc:
                if tls_probe and (_is_tls_failure(exc) or isinstance(exc, http.ConnectError)):
                    raise self._network_error(exc, what, url) from exc
                attempt += 1
                if not worth_retrying(exc) or attempt >= self.options.max_attempts:
                    raise self._network_error(exc, what, url) from None
                self._pause(attempt, None, what, deadline)
                continue
            if resp.status_code in RETRY_STATUSES or resp.status_code == 429:
                attempt += 1
                if attempt < self.options.max_attempts:
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
                    resp.close()
                    self._pause(attempt, retry_after, what, deadline)
                    continue
            return resp

    def _pause(
        self, attempt: int, retry_after: float | None, what: str, deadline: Deadline
    ) -> None:
        wait = self._backoff.delay(attempt - 1)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.options.max_retry_after))
        log.debug("%s: retry %d in %.2f s", what, attempt, wait)
        deadline.sleep(wait, what)

    def _network_error(self, exc: Exception, what: str, url: str) -> TransportError:
        final = not worth_retrying(exc)
        kind = Unreachable if final else TransportError
        if isinstance(exc, http.ConnectError) and _is_tls_failure(exc):
            return kind(
                f"TLS error talking to {self.registry} ({what}): {exc}",
                hint="pass a CA bundle for this registry, or list it as insecure if it is yours",
            )
        if isinstance(exc, http.TimeoutException):
            return kind(f"{self.registry}: {what} timed out ({type(exc).__name__})")
        if isinstance(exc, http.UnsupportedProtocol):
            return kind(f"{self.registry}: {what}: cannot fetch {url}: {exc}")
        return kind(f"cannot reach {self.registry} ({what}): {exc or type(exc).__name__}")

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        scopes: tuple[str, ...] = (),
        params: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: Body | None = None,
        ok: Collection[int] = (200,),
        stream: bool = False,
        follow_redirects: bool = False,
        retry: bool = True,
        deadline: Deadline | None = None,
        not_found: str | None = None,
    ) -> http.Response:
        """Send an authenticated request; return the response if its status is in ``ok``.

        ``body`` is a zero-argument callable returning the content (bytes or an
        iterator of bytes); it is called again for each retry. With ``stream``
        the caller reads and closes the response. Statuses not in ``ok`` raise
        (404 as :class:`~forklift.errors.NotFound` saying ``not_found``);
        ``retry=False`` makes connection errors and 5xx raise at once, for
        callers that resume on their own.
        """
        deadline = self.deadline(deadline)
        self.ping(deadline)
        url = self.url(path)
        if params:
            # merged into the URL's own query: an upload Location carries state there
            url = http.merge_query(url, params)
        attempt = 0
        auth_retried = False
        wanted = tuple(scopes)
        # a Location, redirect or Link on another origin gets no credentials
        own = self.is_registry_url(url)
        while True:
            deadline.check(what)
            send_headers = dict(headers or {})
            authorization = self.auth.authorization(wanted, deadline) if own else None
            if authorization:
                send_headers["Authorization"] = authorization
            try:
                resp = self.http.send(
                    method,
                    url,
                    headers=send_headers,
                    content=body() if body is not None else None,
                    timeout=self._timeout(deadline),
                    follow_redirects=follow_redirects,
                )
            except http.HTTP_ERRORS as exc:
                attempt += 1
                if not retry or not worth_retrying(exc) or attempt >= self.options.max_attempts:
                    raise self._network_error(exc, what, url) from None
                log.debug("%s: %s; retrying", what, exc)
                self._pause(attempt, None, what, deadline)
                continue
            status = resp.status_code
            log.debug("%s %s -> %d", method, url, status)
            if status in ok:
                if not stream:
                    try:
                        resp.read(ANSWER_LIMIT)
                    except http.BodyTooLarge as exc:
                        raise RegistryError(f"{self.registry}: {what}: {exc}") from None
                    except http.HTTP_ERRORS as exc:
                        resp.close()
                        attempt += 1
                        if (
                            not retry
                            or not worth_retrying(exc)
                            or attempt >= self.options.max_attempts
                        ):
                            raise self._network_error(exc, what, url) from None
                        self._pause(attempt, None, what, deadline)
                        continue
                    finally:
                        resp.close()
                return resp
            # (a 401 from another origin says nothing about the registry's auth)
            if status == 401 and not auth_retried and own and self.is_registry_url(resp.url):
                challenge_before = self.auth.challenge
                body_bytes = _read_limited(resp)
                if self.auth.learn(resp.headers):
                    challenge = self.auth.challenge
                    if challenge is not None and challenge.scheme == "bearer":
                        # the registry may ask for more than we requested (e.g. a mount's source)
                        wanted = tuple(sorted(set(wanted) | set(challenge.scopes)))
                    if authorization or challenge_before is None or challenge != challenge_before:
                        self.auth.invalidate(wanted)
                    auth_retried = True
                    continue
                raise self._status_error(resp, body_bytes, what, wanted, not_found)
            if retry and (status in RETRY_STATUSES or status == 429):
                attempt += 1
                if attempt < self.options.max_attempts:
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
                    _read_limited(resp)
                    self._pause(attempt, retry_after, what, deadline)
                    continue
            raise self._status_error(resp, _read_limited(resp), what, wanted, not_found)

    def _status_error(
        self,
        resp: http.Response,
        body: bytes,
        what: str,
        scopes: tuple[str, ...],
        not_found: str | None,
    ) -> Exception:
        status = resp.status_code
        if status == 401:
            challenge = self.auth.challenge
            creds = self.auth.credentials() if challenge is not None else None
            if challenge is not None and challenge.error == "insufficient_scope" and creds:
                # The registry's challenge may spell the same scope with its actions in
                # another order (push,pull); merged, each resource is named once.
                named = " ".join(merge_scopes(scopes))
                return Denied(f"denied: insufficient scope ({named})", status=401)
        if status == 429:
            return RateLimited(
                f"rate limited by {self.registry} ({what}): "
                f"{summary(status, resp.reason_phrase, body)}",
                status=429,
            )
        return error_for_status(
            status,
            resp.reason_phrase,
            body,
            registry=self.registry,
            what=what,
            scope=" ".join(scopes),
            not_found=not_found,
            had_credentials=self.auth.credentials() is not None if status == 401 else False,
        )

    def login(self, creds: Credentials, deadline: Deadline | None = None) -> Credentials:
        """Verify ``creds`` with the registry; return what to store (maybe an identity token)."""
        deadline = self.deadline(deadline)
        ping = self.ping(deadline)
        if ping.auth_scheme is None:
            # the registry serves anonymous requests; docker reports success here too
            self.auth.set_credentials(creds)
            return creds
        if ping.auth_scheme == "bearer":
            result = self.auth.verify_login(creds, deadline)
        else:
            self.auth.set_credentials(creds)
            result = creds
        # prove the registry itself accepts what the token service (or Basic) gave us
        self.request("GET", "/v2/", what="login check", deadline=deadline)
        return result
