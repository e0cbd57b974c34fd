"""Server configuration: one frozen dataclass, loadable from YAML or TOML, overridable by flags.

File format (YAML shown; TOML has the same keys)::

    root: /var/lib/forklift-registry
    addr: 0.0.0.0:5000
    tls: {cert: server.crt, key: server.key}
    delete_enabled: true
    max_manifest_size: 4194304
    access_log: "-"            # "-" = stderr, a path, or "" to turn it off
    shutdown_timeout: 30s
    signature_policy: policy.json   # protected repositories take signed images only
    storage:
      sparse_index: false      # accept indexes/manifests whose children or layers are absent
    metrics:
      enabled: true
      auth: false              # true: /metrics needs Basic credentials of an htpasswd user
      accounts: []             # with auth: only these users (empty = any user)
    auth:
      htpasswd: users.htpasswd # basic auth, or the users of the token endpoint
      anonymous_pull: false
      automatic_mount: false   # mount without ?from= from repositories the caller may pull
      token:                   # present = Docker token auth
        realm: https://registry.example/token   # default: this server's /token
        service: forklift
        issuer: forklift
        signing_key: token.pem # default: <root>/token-signing-key.pem (created)
        expiry: 5m
        trusted:               # external issuers whose tokens are accepted
          - {issuer: auth.example, key: issuer.pem}
      access:                  # who may do what; first match does not stop: grants add up
        - {account: alice, repository: "team/*", actions: [pull, push, delete]}
        - {account: "*", repository: "public/*", actions: [pull]}
    gc:
      interval: 1h             # between background runs, 0 = off
      grace: 1h                # never collect anything touched more recently
      untagged: false          # also delete manifests no tag reaches
      upload_ttl: 1d           # abandoned uploads expire after this long

Every key at every level is checked: an unknown key, a wrong type or a bad
duration is an error naming the file, line and column. Durations are numbers
of seconds or strings such as ``90s``, ``15m``, ``2h``, ``1d``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forklift.errors import ParseError, UsageError
from forklift.registry.server import configsource
from forklift.registry.server.configsource import KeyPath, Source

ACTIONS = ("pull", "push", "delete")

_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``1.5``, ``"90"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``.

    Raises ``ValueError`` with a message for anything else (negative included).
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.fullmatch(value.strip().lower())
        if m is None:
            raise ValueError(f"invalid duration {value!r}: expected seconds or 30s/15m/2h/1d")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds


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
    # mount without ?from= (automatic content discovery); None: on only without auth
    automatic_mount: bool | None = None

    @property
    def mode(self) -> str:
        if self.token is not None:
            return "token"
        return "htpasswd" if self.htpasswd is not None else "none"

    @property
    def mounts_without_from(self) -> bool:
        """Whether ``POST ?mount=`` without ``from`` looks in other repositories."""
        if self.automatic_mount is not None:
            return self.automatic_mount
        return self.mode == "none"


@dataclass(frozen=True)
class GCConfig:
    """Garbage collection."""

    interval: float = 3600.0
    grace: float = 3600.0
    untagged: bool = False
    upload_ttl: float = 86400.0


@dataclass(frozen=True)
class MetricsConfig:
    """The ``/metrics`` endpoint: on or off, open or behind Basic credentials."""

    enabled: bool = True
    auth: bool = False
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``forklift serve`` needs."""

    root: Path = Path("registry-data")
    addr: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    gc: GCConfig = field(default_factory=GCConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    delete_enabled: bool = True
    max_manifest_size: int = 4 * 1024 * 1024
    access_log: str = "-"
    shutdown_timeout: float = 30.0
    sparse_index: bool = False
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

    def check(self) -> None:
        """Cross-field checks that no single key can express."""
        if self.metrics.auth and self.auth.htpasswd is None:
            raise UsageError("metrics.auth needs users to check: set auth.htpasswd")


# -- the schema of the file ---------------------------------------------------------------

# A schema is a type (str, bool, int), DURATION, a dict of keys -> schemas, or a
# one-element list [schema] for "a list of those".
DURATION = "duration"
_Schema = Any

_TOKEN: dict[str, _Schema] = {
    "realm": str,
    "service": str,
    "issuer": str,
    "signing_key": str,
    "expiry": DURATION,
    "trusted": [{"issuer": str, "key": str}],
}
_SCHEMA: dict[str, _Schema] = {
    "root": str,
    "addr": str,
    "tls": {"cert": str, "key": str},
    "delete_enabled": bool,
    "max_manifest_size": int,
    "access_log": str,
    "shutdown_timeout": DURATION,
    "signature_policy": str,
    "storage": {"sparse_index": bool},
    "metrics": {"enabled": bool, "auth": bool, "accounts": [str]},
    "auth": {
        "htpasswd": str,
        "anonymous_pull": bool,
        "automatic_mount": bool,
        "token": _TOKEN,
        "access": [{"account": str, "repository": str, "actions": [str]}],
    },
    "gc": {"interval": DURATION, "grace": DURATION, "untagged": bool, "upload_ttl": DURATION},
}
_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer"}


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


class _Checker:
    def __init__(self, source: Source) -> None:
        self.source = source

    def fail(self, path: KeyPath, message: str, *, at_value: bool = True) -> ParseError:
        where = (*path, "") if at_value else path
        return ParseError(f"{_dotted(path)}: {message}", location=self.source.location(where))

    def check(self, value: Any, schema: _Schema, path: KeyPath) -> Any:
        """``value`` checked against ``schema``; durations become seconds."""
        if isinstance(schema, dict):
            if not isinstance(value, dict):
                raise self.fail(path, f"expected a mapping, got {type(value).__name__}")
            out: dict[str, Any] = {}
            for key, sub in value.items():
                if key not in schema:
                    known = ", ".join(sorted(schema))
                    raise self.fail(
                        (*path, str(key)),
                        f"unknown setting (known here: {known})",
                        at_value=False,
                    )
                if sub is None:
                    continue  # an empty YAML value: the default
                out[key] = self.check(sub, schema[key], (*path, key))
            return out
        if isinstance(schema, list):
            if not isinstance(value, list):
                raise self.fail(path, f"expected a list, got {type(value).__name__}")
            return [self.check(item, schema[0], (*path, i)) for i, item in enumerate(value)]
        if schema == DURATION:
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise self.fail(path, str(exc)) from None
        ok = isinstance(value, schema) and (schema is bool or not isinstance(value, bool))
        if not ok:
            raise self.fail(path, f"expected {_TYPE_NAMES[schema]}, got {type(value).__name__}")
        return value


def load_config(path: Path) -> ServerConfig:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) config file.

    Relative paths in the file are relative to the file's directory.
    """
    source = configsource.read(path)
    checker = _Checker(source)
    data: dict[str, Any] = checker.check(source.data, _SCHEMA, ())
    base = path.parent

    def rel(value: str | None) -> Path | None:
        if value is None:
            return None
        p = Path(value)
        return p if p.is_absolute() else base / p

    kw: dict[str, Any] = {}
    simple: dict[str, Callable[[Any], Any]] = {
        "root": rel,
        "addr": str,
        "delete_enabled": bool,
        "max_manifest_size": int,
        "shutdown_timeout": float,
        "access_log": lambda v: v if v in ("-", "") else str(rel(v)),
        "signature_policy": rel,
    }
    for key, convert in simple.items():
        if key in data:
            kw[key] = convert(data[key])
    tls = data.get("tls", {})
    kw["tls_cert"] = rel(tls.get("cert"))
    kw["tls_key"] = rel(tls.get("key"))
    if "sparse_index" in data.get("storage", {}):
        kw["sparse_index"] = data["storage"]["sparse_index"]
    metrics = data.get("metrics", {})
    kw["metrics"] = MetricsConfig(
        enabled=metrics.get("enabled", True),
        auth=metrics.get("auth", False),
        accounts=tuple(metrics.get("accounts", ())),
    )
    kw["auth"] = _auth(checker, data.get("auth", {}), rel)
    kw["gc"] = GCConfig(**data.get("gc", {}))
    return replace(ServerConfig(), **kw)


def _auth(checker: _Checker, auth: dict[str, Any], rel: Callable[[str | None], Any]) -> AuthConfig:
    rules = []
    for i, rule in enumerate(auth.get("access", [])):
        where: KeyPath = ("auth", "access", i)
        missing = [k for k in ("account", "repository", "actions") if k not in rule]
        if missing:
            raise checker.fail(where, f"missing {', '.join(missing)}")
        for j, action in enumerate(rule["actions"]):
            if action not in (*ACTIONS, "*"):
                raise checker.fail(
                    (*where, "actions", j), f"unknown action {action!r} (pull, push, delete, *)"
                )
        expanded = ACTIONS if "*" in rule["actions"] else tuple(rule["actions"])
        rules.append(AccessRule(rule["account"], rule["repository"], expanded))
    token: TokenConfig | None = None
    if "token" in auth:
        tok = dict(auth["token"])
        trusted = []
        for i, t in enumerate(tok.pop("trusted", [])):
            missing = [k for k in ("issuer", "key") if k not in t]
            if missing:
                raise checker.fail(("auth", "token", "trusted", i), f"missing {', '.join(missing)}")
            trusted.append(TrustedIssuer(t["issuer"], rel(t["key"])))
        if "expiry" in tok:
            tok["expiry"] = max(1, round(tok["expiry"]))
        tok["signing_key"] = rel(tok.get("signing_key"))
        token = TokenConfig(**tok, trusted=tuple(trusted))
    elif "token" in (checker.source.data.get("auth") or {}):
        token = TokenConfig()  # "token:" with nothing under it: the defaults
    return AuthConfig(
        htpasswd=rel(auth.get("htpasswd")),
        token=token,
        anonymous_pull=auth.get("anonymous_pull", False),
        access=tuple(rules),
        automatic_mount=auth.get("automatic_mount"),
    )
