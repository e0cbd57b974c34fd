"""Registry credentials: Docker's ``config.json``, containers' ``auth.json``, credential helpers.

Reading follows what users already have set up:

1. ``$REGISTRY_AUTH_FILE`` (containers' auth.json format), when set;
2. Docker's ``config.json`` in ``$DOCKER_CONFIG`` or ``~/.docker``: a
   per-registry ``credHelpers`` entry, else the ``credsStore`` helper, else the
   base64 ``auth`` (or ``identitytoken``) under ``auths``;
3. ``${XDG_RUNTIME_DIR}/containers/auth.json`` (podman's and skopeo's login).

Writing (``forklift login``/``logout``) goes to Docker's config.json, through
the configured helper when there is one. Secrets reach helpers on stdin, never
in process arguments, and never appear in messages or ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forklift.errors import ForkliftError, InvalidInput, Location, ParseError
from forklift.transports.registry.hosts import credential_key, normalize_registry

HELPER_PREFIX = "docker-credential-"
# docker's marker for "the secret is an identity (refresh) token, not a password"
TOKEN_USERNAME = "<token>"
HELPER_TIMEOUT = 120.0


class CredentialsError(ForkliftError):
    """Credentials could not be read or written (bad file, failing helper)."""


@dataclass(frozen=True)
class Credentials:
    """A user name with a password, or an identity (OAuth2 refresh) token.

    ``source`` says where they came from (a file or a helper), for messages.
    The secret fields are hidden from ``repr``.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = field(default="", compare=False)

    @property
    def is_empty(self) -> bool:
        return not (self.username or self.password or self.identity_token)


def _home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Docker's ``config.json``: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    env = os.environ if env is None else env
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    home = env.get("HOME")
    return (Path(home) if home else _home()) / ".docker" / "config.json"


def containers_auth_paths(env: Mapping[str, str] | None = None) -> tuple[Path | None, Path | None]:
    """(``$REGISTRY_AUTH_FILE``, ``${XDG_RUNTIME_DIR}/containers/auth.json``); each may be None."""
    env = os.environ if env is None else env
    explicit = Path(env["REGISTRY_AUTH_FILE"]) if env.get("REGISTRY_AUTH_FILE") else None
    runtime = env.get("XDG_RUNTIME_DIR")
    xdg = Path(runtime) / "containers" / "auth.json" if runtime else None
    return explicit, xdg


def _load_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8") from None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"invalid JSON: {exc.msg}", location=Location(str(path), exc.lineno, exc.colno)
        ) from None
    except RecursionError:
        raise InvalidInput(f"{path}: JSON nested too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: expected a JSON object at the top level")
    return doc


def _section(doc: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{path}: {key!r} must be an object")
    return value


def _key_registry(key: str) -> str | None:
    """The registry a config key names, docker style (scheme and path stripped)."""
    try:
        return normalize_registry(key)
    except ForkliftError:
        return None


def _decode_entry(entry: Any, key: str, path: Path) -> Credentials | None:
    if not isinstance(entry, dict):
        raise InvalidInput(f"{path}: the entry for {key!r} under 'auths' must be an object")
    source = str(path)
    token = entry.get("identitytoken") or ""
    if not isinstance(token, str):
        raise InvalidInput(f"{path}: 'identitytoken' for {key!r} must be a string")
    auth = entry.get("auth")
    username, password = "", ""
    if auth:
        if not isinstance(auth, str):
            raise InvalidInput(f"{path}: 'auth' for {key!r} must be a string")
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(
                f"{path}: 'auth' for {key!r} is not base64 of 'user:password'"
            ) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidInput(f"{path}: 'auth' for {key!r} is not base64 of 'user:password'")
    else:
        # older docker versions wrote the fields in the clear
        u, p = entry.get("username"), entry.get("password")
        username = u if isinstance(u, str) else ""
        password = p if isinstance(p, str) else ""
    creds = Credentials(username, password, token, source)
    return None if creds.is_empty else creds


def _lookup_keys(registry: str, repository: str | None) -> list[str]:
    """Keys to try in order, most specific first (auth.json allows per-repository keys)."""
    keys: list[str] = []
    if repository:
        parts = repository.split("/")
        for i in range(len(parts), 0, -1):
            keys.append(f"{registry}/{'/'.join(parts[:i])}")
    keys.append(credential_key(registry))
    if registry not in keys:
        keys.append(registry)
    return keys


def _find_auths_entry(
    auths: dict[str, Any], registry: str, repository: str | None
) -> tuple[str, Any] | None:
    for key in _lookup_keys(registry, repository):
        if key in auths:
            return key, auths[key]
    # docker matches keys written as URLs ("https://host/v1/") by their host
    for key, entry in auths.items():
        if "://" in key and _key_registry(key) == registry:
            return key, entry
        if key == "index.docker.io" and registry == "docker.io":
            return key, entry
    return None


def _find_helper(doc: dict[str, Any], registry: str, path: Path) -> str | None:
    helpers = _section(doc, "credHelpers", path)
    for key, name in helpers.items():
        if _key_registry(key) == registry:
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"{path}: credHelpers entry for {key!r} must be a helper name")
            return name
    return None


