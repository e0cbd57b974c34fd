"""Verbs over the local store: images, tag, rmi, inspect, history."""

from __future__ import annotations

from typing import Any

import click

from forklift.cli._common import (
    connection_options,
    human_size,
    open_store,
    print_json,
    print_table,
    time_ago,
)
from forklift.cli._template import check_format, is_template, render
from forklift.errors import ForkliftError, UsageError
from forklift.oci.config import ContainerConfig
from forklift.oci.manifest import ImageManifest
from forklift.reference import parse_reference
from forklift.store.store import StoredImage


def image_rows(images: list[StoredImage]) -> list[dict[str, Any]]:
    """One row per (image, name), dangling images once with <none>."""
    rows = []
    for image in images:
        names = image.names or (None,)
        for name in names:
            rows.append(
                {
                    "Repository": name.familiar_name if name else "<none>",
                    "Tag": (name.tag or "<none>") if name else "<none>",
                    "ID": str(image.id),
                    "Digest": str(image.digest),
                    "Created": image.created,
                    "Size": image.size,
                    "MediaType": image.descriptor.media_type,
                }
            )
    return rows


@click.command()
@click.argument("repository", required=False)
@click.option("--digests", is_flag=True, help="Show manifest digests.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate image IDs.")
@click.option(
    "-a",
    "--all",
    "show_all",
    is_flag=True,
    help="Accepted for docker's sake: every image is always listed (there are no "
    "intermediate images).",
)
@click.option(
    "--format",
    "fmt",
    default="table",
    show_default=True,
    help="table, json, or a Go template per image ('{{.Repository}}:{{.Tag}}').",
)
def images(
    repository: str | None, digests: bool, quiet: bool, no_trunc: bool, show_all: bool, fmt: str
) -> None:
    """List images in the local store (optionally only REPOSITORY[:TAG])."""
    check_format(fmt, ("table", "json"))
    rows = image_rows(open_store().images())
    if repository:
        want = parse_reference(repository, default_tag=False)
        rows = [
            r
            for r in rows
            if r["Repository"] != "<none>"
            and str(parse_reference(f"{r['Repository']}:{r['Tag']}", default_tag=False).name)
            == want.name
            and (want.tag is None or r["Tag"] == want.tag)
        ]
    if fmt == "json":
        print_json(rows)
        return
    if is_template(fmt):
        for r in rows:
            click.echo(render(fmt, r))
        return

    def short(d: str) -> str:
        return d if no_trunc else d.removeprefix("sha256:")[:12]

    if quiet:
        for ident in dict.fromkeys(short(r["ID"]) for r in rows):
            click.echo(ident)
        return
    header = ["REPOSITORY", "TAG", *(["DIGEST"] if digests else []), "IMAGE ID", "CREATED", "SIZE"]
    table = [header]
    for r in rows:
        table.append(
            [
                r["Repository"],
                r["Tag"],
                *([r["Digest"]] if digests else []),
                short(r["ID"]),
                time_ago(r["Created"]),
                human_size(r["Size"]),
            ]
        )
    print_table(table)


@click.command()
@click.argument("source")
@click.argument("target")
def tag(source: str, target: str) -> None:
    """Give the image SOURCE another name TARGET."""
    open_store().tag(source, target)


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option(
    "-f", "--force", is_flag=True, help="Remove an image by ID even if several names point at it."
)
def rmi(names: tuple[str, ...], force: bool) -> None:
    """Remove images: untag by name (the image goes with its last name) or remove by ID."""
    store = open_store()
    failed = 0
    for name in names:
        try:
            for line in store.remove(name, force=force):
                click.echo(line)
        except ForkliftError as exc:
            if len(names) == 1:
                raise
            failed += 1
            click.echo(f"Error: {exc}", err=True)
    if failed:
        raise SystemExit(1)


def docker_config(config: ContainerConfig) -> dict[str, Any]:
    """The Config object as ``docker inspect`` shows it."""
    out: dict[str, Any] = {
        "User": config.user,
        "ExposedPorts": {p: {} for p in config.exposed_ports} or None,
        "Env": list(config.env) or None,
        "Cmd": list(config.cmd) if config.cmd is not None else None,
        "Entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "Volumes": {v: {} for v in config.volumes} or None,
        "WorkingDir": config.working_dir,
        "Labels": dict(config.labels) or None,
        "OnBuild": list(config.on_build) or None,
    }
    if config.stop_signal:
        out["StopSignal"] = config.stop_signal
    if config.healthcheck is not None:
        out["Healthcheck"] = config.healthcheck.to_json()
    if config.shell:
        out["Shell"] = list(config.shell)
    if config.args_escaped:
        out["ArgsEscaped"] = True
    return out


def inspect_image(image: StoredImage) -> dict[str, Any]:
    """A docker-like description of a stored image."""
    repo_tags = [n.familiar() for n in image.names]
    repo_digests = sorted({f"{n.familiar_name}@{image.digest}" for n in image.names})
    out: dict[str, Any] = {
        "Id": str(image.id),
        "Digest": str(image.digest),
        "MediaType": image.descriptor.media_type,
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
    }
    if image.error:
        out["Error"] = image.error
    config = image.config
    if config is not None:
        out.update(
            {
                "Created": config.created,
                "Author": config.author or "",
                "Architecture": config.architecture,
                "Os": config.os,
                **({"Variant": config.variant} if config.variant else {}),
                "Config": docker_config(config.config),
                "RootFS": {"Type": "layers", "Layers": [str(d) for d in config.diff_ids]},
            }
        )
    if isinstance(image.manifest, ImageManifest):
        out["Layers"] = [
            {"Digest": str(x.digest), "Size": x.size, "MediaType": x.media_type}
            for x in image.manifest.layers
        ]
    elif image.manifest is not None:
        out["Manifests"] = [
            {"Digest": str(m.digest), "Platform": str(m.platform) if m.platform else None}
            for m in image.manifest.manifests
        ]
    out["Size"] = image.size
    return out


