"""The build context: a missing or incomplete .dockerignore, copying ignored files.

These rules run only when the linter knows the build context (``--context
DIR``, or ``context=`` in the API): without it, there is nothing to look at.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path

from forklift.dockerfile.gocompat import go_quote
from forklift.dockerfile.ignore import IgnoreMatcher, find_ignore_file
from forklift.dockerfile.instructions import AddCommand, CopyCommand
from forklift.errors import ForkliftError
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext

_REMOTE = ("http://", "https://", "git@", "git://", "ssh://")


def _sensitive(context: Path) -> list[str]:
    """Top-level entries that should not travel with the context: .git, .env*, node_modules."""
    found: list[str] = []
    try:
        entries = sorted(p.name for p in context.iterdir())
    except OSError:
        return found
    for name in entries:
        if name in (".git", "node_modules") or name == ".env" or name.startswith(".env."):
            found.append(name)
    return found


def check(ctx: LintContext) -> Iterator[Finding]:
    if ctx.context_dir is None:
        return
    context = ctx.context_dir
    ignore_file = find_ignore_file(context, ctx.dockerfile_path)
    present = _sensitive(context)
    if ignore_file is None:
        what = f" (it holds {', '.join(present)})" if present else ""
        yield ctx.finding(
            "FL301",
            f'the build context "{context}" has no .dockerignore{what}',
            1,
            fix="Create .dockerignore with at least: " + ", ".join(present or [".git"]),
        )
        return
    try:
        matcher = IgnoreMatcher.from_file(ignore_file)
    except ForkliftError as exc:
        yield ctx.finding("FL000", f"{ignore_file}: {exc.message}", 1)
        return
    missing = [p for p in present if not matcher.excludes(p)]
    if missing:
        yield ctx.finding(
            "FL302",
            f"{ignore_file.name} does not exclude {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} in the build context",
            1,
            fix=f"Add {', '.join(missing)} to {ignore_file.name}",
        )
    if matcher.has_exclusions or not matcher:
        # BuildKit skips CopyIgnoredFile when the ignore file re-includes anything.
        return
    for model in ctx.stages:
        for cmd in model.stage.commands:
            if not isinstance(cmd, (CopyCommand, AddCommand)):
                continue
            if isinstance(cmd, CopyCommand) and cmd.from_:
                continue
            verb = "Add" if isinstance(cmd, AddCommand) else "Copy"
            for src in cmd.sources:
                if src.startswith(_REMOTE) or "$" in src:
                    continue
                clean = posixpath.normpath(src).lstrip("/")
                if clean in (".", "") or not matcher.excludes(clean):
                    continue
                yield ctx.at(
                    "FL303",
                    f"Attempting to {verb} file {go_quote(clean)} that is excluded by .dockerignore",
                    cmd.node,
                )
