"""``forklift analyze``: where an image's bytes are, what is wasted, and CI gates on it."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("image")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["terminal", "json"]),
    default="terminal",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--platform", help="Image to analyse from a multi-platform index (default: this host)."
)
@click.option(
    "--top", type=click.IntRange(1, 1000), default=20, show_default=True, help="List lengths."
)
@click.option(
    "--lowest-efficiency",
    "--lowestEfficiency",  # dive's spelling
    "lowest_efficiency",
    help="Fail (exit 1) below this efficiency, 0..1 (e.g. 0.95).",
)
@click.option(
    "--highest-wasted-bytes",
    "--highestWastedBytes",
    "highest_wasted_bytes",
    help="Fail above this much waste (e.g. 20MB, 512KiB).",
)
@click.option(
    "--highest-user-wasted-percent",
    "--highestUserWastedPercent",
    "highest_user_wasted_percent",
    help="Fail when waste over the bytes added to the base exceeds this, 0..1 (e.g. 0.2).",
)
@click.option("--no-color", is_flag=True, help="Plain terminal output.")
def analyze(
    image: str,
    fmt: str,
    platform: str | None,
    top: int,
    lowest_efficiency: str | None,
    highest_wasted_bytes: str | None,
    highest_user_wasted_percent: str | None,
    no_color: bool,
) -> None:
    """Analyse IMAGE (store name, oci:, oci-archive:, docker-archive:, docker://)."""
    from rich.console import Console

    from forklift.analyze import Thresholds, analyze_image, parse_bytes, parse_ratio
    from forklift.analyze.report import render_json, render_terminal

    thresholds = Thresholds(
        lowest_efficiency=parse_ratio(lowest_efficiency, "--lowest-efficiency")
        if lowest_efficiency is not None
        else None,
        highest_wasted_bytes=parse_bytes(highest_wasted_bytes)
        if highest_wasted_bytes is not None
        else None,
        highest_user_wasted_percent=parse_ratio(
            highest_user_wasted_percent, "--highest-user-wasted-percent"
        )
        if highest_user_wasted_percent is not None
        else None,
    )
    result = analyze_image(image, platform=platform, top=top)
    gates = thresholds.evaluate(result) if thresholds.active else None
    if fmt == "json":
        click.echo(render_json(result, gates), nl=False)
    else:
        render_terminal(result, Console(no_color=no_color, highlight=False, soft_wrap=True), gates)
    if gates is not None and not all(g.passed for g in gates):
        sys.exit(1)
