"""Fixtures for the examples/ tests: a private copy of an example, the Debian base image."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import REPO, run_cli

EXAMPLES = REPO / "examples"
# The Debian root filesystem is downloaded once and kept here between test runs.
DEBIAN_CACHE = Path(tempfile.gettempdir()) / "forklift-test-cache"
DEBIAN_TAR = DEBIAN_CACHE / "debian-bookworm-python3.tar"


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

    ``debootstrap --variant=minbase --include=python3,python3-pip bookworm`` fetches from
    Debian's mirror as apt does; the tarball is kept under /tmp and shared by test runs
    (an exclusive lock makes parallel workers wait for the one that makes it).
    """
    DEBIAN_CACHE.mkdir(parents=True, exist_ok=True)
    with open(DEBIAN_CACHE / "debian.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if DEBIAN_TAR.exists():
            return DEBIAN_TAR
        assert shutil.which("debootstrap"), (
            "debootstrap is not installed (apt-get install debootstrap)"
        )
        work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=DEBIAN_CACHE))
        try:
            rootfs = work / "rootfs"
            proc = subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=python3,python3-pip",
                 "bookworm", str(rootfs), "http://deb.debian.org/debian"],
                capture_output=True, text=True, timeout=1800,
            )  # fmt: skip
            assert proc.returncode == 0, (
                f"debootstrap failed:\n{proc.stdout[-3000:]}\n{proc.stderr}"
            )
            # what apt downloaded is not part of the system
            for cached in (rootfs / "var/cache/apt/archives").glob("*.deb"):
                cached.unlink()
            tmp_tar = work / "rootfs.tar"
            subprocess.run(
                ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp_tar), "."],
                check=True, timeout=600,
            )  # fmt: skip
            os.replace(tmp_tar, DEBIAN_TAR)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return DEBIAN_TAR


@pytest.fixture
def debian_python_image(home: Path, debian_python_tar: Path) -> str:
    """``debian-python:bookworm`` in this test's store."""
    run_cli("import", str(debian_python_tar), "debian-python:bookworm", check=True)
    return "debian-python:bookworm"
