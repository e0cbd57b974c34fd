"""Fixtures for the examples/ tests: a private copy of an example, the Debian base image."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.debian import debootstrap_tar
from tests.helpers import REPO, run_cli

EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session", autouse=True)
def _needs_root() -> None:
    # Not a skip: without root nothing here can run, and silence would pass for coverage.
    assert os.geteuid() == 0, "the example tests need root (runc, overlayfs, podman)"


@pytest.fixture
def example(tmp_path: Path) -> Callable[[str], Path]:
    """``example("node-style")``: a private copy of examples/node-style to build and edit."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(EXAMPLES / name, dest, symlinks=True)
        return dest

    return copy


@pytest.fixture(scope="session")
def debian_python_tar() -> Path:
    """A Debian 12 root filesystem with python3 and pip, as a tarball (downloaded once).

    ``debootstrap --variant=minbase --include=python3,python3-pip bookworm``, kept under
    /tmp and shared by test runs (see tests/debian.py).
    """
    return debootstrap_tar("debian-bookworm-python3", ("python3", "python3-pip"))


@pytest.fixture
def debian_python_image(home: Path, debian_python_tar: Path) -> str:
    """``debian-python:bookworm`` in this test's store."""
    run_cli("import", str(debian_python_tar), "debian-python:bookworm", check=True)
    return "debian-python:bookworm"
