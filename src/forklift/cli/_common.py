"""Helpers shared by CLI verbs: opening the store, formatting sizes, times and JSON."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from forklift.store.store import Leftover, Store

P = ParamSpec("P")
R = TypeVar("R")


def open_store(*, recover: bool = True) -> Store:
    """The store at $FORKLIFT_HOME (or the default location), with the runtime's state.

    The CLI is what composes the store with the runtime's collector (the store
    knows no subsystem above it). Unless ``recover`` is False, what killed
    forklift processes left (containers, mounts, temporary files) is cleaned
    first, with a note on stderr.
    """
    from forklift.runtime.recovery import RuntimeCollector

    store = Store.open(collectors=[RuntimeCollector()])
    if recover:
        try:
            cleaned = store.recover()
        except OSError:
            cleaned = []  # a user who may not touch the store's state leaves it to one who may
        note_recovered(cleaned)
    return store


def note_recovered(cleaned: list[Leftover]) -> None:
    """One line on stderr about what was cleaned after killed processes, if anything."""
    if not cleaned:
        return
    counts: dict[str, int] = {}
    for item in cleaned:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    what = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(counts.items()))
    click.echo(f"Cleaned up after a killed forklift process: {what}", err=True)


def cancellable(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a verb (innermost, just above ``def``) so SIGINT/SIGTERM cancel it at once:
    everything it holds is released and it exits 130/143 (:mod:`forklift.cancel`)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            from forklift import cancel

            with cancel.handling(what):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def human_size(n: float) -> str:
    """Sizes as docker prints them (decimal units): 4.26MB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(n)}B"
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"


def parse_size(text: str) -> int:
    """``20MB``, ``1.5GiB``, ``300`` -> bytes."""
    units = {
        "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3,
        "gb": 1000**3, "t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2,
        "gib": 1024**3, "tib": 1024**4,
    }  # fmt: skip
    s = text.strip().lower()
    i = len(s)
    while i and not s[i - 1].isdigit():
        i -= 1
    try:
        return int(float(s[:i]) * units[s[i:].strip()])
    except (ValueError, KeyError):
        raise click.BadParameter(f"invalid size {text!r} (e.g. 20MB, 1.5GiB)") from None


def time_ago(timestamp: str | None) -> str:
    """'3 days ago' for an RFC 3339 timestamp (docker's CREATED column)."""
    if not timestamp:
        return "N/A"
    try:
        when = _dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    seconds = (_dt.datetime.now(_dt.UTC) - when).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, size in (("year", 31536000), ("month", 2592000), ("week", 604800),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):  # fmt: skip
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a minute ago" if seconds >= 1 else "Less than a second ago"


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_table(rows: list[list[str]]) -> None:
    """Left-aligned columns separated by three spaces (docker's look)."""
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        click.echo("   ".join(cells).rstrip())


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
