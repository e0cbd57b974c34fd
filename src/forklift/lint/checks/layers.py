"""Layers and the build cache: RUN count, what COPY brings in and when, ADD vs COPY."""

from __future__ import annotations

import re
from collections.abc import Iterator

from forklift.dockerfile.instructions import AddCommand, CopyCommand, RunCommand
from forklift.lint.checks.packages import is_pip_install
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext, StageModel
from forklift.lint.shellscript import ShellCommand

_WHOLE_CONTEXT = frozenset({".", "./", "*", "./*", "/", "./."})
_ARCHIVE = re.compile(
    r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst|tzst|tar\.lz|tar\.lzma|tlz)\Z",
    re.IGNORECASE,
)
_REMOTE = ("http://", "https://", "git@", "git://", "ssh://")


def copies_whole_context(cmd: CopyCommand | AddCommand) -> bool:
    """``COPY . .`` and the like: a source that is the whole build context."""
    if isinstance(cmd, CopyCommand) and cmd.from_:
        return False
    return any(src.strip() in _WHOLE_CONTEXT for src in cmd.sources)


def dependency_install(cmd: ShellCommand) -> str | None:
    """The ecosystem when ``cmd`` installs a project's dependencies from its manifests."""
    name, sub = cmd.name, cmd.subcommand()
    if (
        name == "npm"
        and sub in ("install", "i", "ci")
        and not cmd.has_flag("-g", "--global")
        and len(cmd.positional()) <= 1
    ):
        return "npm"
    if name == "yarn" and sub in ("", "install"):
        return "npm"
    if name == "pnpm" and sub in ("install", "i"):
        return "npm"
    if is_pip_install(cmd):
        args = cmd.args
        if any(
            a in ("-r", "--requirement") or a.startswith(("-r", "--requirement=")) for a in args
        ):
            return "python"
        if any(a in (".", "./", "-e.") for a in args) or ("-e" in args and "." in args):
            return "python"
        return None
    if name in ("poetry", "pipenv") and sub in ("install", "sync"):
        return "python"
    if name == "uv" and sub == "sync":
        return "python"
    if name == "bundle" and sub in ("", "install"):
        return "ruby"
    if name == "composer" and sub == "install":
        return "php"
    if name == "go" and sub == "mod" and "download" in cmd.args:
        return "go"
    if name == "dotnet" and sub == "restore":
        return "dotnet"
    if name == "cargo" and sub == "fetch":
        return "rust"
    if name in ("mvn", "./mvnw", "mvnw") and any("go-offline" in a for a in cmd.args):
        return "java"
    return None


def _installs(model: StageModel, run: RunCommand) -> list[tuple[str, int]]:
    for r, rs in model.runs:
        if r is run:
            return [(eco, line) for c, line in rs.commands() if (eco := dependency_install(c))]
    return []


def check(ctx: LintContext) -> Iterator[Finding]:
    for model in ctx.stages:
        yield from _consecutive_runs(ctx, model)
        yield from _copies(ctx, model)


def _consecutive_runs(ctx: LintContext, model: StageModel) -> Iterator[Finding]:
    previous: RunCommand | None = None
    for cmd in model.stage.commands:
        if isinstance(cmd, RunCommand):
            if previous is not None and previous.node.flag_texts == cmd.node.flag_texts:
                yield ctx.at(
                    "FL209",
                    f"RUN follows the RUN at line {previous.line} directly; each adds a layer",
                    cmd.node,
                    fix=f"Merge it into the RUN at line {previous.line} with && (or one heredoc)",
                )
            previous = cmd
        else:
            previous = None


def _copies(ctx: LintContext, model: StageModel) -> Iterator[Finding]:
    installed_before: set[str] = set()
    whole: CopyCommand | AddCommand | None = None
    for cmd in model.stage.commands:
        if isinstance(cmd, (CopyCommand, AddCommand)):
            if copies_whole_context(cmd):
                yield ctx.at(
                    "FL211",
                    f"{cmd.node.raw_keyword.upper()} {' '.join(cmd.sources)} copies the whole build context",
                    cmd.node,
                )
                if whole is None:
                    whole = cmd
            if isinstance(cmd, AddCommand):
                yield from _add(ctx, cmd)
            yield from _dest_slash(ctx, cmd)
        elif isinstance(cmd, RunCommand):
            for eco, line in _installs(model, cmd):
                if whole is not None and eco not in installed_before:
                    yield ctx.at(
                        "FL210",
                        f"the whole context is copied before the {eco} dependencies are installed "
                        f"(line {line}): any source change reinstalls them",
                        whole.node,
                        fix=_manifest_fix(eco),
                    )
                    installed_before.add(eco)
                elif whole is None:
                    installed_before.add(eco)


def _manifest_fix(eco: str) -> str:
    manifests = {
        "npm": "COPY package.json package-lock.json ./ then RUN npm ci, then COPY . .",
        "python": "COPY requirements.txt ./ then RUN pip install -r requirements.txt, then COPY . .",
        "ruby": "COPY Gemfile Gemfile.lock ./ then RUN bundle install, then COPY . .",
        "php": "COPY composer.json composer.lock ./ then RUN composer install, then COPY . .",
        "go": "COPY go.mod go.sum ./ then RUN go mod download, then COPY . .",
        "dotnet": "COPY *.csproj ./ then RUN dotnet restore, then COPY . .",
        "rust": "COPY Cargo.toml Cargo.lock ./ then RUN cargo fetch, then COPY . .",
        "java": "COPY pom.xml ./ then RUN mvn dependency:go-offline, then COPY . .",
    }
    return manifests.get(eco, "Copy the dependency manifests and install before COPY . .")


def _add(ctx: LintContext, cmd: AddCommand) -> Iterator[Finding]:
    if cmd.checksum or cmd.keep_git_dir:
        return
    local = [
        s
        for s in cmd.sources
        if not s.startswith(_REMOTE) and not _ARCHIVE.search(s) and "$" not in s
    ]
    if cmd.contents or (local and len(local) == len(cmd.sources)):
        what = " ".join(cmd.sources) or "<<" + cmd.contents[0].path
        yield ctx.at(
            "FL212",
            f"ADD {what} copies local files; COPY is the instruction for that",
            cmd.node,
            fix=f"Use COPY {what} {cmd.dest}".rstrip(),
        )


def _dest_slash(ctx: LintContext, cmd: CopyCommand | AddCommand) -> Iterator[Finding]:
    count = len(cmd.sources) + len(cmd.contents)
    if isinstance(cmd, CopyCommand) and cmd.parents:
        return
    if count >= 2 and not cmd.dest.endswith("/") and "$" not in cmd.dest:
        yield ctx.at(
            "FL520",
            f"{cmd.node.raw_keyword.upper()} with {count} sources needs a directory destination ending in /",
            cmd.node,
            fix=f"Use {cmd.dest}/ as the destination",
        )
