"""Registry verbs: push, pull, tags, catalog, delete (and the options ``inspect --remote`` shares).

Thin: each verb turns its options into :class:`ClientOptions` and calls
:mod:`forklift.registry.client.images`. Imports of the registry client happen
inside the verbs, so ``forklift --help`` does not pay for them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from forklift.cli._common import cancellable, connection_options
from forklift.cli._policy import enforcer, policy_options
from forklift.errors import UsageError

if TYPE_CHECKING:
    from forklift.registry.client import ClientOptions

F = TypeVar("F", bound=Callable[..., Any])


def jobs_option(default: int) -> Callable[[F], F]:
    """``-j/--jobs``: blobs transferred at once (skopeo downloads 6 at once, docker pushes 5)."""

    def decorate(f: F) -> F:
        return click.option(
            "-j",
            "--jobs",
            type=click.IntRange(1, 32),
            default=default,
            show_default=True,
            help="Blobs transferred at once.",
        )(f)

    return decorate


def client_options(insecure: tuple[str, ...], ca_bundle: str | None) -> ClientOptions:
    """ClientOptions from the command line (added to the environment's insecure list)."""
    from forklift.registry.client import ClientOptions

    base = ClientOptions()
    return ClientOptions(
        insecure_registries=base.insecure_registries | frozenset(insecure),
        ca_bundle=Path(ca_bundle) if ca_bundle else None,
    )


def _platform_choice(platform: str | None, all_platforms: bool) -> None:
    if platform and all_platforms:
        raise UsageError("--platform and --all-platforms exclude each other")


@click.command()
@click.argument("image")
@click.argument("destination", required=False)
@click.option(
    "--platform", help="Of a multi-platform image, push only this one (os/arch[/variant])."
)
@click.option(
    "--all-platforms",
    is_flag=True,
    help="Push every image of a multi-platform index (the default for an index).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress; print only the pinned reference.")
@click.option(
    "--digestfile",
    type=click.Path(dir_okay=False),
    help="Also write the manifest digest to this file.",
)
@jobs_option(4)
@connection_options
@cancellable("push")
def push(
    image: str,
    destination: str | None,
    platform: str | None,
    all_platforms: bool,
    quiet: bool,
    digestfile: str | None,
    jobs: int,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """Push IMAGE from the store to a registry, as DESTINATION (default: IMAGE's own name).

    Only what the registry lacks is sent: blobs it has are skipped, blobs it
    has in another repository are mounted. Prints the manifest digest and the
    pinned reference (REGISTRY/REPO@sha256:...) to deploy by.
    """
    from forklift.cli._common import human_size, open_store
    from forklift.cli.progress import make_progress
    from forklift.registry.client.images import push as do_push

    _platform_choice(platform, all_platforms)
    store = open_store()
    with make_progress(quiet) as progress:
        result = do_push(
            image,
            destination,
            store=store,
            platform=platform,
            all_platforms=True if all_platforms else None,
            progress=progress,
            jobs=jobs,
            options=client_options(insecure, ca_bundle),
            timeout=timeout,
        )
    if digestfile:
        Path(digestfile).write_text(f"{result.digest}\n")
    copied = result.copy
    if quiet:
        click.echo(str(result.pinned))
        return
    click.echo(
        f"Pushed {result.reference}: {copied.blobs_copied} blobs uploaded "
        f"({human_size(copied.bytes_copied)}), {copied.blobs_mounted} mounted, "
        f"{copied.blobs_skipped - copied.blobs_mounted} already there",
        err=True,
    )
    click.echo(f"Digest: {result.digest}")
    click.echo(f"Pinned: {result.pinned}")


@click.command()
@click.argument("reference")
@click.option("--platform", help="From a multi-platform image, pull this one (os/arch[/variant]).")
@click.option("--all-platforms", is_flag=True, help="Pull the whole multi-platform index.")
@click.option("-q", "--quiet", is_flag=True, help="No progress; print only the digest.")
@jobs_option(6)
@connection_options
@policy_options
@cancellable("pull")
def pull(
    reference: str,
    platform: str | None,
    all_platforms: bool,
    quiet: bool,
    jobs: int,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
    policy_file: str | None,
    verify_policy: bool,
    insecure_policy: bool,
) -> None:
    """Pull REFERENCE from its registry into the store, named REFERENCE.

    Prints the digest of what REFERENCE names in the registry (the index, for
    a multi-platform image): pin it as NAME@DIGEST.
    """
    from forklift.cli._common import human_size, open_store
    from forklift.cli.progress import make_progress
    from forklift.registry.client.images import pull_image

    _platform_choice(platform, all_platforms)
    store = open_store()
    policy = enforcer(policy_file, verify_policy, insecure_policy)
    with make_progress(quiet) as progress:
        result = pull_image(
            reference.removeprefix("docker://"),
            store,
            platform=platform,
            all_platforms=all_platforms,
            progress=progress,
            jobs=jobs,
            options=client_options(insecure, ca_bundle),
            timeout=timeout,
            policy=policy,
        )
    if quiet:
        click.echo(str(result.digest))
        return
    stored = result.image
    copied = result.copy
    click.echo(
        f"Pulled {copied.blobs_copied} blobs ({human_size(copied.bytes_copied)}), "
        f"{copied.blobs_skipped} already in the store",
        err=True,
    )
    if stored.digest != result.digest:
        click.echo(f"Stored the image for this platform: {stored.digest}", err=True)
    click.echo(f"Digest: {result.digest}")
    status = "Downloaded newer image" if result.copy.blobs_copied else "Image is up to date"
    click.echo(f"Status: {status} for {result.reference.familiar()}")
    click.echo(str(result.reference))


@click.command()
@click.argument("reference")
@click.option("-n", "--page-size", type=click.IntRange(1), help="Ask for this many tags per page.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["lines", "json"]),
    default="lines",
    show_default=True,
    help='lines: one tag per line; json: {"Repository", "Tags"}.',
)
@connection_options
def tags(
    reference: str,
    page_size: int | None,
    fmt: str,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """List every tag of REFERENCE's repository (all pages), one per line."""
    from forklift.registry.client.images import list_tags

    found = list_tags(
        reference.removeprefix("docker://"),
        page_size=page_size,
        options=client_options(insecure, ca_bundle),
        timeout=timeout,
    )
    if fmt == "json":
        import json

        from forklift.transports.registry.transport import registry_reference

        ref = registry_reference(reference.removeprefix("docker://"))
        click.echo(json.dumps({"Repository": ref.name, "Tags": list(found)}, indent=2))
        return
    for tag in found:
        click.echo(tag)


@click.command()
@click.argument("registry")
@click.option("-n", "--page-size", type=click.IntRange(1), help="Ask for this many names per page.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["lines", "json"]),
    default="lines",
    help="One name per line, or a JSON object {Repositories}.",
)
@connection_options
def catalog(
    registry: str,
    page_size: int | None,
    fmt: str,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """List every repository of REGISTRY (all pages), one per line.

    Many registries serve the catalog only to administrators, or not at all.
    """
    from forklift.registry.client.images import catalog as list_catalog

    found = list_catalog(
        registry.removeprefix("docker://").rstrip("/"),
        page_size=page_size,
        options=client_options(insecure, ca_bundle),
        timeout=timeout,
    )
    if fmt == "json":
        import json

        click.echo(json.dumps({"Repositories": list(found)}, indent=2))
        return
    for name in found:
        click.echo(name)


@click.command()
@click.argument("reference")
@connection_options
def delete(
    reference: str, insecure: tuple[str, ...], ca_bundle: str | None, timeout: float | None
) -> None:
    """Delete REFERENCE (a tag, or a manifest by digest) from its registry.

    A tag is removed alone where the registry can do that; otherwise (CNCF
    distribution 2.x) the manifest it points at is deleted, with all its tags.
    """
    from forklift.registry.client.images import delete as do_delete

    result = do_delete(
        reference.removeprefix("docker://"),
        options=client_options(insecure, ca_bundle),
        timeout=timeout,
    )
    ref = result.reference
    if result.tag_only:
        click.echo(f"Deleted tag {ref.name}:{ref.tag or 'latest'} (was {result.digest})")
    else:
        click.echo(f"Deleted manifest {ref.name}@{result.digest}")
        if ref.digest is None:
            click.echo(
                f"{ref.domain} cannot delete a tag alone: every tag of {result.digest} is gone too",
                err=True,
            )
