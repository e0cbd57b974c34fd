"""``forklift run`` cannot touch host files through its cleanup after the container (issue 10).

Real runc over real overlayfs: the container replaces the directories holding
its mount points by symlinks to host directories, then exits; nothing
forklift does afterwards (stub removal, tidying the upper dir, ``--rm``) may
follow those links.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import make_busybox_rootfs, run_cli, write_rootfs_tar


@pytest.fixture
def no_etc_image(home: Path, tmp_path: Path) -> str:
    """busybox without /etc: the runtime must create /etc and its files as mount stubs."""
    root = make_busybox_rootfs(tmp_path / "noetc")
    shutil.rmtree(root / "etc")
    tar = write_rootfs_tar(root, tmp_path / "noetc.tar")
    run_cli("import", str(tar), "noetc:1", check=True)
    return "noetc:1"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    host = tmp_path / "host-dir"
    host.mkdir()
    for name in ("hosts", "hostname", "resolv.conf", "victimfile"):
        (host / name).touch()  # empty, like the stubs a cleanup removes
    (host / "victimdir").mkdir()
    return host


def test_etc_swapped_for_a_symlink_with_rm(no_etc_image: str, victim: Path) -> None:
    script = f"mkdir /y && mv /etc /y/ && ln -s {victim} /etc"
    result = run_cli("run", "--rm", no_etc_image, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in victim.iterdir()) == [
        "hostname",
        "hosts",
        "resolv.conf",
        "victimdir",
        "victimfile",
    ]


def test_volume_and_tmpfs_stubs_swapped_for_symlinks(
    busybox_image: str, tmp_path: Path, victim: Path
) -> None:
    source = tmp_path / "vol"
    source.mkdir()
    script = f"mkdir /y && mv /zz /y/ && ln -s {victim} /zz"
    result = run_cli(
        "run", "--name", "kept", "-v", f"{source}:/zz/victimfile", "--tmpfs", "/zz/victimdir",
        busybox_image, "sh", "-c", script,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (victim / "victimfile").exists() and (victim / "victimdir").is_dir()
    # Removing the container (its upper dir holds the symlinks) does not follow them either.
    run_cli("rm", "kept", check=True)
    assert sorted(p.name for p in victim.iterdir()) == [
        "hostname",
        "hosts",
        "resolv.conf",
        "victimdir",
        "victimfile",
    ]


def test_missing_etc_leaves_no_trace_in_a_kept_container(home: Path, no_etc_image: str) -> None:
    # The mount points the runtime made for /etc/hosts, /etc/resolv.conf and /etc/hostname
    # are all removed again, and with them /etc.
    result = run_cli("run", "--name", "plain", no_etc_image, "true")
    assert result.returncode == 0, result.stderr
    (cid,) = [p for p in (home / "containers").iterdir() if p.is_dir()]
    assert not (cid / "upper" / "etc").exists()
    run_cli("rm", "plain", check=True)
