"""forklift: a daemonless, OCI-native container image toolkit.

The public API is re-exported here lazily, so ``import forklift`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access.
_EXPORTS: dict[str, str] = {
    "ForkliftError": "forklift.errors",
    "Digest": "forklift.oci.digest",
    "Descriptor": "forklift.oci.descriptor",
    "ImageManifest": "forklift.oci.manifest",
    "ImageIndex": "forklift.oci.manifest",
    "ImageConfig": "forklift.oci.config",
    "Platform": "forklift.oci.platform",
    "Reference": "forklift.reference",
    "parse_reference": "forklift.reference",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forklift' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
