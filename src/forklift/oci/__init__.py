"""The OCI data model: digests, descriptors, media types, manifests, configs, platforms.

Pure data and strict parsing; no I/O.
"""

from forklift.oci.config import ContainerConfig, Healthcheck, History, ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, Hasher
from forklift.oci.manifest import ImageIndex, ImageManifest, Manifest, parse_manifest
from forklift.oci.platform import Platform, host_platform

__all__ = [
    "ContainerConfig",
    "Descriptor",
    "Digest",
    "Hasher",
    "Healthcheck",
    "History",
    "ImageConfig",
    "ImageIndex",
    "ImageManifest",
    "Manifest",
    "Platform",
    "host_platform",
    "parse_manifest",
]
