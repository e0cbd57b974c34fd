"""The local content-addressable image store (an OCI image layout with locks and tags)."""

from forklift.store.layout import BlobWriter, OciLayout
from forklift.store.store import FsckReport, PruneReport, Store, StoredImage, default_home

__all__ = [
    "BlobWriter",
    "FsckReport",
    "OciLayout",
    "PruneReport",
    "Store",
    "StoredImage",
    "default_home",
]
