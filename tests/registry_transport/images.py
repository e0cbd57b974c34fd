"""Test images for the transport tests, built by hand from the OCI image spec.

Digests come from hashlib here (phase 1's ``tests.registry_client.images``),
so the tests compare forklift's answers with values forklift did not compute.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from tests.registry_client.images import Blob, Image, random_bytes, sha256

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def layer_tar(name: str, data: bytes) -> bytes:
    """An uncompressed tar holding one regular file ``name`` (written by hand: 512-byte blocks)."""
    header = bytearray(512)
    header[0 : len(name)] = name.encode()
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = f"{len(data):011o}\0".encode()
    header[136:148] = b"00000000000\0"
    header[156:157] = b"0"
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    pad = b"\0" * (-len(data) % 512)
    return bytes(header) + data + pad + b"\0" * 1024


@dataclass(frozen=True)
class SampleImage:
    """An image plus what a test checks about it."""

    image: Image
    diff_ids: tuple[str, ...]
    architecture: str
    variant: str = ""

    @property
    def manifest_digest(self) -> str:
        return self.image.manifest_digest


def make_test_image(
    sizes: tuple[int, ...] = (300_000, 700_000),
    *,
    seed: int = 0,
    architecture: str = "amd64",
    variant: str = "",
    cmd: tuple[str, ...] = ("/bin/sh",),
) -> SampleImage:
    """An OCI image whose layers hold incompressible files (so sizes are real)."""
    tars = [
        layer_tar(f"file{i}", random_bytes(n, seed=seed * 100 + i)) for i, n in enumerate(sizes)
    ]
    layers = tuple(Blob(gzip.compress(t, compresslevel=1, mtime=0), OCI_LAYER) for t in tars)
    diff_ids = tuple(sha256(t) for t in tars)
    config_doc: dict[str, object] = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": list(cmd), "Env": [f"SEED={seed}"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": f"layer {i}"} for i in range(len(tars))],
    }
    if variant:
        config_doc["variant"] = variant
    config = Blob(json.dumps(config_doc, sort_keys=True).encode(), OCI_CONFIG)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [b.descriptor() for b in layers],
        },
        indent=1,
    ).encode()
    return SampleImage(Image(layers, config, manifest), diff_ids, architecture, variant)


def index_bytes(images: list[SampleImage]) -> bytes:
    """An OCI image index of ``images`` with their platforms."""
    manifests = []
    for t in images:
        platform = {"architecture": t.architecture, "os": "linux"}
        if t.variant:
            platform["variant"] = t.variant
        manifests.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": t.manifest_digest,
                "size": len(t.image.manifest),
                "platform": platform,
            }
        )
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()


def write_layout(
    path: Path, tag: str, images: list[SampleImage], index: bytes | None = None
) -> Path:
    """An OCI layout whose index.json names ``tag``: the image, or ``index`` over ``images``."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for t in images:
        for data in [b.data for b in t.image.layers] + [t.image.config.data, t.image.manifest]:
            (blobs / sha256(data).split(":", 1)[1]).write_bytes(data)
    if index is not None:
        (blobs / sha256(index).split(":", 1)[1]).write_bytes(index)
        top = {"mediaType": OCI_INDEX, "digest": sha256(index), "size": len(index)}
    else:
        only = images[0]
        top = {
            "mediaType": OCI_MANIFEST,
            "digest": only.manifest_digest,
            "size": len(only.image.manifest),
        }
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return path
