"""``forklift scan`` and ``forklift db``: known vulnerabilities and secrets, Trivy's flags."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str, flag: str) -> float:
    """``7d``, ``168h``, ``1d12h``, ``90m`` -> seconds."""
    s = text.strip().lower()
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise click.BadParameter(
            f"invalid duration {text!r} (e.g. 7d, 24h, 1d12h)", param_hint=flag
        )
    return total


def _csv(value: str, allowed: tuple[str, ...], flag: str) -> frozenset[str]:
    items = {x.strip().lower() for x in value.split(",") if x.strip()}
    bad = items - set(allowed)
    if bad or not items:
        raise click.BadParameter(
            f"{', '.join(sorted(bad)) or 'nothing'} (choose from {', '.join(allowed)})",
            param_hint=flag,
        )
    return frozenset(items)


@click.command()
@click.argument("image", required=False)
@click.option(
    "--severity",
    default="UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL",
    show_default=True,
    help="Severities to report (comma-separated).",
)
@click.option(
    "--exit-code",
    type=int,
    default=0,
    show_default=True,
    help="Exit with this code when anything is reported.",
)
@click.option(
    "--ignore-unfixed", is_flag=True, help="Leave out vulnerabilities without a fixed version."
)
@click.option(
    "--ignorefile",
    type=click.Path(dir_okay=False),
    help="Ignore file (.trivyignore, or the YAML form by extension). Default: ./.trivyignore if present.",
)
@click.option(
    "--vex",
    "vex_file",
    type=click.Path(dir_okay=False),
    help="OpenVEX document: not_affected/fixed statements suppress findings.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "sarif", "cyclonedx", "template"]),
    default="table",
    show_default=True,
    help="Report format (template: a Jinja2 template given with -t).",
)
@click.option("-t", "--template", help="Jinja2 template for --format template (TEXT or @FILE).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the report to FILE instead of stdout.",
)
@click.option(
    "--scanners", default="vuln,secret", show_default=True, help="What to look for: vuln, secret."
)
@click.option(
    "--pkg-types", default="os,library", show_default=True, help="Packages to match: os, library."
)
@click.option(
    "--sbom",
    "sbom_file",
    type=click.Path(dir_okay=False),
    help="Scan the packages of an SPDX or CycloneDX JSON SBOM instead of an image.",
)
@click.option(
    "--rootfs",
    type=click.Path(file_okay=False),
    help="Scan a root filesystem directory instead of an image.",
)
@click.option(
    "--db-update",
    is_flag=True,
    help="Update the database from its default sources first (the only network use).",
)
@click.option(
    "--db-max-age",
    default="7d",
    show_default=True,
    help="Warn when the database is older than this.",
)
@click.option("--platform", help="Image to scan from a multi-platform index (default: this host).")
def scan(
    image: str | None,
    severity: str,
    exit_code: int,
    ignore_unfixed: bool,
    ignorefile: str | None,
    vex_file: str | None,
    fmt: str,
    template: str | None,
    output: str | None,
    scanners: str,
    pkg_types: str,
    sbom_file: str | None,
    rootfs: str | None,
    db_update: bool,
    db_max_age: str,
    platform: str | None,
) -> None:
    """Scan IMAGE (store name, oci:, oci-archive:, docker-archive:, docker://) for known
    vulnerabilities and secrets, from the local database (see 'forklift db')."""
    from forklift.errors import UsageError
    from forklift.scan import ignore as ignore_mod
    from forklift.scan import vex as vex_mod
    from forklift.scan.db.model import Severity
    from forklift.scan.report import render
    from forklift.scan.scanner import (
        PKG_TYPES,
        SCANNERS,
        ScanOptions,
        scan_image,
        scan_rootfs,
        scan_sbom,
    )

    chosen = [x for x in (image, sbom_file, rootfs) if x]
    if len(chosen) != 1:
        raise UsageError("give exactly one of IMAGE, --sbom FILE or --rootfs DIR")
    sev = _csv(severity.lower(), tuple(s.value.lower() for s in Severity), "--severity")
    ignore = None
    if ignorefile:
        ignore = ignore_mod.load(Path(ignorefile))
    elif Path(".trivyignore").is_file():
        ignore = ignore_mod.load(Path(".trivyignore"))
    options = ScanOptions(
        scanners=_csv(scanners, SCANNERS, "--scanners"),
        pkg_types=_csv(pkg_types, PKG_TYPES, "--pkg-types"),
        severities=frozenset(Severity(s.upper()) for s in sev),
        ignore_unfixed=ignore_unfixed,
        ignore=ignore,
        vex=vex_mod.load(Path(vex_file)) if vex_file else None,
        db_max_age=parse_duration(db_max_age, "--db-max-age"),
        platform=platform,
    )
    if fmt == "template" and not template:
        raise UsageError("--format template needs --template TEXT or --template @FILE")
    if db_update and "vuln" in options.scanners:
        from forklift.scan.db.update import update

        update(progress=lambda m: click.echo(m, err=True))
    if sbom_file:
        result = scan_sbom(Path(sbom_file), options)
    elif rootfs:
        result = scan_rootfs(rootfs, options)
    else:
        assert image is not None
        result = scan_image(image, options)
    if fmt == "table":
        for w in result.warnings:
            click.echo(f"Warning: {w}", err=True)
    from rich.console import Console

    # a terminal gets its own width; a file or pipe gets room for the whole table
    console = Console(width=None if sys.stdout.isatty() and not output else 200)
    text = render(result, fmt, template=template, console=console)
    if output:
        from forklift.fsutil import atomic_write

        atomic_write(output, text.encode())
    else:
        click.echo(text, nl=False)
    if exit_code and result.failed:
        sys.exit(exit_code)


@click.group()
def db() -> None:
    """The local vulnerability database: update, status, push, pull."""


@db.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME=URL|FILE|DIR",
    help="Import NAME from here (repeatable; NAME: PyPI, npm, Go, crates.io, Maven, RubyGems, "
    "Packagist, NuGet, Alpine, debian, debian-dsa, debian-dla, alpine-secdb, ghsa, osv). "
    "Default: every default source, from the network.",
)
def update(sources: tuple[str, ...]) -> None:
    """Download or import advisories and rebuild the database atomically."""
    from forklift.scan.db.sources import parse_specs
    from forklift.scan.db.update import update as do_update

    specs = parse_specs(list(sources)) if sources else None
    result = do_update(specs, progress=lambda m: click.echo(m, err=True))
    for imp in result.imported:
        extra = f", {imp.withdrawn} withdrawn" if imp.withdrawn else ""
        click.echo(f"{imp.name}: {imp.records} records{extra}")
    if result.kept:
        click.echo(f"kept: {', '.join(result.kept)}")
    click.echo(f"database: {result.path}")


@db.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def status(fmt: str) -> None:
    """Each source of the database: record count, age, origin."""
    from forklift.cli._common import print_json, print_table, time_ago
    from forklift.scan.db.index import Database, default_path

    path = default_path()
    with Database(path) as database:
        srcs = database.sources()
        built = database.built_at
    if fmt == "json":
        print_json(
            {
                "path": str(path),
                "built_at": built,
                "sources": [
                    {
                        "name": s.name,
                        "kind": s.kind,
                        "origin": s.origin,
                        "imported_at": s.imported_at,
                        "age_seconds": round(s.age_seconds),
                        "records": s.records,
                        "withdrawn": s.withdrawn,
                        "sha256": s.sha256,
                    }
                    for s in srcs
                ],
            }
        )
        return
    click.echo(f"database: {path} (built {time_ago(built)})")
    rows = [["SOURCE", "RECORDS", "AGE", "ORIGIN"]]
    rows += [[s.name, str(s.records), time_ago(s.imported_at), s.origin] for s in srcs]
    print_table(rows)


@db.command()
@click.argument("reference")
def push(reference: str) -> None:
    """Push the database to a registry as an OCI artifact (REF: host/repo:tag)."""
    from forklift.scan.db.artifact import push as do_push

    t = do_push(reference)
    click.echo(f"pushed {t.reference}@{t.digest} ({t.size} bytes)")


@db.command()
@click.argument("reference")
def pull(reference: str) -> None:
    """Pull a database artifact from a registry and install it."""
    from forklift.scan.db.artifact import pull as do_pull

    t = do_pull(reference)
    click.echo(f"pulled {t.reference}@{t.digest} ({t.size} bytes)")
