"""Small helpers for the words forklift prints (shared by the CLI and the reports)."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 file``, ``2 files`` (``many`` for irregular plurals: ``plural(2, "entry", "entries")``)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {many if many is not None else noun + 's'}"
