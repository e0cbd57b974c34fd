"""Server configuration: one frozen dataclass, loadable from YAML or TOML, overridable by flags.

File format (YAML shown; TOML has the same keys)::

    root: /var/lib/forklift-registry
    addr: 0.0.0.0:5000
    tls: {cert: server.crt, key: server.key}
    delete_enabled: true
    max_manifest_size: 4194304
    access_log: "-"            # "-" = stderr, a path, or "" to turn it off
    auth:
      htpasswd: users.htpasswd # basic auth, or the users of the token endpoint
      anonymous_pull: false
      token:                   # present = Docker token auth
        realm: https://registry.example/token   # default: this server's /token
        service: forklift
        issuer: forklift
        signing_key: token.pem # default: <root>/token-signing-key.pem (created)
        expiry: 300
        trusted:               # external issuers whose tokens are accepted
          - {issuer: auth.example, key: issuer.pem}
      access:                  # who may do what; first match does not stop: grants add up
        - {account: alice, repository: "team/*", actions: [pull, push, delete]}
        - {account: "*", repository: "public/*", actions: [pull]}
    gc:
      interval: 3600           # seconds between background runs, 0 = off
      grace: 3600              # never collect anything touched more recently
      untagged: false          # also delete manifests no tag reaches
      upload_ttl: 86400        # abandoned uploads expire after this long
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from forklift.errors import InvalidInput, Location, ParseError, UsageError

ACTIONS = ("pull", "push", "delete")


@dataclass(frozen=True)
class AccessRule:
    """Grants ``actions`` on repositories matching the glob ``repository`` to ``account``.

    ``account`` is a user name, ``*`` (any authenticated user) or ``anonymous``.
    """

    account: str
    repository: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class TrustedIssuer:
    """An external token issuer: its name (``iss``) and public key file."""

    issuer: str
    key: Path


@dataclass(frozen=True)
class TokenConfig:
    """Docker token authentication."""

    realm: str | None = None
    service: str = "forklift"
    issuer: str = "forklift"
    signing_key: Path | None = None
    expiry: int = 300
    trusted: tuple[TrustedIssuer, ...] = ()


@dataclass(frozen=True)
class AuthConfig:
    """Who may use the registry."""

    htpasswd: Path | None = None
    token: TokenConfig | None = None
    anonymous_pull: bool = False
    access: tuple[AccessRule, ...] = ()

    @property
    def mode(self) -> str:
        if self.token is not None:
            return "token"
        return "htpasswd" if self.htpasswd is not None else "none"


@dataclass(frozen=True)
class GCConfig:
    """Garbage collection."""

    interval: float = 3600.0
    grace: float = 3600.0
    untagged: bool = False
    upload_ttl: float = 86400.0


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``forklift serve`` needs."""

    root: Path = Path("registry-data")
    addr: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    gc: GCConfig = field(default_factory=GCConfig)
    delete_enabled: bool = True
    max_manifest_size: int = 4 * 1024 * 1024
    access_log: str = "-"
    shutdown_timeout: float = 30.0
    #: signature policy for protected repositories (registry/server/signing.py)
    signature_policy: Path | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        """The address to bind: without auth, loopback only unless ``addr`` says otherwise."""
        addr = self.addr or ("127.0.0.1:5000" if self.auth.mode == "none" else "0.0.0.0:5000")
        host, sep, port = addr.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise UsageError(f"invalid --addr {addr!r}: expected HOST:PORT")
        return (host.strip("[]") or "0.0.0.0"), int(port)


def _fail(path: Path, key: str, message: str) -> ParseError:
    return ParseError(f"{key}: {message}", location=Location(str(path)))


