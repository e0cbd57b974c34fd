"""Consistency check of a registry: what crash-safety promises.

Every tag resolves to a manifest its repository holds, every blob such a
manifest references is recorded, present and hashes to its digest. Works
through the :class:`~.storage.StorageDriver` and
:class:`~.metadata.MetadataStore` interfaces, so it checks any backend pair.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from forklift.oci import Digest
from forklift.registry.server.metadata import MetadataStore, SQLiteMetadata
from forklift.registry.server.storage import FilesystemStorage, StorageDriver


def check_consistency(
    storage: StorageDriver,
    meta: MetadataStore,
    *,
    verify_hashes: bool = True,
    sparse: bool = False,
) -> list[str]:
    """Return a list of problems (empty when the registry is consistent).

    ``sparse``: the registry accepts manifests whose layers are absent (the
    ``storage.sparse_index`` mode), so an unrecorded layer is not a problem.
    """
    problems: list[str] = []
    for repo, tag, digest in meta.tags_and_manifests():
        if meta.get_manifest(repo, digest, by_digest=True) is None:
            problems.append(f"{repo}:{tag} points at missing manifest {digest}")
    checked: set[str] = set()
    for repo, manifest, blob in meta.manifest_blob_refs():
        size = meta.blob_size(blob)
        if size is None:
            if not sparse:
                problems.append(f"{repo}@{manifest} references unrecorded blob {blob}")
            continue
        if blob in checked:
            continue
        checked.add(blob)
        parsed = Digest.parse(blob)
        if storage.blob_size(parsed) != size:
            problems.append(f"blob {blob}: bytes missing or size differs from record")
            continue
        if verify_hashes:
            h = hashlib.new(parsed.algorithm)
            with storage.open_blob(parsed) as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != parsed.hex:
                problems.append(f"blob {blob}: content does not hash to its digest")
    return problems


def check_root(root: Path, *, verify_hashes: bool = True, sparse: bool = False) -> list[str]:
    """:func:`check_consistency` of a root of the default backends (filesystem + SQLite)."""
    storage = FilesystemStorage(root)
    meta = SQLiteMetadata(root / "metadata.db")
    try:
        return check_consistency(storage, meta, verify_hashes=verify_hashes, sparse=sparse)
    finally:
        meta.close()
