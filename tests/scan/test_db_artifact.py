"""``forklift db push/pull``: the database as an OCI artifact on real registries.

forklift's own registry and CNCF distribution; skopeo reads the artifact back
independently; a pull of something else is refused and keeps the old database.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from forklift.scan.db.artifact import ARTIFACT_TYPE, LAYER_TYPE
from forklift.scan.db.index import Database
from tests.helpers import assert_no_traceback, run_cli
from tests.registry_server.servers import Server, start_distribution, start_forklift


@pytest.fixture(params=["forklift", "distribution"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if request.param == "distribution" and not Path("/usr/bin/docker-registry").exists():
        pytest.skip("docker-registry (CNCF distribution) is not installed")
    server = (
        start_forklift(tmp_path / "reg")
        if request.param == "forklift"
        else start_distribution(tmp_path / "dist")
    )
    yield server
    server.stop()


def test_push_then_pull_elsewhere(registry: Server, scan_home: Path, tmp_path: Path) -> None:
    db_file = scan_home / "db" / "vuln.db"
    ref = f"{registry.host}/forklift/vuln-db:1"
    r = run_cli("db", "push", ref)
    assert r.returncode == 0, r.stderr
    # another machine: an empty home pulls it
    other = tmp_path / "other-home"
    r = run_cli("db", "pull", ref, env={"FORKLIFT_HOME": str(other)})
    assert r.returncode == 0, r.stderr
    pulled = other / "db" / "vuln.db"
    assert (
        hashlib.sha256(pulled.read_bytes()).digest()
        == hashlib.sha256(db_file.read_bytes()).digest()
    )
    with Database(pulled) as db:
        assert {s.name for s in db.sources()} >= {"PyPI", "debian-dsa"}
    if shutil.which("skopeo"):
        raw = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        manifest = json.loads(raw)
        assert manifest["artifactType"] == ARTIFACT_TYPE
        assert [layer["mediaType"] for layer in manifest["layers"]] == [LAYER_TYPE]


def test_pull_of_an_image_is_refused_and_keeps_the_database(
    registry: Server, scan_home: Path, busybox_image: str
) -> None:
    db_file = scan_home / "db" / "vuln.db"
    before = hashlib.sha256(db_file.read_bytes()).hexdigest()
    ref = f"{registry.host}/library/busybox:1"
    run_cli("push", busybox_image, ref, check=True)
    r = run_cli("db", "pull", ref)
    assert r.returncode == 1 and "not a forklift vulnerability database" in r.stderr
    assert_no_traceback(r)
    assert hashlib.sha256(db_file.read_bytes()).hexdigest() == before
    r = run_cli("db", "pull", f"{registry.host}/nothing/here:1")
    assert r.returncode != 0
    assert_no_traceback(r)
