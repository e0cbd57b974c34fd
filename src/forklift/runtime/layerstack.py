"""The layer stack of an image: layer references, chain IDs, a stored image's stack.

Kept apart from :mod:`.snapshots` (which unpacks and mounts stacks) because the
builder needs these names on every build, a fully cached one included, and a
no-op build should not load the snapshot machinery (start-up time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forklift.errors import InvalidInput, StoreError
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest
from forklift.store.store import Store, StoredImage

# --------------------------------------------------------------------------- chain IDs


def chain_id(diff_ids: Sequence[Digest]) -> Digest | None:
    """The chain ID of a stack of layers (bottom first); None for no layers."""
    ids = chain_ids(diff_ids)
    return ids[-1] if ids else None


def chain_ids(diff_ids: Sequence[Digest]) -> list[Digest]:
    """The chain ID of every prefix of ``diff_ids`` (bottom first)."""
    out: list[Digest] = []
    current: Digest | None = None
    for diff_id in diff_ids:
        current = diff_id if current is None else Digest.of(f"{current} {diff_id}".encode())
        out.append(current)
    return out


def next_chain_id(parent: Digest | None, diff_id: Digest) -> Digest:
    """The chain ID of ``diff_id`` stacked on the chain ``parent`` (None: the bottom layer)."""
    return diff_id if parent is None else Digest.of(f"{parent} {diff_id}".encode())


@dataclass(frozen=True)
class LayerRef:
    """One layer of a stack: its blob as the manifest lists it, and its diff ID from the config.

    ``blob`` may be None for a layer that is already a snapshot (e.g. the
    builder's own RUN result before its blob is written); mounting then needs
    the snapshot to exist.
    """

    blob: Descriptor | None
    diff_id: Digest


def image_layers(store: Store, image: StoredImage | ImageManifest) -> tuple[LayerRef, ...]:
    """The layer stack of a stored single-platform image (bottom first)."""
    if isinstance(image, StoredImage):
        if image.error:
            raise StoreError(f"image {image.digest} cannot be read: {image.error}")
        manifest = image.manifest
        if not isinstance(manifest, ImageManifest):
            raise InvalidInput(
                f"image {image.digest} is a multi-platform index; pick one platform to run"
            )
        config = image.config or store.get_config(manifest.config.digest)
    else:
        manifest = image
        config = store.get_config(manifest.config.digest)
    return layers_from(manifest, config)


def layers_from(manifest: ImageManifest, config: ImageConfig) -> tuple[LayerRef, ...]:
    """Pair a manifest's layer descriptors with its config's diff IDs."""
    diff_ids = config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise InvalidInput(
            f"image config lists {len(diff_ids)} diff IDs but the manifest has "
            f"{len(manifest.layers)} layers"
        )
    return tuple(LayerRef(blob, d) for blob, d in zip(manifest.layers, diff_ids, strict=True))
