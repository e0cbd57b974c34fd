"""Test images built by hand from the OCI image spec (independent of forklift's code).

``busybox_layout`` writes an OCI image layout holding one image: a gzip layer
made from a busybox-static root filesystem, its config and manifest. Digests
are computed here with hashlib, so tests compare the client's answers with
values it did not produce.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class Image:
    layers: tuple[Blob, ...]
    config: Blob
    manifest: bytes

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)


def busybox_rootfs_tar() -> bytes:
    """An uncompressed tar of a tiny root filesystem: busybox, a few applet links, /etc."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tf.addfile(info, io.BytesIO(data))

        add_dir("bin")
        add_file("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
        for applet in ("sh", "ls", "cat", "echo", "true"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tf.addfile(info)
        add_dir("etc")
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        add_dir("tmp")
    return buf.getvalue()


def make_image(layer_tars: list[bytes], *, docker: bool = False) -> Image:
    """An image whose layers are gzip(tar) of ``layer_tars``."""
    layer_type = (
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
        if docker
        else "application/vnd.oci.image.layer.v1.tar+gzip"
    )
    layers = tuple(Blob(gzip.compress(t, mtime=0), layer_type) for t in layer_tars)
    config_doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layer_tars]},
    }
    config = Blob(
        json.dumps(config_doc).encode(),
        "application/vnd.docker.container.image.v1+json"
        if docker
        else "application/vnd.oci.image.config.v1+json",
    )
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json"
        if docker
        else "application/vnd.oci.image.manifest.v1+json",
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in layers],
    }
    return Image(layers, config, json.dumps(manifest_doc, indent=2).encode())


def write_layout(image: Image, path: Path, tag: str) -> Path:
    """Write ``image`` as an OCI image layout at ``path`` with ``tag`` in index.json."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in [b.data for b in image.layers] + [image.config.data, image.manifest]:
        (blobs / sha256(data).split(":", 1)[1]).write_bytes(data)
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": image.manifest_digest,
                "size": len(image.manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    return path


def random_bytes(n: int, seed: int = 0) -> bytes:
    """Incompressible but reproducible bytes."""
    out = bytearray()
    block = hashlib.sha512(seed.to_bytes(8, "big")).digest()
    while len(out) < n:
        block = hashlib.sha512(block).digest()
        out += block
    return bytes(out[:n])


def urandom(n: int) -> bytes:
    return os.urandom(n)
