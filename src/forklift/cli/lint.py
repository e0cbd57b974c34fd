"""``forklift lint``: check Dockerfiles against best practices and BuildKit's build checks."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from forklift.errors import NotFound, UsageError

#: hadolint's spelling of formats forklift has -> forklift's
_HADOLINT_FORMATS = {"tty": "terminal", "gitlab_codeclimate": "gitlab"}


@click.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["terminal", "json", "sarif", "checkstyle", "gitlab", *_HADOLINT_FORMATS]),
    default="terminal",
    show_default=True,
    help="Output format (hadolint's names tty and gitlab_codeclimate work too).",
)
@click.option(
    "--failure-threshold",
    "-t",
    type=click.Choice(["error", "warning", "info", "style", "none"]),
    default=None,
    help="Exit 1 when a finding is at least this severe (default: the config's, else warning).",
)
@click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Lint config file."
)
@click.option(
    "--context",
    type=click.Path(file_okay=False, exists=True),
    help="Build context directory, for the .dockerignore rules (default: . when linting ./Dockerfile).",
)
@click.option("--ignore", "ignores", multiple=True, help="Rule to skip (repeatable).")
@click.option(
    "--trusted-registry", "trusted", multiple=True, help="Allowed base image registry (repeatable)."
)
@click.option("--no-color", is_flag=True, help="Plain terminal output.")
@click.option("--list-rules", is_flag=True, help="Print the rules and exit.")
def lint(
    files: tuple[str, ...],
    fmt: str,
    failure_threshold: str | None,
    config_path: str | None,
    context: str | None,
    ignores: tuple[str, ...],
    trusted: tuple[str, ...],
    no_color: bool,
    list_rules: bool,
) -> None:
    """Lint Dockerfiles (default ./Dockerfile; - reads standard input)."""
    from dataclasses import replace

    from rich.console import Console

    from forklift.lint import LintConfig, find_config, lint_dockerfile, lint_file
    from forklift.lint.catalog import RULES, resolve_ids
    from forklift.lint.findings import parse_threshold
    from forklift.lint.imageenv import store_image_env
    from forklift.lint.report import (
        render_checkstyle,
        render_gitlab,
        render_json,
        render_sarif,
        render_terminal,
    )

    console = Console(no_color=no_color, highlight=False, soft_wrap=True)
    if list_rules:
        for r in RULES.values():
            maps = ", ".join(x for x in (r.buildkit, *r.hadolint) if x)
            extra = f"  ({maps})" if maps else ""
            click.echo(f"{r.id}  {r.severity.label:<7}  {r.name}: {r.summary}{extra}")
        return
    default_file = not files
    targets = list(files) or ["Dockerfile"]
    if context is None and default_file:
        context = "."
    cfg_file = Path(config_path) if config_path else find_config(".", *_dirs(targets))
    cfg = LintConfig.load(cfg_file) if cfg_file else LintConfig()
    if ignores:
        unknown = [i for i in ignores if not resolve_ids([i])]
        if unknown:
            raise UsageError(f"--ignore: unknown rule {unknown[0]!r} (see --list-rules)")
        cfg = replace(cfg, ignored=cfg.ignored | resolve_ids(ignores))
    if trusted:
        cfg = replace(cfg, trusted_registries=cfg.trusted_registries + tuple(trusted))
    if failure_threshold is not None:
        cfg = replace(cfg, failure_threshold=parse_threshold(failure_threshold))
    image_env = store_image_env()
    results = []
    for target in targets:
        if target == "-":
            results.append(
                lint_dockerfile(
                    sys.stdin.buffer.read(),
                    filename="-",
                    config=cfg,
                    context=context,
                    image_env=image_env,
                )
            )
            continue
        if not Path(target).is_file():
            raise NotFound(f"{target}: no such Dockerfile")
        results.append(lint_file(target, config=cfg, context=context, image_env=image_env))
    fmt = _HADOLINT_FORMATS.get(fmt, fmt)
    if fmt == "terminal":
        render_terminal(results, console)
    elif fmt == "json":
        click.echo(render_json(results, cfg.failure_threshold), nl=False)
    elif fmt == "sarif":
        click.echo(render_sarif(results), nl=False)
    elif fmt == "checkstyle":
        click.echo(render_checkstyle(results), nl=False)
    else:
        click.echo(render_gitlab(results), nl=False)
    if any(r.fails(cfg.failure_threshold) for r in results):
        sys.exit(1)


def _dirs(targets: list[str]) -> list[str]:
    return [str(Path(t).parent) for t in targets if t != "-"]
