"""Fixtures for signing, attachments and policy: an isolated home, real registries."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry_server.servers import Server, start_distribution, start_forklift


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and FORKLIFT_HOME; no password or policy from the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "forklift-home"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for var in (
        "COSIGN_PASSWORD",
        "FORKLIFT_POLICY",
        "DOCKER_CONFIG",
        "REGISTRY_AUTH_FILE",
        "FORKLIFT_INSECURE_REGISTRIES",
    ):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def forklift_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``forklift serve`` (referrers API), no auth."""
    base = tmp_path_factory.mktemp("sign-forklift")
    server = start_forklift(base / "root", "--gc-interval", "0", "--access-log", "")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """CNCF distribution 2.8.2 (no referrers API: the tag schema fallback)."""
    server = start_distribution(tmp_path_factory.mktemp("sign-distribution"))
    yield server
    server.stop()


@pytest.fixture(params=["forklift", "distribution"])
def any_registry(request: pytest.FixtureRequest) -> Server:
    """Each registry in turn."""
    return request.getfixturevalue(
        "forklift_registry" if request.param == "forklift" else "distribution"
    )


def env_home() -> Path:
    return Path(os.environ["FORKLIFT_HOME"])
