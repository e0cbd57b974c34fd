"""Authentication and authorisation: none, htpasswd (bcrypt) and Docker token auth.

Every request names what it needs as :class:`Need` items (``repository``,
name, action). :meth:`Auth.check` returns the caller's :class:`Identity` or
raises the 401 (with the right ``WWW-Authenticate`` challenge) or 403 error.

bcrypt is slow on purpose (tens of milliseconds at the usual costs), so
password checks run on a small thread pool of their own, never on the event
loop: a client sending wrong passwords costs CPU, but does not stall other
requests. Good credentials are cached (keyed by a hash of the header) for
five minutes. An unknown user name costs the same bcrypt work as a known one,
so response times do not tell which user names exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import hashlib
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from forklift.errors import InvalidInput, Location, ParseError
from forklift.registry.server import apierrors, jwt
from forklift.registry.server.config import ACTIONS, AccessRule, AuthConfig

_CACHE_TTL = 300.0
_CACHE_MAX = 4096
# password checks waiting for the pool; beyond this, 429 (a flood must not queue forever)
_MAX_PENDING_CHECKS = 64
# bcrypt (and htpasswd) use only the first 72 bytes of a password
_BCRYPT_MAX = 72
_DEFAULT_COST = 10


@dataclass(frozen=True)
class Need:
    """One permission a request needs: ``repository:<name>:<action>`` or ``registry:catalog:*``."""

    type: str
    name: str
    action: str

    def scope(self) -> str:
        return f"{self.type}:{self.name}:{self.action}"


@dataclass(frozen=True)
class Identity:
    """Who is calling. ``grants`` is set for token callers: what the token allows.

    ``local``: the token comes from this registry's own issuer, so a broader
    token for the same account would be granted by these access rules.
    """

    account: str | None
    grants: frozenset[tuple[str, str, str]] | None = None
    local: bool = False

    @property
    def anonymous(self) -> bool:
        return self.account is None


ANONYMOUS = Identity(None)


def load_htpasswd(path: Path) -> dict[str, bytes]:
    """Parse an htpasswd file of bcrypt entries (``user:$2y$...``), as distribution uses."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read htpasswd file {path}: {exc.strerror}") from None
    users: dict[str, bytes] = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise ParseError("expected user:hash", location=Location(str(path), n, 1))
        if not hashed.startswith(("$2y$", "$2a$", "$2b$")):
            raise ParseError(
                f"user {user!r}: only bcrypt entries are supported (htpasswd -B)",
                location=Location(str(path), n, len(user) + 2),
            )
        users[user] = hashed.encode()
    return users


def _cost(hashed: bytes) -> int:
    """The cost factor of a bcrypt hash (``$2y$10$...`` -> 10)."""
    try:
        return min(max(int(hashed[4:6]), 4), 31)
    except ValueError:
        return _DEFAULT_COST


def parse_scope(text: str) -> list[Need]:
    """``repository:a/b:pull,push`` -> Needs (unknown types yield nothing)."""
    typ, _, rest = text.partition(":")
    name, _, actions = rest.rpartition(":")
    if typ not in ("repository", "registry") or not name:
        return []
    return [Need(typ, name, a) for a in actions.split(",") if a]


