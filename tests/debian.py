"""Debian 12 root filesystems made by debootstrap from Debian's mirror, cached as tarballs under /tmp.

Shared by the example tests (``--include=python3,python3-pip``) and the SBOM
tests (plain minbase). The first test run downloads; later runs and parallel
workers reuse the tarball (an exclusive lock makes workers wait for the one
that makes it). Tests using these reach the network: mark them ``network``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "forklift-test-cache"
MIRROR = "http://deb.debian.org/debian"


def debootstrap_tar(name: str, include: tuple[str, ...] = ()) -> Path:
    """``CACHE/<name>.tar``: ``debootstrap --variant=minbase [--include=...] bookworm``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = CACHE / f"{name}.tar"
    with open(CACHE / "debian.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tar.exists():
            return tar
        assert shutil.which("debootstrap"), (
            "debootstrap is not installed (apt-get install debootstrap)"
        )
        work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE))
        try:
            rootfs = work / "rootfs"
            cmd = ["debootstrap", "--variant=minbase"]
            if include:
                cmd.append("--include=" + ",".join(include))
            proc = subprocess.run(
                [*cmd, "bookworm", str(rootfs), MIRROR],
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
            os.replace(tmp_tar, tar)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tar
