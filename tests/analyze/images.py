"""Build OCI image layouts from hand-written layers (tarfile + gzip, independent of forklift)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Member:
    """A tar member: a file with ``size`` bytes (or ``data``), a directory, or a symlink."""

    path: str
    size: int = 0
    kind: str = "file"  # file | dir | symlink | hardlink
    data: bytes | None = None
    target: str = ""


def file(path: str, size: int) -> Member:
    return Member(path, size)


def directory(path: str) -> Member:
    return Member(path, kind="dir")


def whiteout(path: str) -> Member:
    """An OCI whiteout deleting ``path`` from the layers below."""
    parent, _, name = path.rpartition("/")
    return Member(f"{parent}/.wh.{name}" if parent else f".wh.{name}", 0)


def opaque(directory_path: str) -> Member:
    """An opaque whiteout hiding everything below ``directory_path`` in lower layers."""
    return Member(f"{directory_path}/.wh..wh..opq", 0)


@dataclass
class Layer:
    members: list[Member]
    created_by: str = ""
    comment: str = ""


def _chunks(size: int):  # type: ignore[no-untyped-def]
    """Incompressible-enough deterministic bytes without holding ``size`` in memory at once."""
    block = hashlib.sha256(str(size).encode()).digest() * 2048  # 64 KiB
    left = size
    while left > 0:
        n = min(left, len(block))
        yield block[:n]
        left -= n


class _Reader(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self._gen = _chunks(size)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b):  # type: ignore[no-untyped-def]
        while not self._buf:
            try:
                self._buf = next(self._gen)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def layer_tar(members: list[Member], out: Path) -> None:
    """Write an uncompressed tar of ``members`` to ``out``."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.path)
            info.mtime = 0
            if m.kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tf.addfile(info)
            elif m.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = m.target
                tf.addfile(info)
            elif m.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = m.target
                tf.addfile(info)
            else:
                info.mode = 0o644
                if m.data is not None:
                    info.size = len(m.data)
                    tf.addfile(info, io.BytesIO(m.data))
                else:
                    info.size = m.size
                    tf.addfile(info, io.BufferedReader(_Reader(m.size)) if m.size else None)


def _put_blob(blobs: Path, data_path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    with open(data_path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    target = blobs / digest
    data_path.replace(target)
    return "sha256:" + digest, target.stat().st_size


def _put_bytes(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return "sha256:" + digest, len(data)


def make_layout(root: Path, layers: list[Layer], tag: str = "latest", compress: bool = True) -> str:
    """An OCI image layout at ``root`` holding one image; returns its ``oci:`` name."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    descs = []
    diff_ids = []
    history = []
    for i, layer in enumerate(layers):
        raw = root / f"layer{i}.tar"
        layer_tar(layer.members, raw)
        h = hashlib.sha256()
        with open(raw, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        diff_ids.append("sha256:" + h.hexdigest())
        if compress:
            gz = root / f"layer{i}.tar.gz"
            with (
                open(raw, "rb") as src,
                open(gz, "wb") as dst_raw,
                gzip.GzipFile(fileobj=dst_raw, mode="wb", compresslevel=1, mtime=0) as dst,
            ):
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            raw.unlink()
            digest, size = _put_blob(blobs, gz)
            mt = "application/vnd.oci.image.layer.v1.tar+gzip"
        else:
            digest, size = _put_blob(blobs, raw)
            mt = "application/vnd.oci.image.layer.v1.tar"
        descs.append({"mediaType": mt, "digest": digest, "size": size})
        entry = {"created": "2024-01-01T00:00:00Z", "created_by": layer.created_by}
        if layer.comment:
            entry["comment"] = layer.comment
        history.append(entry)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    cdigest, csize = _put_bytes(blobs, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cdigest,
            "size": csize,
        },
        "layers": descs,
    }
    mdigest, msize = _put_bytes(blobs, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": mdigest,
                "size": msize,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    return f"oci:{root}:{tag}"
