"""``forklift run`` cannot touch host files through its cleanup after the container (issue 10).

Real runc over real overlayfs: the container replaces the directories holding
its mount points by symlinks to host directories, then exits; nothing
forklift does afterwards (stub removal, tidying the upper dir, ``--rm``) may
follow those links.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
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


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
        capture_output=True,
        text=True,
    )


def test_setuid_files_of_images_are_out_of_other_users_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store anyone can traverse (FORKLIFT_HOME=/srv/forklift, mode 0755): a setuid-root
    # binary an image or a RUN step ships, unpacked in a snapshot, a cache mount or a
    # container's writable layer, must not be runnable by another user of the machine.
    base = Path(tempfile.mkdtemp(prefix="fk-open-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        home = base / "home"
        monkeypatch.setenv("FORKLIFT_HOME", str(home))
        root = make_busybox_rootfs(tmp_path / "suid")
        shutil.copy2(root / "bin" / "busybox", root / "bin" / "suidbox")
        os.chmod(root / "bin" / "suidbox", 0o4755)
        run_cli("import", str(write_rootfs_tar(root, tmp_path / "s.tar")), "suid:1", check=True)
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            "FROM suid:1\nRUN --mount=type=cache,target=/c cp /bin/busybox /c/x && chmod 4755 /c/x\n"
        )
        run_cli("build", "-q", str(ctx), check=True)
        run_cli("run", "--name", "kept", "suid:1", "sh", "-c", "cp /bin/suidbox /here", check=True)
        found = [p for p in home.rglob("*") if p.is_file() and p.stat().st_mode & 0o4000]
        assert len(found) >= 3  # the image's, the cache's, the container's
        for path in found:
            probe = _as_nobody("stat", str(path))
            assert probe.returncode != 0 and "Permission denied" in probe.stderr, path
        for name in ("snapshots", "cache", "containers"):
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o700
        assert _as_nobody("ls", str(home)).returncode == 0  # the OCI layout stays readable
        run_cli("rm", "kept", check=True)
    finally:
        subprocess.run(["umount", "-R", "-l", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
