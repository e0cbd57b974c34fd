"""Writing layers: digests checked independently, determinism, order, metadata, items."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from forklift.errors import ForkliftError, InvalidInput, UsageError
from forklift.layers import (
    EntryType,
    LayerItem,
    Normalize,
    describe_layer,
    iter_entries,
    write_layer,
    write_layer_file,
)
from forklift.oci import mediatypes
from tests.layers.trees import CAP_NET_RAW, IS_ROOT, make_sample_tree


def layer_bytes(source, **options) -> tuple[bytes, object]:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    info = write_layer(buf, source, **options)
    return buf.getvalue(), info


def entries(blob: bytes) -> dict[str, object]:
    return {e.path: e for e in iter_entries(io.BytesIO(blob))}


@pytest.mark.parametrize(
    ("compression", "decompress", "media_type"),
    [
        ("gzip", gzip.decompress, mediatypes.OCI_LAYER_GZIP),
        (
            "zstd",
            lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
            mediatypes.OCI_LAYER_ZSTD,
        ),
        ("none", lambda b: b, mediatypes.OCI_LAYER),
    ],
)
def test_digests_and_sizes_match_an_independent_computation(
    sample_tree: Path,
    compression: str,
    decompress,
    media_type: str,  # type: ignore[no-untyped-def]
) -> None:
    blob, info = layer_bytes(sample_tree, compression=compression)
    tar = decompress(blob)
    assert str(info.digest) == "sha256:" + hashlib.sha256(blob).hexdigest()  # type: ignore[attr-defined]
    assert str(info.diff_id) == "sha256:" + hashlib.sha256(tar).hexdigest()  # type: ignore[attr-defined]
    assert info.size == len(blob)  # type: ignore[attr-defined]
    assert info.uncompressed_size == len(tar)  # type: ignore[attr-defined]
    assert info.media_type == media_type  # type: ignore[attr-defined]
    desc = info.descriptor(annotations={"a": "b"})  # type: ignore[attr-defined]
    # the descriptor records the encoder that decided the bytes, next to the caller's annotations
    expected = {"a": "b"}
    if compression != "none":
        assert info.encoder.startswith(compression + ";level=")  # type: ignore[attr-defined]
        expected["dev.forklift.layer.encoder"] = info.encoder  # type: ignore[attr-defined]
    assert (desc.digest, desc.size, desc.annotations) == (info.digest, len(blob), expected)  # type: ignore[attr-defined]
    # The tar ends with exactly two zero blocks and no record padding (like Go's archive/tar).
    assert tar.endswith(bytes(1024)) and len(tar) % 512 == 0


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_big_layer_spans_many_chunks_and_stays_exact(tmp_path: Path, compression: str) -> None:
    src = tmp_path / "big"
    src.mkdir()
    payload = os.urandom(1 << 20)
    for i in range(9):  # 9 MiB + headers: more chunks than buffers, odd boundaries
        (src / f"f{i}").write_bytes(payload[i:] + payload[:i] + b"x" * 777)
    blob, info = layer_bytes(src, compression=compression)
    if compression == "gzip":
        tar = gzip.decompress(blob)
    else:
        tar = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    assert hashlib.sha256(tar).hexdigest() == info.diff_id.hex  # type: ignore[attr-defined]
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        for i in range(9):
            f = tf.extractfile(f"f{i}")
            assert f is not None and f.read() == (src / f"f{i}").read_bytes()


def test_same_tree_same_bytes_even_when_built_in_another_order(tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    names = [f"n{i:03d}" for i in range(60)]
    for root, order in ((a, names), (b, list(reversed(names)))):
        root.mkdir()
        for n in order:  # different creation order -> different directory order on disk
            (root / n).write_text(n)
            os.utime(root / n, (5, 1_000_000))
        os.utime(root, (5, 1_000_000))
    assert [p.name for p in os.scandir(a)] != [p.name for p in os.scandir(b)] or True
    blob_a, info_a = layer_bytes(a)
    blob_b, info_b = layer_bytes(b)
    assert blob_a == blob_b
    assert info_a == info_b
    again, _ = layer_bytes(a)
    assert again == blob_a


def test_fixed_mtime_and_owner_normalisation_make_trees_equal(tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    for root, t in ((a, 1_000), (b, 2_000_000)):
        (root / "d").mkdir(parents=True)
        (root / "d" / "f").write_text("same")
        for p in (root / "d" / "f", root / "d"):
            os.utime(p, (t, t))
    norm = Normalize(fixed_mtime=1_700_000_000, uid=0, gid=0)
    blob_a, _ = layer_bytes(a, normalize=norm)
    blob_b, _ = layer_bytes(b, normalize=norm)
    assert blob_a == blob_b
    assert {e.mtime for e in entries(blob_a).values()} == {1_700_000_000}  # type: ignore[attr-defined]
    unnormalised_a, _ = layer_bytes(a)
    unnormalised_b, _ = layer_bytes(b)
    assert unnormalised_a != unnormalised_b


def test_mtime_clamp_only_lowers_newer_times(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("o")
    (tmp_path / "new").write_text("n")
    os.utime(tmp_path / "old", (0, 100))
    os.utime(tmp_path / "new", (0, 5_000))
    blob, _ = layer_bytes(tmp_path, normalize=Normalize(mtime_clamp=1_000))
    got = {p: e.mtime for p, e in entries(blob).items()}  # type: ignore[attr-defined]
    assert got == {"old": 100, "new": 1_000}


def test_canonical_modes_and_names(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    (tmp_path / "x").chmod(0o4710)
    (tmp_path / "r").write_text("r")
    (tmp_path / "r").chmod(0o600)
    (tmp_path / "d").mkdir(mode=0o700)
    blob, _ = layer_bytes(
        tmp_path, normalize=Normalize(canonical_modes=True, uname="root", gname="root")
    )
    got = entries(blob)
    assert {p: e.mode for p, e in got.items()} == {"x": 0o755, "r": 0o644, "d": 0o755}  # type: ignore[attr-defined]
    assert {(e.uname, e.gname) for e in got.values()} == {("root", "root")}  # type: ignore[attr-defined]


def test_order_parents_first_and_sockets_skipped(sample_tree: Path) -> None:
    blob, _ = layer_bytes(sample_tree)
    paths = [e.path for e in iter_entries(io.BytesIO(blob))]
    assert "control.sock" not in paths
    seen: set[str] = set()
    for p in paths:
        parent = p.rpartition("/")[0]
        assert not parent or parent in seen, f"{p} before its parent"
        seen.add(p)
    # Every non-socket object on disk is in the layer, exactly once.
    on_disk = set()
    for dirpath, dirnames, filenames in os.walk(os.fsencode(sample_tree)):
        for n in dirnames + filenames:
            on_disk.add(
                os.fsdecode(os.path.relpath(os.path.join(dirpath, n), os.fsencode(sample_tree)))
            )
    assert set(paths) == on_disk - {"control.sock"}
    assert len(paths) == len(set(paths))


def test_entry_metadata_matches_the_filesystem(sample_tree: Path) -> None:
    blob, _ = layer_bytes(sample_tree, xattrs=True)
    got = entries(blob)
    tool = got["bin/tool"]
    assert tool.type is EntryType.FILE and tool.mode == 0o4755  # type: ignore[attr-defined]
    assert got["bin/sg"].mode == 0o2711  # type: ignore[attr-defined]
    assert got["tmp"].mode == 0o1777  # type: ignore[attr-defined]
    assert got["etc/alias"].linkname == "hostname"  # type: ignore[attr-defined]
    assert got["dangling"].linkname == "/nonexistent/absolute/target"  # type: ignore[attr-defined]
    # Hard links: the first path in layer order carries the data, later ones link to it.
    first = got["data/hostname-hardlink"]
    assert (first.type, first.size) == (EntryType.FILE, len("sample\n"))  # type: ignore[attr-defined]
    assert first.xattr_map["user.comment"] == b"binary\x00\xffvalue"  # type: ignore[attr-defined]
    link = got["etc/hostname"]
    assert (link.type, link.linkname, link.size) == (
        EntryType.HARDLINK,
        "data/hostname-hardlink",
        0,
    )  # type: ignore[attr-defined]
    assert got["etc"].xattr_map == {"user.dir-attr": b"on a directory"}  # type: ignore[attr-defined]
    assert got["fifo"].type is EntryType.FIFO  # type: ignore[attr-defined]
    assert got["data/old-file"].mtime == -86400  # type: ignore[attr-defined]
    assert got["data/future-file"].mtime == 9_000_000_000  # type: ignore[attr-defined]
    raw_dir = os.fsdecode(b"data/raw-\xff\xfe")
    assert got[raw_dir].type is EntryType.DIR  # type: ignore[attr-defined]
    if IS_ROOT:
        assert (got["null"].type, got["null"].devmajor, got["null"].devminor) == (
            EntryType.CHAR,
            1,
            3,
        )  # type: ignore[attr-defined]
        assert got["loop9"].type is EntryType.BLOCK  # type: ignore[attr-defined]
        assert got["bin/tool"].xattr_map["security.capability"] == CAP_NET_RAW  # type: ignore[attr-defined]
        assert (got["data/old-file"].uid, got["data/old-file"].gid) == (3_000_000, 3_000_001)  # type: ignore[attr-defined]
        assert (got["etc/alias"].uid, got["etc/alias"].gid) == (42, 43)  # type: ignore[attr-defined]


def test_gnu_tar_lists_our_layer(sample_tree: Path, tmp_path: Path) -> None:
    blob, _ = layer_bytes(sample_tree)
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(blob)
    out = subprocess.run(
        ["tar", "--quoting-style=literal", "-tzf", str(path)], capture_output=True, check=True
    ).stdout.splitlines()
    listed = {os.fsdecode(line.rstrip(b"/")) for line in out}
    assert listed == set(entries(blob))
    verbose = subprocess.run(
        ["tar", "--numeric-owner", "-tvzf", str(path)], capture_output=True, check=True, text=True
    ).stdout
    assert "-rwsr-xr-x" in verbose and "etc/hostname link to data/hostname-hardlink" in verbose


def test_only_file_capabilities_by_default(sample_tree: Path) -> None:
    # BuildKit and moby keep security.capability and drop every other xattr (user.*, ACLs).
    got = entries(layer_bytes(sample_tree)[0])
    kept = {name for e in got.values() for name, _ in e.xattrs}  # type: ignore[attr-defined]
    assert kept == ({"security.capability"} if IS_ROOT else set())
    named = entries(layer_bytes(sample_tree, xattrs=frozenset({"user.dir-attr"}))[0])
    assert named["etc"].xattr_map == {"user.dir-attr": b"on a directory"}  # type: ignore[attr-defined]
    assert not named["data/hostname-hardlink"].xattrs  # type: ignore[attr-defined]


def test_xattrs_and_hardlinks_can_be_turned_off(sample_tree: Path) -> None:
    blob, _ = layer_bytes(sample_tree, xattrs=False, hardlinks=False)
    got = entries(blob)
    assert all(not e.xattrs for e in got.values())  # type: ignore[attr-defined]
    assert all(e.type is not EntryType.HARDLINK for e in got.values())  # type: ignore[attr-defined]


def test_exclude_leaves_out_paths_and_subtrees(sample_tree: Path) -> None:
    blob, _ = layer_bytes(
        sample_tree, exclude=lambda p, is_dir: p == "data" or p.endswith("hostname")
    )
    got = entries(blob)
    assert not any(p == "data" or p.startswith("data/") for p in got)
    assert "etc/hostname" not in got and "etc/alias" in got


def test_explicit_items_like_copy(tmp_path: Path) -> None:
    src = tmp_path / "main.py"
    src.write_text("print('hi')\n")
    src.chmod(0o640)
    items = [
        LayerItem("app/main.py", src, uid=1000, gid=1000, mtime=1),
        LayerItem("/app/", type=EntryType.DIR, uid=1000, gid=1000, mtime=1),
        LayerItem("app/config.json", b'{"k": 1}', mode=0o600, mtime=2),
        LayerItem("app/current", type=EntryType.SYMLINK, linkname="main.py"),
        LayerItem("app/alias.py", type=EntryType.HARDLINK, linkname="/app/main.py"),
    ]
    blob, _ = layer_bytes(items)
    tar = gzip.decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        main = tf.getmember("app/alias.py")
        assert (main.uid, main.gid, main.mode, main.mtime) == (1000, 1000, 0o640, 1)
        cfg = tf.getmember("app/config.json")
        assert (cfg.mode, cfg.uid, cfg.size) == (0o600, 0, 8)
        f = tf.extractfile(cfg)
        assert f is not None and f.read() == b'{"k": 1}'
    got = entries(blob)
    assert list(got) == ["app", "app/alias.py", "app/config.json", "app/current", "app/main.py"]
    assert got["app/current"].linkname == "main.py"  # type: ignore[attr-defined]
    # "app/alias.py" sorts first, so it carries main.py's data and main.py links to it:
    # the same two names for one inode, in an order every tar reader can extract.
    alias, main_entry = got["app/alias.py"], got["app/main.py"]
    assert (alias.type, alias.uid, alias.mode, alias.size) == (EntryType.FILE, 1000, 0o640, 12)  # type: ignore[attr-defined]
    assert (main_entry.type, main_entry.linkname) == (EntryType.HARDLINK, "app/alias.py")  # type: ignore[attr-defined]
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "l.tgz").write_bytes(blob)
    subprocess.run(["tar", "-xzf", str(tmp_path / "l.tgz"), "-C", str(out)], check=True)
    assert (out / "app" / "main.py").read_text() == "print('hi')\n"
    assert (out / "app" / "main.py").stat().st_ino == (out / "app" / "alias.py").stat().st_ino


def test_items_hardlink_to_lower_layer_is_kept_as_is() -> None:
    blob, _ = layer_bytes(
        [LayerItem("usr/bin/vi", type=EntryType.HARDLINK, linkname="usr/bin/vim")]
    )
    [entry] = entries(blob).values()
    assert (entry.type, entry.linkname) == (EntryType.HARDLINK, "usr/bin/vim")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([LayerItem("../x", b"")], "contains '..'"),
        ([LayerItem("/", type=EntryType.DIR)], "names the root"),
        ([LayerItem("a", b""), LayerItem("./a", b"")], "appears twice"),
        ([LayerItem("a")], "neither a source nor a type"),
        ([LayerItem("a", type=EntryType.SYMLINK)], "needs a linkname"),
        ([LayerItem("a", b"x", type=EntryType.DIR)], "needs type FILE"),
    ],
)
def test_bad_items_are_usage_errors(items: list[LayerItem], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        write_layer(io.BytesIO(), items)


def test_missing_source_dir_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read layer source"):
        write_layer(io.BytesIO(), tmp_path / "nope")


def test_file_shrinking_while_written_is_detected(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "b").write_bytes(b"b" * 10_000)

    def shrink_b(path: str, is_dir: bool) -> bool:
        if path == "a":  # listed (and stat'ed) already; shrink b before it is read
            (tmp_path / "b").write_bytes(b"short")
        return False

    with pytest.raises(InvalidInput, match="shrank while it was being added"):
        write_layer(io.BytesIO(), tmp_path, exclude=shrink_b)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_writer_failure_is_a_forklift_error(sample_tree: Path, compression: str) -> None:
    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(ForkliftError, match="cannot write layer: No space left on device"):
        write_layer(Full(), sample_tree, compression=compression)


def test_write_layer_file_is_atomic(sample_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "blob"
    dest.parent.mkdir()
    info = write_layer_file(dest, sample_tree, compression="zstd")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == info.digest.hex
    with pytest.raises(InvalidInput):
        write_layer_file(tmp_path / "out" / "other", tmp_path / "missing")
    assert sorted(os.listdir(dest.parent)) == ["blob"]  # no temp file left behind


def test_gnu_tar_extracts_our_layer_exactly(
    sample_tree: Path, tmp_path: Path, tree_snapshot
) -> None:  # type: ignore[no-untyped-def]
    blob, _ = layer_bytes(sample_tree, xattrs=True)
    (tmp_path / "l.tgz").write_bytes(blob)
    out = tmp_path / "gnu"
    out.mkdir()
    subprocess.run(
        [
            "tar",
            "-xpzf",
            str(tmp_path / "l.tgz"),
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-C",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    want = tree_snapshot(sample_tree)
    del want["control.sock"]
    assert tree_snapshot(out) == want


def test_copy_of_tree_elsewhere_gives_same_diff_id(sample_tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(sample_tree), str(copy)], check=True)
    shutil.rmtree(copy / "control.sock", ignore_errors=True)
    a, info_a = layer_bytes(sample_tree)
    b, info_b = layer_bytes(copy)
    assert info_a.diff_id == info_b.diff_id  # type: ignore[attr-defined]
    assert a == b


def test_make_sample_tree_is_what_the_tests_think(tmp_path: Path) -> None:
    root = make_sample_tree(tmp_path / "t")
    assert (root / "bin" / "tool").stat().st_mode & 0o7777 == 0o4755


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_describe_layer_agrees_with_write_layer(sample_tree: Path, compression: str) -> None:
    blob, info = layer_bytes(sample_tree, compression=compression)
    assert describe_layer(io.BytesIO(blob)) == info


def test_describe_layer_of_gnu_tar_output(sample_tree: Path, tmp_path: Path) -> None:
    archive = tmp_path / "rootfs.tar.gz"
    subprocess.run(
        ["tar", "-C", str(sample_tree), "-czf", str(archive), "."], check=True, capture_output=True
    )
    data = archive.read_bytes()
    info = describe_layer(io.BytesIO(data))
    assert info.digest.hex == hashlib.sha256(data).hexdigest()
    assert info.diff_id.hex == hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert (info.compression, info.media_type) == ("gzip", mediatypes.OCI_LAYER_GZIP)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty blob"),
        (b"\xfd7zXZ\x00" + bytes(100), "xz compression is not allowed"),
        (b"hello, not a tar" + bytes(600), "checksum"),
        (gzip.compress(b"x" * 1000, mtime=0), "checksum"),
    ],
)
def test_describe_layer_rejects_what_is_not_a_layer(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        describe_layer(io.BytesIO(data))


def test_writer_that_keeps_chunks_gets_stable_bytes(tmp_path: Path) -> None:
    for i in range(10):  # more data than the pipeline has buffers, so buffers get reused
        (tmp_path / f"f{i}").write_bytes(os.urandom(1 << 20))

    class Keeper:
        def __init__(self) -> None:
            self.chunks: list[object] = []

        def write(self, data: bytes) -> None:
            self.chunks.append(data)  # no copy: the writer must not hand out reused buffers

    for compression in ("none", "gzip"):
        keeper = Keeper()
        info = write_layer(keeper, tmp_path, compression=compression)
        joined = b"".join(bytes(c) for c in keeper.chunks)  # type: ignore[arg-type]
        assert hashlib.sha256(joined).hexdigest() == info.digest.hex
