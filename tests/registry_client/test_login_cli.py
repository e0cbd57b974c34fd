"""``forklift login`` / ``logout`` run as real processes against real registries."""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from forklift.registry.client import CredentialStore, RegistryClient

from .conftest import USERS
from .images import make_image
from .servers import Distribution, TokenServer
from .test_client_ops import push_image

Make = Callable[..., RegistryClient]


def forklift(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forklift", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def config(home: Path) -> dict[str, object]:
    return json.loads((home / ".docker" / "config.json").read_text())


def test_login_with_password_stdin_then_pull_then_logout(
    htpasswd_registry: Distribution, isolated_env: Path, make_client: Make, repo_name: str
) -> None:
    host = htpasswd_registry.host
    result = forklift("login", "-u", "alice", "--password-stdin", host, stdin="wonderland\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Login Succeeded"
    auth = config(isolated_env)["auths"][host]["auth"]  # type: ignore[index]
    assert base64.b64decode(auth).decode() == "alice:wonderland"
    assert "wonderland" not in result.stdout + result.stderr
    # a client with no explicit credentials now gets in
    client = make_client(host)
    digest = push_image(client, repo_name, make_image([b"after login"]), "v1")
    assert client.get_manifest(repo_name, "v1").digest == digest

    out = forklift("logout", host)
    assert out.returncode == 0 and out.stdout.strip() == f"Removing login credentials for {host}"
    assert config(isolated_env)["auths"] == {}
    again = forklift("logout", host)
    assert again.returncode == 0 and again.stdout.strip() == f"Not logged in to {host}"


def test_wrong_password_is_refused_and_nothing_is_saved(
    htpasswd_registry: Distribution, isolated_env: Path
) -> None:
    host = htpasswd_registry.host
    result = forklift("login", "-u", "alice", "--password-stdin", host, stdin="guess-1234")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: login to {host} failed: the registry rejected the credentials of alice"
    )
    assert "guess-1234" not in result.stdout + result.stderr
    assert not (isolated_env / ".docker" / "config.json").exists() or host not in config(
        isolated_env
    ).get("auths", {})  # type: ignore[operator]


def test_login_to_a_token_registry_stores_the_identity_token(
    tmp_path: Path, isolated_env: Path
) -> None:
    from .servers import start_distribution

    tokens = TokenServer(users=dict(USERS))
    reg = start_distribution(tmp_path / "reg", token=tokens)
    try:
        result = forklift("login", "-u", "alice", "--password-stdin", reg.host, stdin="wonderland")
        assert result.returncode == 0, result.stderr
        entry = config(isolated_env)["auths"][reg.host]  # type: ignore[index]
        assert entry["identitytoken"] in tokens.refresh_tokens  # type: ignore[index]
        assert "wonderland" not in json.dumps(entry)
        stored = CredentialStore().get(reg.host)
        assert stored is not None and stored.identity_token and stored.password == ""
    finally:
        reg.stop()
        tokens.stop()


def test_usage_errors(htpasswd_registry: Distribution) -> None:
    no_user = forklift("login", "--password-stdin", htpasswd_registry.host, stdin="x")
    assert no_user.returncode == 2 and "--password-stdin needs --username" in no_user.stderr
    # there is no way to pass a password in argv
    flag = forklift("login", "-u", "alice", "-p", "wonderland", htpasswd_registry.host)
    assert flag.returncode == 2 and "No such option" in flag.stderr


def _read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while marker not in seen:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} in {bytes(seen)!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk


def test_prompts_on_a_terminal_without_echoing_the_password(
    htpasswd_registry: Distribution, isolated_env: Path
) -> None:
    host = htpasswd_registry.host
    pid, fd = pty.fork()
    if pid == 0:  # the child: forklift login on a real terminal
        os.execv(sys.executable, [sys.executable, "-m", "forklift", "login", host])
    seen = bytearray()
    _read_until(fd, b"Username:", seen)
    os.write(fd, b"alice\n")
    _read_until(fd, b"Password:", seen)
    os.write(fd, b"wonderland\n")
    _read_until(fd, b"Login Succeeded", seen)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(seen)
    assert b"alice" in seen  # the user name is echoed ...
    assert b"wonderland" not in seen  # ... the password is not
    auth = config(isolated_env)["auths"][host]["auth"]  # type: ignore[index]
    assert base64.b64decode(auth).decode() == "alice:wonderland"
