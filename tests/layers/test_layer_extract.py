"""Extraction: round trips, other tools' tars, whiteouts, replacement rules, digests."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from forklift.errors import DigestMismatch, InvalidInput, SizeMismatch
from forklift.layers import LayerItem, extract_layer, iter_entries, write_layer
from forklift.oci.digest import Digest
from tests.layers.trees import CAP_NET_RAW, IS_ROOT, build_tar, member, snapshot

root_only = pytest.mark.skipif(not IS_ROOT, reason="needs root (owners, devices, capabilities)")


def blob_of(source, **options) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    write_layer(buf, source, **options)
    return buf.getvalue()


def apply(data: bytes, dest: Path, **options):  # type: ignore[no-untyped-def]
    return extract_layer(io.BytesIO(data), dest, **options)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_round_trip_keeps_everything(sample_tree: Path, tmp_path: Path, compression: str) -> None:
    out = tmp_path / "out"
    # xattrs=True: every xattr, not only what reference builders keep (security.capability).
    result = apply(blob_of(sample_tree, compression=compression, xattrs=True), out)
    want = snapshot(sample_tree)
    del want["control.sock"]
    assert snapshot(out) == want  # types, modes, owners, xattrs, links, devices, mtimes
    assert result.compression == ("" if compression == "none" else compression)
    assert result.entries == len(want)
    assert result.skipped == ()


@root_only
def test_round_trip_details_as_root(sample_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    apply(blob_of(sample_tree), out)
    tool = out / "bin" / "tool"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o4755  # setuid kept after chown
    assert os.getxattr(tool, "security.capability") == CAP_NET_RAW
    assert (out / "data" / "random.bin").stat().st_uid == 1234
    assert os.lstat(out / "etc" / "alias").st_gid == 43
    assert os.major((out / "loop9").lstat().st_rdev) == 7
    assert (out / "etc" / "hostname").stat().st_ino == (
        out / "data" / "hostname-hardlink"
    ).stat().st_ino


@root_only
@pytest.mark.skipif(shutil.which("getcap") is None, reason="getcap (libcap2-bin) not installed")
def test_getcap_sees_the_extracted_file_capability(sample_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    apply(blob_of(sample_tree), out)
    getcap = subprocess.run(
        ["getcap", str(out / "bin" / "tool")], capture_output=True, text=True, check=True
    )
    assert "cap_net_raw" in getcap.stdout


def test_non_root_branch_skips_devices_and_owners(sample_tree: Path, tmp_path: Path) -> None:
    data = build_tar(
        [
            (member("dev", tarfile.DIRTYPE), None),
            (member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), None),
            (member("owned", uid=4321, gid=8765), b"x"),
        ]
    )
    warnings: list[str] = []
    result = apply(data, tmp_path / "out", as_root=False, on_warning=warnings.append)
    assert not (tmp_path / "out" / "dev" / "null").exists()
    assert result.skipped == ("dev/null",)
    assert any("skipping device node 'dev/null'" in w for w in warnings)
    assert result.warnings == tuple(warnings)
    assert (tmp_path / "out" / "owned").stat().st_uid == os.geteuid()


@root_only
def test_root_branch_creates_devices_and_owners(tmp_path: Path) -> None:
    data = build_tar(
        [
            (member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), None),
            (member("owned", uid=4321, gid=8765), b"x"),
        ]
    )
    apply(data, tmp_path / "out", as_root=True)
    st = os.lstat(tmp_path / "out" / "dev" / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert (tmp_path / "out" / "owned").stat().st_uid == 4321


@pytest.mark.parametrize("fmt", ["pax", "gnu", "posix"])
def test_reads_and_applies_gnu_tar_archives(sample_tree: Path, tmp_path: Path, fmt: str) -> None:
    archive = tmp_path / f"g.{fmt}.tgz"
    subprocess.run(
        [
            "tar",
            f"--format={fmt}",
            "--xattrs",
            "--xattrs-include=*",
            "-C",
            str(sample_tree),
            "-czf",
            str(archive),
            ".",
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "out"
    with archive.open("rb") as f:
        apply(f.read(), out)
    want = snapshot(sample_tree)
    del want["control.sock"]
    assert snapshot(out) == want
    # And the entry listing matches GNU tar's own.
    listed = subprocess.run(
        ["tar", "--quoting-style=literal", "-tzf", str(archive)], capture_output=True, check=True
    ).stdout.splitlines()
    ours = [e.path for e in iter_entries(archive.open("rb"))]
    theirs = ["" if line == b"./" else os.fsdecode(line)[2:].rstrip("/") for line in listed]
    assert ours == theirs  # same members, same order ("./" is the root, "")


def test_truncated_gzip_layer_is_invalid_input(sample_tree: Path, tmp_path: Path) -> None:
    blob = blob_of(sample_tree)
    for cut in (20, len(blob) // 2, len(blob) - 4):
        with pytest.raises(InvalidInput, match=r"layer: (truncated|corrupt) gzip"):
            apply(blob[:cut], tmp_path / f"cut{cut}")


def test_digests_are_verified(sample_tree: Path, tmp_path: Path) -> None:
    blob = blob_of(sample_tree)
    good = Digest.of(blob)
    diff = Digest.of(gzip.decompress(blob))
    result = apply(blob, tmp_path / "ok", digest=good, diff_id=diff)
    assert (result.digest, result.diff_id) == (good, diff)
    with pytest.raises(DigestMismatch, match="layer blob"):
        apply(blob, tmp_path / "bad1", digest=Digest.of(b"other"))
    with pytest.raises(DigestMismatch, match="layer diff ID"):
        apply(blob, tmp_path / "bad2", diff_id=Digest.of(b"other"))
    with pytest.raises(SizeMismatch):
        apply(blob, tmp_path / "bad3", digest=good, size=len(blob) - 1)
    # A blob whose bytes were swapped for another valid layer: caught by the digest.
    other = blob_of([LayerItem("x", b"x")])
    with pytest.raises(DigestMismatch):
        apply(other, tmp_path / "bad4", digest=good)


# --------------------------------------------------------------------------- whiteouts


def lower(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "etc" / "conf.d" / "a.conf").write_text("a")
    (root / "etc" / "conf.d" / "b.conf").write_text("b")
    (root / "etc" / "passwd").write_text("root")
    (root / "var" / "cache" / "deep").mkdir(parents=True)
    (root / "var" / "cache" / "deep" / "x").write_text("x")
    (root / "var" / "keep").write_text("keep")
    return root


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_whiteout_deletes_file_and_directory(tmp_path: Path) -> None:
    root = lower(tmp_path)
    data = build_tar(
        [
            (member("etc/.wh.passwd"), b""),
            (member("var/.wh.cache"), b""),
            (member("var/.wh.nothing"), b""),
        ]
    )
    result = apply(data, root)
    assert files(root) == {
        "etc",
        "etc/conf.d",
        "etc/conf.d/a.conf",
        "etc/conf.d/b.conf",
        "var",
        "var/keep",
    }
    assert result.whiteouts == 3 and result.entries == 0


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_directory_hides_lower_children_whatever_the_order(
    tmp_path: Path, marker_first: bool
) -> None:
    root = lower(tmp_path)
    members = [
        (member("etc/conf.d", tarfile.DIRTYPE), None),
        (member("etc/conf.d/new.conf"), b"new"),
        (member("etc/conf.d/sub", tarfile.DIRTYPE), None),
        (member("etc/conf.d/sub/y"), b"y"),
    ]
    marker = (member("etc/conf.d/.wh..wh..opq"), b"")
    members = [members[0], marker, *members[1:]] if marker_first else [*members, marker]
    apply(build_tar(members), root)
    assert sorted(os.listdir(root / "etc" / "conf.d")) == ["new.conf", "sub"]
    assert (root / "etc" / "conf.d" / "sub" / "y").read_text() == "y"
    assert (root / "etc" / "passwd").exists()  # siblings of the opaque dir untouched


def test_opaque_hides_lower_grandchildren_under_a_redeclared_dir(tmp_path: Path) -> None:
    root = lower(tmp_path)
    data = build_tar(
        [
            (member("var/cache", tarfile.DIRTYPE), None),
            (member("var/cache/deep", tarfile.DIRTYPE), None),  # re-declared by this layer
            (member("var/.wh..wh..opq"), b""),
        ]
    )
    apply(data, root)
    assert files(root / "var") == {"cache", "cache/deep"}  # lower deep/x and keep are gone


def test_whiteout_never_deletes_what_the_same_layer_wrote(tmp_path: Path) -> None:
    root = lower(tmp_path)
    data = build_tar(
        [
            (member("etc/passwd"), b"new content"),
            (member("etc/.wh.passwd"), b""),  # applies to the lower passwd only
            (member("var/cache/fresh"), b"f"),
            (member("var/.wh.cache"), b""),  # lower cache content goes, ours stays
        ]
    )
    apply(data, root)
    assert (root / "etc" / "passwd").read_text() == "new content"
    assert files(root / "var") == {"cache", "cache/fresh", "keep"}


def test_whiteout_then_recreate_in_one_layer(tmp_path: Path) -> None:
    root = lower(tmp_path)
    data = build_tar(
        [
            (member("var/.wh.cache"), b""),
            (member("var/cache", tarfile.DIRTYPE, mode=0o700), None),
            (member("var/cache/only"), b"o"),
        ]
    )
    apply(data, root)
    assert files(root / "var") == {"cache", "cache/only", "keep"}
    assert stat.S_IMODE((root / "var" / "cache").stat().st_mode) == 0o700


# --------------------------------------------------------------------------- replacement rules


def test_existing_paths_are_replaced_not_written_through(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_text("precious")
    root.mkdir()
    (root / "link-to-outside").symlink_to(outside / "target")
    (root / "was-dir").mkdir()
    (root / "was-dir" / "child").write_text("c")
    (root / "was-file").write_text("f")
    (root / "stays-dir").mkdir()
    (root / "stays-dir" / "child").write_text("kept")
    data = build_tar(
        [
            (member("link-to-outside"), b"replaced"),
            (member("was-dir"), b"now a file"),
            (member("was-file", tarfile.DIRTYPE, mode=0o750), None),
            (member("stays-dir", tarfile.DIRTYPE, mode=0o711, mtime=1234), None),
        ]
    )
    apply(data, root)
    assert (outside / "target").read_text() == "precious"
    assert not (root / "link-to-outside").is_symlink()
    assert (root / "link-to-outside").read_text() == "replaced"
    assert (root / "was-dir").read_text() == "now a file"
    assert (root / "was-file").is_dir()
    assert (root / "stays-dir" / "child").read_text() == "kept"  # dir over dir: merge
    st = (root / "stays-dir").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o711, 1234)


def test_directory_mtimes_and_modes_are_set_after_children(tmp_path: Path) -> None:
    data = build_tar(
        [
            (member("ro", tarfile.DIRTYPE, mode=0o555, mtime=1000), None),
            (member("ro/sub", tarfile.DIRTYPE, mode=0o500, mtime=2000), None),
            (member("ro/sub/file", mtime=3000), b"x"),
        ]
    )
    out = tmp_path / "out"
    apply(data, out, as_root=False)  # owner-only permissions as any user
    assert ((out / "ro").stat().st_mtime, (out / "ro" / "sub").stat().st_mtime) == (1000, 2000)
    assert stat.S_IMODE((out / "ro").stat().st_mode) == 0o555
    assert stat.S_IMODE((out / "ro" / "sub").stat().st_mode) == 0o500
    assert (out / "ro" / "sub" / "file").stat().st_mtime == 3000


def test_symlink_parents_inside_the_root_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")  # merged /usr, as Debian has it
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")  # absolute: means <root>/run
    (root / "run").mkdir()
    data = build_tar([(member("lib/libfoo.so"), b"elf"), (member("var/run/app.pid"), b"1")])
    apply(data, root)
    assert (root / "usr" / "lib" / "libfoo.so").read_bytes() == b"elf"
    assert (root / "run" / "app.pid").read_bytes() == b"1"
    assert (root / "lib").is_symlink()


def test_hardlink_to_lower_layer_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "orig").write_text("o")
    apply(build_tar([(member("alias", tarfile.LNKTYPE, linkname="orig"), None)]), root)
    assert (root / "alias").stat().st_ino == (root / "orig").stat().st_ino


def test_parent_that_is_a_file_is_invalid_input(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "file").write_text("f")
    with pytest.raises(InvalidInput, match="'file' is not a directory"):
        apply(build_tar([(member("file/child"), b"x")]), root)


def test_undeclared_lower_directories_keep_their_times(tmp_path: Path) -> None:
    root = lower(tmp_path)
    for d in (root / "etc", root / "var", root / "etc" / "conf.d"):
        os.utime(d, (111, 222))
    data = build_tar(
        [
            (member("etc/.wh.passwd"), b""),  # a deletion in etc
            (member("var/new"), b"n"),  # a creation in var
            (member("etc/conf.d/.wh..wh..opq"), b""),  # a prune in etc/conf.d
        ]
    )
    apply(data, root)
    assert not (root / "etc" / "passwd").exists() and (root / "var" / "new").exists()
    for d in (root / "etc", root / "var", root / "etc" / "conf.d"):
        assert d.stat().st_mtime == 222, d  # same tree whenever the layers are applied


def test_whiteout_under_a_non_directory_is_a_no_op(tmp_path: Path) -> None:
    root = lower(tmp_path)
    apply(build_tar([(member("etc/passwd/.wh.x"), b""), (member("nope/.wh.y"), b"")]), root)
    assert (root / "etc" / "passwd").read_text() == "root"


def test_real_world_tree_round_trips_and_matches_gnu_tar(corpus: Path, tmp_path: Path) -> None:
    source = corpus / "dockerfiles"  # ~1,600 real files and directories, read-only
    blob = blob_of(source)
    out = tmp_path / "out"
    apply(blob, out)
    assert snapshot(out) == snapshot(source)
    (tmp_path / "l.tgz").write_bytes(blob)
    listed = subprocess.run(
        ["tar", "--quoting-style=literal", "-tzf", str(tmp_path / "l.tgz")],
        capture_output=True,
        check=True,
    ).stdout.splitlines()
    assert [os.fsdecode(line).rstrip("/") for line in listed] == [
        e.path for e in iter_entries(io.BytesIO(blob))
    ]
    assert len(listed) == sum(len(d) + len(f) for _, d, f in os.walk(source))


def test_no_file_descriptors_leak(tmp_path: Path) -> None:
    root = lower(tmp_path)
    data = build_tar(
        [
            (member("etc/conf.d/nope/deeper/.wh.x"), b""),  # missing below existing dirs
            (member("etc/passwd/sub/.wh.y"), b""),  # below a non-directory
            (member("d1/d2/d3/f"), b"f"),
        ]
    )
    bad_link = build_tar([(member("h", tarfile.LNKTYPE, linkname="etc/conf.d/no/file"), None)])
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        apply(data, root)
        with pytest.raises(InvalidInput):
            apply(bad_link, root)
    assert len(os.listdir("/proc/self/fd")) == before
