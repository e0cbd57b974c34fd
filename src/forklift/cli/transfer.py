"""Moving images in and out of the store: save, load, copy, import."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from forklift.cli._common import cancellable, open_store, refuse_options
from forklift.cli._policy import enforcer, policy_options
from forklift.cli.progress import make_progress
from forklift.cli.registry import client_options, connection_options
from forklift.errors import InvalidInput, UsageError
from forklift.oci.config import ContainerConfig
from forklift.oci.platform import Platform
from forklift.reference import Reference, parse_reference


def _platform(value: str | None) -> Platform | None:
    return Platform.parse(value) if value else None


_TLS = (
    "TLS is verified unless the host is insecure: --insecure-registry HOST (plain HTTP or "
    "unverified TLS for that host; localhost always is), --ca-bundle FILE to trust a CA"
)
#: skopeo copy's flags, answered with forklift's way of doing the same
SKOPEO_COPY_FLAGS = (
    (("--src-tls-verify", "--dest-tls-verify", "--tls-verify"), True, _TLS),
    (("--src-cert-dir", "--dest-cert-dir", "--cert-dir"), True, _TLS),
    (("--all", "-a"), False, "use --all-platforms"),
    (("--override-arch", "--override-os", "--override-variant"), True, "use --platform os/arch"),
    (("--src-creds", "--dest-creds", "--creds", "--src-authfile", "--dest-authfile"), True,
     "credentials come from forklift login (docker's config.json, podman's auth.json)"),
    (("--dest-compress-format", "--dest-compress"), True,
     "layers are copied as they are; forklift build --compression chooses gzip or zstd"),
    (("--format", "-f"), True, "the destination transport decides the format "
     "(oci:, oci-archive:, docker-archive:, docker://)"),
)  # fmt: skip


@refuse_options(SKOPEO_COPY_FLAGS, "copy")
@click.command()
@click.argument("source")
@click.argument("destination")
@click.option("--platform", help="From a multi-platform image, copy this one (os/arch[/variant]).")
@click.option("--all-platforms", is_flag=True, help="Copy every image of a multi-platform index.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 32),
    default=6,
    show_default=True,
    help="Blobs copied at once.",
)
@click.option(
    "--no-referrers",
    is_flag=True,
    help="Leave signatures, attestations and SBOMs attached to the image behind.",
)
@connection_options
@policy_options
@cancellable("copy")
def copy(
    source: str,
    destination: str,
    platform: str | None,
    all_platforms: bool,
    quiet: bool,
    jobs: int,
    no_referrers: bool,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
    policy_file: str | None,
    verify_policy: bool,
    insecure_policy: bool,
) -> None:
    """Copy an image between transports.

    Transports: NAME[:TAG] (the store), oci:DIR[:REF], oci-archive:FILE[:REF],
    docker-archive:FILE[:NAME:TAG], docker://REGISTRY/REPO[:TAG]. Signatures,
    attestations and SBOMs attached to the image come along where the
    destination can hold them (the store, oci:, docker://).
    """
    from forklift.transports.copy import copy as do_copy

    if platform and all_platforms:
        raise UsageError("--platform and --all-platforms exclude each other")
    registry: dict[str, object] = {}
    if source.startswith("docker://") or destination.startswith("docker://"):
        from forklift.transports.registry.retry import Deadline

        registry = {"options": client_options(insecure, ca_bundle)}
        if timeout is not None:
            registry["deadline"] = Deadline(timeout)
    with make_progress(quiet) as progress:
        result = do_copy(
            source,
            destination,
            platform=_platform(platform),
            all_platforms=all_platforms,
            progress=progress,
            jobs=jobs,
            source_options=registry if source.startswith("docker://") else None,
            destination_options=registry if destination.startswith("docker://") else None,
            referrers=not no_referrers,
            policy=enforcer(policy_file, verify_policy, insecure_policy),
        )
    for note in result.attachments_left:
        click.echo(f"Not copied: {note}", err=True)
    if not quiet:
        # blobs_skipped counts mounted blobs too: each blob is reported once.
        present = result.blobs_skipped - result.blobs_mounted
        parts = [f"{present} already present"]
        if result.blobs_mounted:
            parts.append(f"{result.blobs_mounted} mounted")
        copied = result.blobs_copied
        click.echo(
            f"Copied {copied} blob{'' if copied == 1 else 's'} ({', '.join(parts)}); "
            f"manifest {result.digest}",
            err=True,
        )


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (default: stdout)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["docker", "oci"]),
    default="docker",
    help="docker-archive (what docker load reads) or an OCI layout tarball.",
)
@click.option("--platform", help="From a multi-platform image, save this one.")
@cancellable("save")
def save(names: tuple[str, ...], output: str | None, fmt: str, platform: str | None) -> None:
    """Save images to a tar archive (docker save)."""
    from forklift.transports.archive import DockerArchiveDestination, OciArchiveDestination
    from forklift.transports.copy import copy_image
    from forklift.transports.layout import StoreSource

    if output is None and sys.stdout.isatty():
        raise UsageError(
            "refusing to write an archive to a terminal: use -o FILE or redirect stdout"
        )
    store = open_store()
    spool = None
    cleanup = contextlib.ExitStack()
    if output is None or output == "-":
        # spooled in the snapshotter's scratch space, which the next command removes if
        # this one is killed ($TMPDIR would keep the whole archive)
        from forklift.runtime.snapshots import Snapshotter

        snapshotter = Snapshotter(store)
        cleanup.callback(snapshotter.close)
        spool = str(cleanup.enter_context(snapshotter.scratch()) / "archive.tar")
        target = spool
    else:
        target = output
    try:
        dst = (
            DockerArchiveDestination(target)
            if fmt == "docker"
            else OciArchiveDestination(target, None)
        )
        with dst:
            for name in names:
                src = StoreSource(store, name)
                with src:
                    refs = _names_for(name, src.image.names)
                    copy_image(src, dst, names=refs, platform=_platform(platform))
            dst.commit()
        if spool is not None:
            with open(spool, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
    finally:
        cleanup.close()


def _names_for(given: str, names: tuple[Reference, ...]) -> tuple[Reference, ...]:
    """The names an image is saved under: the one the user typed, or all when given by ID."""
    with contextlib.suppress(InvalidInput):
        ref = parse_reference(given)
        if any(str(n) == str(ref) for n in names):
            return (ref,)
    return names


@click.command()
@click.option(
    "-i",
    "--input",
    "input_",
    type=click.Path(dir_okay=False),
    help="Read from FILE (default: stdin).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only print the loaded names.")
@cancellable("load")
def load(input_: str | None, quiet: bool) -> None:
    """Load images from a docker-archive or OCI archive (plain, gzip, zstd, xz or bzip2)."""
    from forklift.transports.load import load_archive

    if input_ is None and sys.stdin.isatty():
        raise UsageError("no input: use -i FILE or pipe an archive into stdin")
    with make_progress(quiet) as progress:
        loaded = load_archive(open_store(), input_ or "-", progress=progress)
    for line in loaded:
        click.echo(line)


@click.command(name="import")
@click.argument("rootfs")
@click.argument("name", required=False)
@click.option(
    "-c",
    "--change",
    "changes",
    multiple=True,
    help="Dockerfile instruction to apply (CMD, ENV, ...).",
)
@click.option("-m", "--message", help="Commit message for the history entry.")
@click.option("--platform", help="Platform the root filesystem is for (default: this host).")
@cancellable("import")
def import_(
    rootfs: str,
    name: str | None,
    changes: tuple[str, ...],
    message: str | None,
    platform: str | None,
) -> None:
    """Create an image from a root filesystem tarball (docker import). ROOTFS may be '-'."""
    from forklift.transports.rootfs import import_rootfs

    apply_changes: Callable[[ContainerConfig, Sequence[str]], ContainerConfig] | None = None
    if changes:
        from forklift.build.metadata import apply_changes
    names = (parse_reference(name),) if name else ()
    if rootfs != "-" and not Path(rootfs).exists():
        raise InvalidInput(f"{rootfs}: no such file")
    image = import_rootfs(
        open_store(),
        rootfs,
        names,
        changes=changes,
        apply_changes=apply_changes,
        message=message,
        platform=_platform(platform),
    )
    click.echo(str(image.id))
