"""The terminal table: one section per target, like Trivy's, plus where each finding came from."""

from __future__ import annotations

import io
from typing import Any

from forklift.scan.attribution import step, vulnerability_fix
from forklift.scan.db.model import Severity
from forklift.scan.findings import ScanResult, Target

_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "blue",
    Severity.UNKNOWN: "dim",
}


def _totals(items: list[Severity]) -> str:
    counts = {s: 0 for s in Severity}
    for s in items:
        counts[s] += 1
    parts = ", ".join(f"{s.value}: {counts[s]}" for s in reversed(list(Severity)))
    return f"Total: {len(items)} ({parts})"


def _target(console: Any, result: ScanResult, t: Target) -> None:
    from rich.table import Table
    from rich.text import Text

    layers = result.inventory.layers
    kind = f" ({t.type})" if t.type else ""
    console.print()
    console.print(Text(f"{t.name}{kind}", style="bold"))
    console.print("=" * min(len(t.name + kind), 100))
    if t.cls == "secret":
        console.print(_totals([s.severity for s in t.secrets]))
        for s in t.secrets:
            console.print()
            head = Text(f"{s.severity.value}: {s.category} ({s.rule})", style=_STYLE[s.severity])
            console.print(head)
            console.print(f"  {s.title}")
            where = f"  {s.target}" + (f":{s.line}" if s.line else "")
            if s.layer is not None:
                where += f"  [{step(s.layer)}]"
            console.print(Text(where))
            console.print(Text(f"  {s.match}", style="dim"))
            if s.deleted_by is not None:
                console.print(
                    Text(
                        f"  deleted by {step(s.deleted_by)}, but still in the layer above",
                        style="yellow",
                    )
                )
            console.print(Text(f"  fix: {s.fix}", style="green"))
        return
    console.print(_totals([v.severity for v in t.vulnerabilities]))
    if not t.vulnerabilities:
        return
    table = Table(show_lines=True, highlight=False)
    for col in (
        "Library",
        "Vulnerability",
        "Severity",
        "Status",
        "Installed",
        "Fixed",
        "Layer",
        "Title",
    ):
        table.add_column(col, overflow="fold")
    for v in t.vulnerabilities:
        table.add_row(
            v.package.name,
            v.id,
            Text(v.severity.value, style=_STYLE[v.severity]),
            v.status.value,
            v.package.version,
            v.fixed,
            step(v.package.layer),
            (v.title[:80] + ("..." if len(v.title) > 80 else ""))
            + f"\n{v.url}"
            + f"\nfix: {vulnerability_fix(v, layers)}",
        )
    console.print(table)


def render_table(result: ScanResult, console: Any = None) -> str:
    from rich.console import Console

    buf = io.StringIO()
    out = Console(
        file=buf,
        width=getattr(console, "width", 160) or 160,
        no_color=True,
        highlight=False,
        soft_wrap=False,
    )
    inv = result.inventory
    out.print(f"{result.artifact}" + (f" ({inv.os.id} {inv.os.version_id})" if inv.os else ""))
    for w in result.warnings:
        out.print(f"WARN {w}")
    for t in result.targets:
        _target(out, result, t)
    if result.suppressed:
        out.print()
        out.print(f"Suppressed: {len(result.suppressed)} (see --format json)")
    return buf.getvalue()