def _get(d: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    value = d.get(key)
    if value is not None and not isinstance(value, kind):
        name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise _fail(path, f"{where}{key}", f"expected {name}, got {type(value).__name__}")
    return value


def _section(d: dict[str, Any], key: str, path: Path, where: str = "") -> dict[str, Any]:
    return _get(d, key, dict, path, where) or {}


def _rel(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value)
    return p if p.is_absolute() else base / p


def load_config(path: Path) -> ServerConfig:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) config file.

    Relative paths in the file are relative to the file's directory.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text) or {}
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(str(exc), location=Location(str(path))) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        raise ParseError(f"invalid YAML: {getattr(exc, 'problem', exc)}", location=loc) from None
    if not isinstance(data, dict):
        raise _fail(path, "(top level)", "expected a mapping")
    known = {"root", "addr", "tls", "delete_enabled", "max_manifest_size", "access_log", "auth"}
    known |= {"gc", "shutdown_timeout", "signature_policy"}
    for key in data:
        if key not in known:
            raise _fail(path, str(key), f"unknown setting (known: {', '.join(sorted(known))})")
    base = path.parent
    cfg = ServerConfig()
    kw: dict[str, Any] = {}
    if (root := _get(data, "root", str, path, "")) is not None:
        kw["root"] = _rel(base, root)
    if (addr := _get(data, "addr", str, path, "")) is not None:
        kw["addr"] = addr
    tls = _section(data, "tls", path)
    kw["tls_cert"] = _rel(base, _get(tls, "cert", str, path, "tls."))
    kw["tls_key"] = _rel(base, _get(tls, "key", str, path, "tls."))
    for key, kind in (("delete_enabled", bool), ("max_manifest_size", int)):
        if (v := _get(data, key, kind, path, "")) is not None:
            kw[key] = v
    if (v := _get(data, "shutdown_timeout", (int, float), path, "")) is not None:
        kw["shutdown_timeout"] = float(v)
    if (log := _get(data, "access_log", str, path, "")) is not None:
        kw["access_log"] = log if log in ("-", "") else str(_rel(base, log))
    if (policy := _get(data, "signature_policy", str, path, "")) is not None:
        kw["signature_policy"] = _rel(base, policy)
    kw["auth"] = _load_auth(_section(data, "auth", path), base, path)
    gc = _section(data, "gc", path)
    gc_kw: dict[str, Any] = {}
    for key in ("interval", "grace", "upload_ttl"):
        if (v := _get(gc, key, (int, float), path, "gc.")) is not None:
            gc_kw[key] = float(v)
    if (v := _get(gc, "untagged", bool, path, "gc.")) is not None:
        gc_kw["untagged"] = v
    kw["gc"] = GCConfig(**gc_kw)
    return replace(cfg, **kw)


def _load_auth(auth: dict[str, Any], base: Path, path: Path) -> AuthConfig:
    kw: dict[str, Any] = {"htpasswd": _rel(base, _get(auth, "htpasswd", str, path, "auth."))}
    if (v := _get(auth, "anonymous_pull", bool, path, "auth.")) is not None:
        kw["anonymous_pull"] = v
    rules = []
    for i, rule in enumerate(_get(auth, "access", list, path, "auth.") or []):
        where = f"auth.access[{i}]."
        if not isinstance(rule, dict):
            raise _fail(path, where[:-1], "expected a mapping")
        account = _get(rule, "account", str, path, where)
        repo = _get(rule, "repository", str, path, where)
        actions = _get(rule, "actions", list, path, where)
        if account is None or repo is None or actions is None:
            raise _fail(path, where[:-1], "needs account, repository and actions")
        for a in actions:
            if a not in (*ACTIONS, "*"):
                raise _fail(path, f"{where}actions", f"unknown action {a!r} (pull, push, delete)")
        expanded = ACTIONS if "*" in actions else tuple(actions)
        rules.append(AccessRule(account, repo, expanded))
    kw["access"] = tuple(rules)
    if "token" in auth:
        tok = _section(auth, "token", path, "auth.")
        tkw: dict[str, Any] = {}
        for key in ("realm", "service", "issuer"):
            if (v := _get(tok, key, str, path, "auth.token.")) is not None:
                tkw[key] = v
        if (v := _get(tok, "expiry", int, path, "auth.token.")) is not None:
            tkw["expiry"] = v
        tkw["signing_key"] = _rel(base, _get(tok, "signing_key", str, path, "auth.token."))
        trusted = []
        for i, t in enumerate(_get(tok, "trusted", list, path, "auth.token.") or []):
            where = f"auth.token.trusted[{i}]."
            if not isinstance(t, dict) or not isinstance(t.get("issuer"), str):
                raise _fail(path, where[:-1], "needs issuer and key")
            key = _get(t, "key", str, path, where)
            if key is None:
                raise _fail(path, f"{where}key", "missing")
            trusted.append(TrustedIssuer(t["issuer"], _rel(base, key) or Path(key)))
        tkw["trusted"] = tuple(trusted)
        kw["token"] = TokenConfig(**tkw)
    return AuthConfig(**kw)
