"""``forklift sbom``: every package in an image (or a root filesystem) as SPDX, CycloneDX, JSON or a table."""

from __future__ import annotations

import click


@click.command()
@click.argument("image", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "spdx-json", "cyclonedx-json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (atomically).")
@click.option("--platform", help="Image of a multi-platform index to read (default: this host).")
@click.option(
    "--rootfs",
    type=click.Path(file_okay=False),
    help="Inventory a root filesystem directory instead of an image.",
)
@click.option(
    "--files/--no-files",
    default=False,
    help="List the files each package owns (json, cyclonedx-json).",
)
def sbom(
    image: str | None,
    fmt: str,
    output: str | None,
    platform: str | None,
    rootfs: str | None,
    files: bool,
) -> None:
    """List the packages in IMAGE (store name, oci:, oci-archive:, docker-archive:, docker://)."""
    from forklift.errors import UsageError
    from forklift.sbom.formats import render

    if (image is None) == (rootfs is None):
        raise UsageError("give an IMAGE or --rootfs DIR (one of them)")
    if rootfs is not None:
        if platform:
            raise UsageError("--platform applies to images, not to --rootfs")
        from forklift.sbom import inventory_rootfs

        inv = inventory_rootfs(rootfs, with_files=files)
    else:
        from forklift.sbom import inventory

        assert image is not None
        inv = inventory(image, platform=platform, with_files=files)
    text = render(inv, fmt, files=files)
    for warning in inv.warnings:
        click.echo(f"warning: {warning}", err=True)
    if output:
        from forklift.fsutil import atomic_write

        atomic_write(output, text.encode("utf-8"))
    else:
        click.echo(text, nl=False)