# -- credential helpers -------------------------------------------------------------


def _run_helper(name: str, action: str, stdin: str, configured_in: str) -> str:
    # imported here: only credential helpers need them (start-up time)
    import shutil
    import subprocess

    exe = shutil.which(HELPER_PREFIX + name)
    if exe is None:
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} not found on PATH "
            f"(configured in {configured_in})"
        )
    try:
        proc = subprocess.run(
            [exe, action],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} {action} did not finish in "
            f"{HELPER_TIMEOUT:g} s"
        ) from None
    except OSError as exc:
        raise CredentialsError(
            f"cannot run credential helper {HELPER_PREFIX}{name}: {exc.strerror}"
        ) from None
    if proc.returncode != 0:
        # helpers report errors on stdout (docker's protocol) or stderr
        detail = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        message = detail[0] if detail else f"exit status {proc.returncode}"
        raise _HelperFailed(message)
    return proc.stdout


class _HelperFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _not_found(message: str) -> bool:
    return "credentials not found" in message.lower()


def helper_get(name: str, server_url: str, configured_in: str = "") -> Credentials | None:
    """Ask ``docker-credential-<name> get`` for ``server_url``; None if it has nothing."""
    try:
        out = _run_helper(name, "get", server_url, configured_in)
    except _HelperFailed as exc:
        if _not_found(exc.message):
            return None
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} get failed: {exc.message}"
        ) from None
    try:
        doc = json.loads(out)
    except (json.JSONDecodeError, RecursionError):
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} get returned invalid JSON"
        ) from None
    if not isinstance(doc, dict):
        raise CredentialsError(f"credential helper {HELPER_PREFIX}{name} get returned invalid JSON")
    username = doc.get("Username") or ""
    secret = doc.get("Secret") or ""
    if not isinstance(username, str) or not isinstance(secret, str):
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} get returned non-string fields"
        )
    source = f"{HELPER_PREFIX}{name}"
    if username == TOKEN_USERNAME:
        return Credentials("", "", secret, source)
    creds = Credentials(username, secret, "", source)
    return None if creds.is_empty else creds


def helper_store(name: str, server_url: str, creds: Credentials, configured_in: str = "") -> None:
    """Store ``creds`` with ``docker-credential-<name> store`` (JSON on stdin)."""
    if creds.identity_token:
        payload = {
            "ServerURL": server_url,
            "Username": TOKEN_USERNAME,
            "Secret": creds.identity_token,
        }
    else:
        payload = {"ServerURL": server_url, "Username": creds.username, "Secret": creds.password}
    try:
        _run_helper(name, "store", json.dumps(payload), configured_in)
    except _HelperFailed as exc:
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} store failed: {exc.message}"
        ) from None


def helper_erase(name: str, server_url: str, configured_in: str = "") -> bool:
    """Erase with ``docker-credential-<name> erase``; False if it had nothing stored."""
    try:
        _run_helper(name, "erase", server_url, configured_in)
    except _HelperFailed as exc:
        if _not_found(exc.message):
            return False
        raise CredentialsError(
            f"credential helper {HELPER_PREFIX}{name} erase failed: {exc.message}"
        ) from None
    return True


# -- atomic config writes ------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of ``path`` between processes."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # lock the directory itself, so no lock file is left next to the user's config
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_json_atomic(path: Path, doc: dict[str, Any], mode: int = 0o600) -> None:
    """Write ``doc`` to ``path`` atomically (temp file, fsync, rename) with ``mode``."""
    target = path.resolve() if path.is_symlink() else path
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = (json.dumps(doc, indent="\t") + "\n").encode()
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- the store -----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCredentials:
    """Where ``store`` put credentials: the config file and the helper used, if any."""

    config: Path
    helper: str | None


