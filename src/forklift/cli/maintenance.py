"""Store maintenance: prune and fsck."""

from __future__ import annotations

import click

from forklift.cli._common import human_size, open_store, print_json
from forklift.textutil import plural


@click.command()
@click.option("--dangling", is_flag=True, help="Also remove untagged images.")
@click.option("--cache", is_flag=True, help="Also remove the build cache.")
@click.option("-a", "--all", "everything", is_flag=True, help="Same as --dangling --cache.")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
def prune(dangling: bool, cache: bool, everything: bool, dry_run: bool) -> None:
    """Remove every blob nothing references, and report the bytes freed."""
    report = open_store().prune(
        dangling=dangling or everything, cache=cache or everything, dry_run=dry_run
    )
    verb = "Would remove" if dry_run else "Removed"
    for image in report.images_removed:
        click.echo(f"{verb} dangling image {image}")
    if report.roots_removed:
        click.echo(f"{verb} {report.roots_removed} build cache entries")
    click.echo(
        f"{verb} {report.blobs_removed} blobs; "
        f"{'would reclaim' if dry_run else 'reclaimed'} {human_size(report.bytes_freed)}"
    )


@click.command()
@click.option(
    "--repair", is_flag=True, help="Delete corrupt blobs so they are fetched or built again."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, help="Blobs hashed at once.")
def fsck(repair: bool, fmt: str, jobs: int) -> None:
    """Re-hash every blob in the store; report corrupt or missing blobs and the images they break."""
    report = open_store().fsck(repair=repair, jobs=jobs)
    if fmt == "json":
        print_json(
            {
                "ok": report.ok,
                "blobs_checked": report.blobs_checked,
                "bytes_checked": report.bytes_checked,
                "problems": [
                    {
                        "digest": p.digest,
                        "kind": p.kind,
                        "detail": p.detail,
                        "images": list(p.images),
                    }
                    for p in report.problems
                ],
                "repaired": list(report.repaired),
            }
        )
    else:
        for p in report.problems:
            used = f"; needed by {', '.join(p.images)}" if p.images else "; not used by any image"
            click.echo(f"{p.kind}: {p.digest}: {p.detail}{used}")
        for d in report.repaired:
            click.echo(f"removed corrupt blob {d}")
        status = "ok" if report.ok else plural(len(report.problems), "problem")
        click.echo(
            f"checked {report.blobs_checked} blobs ({human_size(report.bytes_checked)}): {status}"
        )
    if not report.ok:
        raise SystemExit(1)
