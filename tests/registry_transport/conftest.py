"""Fixtures for the docker:// transport and registry verbs: real registries, the real CLI.

Phase 1's fixtures (``tests.registry_client.conftest``) are reused, not copied:
``isolated_env`` (a private HOME, FORKLIFT_HOME, XDG_RUNTIME_DIR for every test),
``registry`` (CNCF distribution, no auth), ``htpasswd_registry`` (distribution
with bcrypt Basic auth) and ``repo_name``. Added here: ``forklift serve`` with
token auth, a ``fk`` runner for the CLI, and helpers to put test images in the
store.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from forklift.registry.client import BlobLocations, Credentials, RegistryClient
from tests.helpers import Result, run_cli
from tests.registry_client.conftest import (  # noqa: F401  (fixtures, by name)
    USERS,
    htpasswd_registry,
    isolated_env,
    registry,
    repo_name,
)
from tests.registry_server.servers import Server, start_forklift

from .images import SampleImage, make_test_image, write_layout

Fk = Callable[..., Result]


@pytest.fixture
def fk() -> Fk:
    """``fk("push", ...)``: the real CLI in a subprocess (env: the isolated HOME/FORKLIFT_HOME)."""
    return run_cli


TOKEN_CONFIG = """
auth:
  htpasswd: {htpasswd}
  token:
    service: forklift-transport-test
    issuer: forklift-transport-test
    expiry: 300
"""


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``forklift serve`` with Docker token auth (built-in /token); users in USERS."""
    base = tmp_path_factory.mktemp("forklift-token")
    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for u, p in USERS.items()
    ]
    (base / "htpasswd").write_text("\n".join(lines) + "\n")
    cfg = base / "registry.yaml"
    cfg.write_text(TOKEN_CONFIG.format(htpasswd=base / "htpasswd"))
    server = start_forklift(
        base / "root", "--config", str(cfg), "--gc-interval", "0", "--access-log", ""
    )
    yield server
    server.stop()


@dataclass(frozen=True)
class Target:
    """A registry under test, and how to log in to it (None: no auth)."""

    kind: str
    host: str
    user: str | None = None
    password: str | None = None

    def login(self, fk: Fk) -> None:
        if self.user is not None:
            assert self.password is not None
            fk(
                "login", "-u", self.user, "--password-stdin", self.host,
                input=self.password.encode(), check=True,
            )  # fmt: skip

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    def client(self) -> RegistryClient:
        """An in-process client (for setting up state quickly; the CLI is what is tested)."""
        creds = Credentials(self.user, self.password or "") if self.user else None
        return RegistryClient(self.host, credentials=creds, blob_locations=BlobLocations())

    def add_tags(self, repository: str, source_tag: str, tags: list[str]) -> None:
        """Point more tags at the manifest ``source_tag`` names (one PUT each)."""
        with self.client() as client:
            got = client.get_manifest(repository, source_tag)
            for tag in tags:
                client.put_manifest(repository, tag, got.data, got.media_type)


def _target(request: pytest.FixtureRequest, fk: Fk) -> Target:
    if request.param == "distribution":
        t = Target("distribution", request.getfixturevalue("registry").host)
    elif request.param == "distribution-htpasswd":
        reg = request.getfixturevalue("htpasswd_registry")
        t = Target("distribution-htpasswd", reg.host, "alice", USERS["alice"])
    else:
        reg = request.getfixturevalue("token_registry")
        t = Target("forklift-token", reg.host, "alice", USERS["alice"])
    t.login(fk)
    return t


@pytest.fixture(params=["distribution", "distribution-htpasswd", "forklift-token"])
def target(request: pytest.FixtureRequest, fk: Fk) -> Target:
    """Each registry kind the verbs must work with, logged in where it needs auth."""
    return _target(request, fk)


@pytest.fixture(params=["distribution", "forklift-token"])
def target2(request: pytest.FixtureRequest, fk: Fk) -> Target:
    """The two registry implementations (anonymous distribution, token-auth forklift serve),
    for verbs whose auth handling ``target`` already covers."""
    return _target(request, fk)


def load_into_store(
    tmp_path: Path, name: str, images: list[SampleImage], index: bytes | None = None
) -> None:
    """Put a hand-built image (or index) into the store ($FORKLIFT_HOME) under ``name``.

    In-process (set-up, not what is tested: ``forklift copy`` has its own tests), which
    spares a CLI start-up per test.
    """
    from forklift.transports.copy import copy

    layout = write_layout(tmp_path / f"layout-{len(list(tmp_path.iterdir()))}", "t", images, index)
    copy(f"oci:{layout}:t", name, all_platforms=index is not None)


@pytest.fixture
def small_image() -> SampleImage:
    """A two-layer image (~1 MB of incompressible layers)."""
    return make_test_image(seed=int.from_bytes(os.urandom(2), "big"))


def store_blob_files(home: Path) -> dict[str, bytes]:
    """Every blob file in a forklift store (digest -> bytes)."""
    out = {}
    for path in (home / "blobs" / "sha256").glob("*"):
        out["sha256:" + path.name] = path.read_bytes()
    return out


def parse_push(stdout: str) -> tuple[str, str]:
    """(digest, pinned reference) from ``forklift push`` output."""
    lines = dict(line.split(": ", 1) for line in stdout.strip().splitlines() if ": " in line)
    return lines["Digest"], lines["Pinned"]


def registry_json(host: str, path: str) -> object:
    """GET ``path`` from a registry without auth (urllib, independent of forklift)."""
    from tests.registry_client.servers import http_get

    status, body = http_get(f"http://{host}{path}")
    assert status == 200, (status, body[:200])
    return json.loads(body)
