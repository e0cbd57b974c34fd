"""Blobs copied unchanged between local files: read once, verified, written as verified.

``save`` and ``load`` write the chunks the source's verifying stream yields
(one read, the hash and the write on two threads); whole blob files
(layout-to-layout copies) go through ``copy_file_range`` while the stream is
read beside it. These tests check the bytes arrive, that what is written is
what was verified, that a corrupt source blob still fails the copy with
nothing left behind, and that the fallback (no in-kernel copy between these
files) gives the same bytes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from forklift import copyrange
from forklift.copyrange import FileExtent, copy_range, copy_while_draining
from forklift.errors import DigestMismatch, SizeMismatch
from forklift.oci.digest import Digest, VerifyingReader
from forklift.transports import copy

SIZE = 3 * 1024 * 1024 + 12345  # above copyrange.SMALL, not a multiple of any step


def sha(data: bytes) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / "source.bin"
    path.write_bytes(b"HEAD" * 100 + data + b"TAIL")
    return path, data


def test_copy_range_copies_between_offsets(source: tuple[Path, bytes], tmp_path: Path) -> None:
    path, data = source
    out = tmp_path / "out.bin"
    with open(path, "rb") as src, open(out, "wb") as dst:
        dst.write(b"x" * 7)
        copy_range(src.fileno(), 400, dst.fileno(), 7, SIZE)
    assert out.read_bytes() == b"x" * 7 + data


def test_copy_range_without_kernel_copy_gives_the_same_bytes(
    source: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    path, data = source
    out = tmp_path / "out.bin"
    with open(path, "rb") as src, open(out, "wb") as dst:
        copy_range(src.fileno(), 400, dst.fileno(), 0, SIZE)
    assert out.read_bytes() == data


def test_a_short_source_is_an_error(source: tuple[Path, bytes], tmp_path: Path) -> None:
    path, _ = source
    with open(path, "rb") as src, open(tmp_path / "out", "wb") as dst, pytest.raises(EOFError):
        copy_range(src.fileno(), 400, dst.fileno(), 0, SIZE + 1000)


def test_copy_while_draining_raises_the_verifiers_mismatch(
    source: tuple[Path, bytes], tmp_path: Path
) -> None:
    path, data = source
    out = tmp_path / "out.bin"
    good = VerifyingReader(io.BytesIO(data), sha(data), SIZE, "layer")
    with open(out, "wb") as dst:
        copy_while_draining(FileExtent(path, 400), dst.fileno(), 0, SIZE, good)
    assert good.verified
    assert out.read_bytes() == data

    wrong = VerifyingReader(io.BytesIO(data), sha(b"other"), SIZE, "layer")
    with open(tmp_path / "bad.bin", "wb") as dst, pytest.raises(DigestMismatch):
        copy_while_draining(FileExtent(path, 400), dst.fileno(), 0, SIZE, wrong)


def _layer(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("big.bin")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _docker_archive(path: Path, layer: bytes) -> None:
    import json

    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    with tarfile.open(path, "w") as tf:
        for name, data in (
            ("config.json", config),
            ("layer.tar", layer),
            (
                "manifest.json",
                json.dumps(
                    [{"Config": "config.json", "RepoTags": ["big:1"], "Layers": ["layer.tar"]}]
                ).encode(),
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_save_and_load_write_the_verified_chunks_without_a_kernel_copy(
    home: Path, tmp_path: Path, cli: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archive members sit at 512-byte offsets, where no filesystem can share blocks:
    the kernel would only copy what the hash already read, so it is not asked to."""
    layer = _layer(os.urandom(SIZE))
    archive = tmp_path / "in.tar"
    _docker_archive(archive, layer)
    kernel: list[int] = []
    drained: list[int] = []
    real_copy, real_write = copyrange._copy, copyrange.write_drained

    def counting_copy(*args: object) -> None:
        kernel.append(1)
        real_copy(*args)  # type: ignore[arg-type]

    def counting_write(*args: object) -> None:
        drained.append(1)
        real_write(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(copyrange, "_copy", counting_copy)
    monkeypatch.setattr(copyrange, "write_drained", counting_write)
    # load (docker-archive -> store), then save (store -> docker-archive), in process
    copy(f"docker-archive:{archive}", "big:1")
    blob = home / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()
    assert blob.read_bytes() == layer
    out = tmp_path / "out.tar"
    copy("big:1", f"docker-archive:{out}:big:1")
    with tarfile.open(out) as tf:
        member = tf.extractfile(f"{hashlib.sha256(layer).hexdigest()}.tar")
        assert member is not None and member.read() == layer
    assert len(drained) == 2  # the layer, both ways (the small config goes through Python)
    assert kernel == []


def test_a_block_aligned_archive_member_is_read_once_too(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member that happens to start on a 4 KiB boundary still goes through the
    verified writes: only whole files (offset 0 to offset 0) are the kernel's."""
    import json

    from forklift.transports.tarball import TarIndex

    layer = _layer(os.urandom(SIZE))
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    archive = tmp_path / "aligned.tar"
    with tarfile.open(archive, "w") as tf:
        # headers at 0 and 3584: the layer's bytes start at 4096
        for name, data in (("config.json", config.ljust(3072)), ("layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        doc = [{"Config": "config.json", "RepoTags": ["aligned:1"], "Layers": ["layer.tar"]}]
        manifest = json.dumps(doc).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tf.addfile(info, io.BytesIO(manifest))
    index = TarIndex(archive)
    assert index.extent("layer.tar").offset == 4096
    index.close()
    kernel: list[int] = []
    real_copy = copyrange._copy

    def counting_copy(*args: object) -> None:
        kernel.append(1)
        real_copy(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(copyrange, "_copy", counting_copy)
    copy(f"docker-archive:{archive}", "aligned:1")
    assert kernel == []
    blob = home / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()
    assert blob.read_bytes() == layer


def test_the_bytes_written_are_the_bytes_verified(tmp_path: Path) -> None:
    """If the source file changes under the copy, the destination still gets exactly
    the bytes that hashed to the digest (never a second read that was not checked)."""
    data = os.urandom(SIZE)
    changed = tmp_path / "changed.bin"
    changed.write_bytes(b"HEAD" * 100 + os.urandom(SIZE))  # what a second read would see
    out = tmp_path / "out.bin"
    stream = VerifyingReader(io.BytesIO(data), sha(data), SIZE, "layer")
    with open(out, "wb") as dst:
        copy_while_draining(FileExtent(changed, 400), dst.fileno(), 512, SIZE, stream)
    assert stream.verified
    assert out.read_bytes()[512:] == data


def test_a_source_longer_or_shorter_than_promised_fails(tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    with open(tmp_path / "out", "wb") as dst:
        with pytest.raises(SizeMismatch):
            copyrange.write_drained(io.BytesIO(data), dst.fileno(), 0, SIZE - 1)
        with pytest.raises(SizeMismatch):
            copyrange.write_drained(io.BytesIO(data), dst.fileno(), 0, SIZE + 1)


def test_a_failing_write_stops_the_read_and_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full_disk)
    data = os.urandom(SIZE)
    with open(tmp_path / "out", "wb") as dst, pytest.raises(OSError, match="No space"):
        copyrange.write_drained(io.BytesIO(data), dst.fileno(), 0, SIZE)


def test_whole_blob_files_are_copied_by_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block-aligned on both sides (a blob file into another): copy_file_range, which a
    filesystem with shared blocks turns into a reflink; the stream is still read whole."""
    data = os.urandom(SIZE)
    src = tmp_path / "blob"
    src.write_bytes(data)
    kernel: list[int] = []
    real_copy = copyrange._copy

    def counting_copy(*args: object) -> None:
        kernel.append(1)
        real_copy(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(copyrange, "_copy", counting_copy)
    stream = VerifyingReader(io.BytesIO(data), sha(data), SIZE, "layer")
    with open(tmp_path / "out", "wb") as dst:
        copy_while_draining(FileExtent(src, 0), dst.fileno(), 0, SIZE, stream)
    assert kernel == [1] and stream.verified
    assert (tmp_path / "out").read_bytes() == data


def test_a_corrupt_store_blob_fails_the_save_and_leaves_no_archive(
    home: Path, tmp_path: Path, cli
) -> None:
    layer = _layer(os.urandom(SIZE))
    archive = tmp_path / "in.tar"
    _docker_archive(archive, layer)
    copy(f"docker-archive:{archive}", "big:1")
    blob = home / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()
    damaged = bytearray(blob.read_bytes())
    damaged[SIZE // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(damaged))
    out = tmp_path / "out.tar"
    result = cli("save", "-o", str(out), "big:1")
    assert result.returncode != 0
    assert "digest mismatch" in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tar")] == []


def test_several_large_layers_fill_one_archive_at_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layers of a save are copied in parallel into reserved regions of the tar:
    the archive must still be a valid tar that a reader independent of forklift
    (Python's tarfile, and skopeo when present) takes apart into the same bytes."""
    import json
    import shutil
    import subprocess

    layers = [_layer(os.urandom(SIZE + i * 4099)) for i in range(3)]
    diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    archive = tmp_path / "in.tar"
    with tarfile.open(archive, "w") as tf:
        members = [("config.json", config)]
        members += [(f"l{i}.tar", x) for i, x in enumerate(layers)]
        doc = [
            {
                "Config": "config.json",
                "RepoTags": ["big:3"],
                "Layers": [f"l{i}.tar" for i in range(3)],
            }
        ]
        members.append(("manifest.json", json.dumps(doc).encode()))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    copy(f"docker-archive:{archive}", "big:3")
    for fmt, dest in (
        ("docker", f"docker-archive:{tmp_path / 'd.tar'}:big:3"),
        ("oci", f"oci-archive:{tmp_path / 'o.tar'}:3"),
    ):
        copy("big:3", dest)
        path = tmp_path / ("d.tar" if fmt == "docker" else "o.tar")
        with tarfile.open(path) as tf:
            for x in layers:
                hexdigest = hashlib.sha256(x).hexdigest()
                name = f"{hexdigest}.tar" if fmt == "docker" else f"blobs/sha256/{hexdigest}"
                member = tf.extractfile(name)
                assert member is not None and member.read() == x
        if shutil.which("skopeo"):
            got = subprocess.run(
                ["skopeo", "inspect", "--raw", f"{'docker-archive' if fmt == 'docker' else 'oci-archive'}:{path}"],
                capture_output=True, text=True,
            )  # fmt: skip
            assert got.returncode == 0, got.stderr
            assert [layer["size"] for layer in json.loads(got.stdout)["layers"]] == [
                len(x) for x in layers
            ]
