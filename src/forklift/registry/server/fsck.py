"""Consistency check of a registry root: what crash-safety promises.

Every tag resolves to a manifest its repository holds, every blob such a
manifest references is recorded, present and hashes to its digest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from forklift.oci import Digest
from forklift.registry.server.metadata import SQLiteMetadata
from forklift.registry.server.storage import FilesystemStorage


def check_consistency(root: Path, verify_hashes: bool = True) -> list[str]:
    """Return a list of problems (empty when the registry is consistent)."""
    storage = FilesystemStorage(root)
    meta = SQLiteMetadata(root / "metadata.db")
    problems: list[str] = []
    try:
        for repo, tag, digest in meta.tags_and_manifests():
            if meta.get_manifest(repo, digest, by_digest=True) is None:
                problems.append(f"{repo}:{tag} points at missing manifest {digest}")
        checked: set[str] = set()
        for repo, manifest, blob in meta.manifest_blob_refs():
            if meta.repo_blob_size(repo, blob) is None and meta.blob_size(blob) is None:
                problems.append(f"{repo}@{manifest} references unrecorded blob {blob}")
                continue
            if blob in checked:
                continue
            checked.add(blob)
            blob_digest = Digest.parse(blob)
            size = meta.blob_size(blob)
            if storage.blob_size(blob_digest) != size:
                problems.append(f"blob {blob}: file missing or size differs from record")
                continue
            if verify_hashes:
                h = hashlib.new(blob_digest.algorithm)
                with storage.open_blob(blob_digest) as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                if h.hexdigest() != blob_digest.hex:
                    problems.append(f"blob {blob}: content does not hash to its digest")
    finally:
        meta.close()
    return problems
