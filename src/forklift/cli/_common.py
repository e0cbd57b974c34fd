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
F = TypeVar("F", bound=Callable[..., Any])


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


def connection_options(f: F) -> F:
    """``--insecure-registry``, ``--ca-bundle`` and ``--timeout`` (every registry verb has them)."""
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        help="Give up after this many seconds (the whole operation, retries included).",
    )(f)
    f = click.option(
        "--ca-bundle",
        type=click.Path(dir_okay=False, exists=True),
        help="Extra CA certificates (PEM) to trust.",
    )(f)
    f = click.option(
        "--insecure-registry",
        "insecure",
        multiple=True,
        metavar="HOST",
        help="Allow plain HTTP / unverified TLS for HOST (host:port, host or CIDR; repeatable; "
        "also $FORKLIFT_INSECURE_REGISTRIES). localhost and 127.0.0.0/8 always are.",
    )(f)
    return f


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


def human_duration(seconds: float) -> str:
    """A duration as docker words it (go-units' HumanDuration): "3 minutes", "About an hour"."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)  # rounded half up, as Go's math.Round for positives
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def _since(timestamp: str) -> float | None:
    try:
        when = _dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return (_dt.datetime.now(_dt.UTC) - when).total_seconds()


def time_ago(timestamp: str | None) -> str:
    """docker's CREATED column for an RFC 3339 timestamp: "12 seconds ago", "3 days ago"."""
    if not timestamp:
        return "N/A"
    seconds = _since(timestamp)
    if seconds is None:
        return timestamp
    return f"{human_duration(max(seconds, 0))} ago"


def time_since(timestamp: str | None) -> str:
    """The duration since ``timestamp`` without "ago" (docker's "Up 3 minutes")."""
    seconds = _since(timestamp) if timestamp else None
    return human_duration(max(seconds, 0)) if seconds is not None else "N/A"


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


#: options docker/skopeo users type that a verb lacks: (names, takes a value, advice)
Refusal = tuple[tuple[str, ...], bool, str]


def refuse_options(
    table: tuple[Refusal, ...], verb: str, exit_code: int = 2
) -> Callable[[click.Command], click.Command]:
    """Hidden options that answer a peer tool's flag with one line: not supported, and what to
    use instead (rather than click's bare "No such option")."""

    def callback_for(names: tuple[str, ...], advice: str) -> Callable[..., None]:
        def callback(ctx: click.Context, param: click.Parameter, value: object) -> None:
            if value:
                from forklift.errors import UsageError

                exc = UsageError(f"forklift {verb} does not support {'/'.join(names)}: {advice}")
                exc.exit_code = exit_code
                raise exc

        return callback

    def decorate(command: click.Command) -> click.Command:
        taken = {o for p in command.params for o in getattr(p, "opts", [])}
        for flags, takes_value, advice in table:
            names = tuple(f for f in flags if f not in taken)
            if names:
                command.params.append(
                    click.Option(
                        list(names),
                        is_flag=not takes_value,
                        multiple=takes_value,
                        hidden=True,
                        expose_value=False,
                        callback=callback_for(names, advice),
                    )
                )
        return command

    return decorate
