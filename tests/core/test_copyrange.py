"""Blobs copied unchanged between local files go through the kernel, and are still verified.

``save``, ``load`` and layout-to-layout copies let ``copy_file_range`` move a
blob's bytes while the source's verifying stream is read beside it. These
tests check the bytes arrive, that a corrupt source blob still fails the copy
with nothing left behind, and that the fallback (no in-kernel copy between
these files) gives the same bytes.
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
from forklift.errors import DigestMismatch
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


def test_save_and_load_through_the_kernel_keep_every_byte(
    home: Path, tmp_path: Path, cli: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = _layer(os.urandom(SIZE))
    archive = tmp_path / "in.tar"
    _docker_archive(archive, layer)
    calls: list[int] = []
    real = copyrange._copy

    def counting(*args: object) -> None:
        calls.append(1)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(copyrange, "_copy", counting)
    # load (docker-archive -> store), then save (store -> docker-archive), in process
    copy(f"docker-archive:{archive}", "big:1")
    blob = home / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()
    assert blob.read_bytes() == layer
    out = tmp_path / "out.tar"
    copy("big:1", f"docker-archive:{out}:big:1")
    with tarfile.open(out) as tf:
        member = tf.extractfile(f"{hashlib.sha256(layer).hexdigest()}.tar")
        assert member is not None and member.read() == layer
    assert len(calls) == 2  # the layer, both ways (the small config goes through Python)


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