class CredentialStore:
    """Finds, stores and erases registry credentials as docker and podman do.

    ``env`` defaults to ``os.environ`` and is read at each call, so tests and
    callers can point ``DOCKER_CONFIG``/``REGISTRY_AUTH_FILE`` elsewhere.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    @property
    def docker_config(self) -> Path:
        return docker_config_path(self.env)

    def _read_sources(self) -> list[tuple[Path, bool]]:
        """(file, is_docker_config) in lookup order."""
        explicit, xdg = containers_auth_paths(self.env)
        out: list[tuple[Path, bool]] = []
        if explicit is not None:
            out.append((explicit, False))
        out.append((self.docker_config, True))
        if xdg is not None and xdg != explicit:
            out.append((xdg, False))
        return out

    def get(self, registry: str, repository: str | None = None) -> Credentials | None:
        """The credentials for ``registry`` (optionally a repository in it), or None."""
        registry = normalize_registry(registry)
        for path, is_docker in self._read_sources():
            creds = self._get_from(path, is_docker, registry, repository)
            if creds is not None:
                return creds
        return None

    def _get_from(
        self, path: Path, is_docker: bool, registry: str, repository: str | None
    ) -> Credentials | None:
        doc = _load_json(path)
        if doc is None:
            return None
        helper = _find_helper(doc, registry, path)
        if helper is not None:
            return helper_get(helper, credential_key(registry), f"{path} credHelpers")
        auths = _section(doc, "auths", path)
        found = _find_auths_entry(auths, registry, repository)
        if found is not None:
            creds = _decode_entry(found[1], found[0], path)
            if creds is not None:
                return creds
        store = doc.get("credsStore") if is_docker else None
        if store:
            if not isinstance(store, str):
                raise InvalidInput(f"{path}: 'credsStore' must be a helper name")
            return helper_get(store, credential_key(registry), f"{path} credsStore")
        return None

    def store(self, registry: str, creds: Credentials) -> StoredCredentials:
        """Save ``creds`` for ``registry`` in Docker's config (or its helper)."""
        registry = normalize_registry(registry)
        path = self.docker_config
        key = credential_key(registry)
        with _locked(path):
            doc = _load_json(path) or {}
            auths = _section(doc, "auths", path)
            helper = _find_helper(doc, registry, path)
            store = doc.get("credsStore") or None
            if store is not None and not isinstance(store, str):
                raise InvalidInput(f"{path}: 'credsStore' must be a helper name")
            for old in [k for k in auths if k != key and _key_registry(k) == registry]:
                del auths[old]
            if helper is not None:
                helper_store(helper, key, creds, f"{path} credHelpers")
                auths.pop(key, None)
            elif store is not None:
                helper_store(store, key, creds, f"{path} credsStore")
                # docker keeps an empty entry so `docker info`-style listings know the registry
                auths[key] = {}
            else:
                entry: dict[str, str] = {}
                if creds.identity_token:
                    entry["auth"] = base64.b64encode(f"{creds.username}:".encode()).decode()
                    entry["identitytoken"] = creds.identity_token
                else:
                    entry["auth"] = base64.b64encode(
                        f"{creds.username}:{creds.password}".encode()
                    ).decode()
                auths[key] = entry
            doc["auths"] = auths
            write_json_atomic(path, doc)
        return StoredCredentials(path, helper or store)

    def erase(self, registry: str) -> bool:
        """Remove ``registry``'s credentials from Docker's config and helper; True if any were."""
        registry = normalize_registry(registry)
        path = self.docker_config
        key = credential_key(registry)
        erased = False
        with _locked(path):
            doc = _load_json(path)
            if doc is None:
                return False
            auths = _section(doc, "auths", path)
            helper = _find_helper(doc, registry, path)
            store = doc.get("credsStore") or None
            if helper is not None:
                erased = helper_erase(helper, key, f"{path} credHelpers") or erased
            elif isinstance(store, str):
                erased = helper_erase(store, key, f"{path} credsStore") or erased
            for old in [k for k in auths if _key_registry(k) == registry]:
                if auths[old]:
                    erased = True
                del auths[old]
            doc["auths"] = auths
            write_json_atomic(path, doc)
        return erased

    def remaining_elsewhere(self, registry: str) -> Path | None:
        """A containers auth file that still holds credentials for ``registry``, if any."""
        registry = normalize_registry(registry)
        for path, is_docker in self._read_sources():
            if is_docker:
                continue
            doc = _load_json(path)
            if doc is None:
                continue
            if _find_auths_entry(_section(doc, "auths", path), registry, None) is not None:
                return path
        return None
