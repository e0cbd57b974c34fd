"""overlayfs, for real: upper dir -> OCI layer, and layers unpacked for stacking.

These mount overlayfs (root only). The reference is always the kernel's own
merged view: a layer written from an upper dir and applied onto the lower
tree must give exactly what the mount showed, and layers unpacked with
``overlay=True`` and stacked by the kernel must show the same tree again.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from forklift.errors import InvalidInput
from forklift.layers import EntryType, extract_layer, iter_entries, write_layer
from tests.layers.trees import IS_ROOT, snapshot

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not IS_ROOT, reason="mounting overlayfs needs root"),
]


@contextlib.contextmanager
def overlay(merged: Path, lowers: list[Path], upper: Path | None = None) -> Iterator[Path]:
    merged.mkdir(parents=True, exist_ok=True)
    opts = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None:
        work = upper.parent / (upper.name + ".work")
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(exist_ok=True)
        # The layer writer refuses redirect/metacopy uppers; make the kernel's choice explicit.
        opts += f",upperdir={upper},workdir={work},redirect_dir=off,metacopy=off,index=off"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


def make_lower(root: Path) -> Path:
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0\n")
    (root / "etc" / "conf.d" / "a.conf").write_text("a")
    (root / "etc" / "conf.d" / "b.conf").write_text("b")
    (root / "var" / "cache" / "deep").mkdir(parents=True)
    (root / "var" / "cache" / "deep" / "x").write_text("x")
    (root / "var" / "keep").write_text("keep")
    (root / "usr" / "bin").mkdir(parents=True)
    tool = root / "usr" / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    os.setxattr(tool, "user.origin", b"lower")
    (root / "opt" / "gone").mkdir(parents=True)
    (root / "opt" / "gone" / "file").write_text("g")
    for i, p in enumerate(sorted(root.rglob("*"))):
        os.utime(p, (1_600_000_000, 1_600_000_000 + i), follow_symlinks=False)
    return root


def change_through_mount(merged: Path) -> None:
    """What a RUN step might do: delete, replace, modify, add."""
    (merged / "etc" / "passwd").unlink()  # -> whiteout
    shutil.rmtree(merged / "var" / "cache")  # -> whiteout of a directory
    shutil.rmtree(merged / "etc" / "conf.d")  # removed and recreated -> opaque dir
    (merged / "etc" / "conf.d").mkdir()
    (merged / "etc" / "conf.d" / "new.conf").write_text("new")
    (merged / "var" / "keep").write_text("modified")  # copy-up with new content
    (merged / "usr" / "bin" / "tool").chmod(0o4750)  # metadata-only change, copied up
    (merged / "srv" / "data").mkdir(parents=True)
    (merged / "srv" / "data" / "file").write_bytes(os.urandom(3000))
    os.link(merged / "srv" / "data" / "file", merged / "srv" / "hardlink")
    os.symlink("../etc/conf.d/new.conf", merged / "srv" / "config")
    os.mkfifo(merged / "srv" / "fifo")
    shutil.rmtree(merged / "opt" / "gone")
    (merged / "opt" / "gone").write_text("a file where a directory was")  # dir -> file


def test_upper_dir_becomes_an_oci_layer_equal_to_the_merged_view(tmp_path: Path) -> None:
    lower = make_lower(tmp_path / "lower")
    upper = tmp_path / "upper"
    with overlay(tmp_path / "merged", [lower], upper) as merged:
        change_through_mount(merged)
        want = snapshot(merged)

    # The kernel's bookkeeping really is there (so the test exercises the conversion).
    assert stat.S_ISCHR(os.lstat(upper / "etc" / "passwd").st_mode)
    assert os.getxattr(upper / "etc" / "conf.d", "trusted.overlay.opaque") == b"y"

    buf = io.BytesIO()
    write_layer(buf, upper, overlay=True, xattrs=True)
    entries = list(iter_entries(io.BytesIO(buf.getvalue())))
    paths = [e.path for e in entries]
    assert "etc/.wh.passwd" in paths
    assert "var/.wh.cache" in paths
    opq = paths.index("etc/conf.d/.wh..wh..opq")
    assert paths[opq - 1] == "etc/conf.d"  # right after its directory, before its children
    assert all(e.type is not EntryType.CHAR for e in entries)
    for e in entries:
        assert not any(k.startswith(("trusted.overlay.", "user.overlay.")) for k, _ in e.xattrs)
        if e.is_whiteout:
            assert (e.type, e.size) == (EntryType.FILE, 0)
    # Whiteouts precede their siblings (OCI: "SHOULD ... appear before sibling entries").
    for i, e in enumerate(entries):
        if e.is_whiteout:
            earlier_siblings = [
                x for x in entries[:i] if x.parent == e.parent and not x.is_whiteout
            ]
            assert earlier_siblings == [], e.path

    # Applying base + diff gives exactly the merged view the kernel showed.
    base = io.BytesIO()
    write_layer(base, lower)
    rootfs = tmp_path / "rootfs"
    extract_layer(io.BytesIO(base.getvalue()), rootfs)
    result = extract_layer(io.BytesIO(buf.getvalue()), rootfs)
    # etc/.wh.passwd, var/.wh.cache, etc/conf.d/.wh..wh..opq; opt/gone needs none: a
    # non-directory in the upper hides the lower directory by itself.
    assert result.whiteouts == 3
    assert snapshot(rootfs) == want


def test_layers_unpacked_for_overlay_stack_to_the_same_view(tmp_path: Path) -> None:
    lower = make_lower(tmp_path / "lower")
    upper = tmp_path / "upper"
    with overlay(tmp_path / "merged", [lower], upper) as merged:
        change_through_mount(merged)
        want = snapshot(merged)
    base, diff = io.BytesIO(), io.BytesIO()
    write_layer(base, lower, xattrs=True)
    write_layer(diff, upper, overlay=True, xattrs=True)

    snap1, snap2 = tmp_path / "snap1", tmp_path / "snap2"
    extract_layer(io.BytesIO(base.getvalue()), snap1, overlay=True)
    result = extract_layer(io.BytesIO(diff.getvalue()), snap2, overlay=True)
    assert result.whiteouts > 0
    st = os.lstat(snap2 / "etc" / "passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0  # an overlay whiteout, not a deletion
    assert os.getxattr(snap2 / "etc" / "conf.d", "trusted.overlay.opaque") == b"y"
    with overlay(tmp_path / "stacked", [snap2, snap1]) as stacked:
        assert snapshot(stacked) == want


def test_whiteout_and_recreate_in_one_layer_hides_the_lower_directory(tmp_path: Path) -> None:
    import tarfile

    from tests.layers.trees import build_tar, member

    lower = make_lower(tmp_path / "lower")
    layer = build_tar(
        [
            (member("var/.wh.cache"), b""),
            (member("var/cache", tarfile.DIRTYPE), None),
            (member("var/cache/fresh"), b"f"),
        ]
    )
    applied = tmp_path / "applied"
    shutil.copytree(lower, applied, symlinks=True)
    extract_layer(io.BytesIO(layer), applied)
    snap = tmp_path / "snap"
    extract_layer(io.BytesIO(layer), snap, overlay=True)
    with overlay(tmp_path / "m", [snap, lower]) as merged:
        assert sorted(os.listdir(merged / "var" / "cache")) == ["fresh"]
        assert sorted(os.listdir(merged / "var" / "cache")) == sorted(
            os.listdir(applied / "var" / "cache")
        )


def test_redirect_and_metacopy_uppers_are_refused(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "moved").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/original")
    with pytest.raises(InvalidInput, match="redirect_dir is in use"):
        write_layer(io.BytesIO(), upper, overlay=True)
    os.removexattr(upper / "moved", "trusted.overlay.redirect")
    (upper / "meta").write_text("")
    os.setxattr(upper / "meta", "trusted.overlay.metacopy", b"")
    with pytest.raises(InvalidInput, match="metacopy is in use"):
        write_layer(io.BytesIO(), upper, overlay=True)


def test_reserved_whiteout_names_in_an_upper_are_refused(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / ".wh.sneaky").write_text("")
    with pytest.raises(InvalidInput, match="reserved for OCI whiteouts"):
        write_layer(io.BytesIO(), upper, overlay=True)
