"""Output formats for an :class:`~forklift.sbom.model.Inventory` (no analysis here).

``render(inv, fmt)`` returns the document as text: ``spdx-json`` (SPDX 2.3),
``cyclonedx-json`` (CycloneDX 1.6), ``json`` (forklift's own, loadable again
with :func:`forklift.sbom.formats.jsonfmt.load`) or ``table``.
"""

from __future__ import annotations

from forklift.errors import UsageError
from forklift.sbom.model import Inventory

FORMATS = ("table", "json", "spdx-json", "cyclonedx-json")


def render(inv: Inventory, fmt: str, *, files: bool = False) -> str:
    """The inventory as a document in ``fmt`` (see :data:`FORMATS`)."""
    if fmt == "table":
        from forklift.sbom.formats.table import render_table

        return render_table(inv)
    if fmt == "json":
        from forklift.sbom.formats.jsonfmt import dump

        return dump(inv, files=files)
    if fmt == "spdx-json":
        from forklift.sbom.formats.spdx import render_spdx

        return render_spdx(inv)
    if fmt == "cyclonedx-json":
        from forklift.sbom.formats.cyclonedx import render_cyclonedx

        return render_cyclonedx(inv, files=files)
    raise UsageError(f"unknown SBOM format {fmt!r} (use {', '.join(FORMATS)})")
