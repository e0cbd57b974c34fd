"""The registry auth flow: anonymous, Basic, and Bearer tokens from a token service.

A registry that wants credentials answers 401 with a ``WWW-Authenticate``
challenge. For ``Basic`` the credentials go on every request; for ``Bearer``
the client asks the challenge's ``realm`` for a token valid for the
``service`` and the ``scope``\\s it needs (``repository:team/app:pull,push``),
with ``GET`` + Basic credentials (or anonymously), or with the OAuth2 ``POST``
form when it holds an identity (refresh) token or the realm refuses ``GET``.
Tokens are cached per scope set until ``expires_in`` (default 60 s) lapses; a
cached token covering a superset of the scopes is reused.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from forklift.errors import ForkliftError, InvalidInput, RegistryError
from forklift.oci import canonical
from forklift.transports.registry import httpclient as http
from forklift.transports.registry.credentials import Credentials
from forklift.transports.registry.errors import AuthenticationRequired, Denied, summary
from forklift.transports.registry.retry import Deadline

if TYPE_CHECKING:
    from forklift.transports.registry.challenge import Challenge

DEFAULT_TOKEN_LIFETIME = 60.0
CLIENT_ID = "forklift"
CATALOG_SCOPE = "registry:catalog:*"
TOKEN_BODY_LIMIT = 1024 * 1024


def repository_scope(repository: str, *actions: str) -> str:
    """``repository:<name>:<a,b>`` as token services expect it."""
    return f"repository:{repository}:{','.join(actions)}"


def pull_scope(repository: str) -> str:
    """The scope to read ``repository``."""
    return repository_scope(repository, "pull")


def push_scope(repository: str) -> str:
    """The scope to write ``repository`` (pushes also read: HEAD before upload)."""
    return repository_scope(repository, "pull", "push")


def _parse_scope(scope: str) -> tuple[str, str, frozenset[str]] | None:
    """``type:name:actions`` -> (type, name, actions); the name itself may contain ':'."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first < 0 or last == first:
        return None
    return scope[:first], scope[first + 1 : last], frozenset(scope[last + 1 :].split(","))


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Combine scopes on the same resource (``pull`` + ``push`` -> ``pull,push``), sorted."""
    merged: dict[tuple[str, str], set[str]] = {}
    opaque: set[str] = set()
    for scope in scopes:
        parsed = _parse_scope(scope)
        if parsed is None:
            opaque.add(scope)
            continue
        kind, name, actions = parsed
        merged.setdefault((kind, name), set()).update(a for a in actions if a)
    out = {f"{k}:{n}:{','.join(sorted(a))}" for (k, n), a in merged.items()} | opaque
    return tuple(sorted(out))


def covers(granted: Iterable[str], wanted: Iterable[str]) -> bool:
    """True if the scopes ``granted`` include every action of ``wanted``."""
    have: dict[tuple[str, str], set[str]] = {}
    for scope in granted:
        parsed = _parse_scope(scope)
        if parsed is not None:
            have.setdefault((parsed[0], parsed[1]), set()).update(parsed[2])
    for scope in wanted:
        parsed = _parse_scope(scope)
        if parsed is None:
            return False
        got = have.get((parsed[0], parsed[1]), set())
        if not (parsed[2] <= got or "*" in got):
            return False
    return True


@dataclass(frozen=True)
class Token:
    """A bearer token and when it stops being usable (``time.monotonic()`` clock)."""

    value: str = field(repr=False)
    expires_at: float
    refresh_token: str = field(default="", repr=False)

    def fresh(self) -> bool:
        """True until the token's lifetime (less a safety margin) has passed."""
        return time.monotonic() < self.expires_at


class RawSender(Protocol):
    """Sends one request with retries on 5xx/429/connection errors; no auth handling."""

    def __call__(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = ...,
        params: list[tuple[str, str]] | None = ...,
        data: dict[str, str] | None = ...,
        what: str,
        deadline: Deadline,
    ) -> http.Response: ...


