"""The build cache: step cache key -> the layer (and history line) the step produced.

An entry is a small OCI artifact manifest kept alive as a store root
(``roots/buildcache/<key>.json``): its config blob is a JSON record of the
step (diff ID, instruction, inputs for explaining later misses) and its one
layer is the step's layer blob. ``forklift prune`` walks it like any image,
and ``prune --cache`` drops the roots.

Keys derive from the parent step's key, the expanded instruction and whatever
else the step can see (env and build args for RUN, file checksums for COPY),
never from mtimes: see :func:`step_key`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import ForkliftError
from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest
from forklift.store.store import Store

ROOT_KIND = "buildcache"
CHAIN_ANNOTATION = "dev.forklift.snapshot.chain-id"  # read by runtime.snapshots' prune hook
RECORD_TYPE = "application/vnd.forklift.buildcache.record.v1+json"
ARTIFACT_TYPE = "application/vnd.forklift.buildcache.v1"


def step_key(parent: str, op: str, inputs: dict[str, Any]) -> str:
    """The cache key of a step: sha256 over its parent key, operation and inputs (canonical JSON)."""
    payload = canonical.dumps({"parent": parent, "op": op, "inputs": inputs})
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """What a cached step produced."""

    key: str
    layer: Descriptor | None
    diff_id: Digest | None
    created_by: str
    extra: dict[str, Any] = field(default_factory=dict)


class BuildCache:
    """Cache entries stored in (and collected with) the local store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: the keys of the entries this build found or made (what a replay record checks)
        self.used: list[str] = []

    def has(self, key: str) -> bool:
        """Whether an entry for ``key`` is kept (its blobs are not checked)."""
        return self.store.has_root(ROOT_KIND, key)

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if it and its layer are still intact in the store."""
        desc = self.store.get_root(ROOT_KIND, key)
        if desc is None:
            return None
        try:
            manifest = self.store.get_manifest(desc.digest, desc.media_type)
            if not isinstance(manifest, ImageManifest):
                return None
            record = json.loads(self.store.read_blob(manifest.config.digest))
            layer = manifest.layers[0] if manifest.layers else None
            if layer is not None and not self.store.has_blob(layer.digest):
                return None
            diff = record.get("diff_id")
            self.used.append(key)
            return CacheEntry(
                key=key,
                layer=layer,
                diff_id=Digest.parse(diff) if diff else None,
                created_by=str(record.get("created_by", "")),
                extra=dict(record.get("extra") or {}),
            )
        except (ForkliftError, ValueError, OSError):
            return None

    def put(
        self,
        key: str,
        layer: Descriptor | None,
        diff_id: Digest | None,
        created_by: str,
        extra: dict[str, Any] | None = None,
        chain: Digest | None = None,
    ) -> CacheEntry:
        """Record a step's result (the layer blob must already be in the store).

        ``chain`` is the chain ID of the layer stack up to this step: the annotation keeps
        its unpacked snapshot alive through ``prune``, so a later build mounts it directly.
        """
        record = canonical.dumps(
            {
                "key": key,
                "diff_id": str(diff_id) if diff_id else None,
                "created_by": created_by,
                "extra": extra or {},
            }
        )
        record_digest = self.store.put_blob(record)
        manifest = ImageManifest(
            config=Descriptor(RECORD_TYPE, record_digest, len(record)),
            layers=(layer,) if layer is not None else (),
            artifact_type=ARTIFACT_TYPE,
            annotations={CHAIN_ANNOTATION: str(chain)} if chain is not None else {},
        )
        raw = manifest.to_bytes()
        digest = self.store.put_blob(raw)
        self.store.set_root(ROOT_KIND, key, Descriptor(mt.OCI_MANIFEST, digest, len(raw)))
        self.used.append(key)
        return CacheEntry(key, layer, diff_id, created_by, extra or {})

    def drop(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.store.delete_root(ROOT_KIND, key)
