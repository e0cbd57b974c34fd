"""Run every rule over a Dockerfile and apply ignores, overrides and defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from forklift.dockerfile.parser import decode, parse
from forklift.errors import ParseError
from forklift.lint.catalog import RULES
from forklift.lint.checks import (
    base_images,
    buildkit,
    context,
    correctness,
    layers,
    packages,
    security,
    versions,
)
from forklift.lint.config import LintConfig
from forklift.lint.findings import Finding, LintResult, Severity
from forklift.lint.model import LintContext, build_context
from forklift.lint.pragmas import read_pragmas

#: The rule modules, each with ``check(ctx) -> Iterable[Finding]``.
CHECKS: tuple[Callable[[LintContext], Iterable[Finding]], ...] = (
    buildkit.check,
    base_images.check,
    packages.check,
    versions.check,
    layers.check,
    security.check,
    correctness.check,
    context.check,
)

ImageEnv = Callable[[str], Mapping[str, str] | None]


def lint_dockerfile(
    text: str | bytes,
    *,
    filename: str = "Dockerfile",
    config: LintConfig | None = None,
    context: str | os.PathLike[str] | None = None,
    dockerfile_path: str | os.PathLike[str] | None = None,
    image_env: ImageEnv | None = None,
) -> LintResult:
    """Lint Dockerfile source and return the findings, sorted by position.

    ``filename`` is used in findings. ``config`` (default: everything on,
    failure threshold ``warning``) selects rules and severities. ``context``
    is the build context directory; without it the .dockerignore rules do not
    run. ``dockerfile_path`` lets ``<Dockerfile>.dockerignore`` be found.
    ``image_env(name)`` may return a base image's environment so that
    variables it defines are not reported as undefined (BuildKit looks at the
    pulled image; without this, only ``PATH`` is assumed, as in BuildKit's
    lint without a registry).

    Never raises for bad Dockerfile content: a syntax error is an ``FL000``
    finding with its position. ``forklift build --check`` calls this and
    stops when :meth:`LintResult.has_errors` is true.
    """
    cfg = config or LintConfig()
    source = decode(text) if isinstance(text, bytes) else text
    try:
        df = parse(source, filename)
    except ParseError as exc:
        loc = exc.location
        info = RULES["FL000"]
        finding = Finding(
            rule=info.id,
            name=info.name,
            severity=info.severity,
            message=exc.message,
            file=filename,
            line=loc.line if loc and loc.line else 1,
            column=loc.column if loc else 0,
            fix=info.fix,
        )
        return LintResult(filename, (finding,))
    ctx = build_context(
        df,
        trusted_registries=cfg.trusted_registries,
        context_dir=Path(context) if context is not None else None,
        dockerfile_path=Path(dockerfile_path) if dockerfile_path is not None else None,
        image_env=image_env,
    )
    raw: list[Finding] = list(ctx.invalid)
    if not any(f.rule == "FL000" for f in raw):
        # A file BuildKit's parser rejects gets only its syntax errors: advice about the rest
        # of an unparseable file is noise (hadolint also stops at a parse error). What the
        # front end's pass rejects (a bad STOPSIGNAL, a blank base name that a --build-arg
        # would fill) is reported, and the rest of the file is still checked.
        raw.extend(ctx.build_errors)
        for check in CHECKS:
            raw.extend(check(ctx))
    return _finish(filename, raw, df, cfg)


def _finish(filename: str, raw: list[Finding], df, cfg: LintConfig) -> LintResult:  # type: ignore[no-untyped-def]
    pragmas = read_pragmas(df, honour_inline=not cfg.disable_ignore_pragma)
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    seen: set[tuple[str, str, int, int]] = set()
    for f in raw:
        key = (f.rule, f.message, f.line, f.column)
        if key in seen:
            continue
        seen.add(key)
        info = RULES[f.rule]
        if not info.enabled and f.rule not in cfg.enabled:
            continue
        if f.rule in cfg.ignored or (f.rule != "FL000" and pragmas.ignores(f.rule, f.line)):
            suppressed.append(f)
            continue
        sev = cfg.overrides.get(f.rule)
        if sev is None and pragmas.buildkit_error and info.buildkit:
            sev = Severity.ERROR
        if sev is not None and sev is not f.severity:
            f = replace(f, severity=sev)
        kept.append(f)
    kept.sort(key=Finding.sort_key)
    return LintResult(filename, tuple(kept), tuple(suppressed))


def lint_file(
    path: str | os.PathLike[str],
    *,
    config: LintConfig | None = None,
    context: str | os.PathLike[str] | None = None,
    image_env: ImageEnv | None = None,
) -> LintResult:
    """Read and lint one Dockerfile (see :func:`lint_dockerfile`)."""
    p = Path(path)
    data = p.read_bytes()
    return lint_dockerfile(
        data,
        filename=str(path),
        config=config,
        context=context,
        dockerfile_path=p,
        image_env=image_env,
    )


def iter_rules() -> Iterator[str]:
    """Every rule id, in catalog order."""
    yield from RULES
