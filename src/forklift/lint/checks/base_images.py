"""Base images: tags, digests, trusted registries.

FROM lines are expanded with the global ARGs' default values first, so
``FROM debian:${VERSION}`` with ``ARG VERSION=12`` is judged as
``debian:12``; a FROM that still depends on an unset variable is skipped.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from forklift.dockerfile.args import GlobalArgs, default_args
from forklift.dockerfile.diagnostics import Diagnostics
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.errors import ForkliftError
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext
from forklift.reference import Reference, parse_reference

_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "hub.docker.com"})


def global_env(ctx: LintContext) -> dict[str, str]:
    """The global scope with default values (what FROM lines see without --build-arg)."""
    target = ctx.stages[-1].name if ctx.stages else ""
    return GlobalArgs.evaluate(
        ctx.parsed.meta_args,
        {},
        default_args(target_stage=target),
        file=ctx.file,
        escape=ctx.escape,
        diag=Diagnostics(tolerant=True),
    ).env


def resolved_base(ctx: LintContext, base: str, env: dict[str, str]) -> Reference | None:
    """The base image of a FROM as a reference, or None (a stage, scratch, unresolved, invalid)."""
    try:
        result = Lexer(ctx.escape).process(base, env)
    except ExpansionError:
        return None
    if result.unmatched or not result.result or result.result == "scratch":
        return None
    try:
        return parse_reference(result.result, default_tag=False)
    except ForkliftError:
        return None


def trusted(domain: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``domain`` is one of ``patterns`` (``*.corp.example`` wildcards allowed)."""
    domain = domain.lower()
    for pat in patterns:
        pat = pat.lower().strip()
        if pat in _DOCKER_HUB and domain in _DOCKER_HUB:
            return True
        if fnmatch.fnmatchcase(domain, pat):
            return True
    return False


def check(ctx: LintContext) -> Iterator[Finding]:
    env = global_env(ctx)
    stage_names = {m.name for m in ctx.stages if m.name}
    pinned_checked = False
    for model in reversed(ctx.stages):
        st = model.stage
        if model.base is not None:
            continue
        try:
            expanded = Lexer(ctx.escape).process(st.base_name, env).result
        except ExpansionError:
            continue
        if expanded.lower() in stage_names:
            continue
        ref = resolved_base(ctx, st.base_name, env)
        if ref is None:
            continue
        shown = expanded
        if ref.digest is None and ref.tag is None:
            yield ctx.at(
                "FL101",
                f"FROM {shown} has no tag, so it means {shown}:latest and changes without notice",
                st.node,
                fix=f"Pin a version tag: FROM {shown}:<version>",
            )
        elif ref.digest is None and ref.tag == "latest":
            yield ctx.at(
                "FL102",
                f"FROM {shown} uses :latest, so rebuilds pick up whatever is newest",
                st.node,
                fix=f"Pin a release tag: FROM {shown.rsplit(':', 1)[0]}:<version>",
            )
        if model.final and not pinned_checked:
            pinned_checked = True
            if ref.digest is None:
                what = "pinned by tag only" if ref.tag else "pinned neither by tag nor by digest"
                yield ctx.at(
                    "FL103",
                    f"the final image's base {shown} is {what}",
                    st.node,
                    fix=f"For reproducible production builds: FROM {shown}@sha256:<digest>",
                )
        if ctx.trusted_registries and not trusted(ref.domain, ctx.trusted_registries):
            yield ctx.at(
                "FL106",
                f"base image {shown} comes from {ref.domain}, which is not a trusted registry",
                st.node,
                fix="Use an image from " + ", ".join(ctx.trusted_registries),
            )