def basic_header(username: str, password: str) -> str:
    """An ``Authorization: Basic`` value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Authenticator:
    """Answers a registry's challenges for one registry; shared by threads.

    ``credentials`` is called at most once, on first need, so a slow
    credential helper runs only for registries that want credentials.
    """

    def __init__(
        self,
        registry: str,
        send: RawSender,
        credentials: Callable[[], Credentials | None],
        *,
        may_send: Callable[[str], bool] | None = None,
    ) -> None:
        self.registry = registry
        self._send = send
        # whether stored credentials may go to a token realm (Session.may_send_credentials)
        self._may_send = may_send or (lambda realm: True)
        self._credentials_fn = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._lock = threading.Lock()
        self._fetch_locks: dict[tuple[str, ...], threading.Lock] = {}

    # -- state --------------------------------------------------------------------

    @property
    def challenge(self) -> Challenge | None:
        """The challenge the registry last answered with (None: no auth seen yet)."""
        return self._challenge

    def credentials(self) -> Credentials | None:
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = self._credentials_fn()
                self._credentials_loaded = True
            return self._credentials

    def set_credentials(self, creds: Credentials | None) -> None:
        """Use ``creds`` from now on (drops cached tokens)."""
        with self._lock:
            self._credentials = creds
            self._credentials_loaded = True
            self._tokens.clear()

    def learn(self, headers: http.Headers) -> bool:
        """Remember the challenge in a 401's headers; True if it is one forklift can answer."""
        # imported here: a registry that never asks for credentials never needs it
        from forklift.transports.registry.challenge import parse_challenges

        challenges = parse_challenges(headers.get_list("www-authenticate"))
        chosen = next((c for c in challenges if c.scheme == "bearer" and c.realm), None)
        if chosen is None:
            chosen = next((c for c in challenges if c.scheme == "basic"), None)
        if chosen is None:
            return False
        with self._lock:
            self._challenge = chosen
        return True

    def invalidate(self, scopes: tuple[str, ...]) -> None:
        """Forget cached tokens for ``scopes`` (after the registry rejected one)."""
        key = merge_scopes(scopes)
        with self._lock:
            for k in [k for k in self._tokens if k == key or covers(k, key)]:
                del self._tokens[k]

    # -- producing an Authorization header ------------------------------------------

    def authorization(self, scopes: tuple[str, ...], deadline: Deadline) -> str | None:
        """The ``Authorization`` header for a request needing ``scopes``, or None."""
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self.credentials()
            if creds is None or not (creds.username or creds.password):
                return None
            return basic_header(creds.username, creds.password)
        token = self.token(scopes, deadline)
        return f"Bearer {token.value}"

    def token(self, scopes: tuple[str, ...], deadline: Deadline) -> Token:
        """A fresh bearer token for ``scopes`` (cached, or fetched once for all threads)."""
        key = merge_scopes(scopes)
        cached = self._cached(key)
        if cached is not None:
            return cached
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        with fetch_lock:
            cached = self._cached(key)
            if cached is not None:
                return cached
            token = self._fetch_token(key, deadline)
            with self._lock:
                self._tokens[key] = token
            return token

    def _cached(self, key: tuple[str, ...]) -> Token | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and token.fresh():
                return token
            for granted, other in self._tokens.items():
                if other.fresh() and covers(granted, key):
                    return other
        return None

    # -- talking to the token service ----------------------------------------------

    def _fetch_token(
        self, scopes: tuple[str, ...], deadline: Deadline, *, offline: bool = False
    ) -> Token:
        challenge = self._challenge
        assert challenge is not None and challenge.realm
        creds = self.credentials()
        realm = challenge.realm
        if not realm.lower().startswith(("https://", "http://")):
            raise RegistryError(
                f"{self.registry} names a token service forklift cannot use: {realm!r}"
            )
        if creds is not None and not creds.is_empty and not self._may_send(realm):
            raise AuthenticationRequired(
                f"refusing to send the credentials for {self.registry} to the token service "
                f"at {realm}: plain HTTP to another host",
                hint="a token service on another host must use HTTPS; if you trust this one, "
                "list its host:port as an insecure registry",
            )
        if creds is not None and creds.identity_token:
            resp = self._post_token(realm, challenge, scopes, creds, deadline, offline)
            if resp.status_code in (404, 405) and creds.username and creds.password:
                resp.close()
                resp = self._get_token(realm, challenge, scopes, creds, deadline, offline)
        else:
            resp = self._get_token(realm, challenge, scopes, creds, deadline, offline)
            if resp.status_code == 405 and creds is not None and creds.password:
                # this token service only speaks the OAuth2 form
                resp.close()
                resp = self._post_token(realm, challenge, scopes, creds, deadline, offline)
        return self._read_token(resp, scopes, creds)

    def _get_token(
        self,
        realm: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
        creds: Credentials | None,
        deadline: Deadline,
        offline: bool,
    ) -> http.Response:
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params.extend(("scope", s) for s in scopes)
        headers: dict[str, str] = {}
        if creds is not None and (creds.username or creds.password) and not creds.identity_token:
            params.append(("account", creds.username))
            headers["Authorization"] = basic_header(creds.username, creds.password)
        if offline:
            params.extend([("offline_token", "true"), ("client_id", CLIENT_ID)])
        return self._send(
            "GET",
            realm,
            headers=headers,
            params=params,
            what=f"token request to {realm}",
            deadline=deadline,
        )

    def _post_token(
        self,
        realm: str,
        challenge: Challenge,
        scopes: tuple[str, ...],
        creds: Credentials,
        deadline: Deadline,
        offline: bool,
    ) -> http.Response:
        form = {"client_id": CLIENT_ID}
        if challenge.service:
            form["service"] = challenge.service
        if scopes:
            form["scope"] = " ".join(scopes)
        if creds.identity_token:
            form["grant_type"] = "refresh_token"
            form["refresh_token"] = creds.identity_token
        else:
            form["grant_type"] = "password"
            form["username"] = creds.username
            form["password"] = creds.password
        if offline:
            form["access_type"] = "offline"
        return self._send(
            "POST", realm, data=form, what=f"token request to {realm}", deadline=deadline
        )

    def _read_token(
        self, resp: http.Response, scopes: tuple[str, ...], creds: Credentials | None
    ) -> Token:
        try:
            body = resp.read(TOKEN_BODY_LIMIT)
        except http.BodyTooLarge:
            raise RegistryError(
                f"token service for {self.registry} sent an oversized answer"
            ) from None
        finally:
            resp.close()
        status = resp.status_code
        if status in (400, 401):
            raise AuthenticationRequired(
                f"authentication required for {self.registry}: run forklift login {self.registry}",
                hint=(
                    "the token service rejected the credentials"
                    f"{' from ' + creds.source if creds and creds.source else ''}"
                    if creds is not None
                    else None
                ),
            )
        if status == 403:
            raise Denied(
                f"denied: {summary(status, resp.reason_phrase, body)} ({' '.join(scopes)})"
            )
        if status != 200:
            raise RegistryError(
                f"token service for {self.registry} failed: "
                f"{summary(status, resp.reason_phrase, body)}"
            )
        try:
            doc = canonical.loads(body)
        except InvalidInput:
            raise RegistryError(f"token service for {self.registry} sent invalid JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"token service for {self.registry} sent invalid JSON")
        value = doc.get("token") or doc.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryError(f"token service for {self.registry} sent no token")
        lifetime = doc.get("expires_in")
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        # renew a little early so a token never expires between check and use
        margin = min(5.0, lifetime * 0.1)
        refresh = doc.get("refresh_token")
        return Token(
            value,
            time.monotonic() + lifetime - margin,
            refresh if isinstance(refresh, str) else "",
        )

    # -- login ----------------------------------------------------------------------

    def verify_login(self, creds: Credentials, deadline: Deadline) -> Credentials:
        """Check ``creds`` against the token service; return what to store.

        When the token service hands out a refresh token (``offline_token``),
        docker stores that identity token instead of the password, and so does
        forklift.
        """
        challenge = self._challenge
        if challenge is None or challenge.scheme != "bearer" or not challenge.realm:
            raise ForkliftError("internal: verify_login needs a bearer challenge")
        self.set_credentials(creds)
        token = self._fetch_token((), deadline, offline=True)
        with self._lock:
            self._tokens[()] = token
        if token.refresh_token:
            return Credentials(creds.username, "", token.refresh_token, creds.source)
        return creds
