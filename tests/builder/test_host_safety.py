"""A RUN step cannot touch host files through what forklift does after it (issue 10, item 1).

Each test performs the attack for real: the step moves the directory holding a
mount point away and puts a symlink to a host directory in its place, so a
cleanup that followed paths would delete the host's empty file or directory
of the same name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from forklift.store import Store
from tests.builder.test_build import do_build, layer_members, write
from tests.helpers import make_busybox_rootfs, run_cli, write_rootfs_tar

pytestmark = pytest.mark.root


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    host = tmp_path / "host-dir"
    host.mkdir()
    (host / "victimfile").touch()  # empty: what a stub cleanup would remove
    (host / "victimdir").mkdir()
    (host / "hosts").touch()
    return host


def test_bind_mount_stub_swapped_for_a_symlink(
    busybox_image: str, tmp_path: Path, victim: Path
) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=bind,source=Dockerfile,target=/zz/victimfile "
            f"mkdir /yy && mv /zz /yy/ && ln -s {victim} /zz\n"
        },
    )
    do_build(ctx)
    assert (victim / "victimfile").exists()
    members = layer_members(Store.open(), "t:1")
    # The moved-away stub is the step's own doing and stays where the step put it.
    assert "yy/zz/victimfile" in members
    assert "zz" in members


def test_tmpfs_stub_swapped_for_a_symlink(busybox_image: str, tmp_path: Path, victim: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=tmpfs,target=/zz/victimdir "
            f"mkdir /yy && mv /zz /yy/ && ln -s {victim} /zz\n"
        },
    )
    do_build(ctx)
    assert (victim / "victimdir").is_dir()


def test_etc_stubs_swapped_for_a_symlink(home: Path, tmp_path: Path, victim: Path) -> None:
    # An image without /etc: the generated /etc files' mount points are stubs under a new /etc.
    root = make_busybox_rootfs(tmp_path / "noetc")
    shutil.rmtree(root / "etc")
    run_cli("import", str(write_rootfs_tar(root, tmp_path / "noetc.tar")), "noetc:1", check=True)
    ctx = tmp_path / "ctx"
    write(
        ctx, {"Dockerfile": f"FROM noetc:1\nRUN mkdir /y && mv /etc /y/ && ln -s {victim} /etc\n"}
    )
    do_build(ctx)
    assert sorted(p.name for p in victim.iterdir()) == ["hosts", "victimdir", "victimfile"]
    members = layer_members(Store.open(), "t:1")
    assert members["etc"] is None and "y/etc/hosts" in members  # the step's own doing
