"""Test images: OCI layouts built from scratch (busybox + random layers), no network."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar(files: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o644)
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _write_blob(layout: Path, data: bytes) -> str:
    digest = sha256(data)
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def image_blobs(
    layers: int = 2, layer_size: int = 64 * 1024, seed: int = 0, arch: str = "amd64"
) -> tuple[bytes, bytes, list[bytes]]:
    """(manifest, config, layer blobs) of a small image: busybox plus random files."""
    rnd = random.Random(seed)
    blobs: list[bytes] = []
    diff_ids: list[str] = []
    busybox = Path("/bin/busybox")
    first = {"bin/busybox": busybox.read_bytes() if busybox.exists() else b"#!/bin/sh\n"}
    for i in range(layers):
        files = first if i == 0 else {}
        files = {**files, f"data/layer{i}-{seed}.bin": rnd.randbytes(layer_size)}
        raw = _tar(files, {"bin/busybox": 0o755})
        diff_ids.append(sha256(raw))
        blobs.append(gzip.compress(raw, compresslevel=1, mtime=0))
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/busybox", "echo", f"hello {seed}"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": sha256(b), "size": len(b)} for b in blobs
            ],
        },
        separators=(",", ":"),
    ).encode()
    return manifest, config, blobs


def make_layout(
    path: Path,
    tag: str = "latest",
    layers: int = 2,
    layer_size: int = 64 * 1024,
    seed: int = 0,
    archs: tuple[str, ...] = (),
) -> dict[str, str]:
    """Write an OCI image layout at ``path``; return {"manifest": digest, ...}.

    With ``archs``, the tag names an image index with one image per architecture.
    """
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    out: dict[str, str] = {}
    entries = []
    for i, arch in enumerate(archs or ("amd64",)):
        manifest, config, blobs = image_blobs(layers, layer_size, seed * 100 + i, arch)
        for b in (config, *blobs):
            _write_blob(path, b)
        digest = _write_blob(path, manifest)
        out[arch] = digest
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    if archs:
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries},
            separators=(",", ":"),
        ).encode()
        digest = _write_blob(path, index)
        top = {"mediaType": OCI_INDEX, "digest": digest, "size": len(index)}
        out["index"] = digest
    else:
        top = dict(entries[0])
        top.pop("platform")
        out["manifest"] = entries[0]["digest"]
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (path / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]})
    )
    os.sync()
    return out
