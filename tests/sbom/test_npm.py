"""An ``npm install``ed tree against ``npm ls --all --json``; its package-lock.json alone.

npm installs from the npm registry on the host (``network``); the tree goes
into an image as a layer. Nested versions (``is-odd`` needs an older
``is-number`` than the top level has) and a scoped package are included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from forklift.sbom import inventory
from forklift.sbom.model import Ecosystem
from tests.helpers import run_cli

pytestmark = pytest.mark.network

PACKAGES = ["chalk@4.1.2", "is-odd@3.0.1", "is-number@7.0.0", "@sindresorhus/is@4.6.0"]


def _flatten(tree: dict[str, Any], out: set[tuple[str, str]]) -> None:
    for name, node in (tree.get("dependencies") or {}).items():
        if "version" in node:
            out.add((name, node["version"]))
        _flatten(node, out)


@pytest.fixture(scope="module")
def npm_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[tuple[str, str]]]:
    npm = shutil.which("npm")
    assert npm, "npm is needed (apt-get install npm)"
    project = tmp_path_factory.mktemp("npm") / "app"
    project.mkdir()
    env = {**os.environ, "HOME": str(project.parent), "npm_config_cache": str(project.parent / "cache"),
           "npm_config_update_notifier": "false"}  # fmt: skip
    (project / "package.json").write_text(
        json.dumps({"name": "app", "version": "1.0.0", "private": True})
    )
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", *PACKAGES], cwd=project,
                   env=env, check=True, capture_output=True, timeout=600)  # fmt: skip
    ls = subprocess.run([npm, "ls", "--all", "--json"], cwd=project, env=env, capture_output=True,
                        text=True, check=True, timeout=600)  # fmt: skip
    expected: set[tuple[str, str]] = set()
    _flatten(json.loads(ls.stdout), expected)
    return project, expected


def _import(project: Path, tmp: Path, *, modules: bool) -> str:
    tar = tmp / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(project / "package.json", arcname="srv/app/package.json")
        tf.add(project / "package-lock.json", arcname="srv/app/package-lock.json")
        if modules:
            tf.add(project / "node_modules", arcname="srv/app/node_modules")
    run_cli("import", str(tar), "node:app", check=True)
    return "node:app"


def test_node_modules_match_npm_ls(npm_project: tuple[Path, set[tuple[str, str]]], home: Path,
                                   tmp_path: Path) -> None:  # fmt: skip
    project, expected = npm_project
    assert ("is-number", "6.0.0") in expected and ("is-number", "7.0.0") in expected
    inv = inventory(_import(project, tmp_path, modules=True))
    npm = inv.by_ecosystem(Ecosystem.NPM)
    assert {(p.name, p.version) for p in npm} == expected
    nested = [p for p in npm if p.name == "is-number" and p.version == "6.0.0"]
    assert [p.location for p in nested] == [
        "/srv/app/node_modules/is-odd/node_modules/is-number/package.json"
    ]
    scoped = next(p for p in npm if p.name == "@sindresorhus/is")
    assert scoped.purl == "pkg:npm/%40sindresorhus/is@4.6.0"
    assert scoped.licenses == ("MIT",)


def test_lock_file_alone(npm_project: tuple[Path, set[tuple[str, str]]], home: Path,
                         tmp_path: Path) -> None:  # fmt: skip
    project, expected = npm_project
    inv = inventory(_import(project, tmp_path, modules=False))
    npm = inv.by_ecosystem(Ecosystem.NPM)
    assert {(p.name, p.version) for p in npm} == expected
    assert {p.location for p in npm} == {"/srv/app/package-lock.json"}
