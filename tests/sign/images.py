"""Small test images and attached manifests written by hand (hashlib, json): not forklift's code."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

from forklift.oci.digest import Digest
from forklift.reference import parse_reference
from forklift.store.store import Store

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def desc(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


@dataclass(frozen=True)
class Doc:
    """A manifest and every blob it needs."""

    raw: bytes
    blobs: tuple[bytes, ...]

    @property
    def digest(self) -> str:
        return sha256(self.raw)


def tar_with(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_doc(seed: str = "one") -> Doc:
    layer = tar_with("hello.txt", f"hello {seed}\n".encode())
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
            "history": [{"created_by": f"test image {seed}"}],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, config),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer)],
        }
    ).encode()
    return Doc(manifest, (config, layer))


def sig_doc(payload: bytes, signature: str, **annotations: str) -> Doc:
    """A cosign tag-layout manifest with one simple-signing layer."""
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha256(payload)]}}).encode()
    layer = desc(
        SIMPLESIGNING,
        payload,
        annotations={"dev.cosignproject.cosign/signature": signature, **annotations},
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, config),
            "layers": [layer],
        }
    ).encode()
    return Doc(manifest, (config, payload))


def referrer_doc(subject: Doc, artifact_type: str, content: bytes) -> Doc:
    """An OCI 1.1 artifact manifest whose subject is ``subject``."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": desc(OCI_EMPTY, b"{}"),
            "layers": [desc(artifact_type, content)],
            "subject": desc(OCI_MANIFEST, subject.raw),
            "annotations": {"org.example.note": "attached"},
        }
    ).encode()
    return Doc(manifest, (b"{}", content))


def put(store: Store, doc: Doc) -> None:
    for blob in doc.blobs:
        store.put_blob(blob)
    store.put_blob(doc.raw)


def add_image(store: Store, name: str, seed: str = "one") -> Doc:
    """Store a small image under ``name``."""
    doc = image_doc(seed)
    with store.writing():
        put(store, doc)
        from forklift.oci.descriptor import Descriptor

        store.add_image(
            Descriptor(OCI_MANIFEST, Digest.parse(doc.digest), len(doc.raw)),
            [parse_reference(name)],
        )
    return doc