class Auth:
    """The registry's access checks for one configuration."""

    def __init__(self, config: AuthConfig, root: Path) -> None:
        self.config = config
        self.mode = config.mode
        self.users: dict[str, bytes] = (
            load_htpasswd(config.htpasswd) if config.htpasswd is not None else {}
        )
        self._basic_cache: dict[str, tuple[str, float]] = {}
        self._token_cache: dict[str, tuple[Identity, float]] = {}
        # what an unknown user's password is checked against: same cost as the real ones
        cost = max((_cost(h) for h in self.users.values()), default=_DEFAULT_COST)
        self._decoy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(cost))
        # half the cores: a wrong-password flood must leave CPU for the event loop.
        # (Not a lower priority: on a busy machine a niced pool starves, its queue
        # grows, and waiting requests slow the server down more than the work did.)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, (os.cpu_count() or 2) // 2), thread_name_prefix="forklift-auth"
        )
        self._pending = 0
        self.signing_key: jwt.PrivateKey | None = None
        self.trusted: list[jwt.TrustedKey] = []
        tok = config.token
        if tok is not None:
            key_path = tok.signing_key or root / "token-signing-key.pem"
            self.signing_key = jwt.load_or_create_key(key_path)
            self.trusted.append(jwt.TrustedKey(tok.issuer, self.signing_key.public_key()))
            for t in tok.trusted:
                self.trusted.append(jwt.TrustedKey(t.issuer, jwt.load_public_key(t.key)))

    # -- rules -----------------------------------------------------------------

    def _rules(self) -> tuple[AccessRule, ...]:
        rules = self.config.access
        if not rules:
            # default: signed-in users may do everything
            rules = (AccessRule("*", "*", ACTIONS),)
        if self.config.anonymous_pull:
            rules = (*rules, AccessRule("anonymous", "*", ("pull",)))
        return rules

    def allowed_actions(self, account: str | None, repo: str) -> set[str]:
        """What the access rules let ``account`` (None = anonymous) do on ``repo``."""
        out: set[str] = set()
        for rule in self._rules():
            if account is None:
                if rule.account != "anonymous":
                    continue
            elif rule.account not in ("*", account):
                continue
            if fnmatch.fnmatchcase(repo, rule.repository):
                out.update(rule.actions)
        return out

    def permits(self, identity: Identity, need: Need) -> bool:
        """True if ``identity`` may do ``need``."""
        if self.mode == "none":
            return True
        if identity.grants is not None:
            if need.type == "registry":
                return ("registry", "catalog", "*") in identity.grants
            return (need.type, need.name, need.action) in identity.grants
        if need.type == "registry":
            return identity.account is not None
        return need.action in self.allowed_actions(identity.account, need.name)

    # -- request checks --------------------------------------------------------

    def _challenge(self, needs: list[Need], base_url: str, error: str | None = None) -> str:
        if self.mode == "htpasswd":
            return 'Basic realm="forklift"'
        tok = self.config.token
        assert tok is not None
        realm = tok.realm or f"{base_url}/token"
        parts = [f'realm="{realm}"', f'service="{tok.service}"']
        scopes: dict[tuple[str, str], list[str]] = {}
        for n in needs:
            scopes.setdefault((n.type, n.name), [])
            if n.action not in scopes[(n.type, n.name)]:
                scopes[(n.type, n.name)].append(n.action)
        if scopes:
            text = " ".join(f"{t}:{name}:{','.join(acts)}" for (t, name), acts in scopes.items())
            parts.append(f'scope="{text}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)

    def _cached_user(self, header: str) -> str | None:
        hit = self._basic_cache.get(hashlib.sha256(header.encode()).hexdigest())
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def basic_user_blocking(self, header: str) -> str | None:
        """The user of a valid ``Basic`` Authorization header, else None (runs bcrypt)."""
        if header[:6].lower() != "basic ":
            return None
        user = self._cached_user(header)
        if user is not None:
            return user
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        hashed = self.users.get(user)
        # htpasswd hashed only the first 72 bytes; checking those matches what it stored
        secret = password.encode()[:_BCRYPT_MAX]
        try:
            if hashed is None:
                bcrypt.checkpw(secret, self._decoy)  # same work: no user-name oracle
                return None
            ok = bcrypt.checkpw(secret, hashed.replace(b"$2y$", b"$2b$", 1))
        except ValueError:
            return None
        if not ok:
            return None
        if len(self._basic_cache) > _CACHE_MAX:
            self._basic_cache.clear()
        key = hashlib.sha256(header.encode()).hexdigest()
        self._basic_cache[key] = (user, time.monotonic() + _CACHE_TTL)
        return user

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on the auth pool (bcrypt work); 429 if too much is already waiting."""
        if self._pending >= _MAX_PENDING_CHECKS:
            raise apierrors.APIError(
                "TOOMANYREQUESTS", 429, "too many authentication attempts in progress"
            )
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._pending -= 1

    async def basic_user(self, header: str) -> str | None:
        """:meth:`basic_user_blocking` without blocking the event loop."""
        if header[:6].lower() != "basic ":
            return None
        user = self._cached_user(header)
        if user is not None:
            return user
        return await self.run_blocking(self.basic_user_blocking, header)

    def close(self) -> None:
        """Stop the password-check threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _bearer_identity(self, header: str) -> Identity | None:
        if header[:7].lower() != "bearer ":
            return None
        token = header[7:].strip()
        now = time.time()
        hit = self._token_cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        tok = self.config.token
        assert tok is not None
        try:
            claims = jwt.verify(token, self.trusted, tok.service)
        except jwt.TokenInvalid:
            return None
        grants: set[tuple[str, str, str]] = set()
        for entry in claims.get("access") or []:
            if not isinstance(entry, dict):
                continue
            typ, name, acts = entry.get("type"), entry.get("name"), entry.get("actions")
            if isinstance(typ, str) and isinstance(name, str) and isinstance(acts, list):
                for a in acts:
                    if isinstance(a, str):
                        grants.add((typ, name, a))
                        if a == "*" and typ == "repository":
                            grants.update((typ, name, x) for x in ACTIONS)
        sub = claims.get("sub")
        identity = Identity(
            sub if isinstance(sub, str) and sub else None,
            frozenset(grants),
            local=claims.get("iss") == tok.issuer,
        )
        if len(self._token_cache) > _CACHE_MAX:
            self._token_cache.clear()
        self._token_cache[token] = (identity, float(claims["exp"]))
        return identity

    async def check(
        self,
        authorization: str | None,
        needs: list[Need],
        base_url: str,
        also_ask: tuple[Need, ...] = (),
    ) -> Identity:
        """Authenticate the caller and check ``needs``; raise 401/403 on failure.

        ``also_ask`` goes into a token challenge without being required (a
        mount's ``pull`` on the source repository: a token without it still
        uploads, it just cannot mount).
        """
        if self.mode == "none":
            return ANONYMOUS
        header = authorization or ""
        if self.mode == "htpasswd":
            identity = ANONYMOUS
            if header:
                user = await self.basic_user(header)
                if user is None:
                    raise apierrors.unauthorized(self._challenge(needs, base_url))
                identity = Identity(user)
            if all(self.permits(identity, n) for n in needs):
                if identity.anonymous and not needs:
                    # GET /v2/ without credentials: tell the client to log in
                    raise apierrors.unauthorized(self._challenge(needs, base_url))
                return identity
            if identity.anonymous:
                raise apierrors.unauthorized(
                    self._challenge(needs, base_url), [n.scope() for n in needs]
                )
            raise apierrors.denied()
        asked = [*needs, *also_ask]
        identity_or_none = self._bearer_identity(header)
        if identity_or_none is None:
            raise apierrors.unauthorized(
                self._challenge(asked, base_url), [n.scope() for n in needs]
            )
        if not all(self.permits(identity_or_none, n) for n in needs):
            raise apierrors.unauthorized(
                self._challenge(asked, base_url, "insufficient_scope"),
                [n.scope() for n in needs],
            )
        return identity_or_none

    def ask_for_more(
        self, identity: Identity, needs: list[Need], extra: list[Need], base_url: str
    ) -> None:
        """Raise 401 ``insufficient_scope`` if a new token would grant one of ``extra``.

        For a token caller of this registry's own issuer whose token lacks
        ``extra`` (a mount source's ``pull``) although the access rules would
        grant it: the client fetches a token for the challenge's scopes and
        retries. Never for a grant the rules refuse, so a client cannot loop.
        """
        if self.mode != "token" or not identity.local or identity.account is None:
            return
        grantable = [n for n in extra if n.action in self.allowed_actions(identity.account, n.name)]
        if grantable:
            raise apierrors.unauthorized(
                self._challenge([*needs, grantable[0]], base_url, "insufficient_scope"),
                [n.scope() for n in needs],
            )

    # -- token endpoint --------------------------------------------------------

    def issue_token(
        self, authorization: str | None, service: str | None, scopes: list[str]
    ) -> dict[str, Any]:
        """The built-in token endpoint: check credentials, grant what the rules allow.

        Blocking (bcrypt): the app calls it through :meth:`run_blocking`.
        """
        tok = self.config.token
        if tok is None or self.signing_key is None:
            raise apierrors.unsupported("token auth is not enabled", 404)
        if service is not None and service != tok.service:
            raise apierrors.APIError("DENIED", 400, f"unknown service {service!r}")
        account: str | None = None
        if authorization:
            account = self.basic_user_blocking(authorization)
            if account is None:
                raise apierrors.unauthorized('Basic realm="forklift token"')
        access: dict[tuple[str, str], list[str]] = {}
        for text in scopes:
            for need in parse_scope(text):
                if need.type == "registry":
                    if need.name == "catalog" and account is not None:
                        access.setdefault(("registry", "catalog"), ["*"])
                    continue
                allowed = self.allowed_actions(account, need.name)
                # "*" asks for everything: grant whatever the rules allow
                wanted = (
                    [a for a in ACTIONS if a in allowed] if need.action == "*" else [need.action]
                )
                for action in wanted:
                    if action in allowed:
                        acts = access.setdefault(("repository", need.name), [])
                        if action not in acts:
                            acts.append(action)
        now = int(time.time())
        claims = {
            "iss": tok.issuer,
            "sub": account or "",
            "aud": tok.service,
            "exp": now + tok.expiry,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [{"type": t, "name": n, "actions": acts} for (t, n), acts in access.items()],
        }
        token = jwt.sign(claims, self.signing_key)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {
            "token": token,
            "access_token": token,
            "expires_in": tok.expiry,
            "issued_at": issued,
        }
