"""Fixtures for the registry client tests: real registries, a token service, isolation."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forklift.registry.client import BlobLocations, ClientOptions, Credentials, RegistryClient

from .servers import Distribution, TokenServer, start_distribution


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real ~/.docker, auth.json or forklift home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "forklift-home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    for var in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "FORKLIFT_INSECURE_REGISTRIES"):
        monkeypatch.delenv(var, raising=False)
    return home


FAST = ClientOptions(backoff_base=0.01, backoff_max=0.05, max_retry_after=5.0)


@pytest.fixture
def fast_options() -> ClientOptions:
    """Client options with tiny backoffs, so retry tests stay fast."""
    return FAST


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    """CNCF distribution without auth (shared by the tests of one worker)."""
    reg = start_distribution(tmp_path_factory.mktemp("distribution-open"))
    yield reg
    reg.stop()


USERS = {"alice": "wonderland", "reader": "only-pull"}


@pytest.fixture(scope="session")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    """CNCF distribution with htpasswd (bcrypt) Basic auth; users in USERS."""
    reg = start_distribution(tmp_path_factory.mktemp("distribution-basic"), htpasswd=USERS)
    yield reg
    reg.stop()


@pytest.fixture
def token_setup(tmp_path: Path) -> Iterator[tuple[TokenServer, Distribution]]:
    """A fresh token service and a distribution trusting it (per test: counters start at 0)."""
    tokens = TokenServer(users=dict(USERS))
    reg = start_distribution(tmp_path / "distribution-token", token=tokens)
    yield tokens, reg
    reg.stop()
    tokens.stop()


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., RegistryClient]]:
    """``make_client(host, **kwargs)``: a RegistryClient closed after the test."""
    clients: list[RegistryClient] = []

    def make(host: str, **kwargs: object) -> RegistryClient:
        kwargs.setdefault("options", FAST)
        kwargs.setdefault(
            "blob_locations", BlobLocations(tmp_path / f"locations-{len(clients)}.db")
        )
        client = RegistryClient(host, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
        c.blob_locations.close()


def alice() -> Credentials:
    return Credentials("alice", USERS["alice"])


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A repository name unique to this test (tests share session registries)."""
    name = request.node.name.lower()
    safe = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    while "--" in safe:
        safe = safe.replace("--", "-")
    return f"t/{safe[:60].strip('-')}-{os.getpid()}"
