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
    """Remove every blob nothing references, and report the bytes freed.

    Also cleans what killed forklift processes left (containers, mounts,
    temporary files) and unpacked layers no image, cache entry or container needs.
    """
    report = open_store(recover=False).prune(
        dangling=dangling or everything, cache=cache or everything, dry_run=dry_run
    )
    verb = "Would remove" if dry_run else "Removed"
    for item in report.leftovers:
        click.echo(f"{verb} {item.kind} {item.path} left by {item.owner}")
    for image in report.images_removed:
        click.echo(f"{verb} dangling image {image}")
    if report.roots_removed:
        click.echo(f"{verb} {report.roots_removed} build cache entries")
    for kind, count in report.collected.items():
        if count:
            click.echo(f"{verb} {count} {kind}")
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
    """Re-hash every blob in the store; report corrupt or missing blobs and the images they break.

    Also reports what killed forklift processes left behind (containers, mounts,
    temporary files); --repair cleans it.
    """
    report = open_store(recover=False).fsck(repair=repair, jobs=jobs)
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
                "leftovers": [
                    {"kind": x.kind, "path": x.path, "owner": x.owner} for x in report.leftovers
                ],
            }
        )
    else:
        for p in report.problems:
            used = f"; needed by {', '.join(p.images)}" if p.images else "; not used by any image"
            click.echo(f"{p.kind}: {p.digest}: {p.detail}{used}")
        for d in report.repaired:
            click.echo(f"removed corrupt blob {d}")
        verb = "removed" if repair else "left behind"
        for x in report.leftovers:
            click.echo(f"{verb}: {x.kind} {x.path} (owner {x.owner} is gone)")
        count = len(report.problems) + len(report.leftovers)
        status = "ok" if report.ok else plural(count, "problem")
        click.echo(
            f"checked {report.blobs_checked} blobs ({human_size(report.bytes_checked)}): {status}"
        )
    if not report.ok:
        raise SystemExit(1)
