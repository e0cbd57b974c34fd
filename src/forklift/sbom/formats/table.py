"""The inventory as a plain aligned table: NAME, VERSION, TYPE, LAYER (pipes and terminals alike)."""

from __future__ import annotations

from forklift.sbom.model import Inventory


def render_table(inv: Inventory) -> str:
    """One line per package, columns padded to their widest cell (warnings go elsewhere)."""
    rows = [("NAME", "VERSION", "TYPE", "LAYER")]
    for p in inv.packages:
        rows.append((p.name, p.version, p.ecosystem.value,
                     str(p.layer.index) if p.layer is not None else "-"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        lines.append(
            f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
        )
    head = []
    if inv.os is not None:
        head.append(f"OS: {inv.os.pretty_name or inv.os.id + ' ' + inv.os.version_id}")
    head.append(
        f"{len(inv.packages)} packages in {inv.target}" + (f" ({inv.digest})" if inv.digest else "")
    )
    return "\n".join([*head, "", *lines]) + "\n"
