"""Software bill of materials: what is inside an image (analyzers apart from output formats).

from forklift.sbom import inventory
inv = inventory("oci:layout:app")          # any transport name forklift opens
for pkg in inv.packages:
    print(pkg.ecosystem, pkg.name, pkg.version, pkg.purl, pkg.layer and pkg.layer.digest)
"""

from __future__ import annotations

from forklift.sbom.inventory import inventory, inventory_rootfs, inventory_source
from forklift.sbom.model import Ecosystem, Inventory, LayerRef, OSInfo, Package

__all__ = [
    "Ecosystem",
    "Inventory",
    "LayerRef",
    "OSInfo",
    "Package",
    "inventory",
    "inventory_rootfs",
    "inventory_source",
]
