"""Rendering an :class:`~forklift.analyze.analysis.Analysis`: JSON and the terminal view."""

from __future__ import annotations

import json
from typing import Any

from forklift.analyze.analysis import Analysis, LayerReport
from forklift.analyze.ci import Gate
from forklift.textutil import plural

JSON_VERSION = 1


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _step(layer: LayerReport) -> dict[str, Any]:
    return {
        "layer": layer.index,
        "created_by": layer.step.created_by,
        "instruction": layer.step.instruction,
        "dockerfile": layer.step.dockerfile or None,
        "line": layer.step.line,
    }


def to_json(a: Analysis, gates: list[Gate] | None = None) -> dict[str, Any]:
    """The JSON document ``forklift analyze --format json`` prints (documented in the README)."""
    doc: dict[str, Any] = {
        "version": JSON_VERSION,
        "image": a.image.name,
        "digest": str(a.image.digest),
        "platform": a.image.platform,
        "layers": [
            {
                "index": layer.index,
                "digest": str(layer.descriptor.digest),
                "blob_size": layer.descriptor.size,
                "size": layer.stats.size,
                "entries": layer.stats.entries,
                "added": layer.stats.added,
                "modified": layer.stats.modified,
                "removed": layer.stats.removed,
                "removed_bytes": layer.stats.removed_bytes,
                "created_by": layer.step.created_by,
                "instruction": layer.step.instruction,
                "comment": layer.step.comment,
                "dockerfile": layer.step.dockerfile or None,
                "line": layer.step.line,
            }
            for layer in a.layers
        ],
        "total_size": a.total_size,
        "user_size": a.user_size,
        "final_size": a.final_size,
        "final_files": a.final_files,
        "wasted_bytes": a.wasted_bytes,
        "user_wasted_percent": a.user_wasted_percent,
        "efficiency": a.efficiency,
        "dive_wasted_bytes": a.dive_wasted_bytes,
        "waste": [
            {
                "bytes": w.bytes,
                "files": w.files,
                "kind": w.kind,
                "added_by": _step(w.added),
                "removed_by": _step(w.removed),
                "examples": [{"path": p, "size": s} for p, s in w.examples],
                "fix": w.fix,
            }
            for w in a.waste
        ],
        "wasted_files": [
            {
                "path": it.path,
                "size": it.size,
                "kind": it.kind,
                "added_by": _step(it.added),
                "removed_by": _step(it.removed),
            }
            for it in a.items
        ],
        "biggest_files": [{"path": p, "size": s, "layer": li} for p, s, li in a.biggest_files],
        "biggest_dirs": [{"path": p, "size": s, "files": n} for p, s, n in a.biggest_dirs],
    }
    if gates is not None:
        doc["ci"] = {
            "passed": all(g.passed for g in gates),
            "checks": [
                {"name": g.name, "threshold": g.threshold, "value": g.value, "passed": g.passed}
                for g in gates
            ],
        }
    return doc


def render_json(a: Analysis, gates: list[Gate] | None = None) -> str:
    return json.dumps(to_json(a, gates), indent=2, ensure_ascii=False) + "\n"


def _where(layer: LayerReport) -> str:
    step = layer.step
    line = f" (Dockerfile:{step.line})" if step.line else ""
    text = step.instruction or "<no history>"
    if len(text) > 70:
        text = text[:69] + "…"
    return f"layer {layer.index}{line}: {text}"


def render_terminal(a: Analysis, console: Any, gates: list[Gate] | None = None) -> None:
    """Layers, waste with fixes, biggest files/dirs, and the CI verdict."""
    from rich.table import Table
    from rich.text import Text

    console.print(Text(f"{a.image.name}  {a.image.digest}  {a.image.platform}", style="bold"))
    table = Table(show_edge=False, pad_edge=False, box=None)
    for col, justify in (
        ("#", "right"),
        ("SIZE", "right"),
        ("+", "right"),
        ("~", "right"),
        ("-", "right"),
        ("INSTRUCTION", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for layer in a.layers:
        step = layer.step
        text = step.instruction or "<no history>"
        if step.line:
            text = f"[line {step.line}] {text}"
        table.add_row(
            str(layer.index),
            _human(layer.stats.size),
            str(layer.stats.added),
            str(layer.stats.modified),
            str(layer.stats.removed),
            text if len(text) <= 100 else text[:99] + "…",
        )
    console.print(table)
    console.print()
    console.print(
        f"Image size: {_human(a.total_size)} in layers, {_human(a.final_size)} visible "
        f"({plural(a.final_files, 'file')})"
    )
    style = "green" if a.wasted_bytes == 0 else "yellow"
    console.print(
        Text(
            f"Wasted: {_human(a.wasted_bytes)} ({a.user_wasted_percent:.1%} of what the image adds "
            f"to its base)   Efficiency: {a.efficiency:.2%}",
            style=style,
        )
    )
    if a.waste:
        console.print()
        console.print(Text("Where the waste comes from", style="bold"))
        for w in a.waste:
            console.print(
                Text(f"  {_human(w.bytes)} in {plural(w.files, 'file')} {w.kind}", style="yellow")
            )
            console.print(f"    added by   {_where(w.added)}")
            console.print(f"    removed by {_where(w.removed)}")
            for path, size in w.examples[:3]:
                console.print(Text(f"      {_human(size):>9}  {path}", style="dim"))
            console.print(Text(f"    fix: {w.fix}", style="green"))
    if a.biggest_files:
        console.print()
        console.print(Text("Biggest files", style="bold"))
        for path, size, index in a.biggest_files[:10]:
            console.print(f"  {_human(size):>9}  {path}  (layer {index})")
    if a.biggest_dirs:
        console.print()
        console.print(Text("Biggest directories", style="bold"))
        for path, size, files in a.biggest_dirs[:10]:
            console.print(f"  {_human(size):>9}  {path}  ({plural(files, 'file')})")
    if gates:
        console.print()
        for g in gates:
            mark, st = ("PASS", "green") if g.passed else ("FAIL", "bold red")
            console.print(Text(f"{mark}  {g.name}: {g.message}", style=st))
