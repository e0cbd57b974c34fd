"""``forklift dockerfile``: look at a Dockerfile the way the builder will (parse, targets, outline)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from forklift.errors import NotFound, UsageError

if TYPE_CHECKING:
    from forklift.dockerfile.instructions import ParsedStages


def parse_build_args(values: tuple[str, ...]) -> dict[str, str]:
    """``--build-arg K=V`` values; a bare ``K`` takes ``$K`` from the environment (as docker does)."""
    out: dict[str, str] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {item!r}: expected NAME=value")
        if eq:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    return out


def locate_dockerfile(context: str, file: str | None) -> Path:
    """The Dockerfile for a context, found as ``forklift build`` finds it (docker's rule for a
    relative ``-f``; ``CONTEXT/Dockerfile``, else ``CONTEXT/Containerfile``)."""
    from forklift.build.options import find_dockerfile

    path = Path(find_dockerfile(context, file))
    if not path.is_file():
        if file is not None:
            raise NotFound(f"Dockerfile {file!r} not found")
        raise NotFound(
            f"no Dockerfile in {context!r}", hint="name one with -f FILE or add CONTEXT/Dockerfile"
        )
    return path


def _load(path: Path) -> ParsedStages:
    from forklift.dockerfile.instructions import parse_stages
    from forklift.dockerfile.parser import parse

    return parse_stages(parse(path.read_bytes(), str(path)))


@click.group()
def dockerfile() -> None:
    """Inspect Dockerfiles: the parsed syntax tree, the build targets, a target's outline."""


@dockerfile.command("parse")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "dump"]),
    default="json",
    show_default=True,
    help="json: the syntax tree with positions; dump: BuildKit's AST dump format.",
)
@click.option(
    "--syntax-only",
    is_flag=True,
    help="Only check the syntax (accept unknown instructions and flags, like BuildKit's parser).",
)
def parse_cmd(file: str, fmt: str, syntax_only: bool) -> None:
    """Parse FILE and print its syntax tree (``-`` reads standard input).

    Instructions and their flags are checked too, unless --syntax-only.
    """
    from forklift.dockerfile.instructions import parse_stages
    from forklift.dockerfile.parser import parse

    if file == "-":
        data = sys.stdin.buffer.read()
        name = "<stdin>"
    else:
        path = Path(file)
        if not path.is_file():
            raise NotFound(f"Dockerfile {file!r} not found")
        data = path.read_bytes()
        name = file
    df = parse(data, name)
    if not syntax_only:
        parse_stages(df)
    if fmt == "dump":
        from forklift.dockerfile.dump import dump

        click.echo(dump(df))
    else:
        from forklift.dockerfile.ast_json import dumps

        click.echo(dumps(df))


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
_FILE = click.option("-f", "--file", "file", help="The Dockerfile (default: CONTEXT/Dockerfile).")


@dockerfile.command("targets")
@_FILE
@_FORMAT
@click.argument("context", default=".", type=click.Path(file_okay=False))
def targets_cmd(file: str | None, fmt: str, context: str) -> None:
    """List the stages that can be built with --target (like ``--print=targets``)."""
    from forklift.dockerfile.outline import list_targets, render_targets

    click.echo(render_targets(list_targets(_load(locate_dockerfile(context, file))), fmt))


@dockerfile.command("outline")
@_FILE
@_FORMAT
@click.option("--target", help="Stage to describe (default: the last one).")
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="Build argument (repeatable).",
)
@click.option(
    "--platform", help="Target platform for the automatic TARGET* args (os/arch[/variant])."
)
@click.argument("context", default=".", type=click.Path(file_okay=False))
def outline_cmd(
    file: str | None,
    fmt: str,
    target: str | None,
    build_args: tuple[str, ...],
    platform: str | None,
    context: str,
) -> None:
    """Show the build args, secrets and SSH a target uses (like ``--print=outline``)."""
    from forklift.dockerfile.outline import outline, render_outline
    from forklift.oci.platform import Platform

    parsed = _load(locate_dockerfile(context, file))
    out = outline(
        parsed,
        target=target,
        build_args=parse_build_args(build_args),
        target_platform=Platform.parse(platform) if platform else None,
    )
    click.echo(render_outline(out, fmt))