@click.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--raw", is_flag=True, help="Print the manifest bytes exactly as stored.")
@click.option("--config", "show_config", is_flag=True, help="Print the image config as stored.")
@click.option(
    "--remote", is_flag=True, help="Inspect NAMES in their registries (no layer is downloaded)."
)
@click.option("--platform", help="With --remote: the image of a multi-platform index to show.")
@click.option("-f", "--format", "template", help="A Go template per image, as docker's: '{{.Id}}'.")
@connection_options
def inspect(
    names: tuple[str, ...],
    raw: bool,
    show_config: bool,
    remote: bool,
    platform: str | None,
    template: str | None,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
) -> None:
    """Show details of images in the local store (by name, digest or ID prefix).

    With --remote, NAMES are registry references: details come from the
    manifest and config in the registry.
    """
    if remote:
        _inspect_remote(names, raw, show_config, platform, insecure, ca_bundle, timeout, template)
        return
    if platform or insecure or ca_bundle or timeout:
        raise UsageError("--platform, --insecure-registry, --ca-bundle and --timeout need --remote")
    store = open_store()
    found = [store.resolve(n) for n in names]
    if raw or show_config:
        for image in found:
            if raw:
                click.echo(store.read_blob(image.digest).decode())
            elif isinstance(image.manifest, ImageManifest):
                click.echo(store.read_blob(image.manifest.config.digest).decode())
            else:
                raise ForkliftError(f"{image.digest} is an index; it has no config of its own")
        return
    _print_docs([inspect_image(i) for i in found], template)


def _print_docs(docs: list[dict[str, Any]], template: str | None) -> None:
    """The inspect JSON array, or one rendered template line per image (``-f``)."""
    if template is None:
        print_json(docs)
        return
    for doc in docs:
        click.echo(render(template, doc))


# -- inspect --remote: the registry client's view, in the same JSON shape ----------------


def _inspect_remote(
    names: tuple[str, ...],
    raw: bool,
    show_config: bool,
    platform: str | None,
    insecure: tuple[str, ...],
    ca_bundle: str | None,
    timeout: float | None,
    template: str | None = None,
) -> None:
    """``inspect --remote``: manifest + config from the registry (``--raw``/``--config``: bytes)."""
    import sys

    from forklift.cli.registry import client_options
    from forklift.registry.client.images import inspect_remote, remote_size

    options = client_options(insecure, ca_bundle)
    out = []
    for name in names:
        got = inspect_remote(
            name.removeprefix("docker://"),
            platform=platform,
            config=not raw,
            options=options,
            timeout=timeout,
        )
        if raw:
            # exactly the registry's bytes: what the digest is computed over
            chosen = got.manifest if platform and got.manifest is not None else got.top
            sys.stdout.buffer.write(chosen.data)
            sys.stdout.buffer.flush()
            continue
        if show_config:
            if got.config is None:
                raise ForkliftError(
                    f"{name} is an index with no image for this platform; "
                    "choose one with --platform"
                )
            sys.stdout.buffer.write(got.config)
            sys.stdout.buffer.flush()
            continue
        shown = got.manifest or got.top
        ref = got.reference
        image = StoredImage(
            shown.descriptor(),
            (ref.with_tag(ref.tag),) if ref.tag and ref.digest is None else (),
            shown.parse(),
            got.parsed_config(),
            remote_size(got),
        )
        doc = inspect_image(image)
        doc["Name"] = ref.name
        doc["RepoDigests"] = sorted({f"{ref.name}@{got.top.digest}", f"{ref.name}@{shown.digest}"})
        if shown.digest != got.top.digest:
            # the image was chosen from a multi-platform index
            doc["Index"] = {"Digest": str(got.top.digest), "MediaType": got.top.media_type}
        out.append(doc)
    if out:
        _print_docs(out, template)


@click.command()
@click.argument("name")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("-H", "--human/--no-human", default=True, help="Sizes and dates in human form.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for scripts.",
)
def history(name: str, no_trunc: bool, human: bool, fmt: str) -> None:
    """Show the history of an image: one line per step, newest first, with layer sizes."""
    image = open_store().resolve(name)
    if not isinstance(image.manifest, ImageManifest) or image.config is None:
        raise ForkliftError(f"{name} is a multi-platform index; name one of its images")
    layers = list(image.manifest.layers)
    rows: list[dict[str, Any]] = []
    entries = list(image.config.history) or []
    li = 0
    for h in entries:
        size = 0
        if not h.empty_layer and li < len(layers):
            size = layers[li].size
            li += 1
        rows.append(
            {
                "Created": h.created,
                "CreatedBy": h.created_by or "",
                "Size": size,
                "Comment": h.comment or "",
                "EmptyLayer": h.empty_layer,
            }
        )
    rows.reverse()
    if fmt == "json":
        print_json(rows)
        return
    table = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for i, r in enumerate(rows):
        created_by = r["CreatedBy"]
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        table.append(
            [
                image.id.short if i == 0 else "<missing>",
                time_ago(r["Created"]) if human else (r["Created"] or ""),
                created_by,
                human_size(r["Size"]) if human else str(r["Size"]),
                r["Comment"],
            ]
        )
    print_table(table)
