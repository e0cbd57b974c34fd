"""Package managers in RUN: apt, apk, pip, npm/yarn, yum/dnf/zypper.

Two kinds of rules live here. Correctness rules (``-y`` missing, ``apt`` in
scripts) apply to every stage. Size rules (caches and package lists left in
the layer) apply only to stages whose layers ship in the final image: a
builder stage's cache never reaches users. Every size rule understands
``RUN --mount=type=cache`` and ``type=tmpfs``: a cache directory on such a
mount is not in the layer, so there is nothing to clean.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from forklift.dockerfile.instructions import RunCommand
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext, StageModel
from forklift.lint.runscripts import RunScript
from forklift.lint.shellscript import ShellCommand

_PIP = re.compile(r"pip(3(\.\d+)?)?\Z")
_PYTHON = re.compile(r"python(3(\.\d+)?)?\Z")


def is_apt_install(cmd: ShellCommand) -> bool:
    """``apt-get install`` / ``apt install`` (also ``apt-get -y install``)."""
    return cmd.name in ("apt-get", "apt") and cmd.subcommand() == "install"


def is_apt_update(cmd: ShellCommand) -> bool:
    return cmd.name in ("apt-get", "apt") and cmd.subcommand() == "update"


def is_pip_install(cmd: ShellCommand) -> bool:
    """``pip install``, ``pip3 install``, ``python3 -m pip install``."""
    if _PIP.match(cmd.name):
        return cmd.subcommand() == "install"
    if _PYTHON.match(cmd.name):
        args = list(cmd.args)
        if len(args) >= 3 and args[0] == "-m" and args[1] == "pip":
            return "install" in args[2:] and args[2:][0] == "install"
    return False


def is_npm_install(cmd: ShellCommand) -> bool:
    return cmd.name == "npm" and cmd.subcommand() in ("install", "i", "ci", "add")


def is_yarn_install(cmd: ShellCommand) -> bool:
    return cmd.name == "yarn" and cmd.subcommand() in ("", "install", "add")


def _removes(cmd: ShellCommand, *prefixes: str) -> bool:
    """``rm`` of a path under one of ``prefixes`` (``rm -rf /var/lib/apt/lists/*``)."""
    if cmd.name != "rm":
        return False
    for arg in cmd.positional():
        path = arg.replace("~", "/root").replace("${HOME}", "/root").replace("$HOME", "/root")
        path = posixpath.normpath(path.rstrip("*"))
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix + "/") or prefix.startswith(path + "/"):
                return True
    return False


@dataclass(frozen=True)
class _Cache:
    """A kind of package cache: how it gets in a layer and how it gets out."""

    key: str
    tool: str
    paths: tuple[str, ...]

    def installs(self, cmd: ShellCommand) -> bool:
        return _INSTALLS[self.key](cmd)

    def cleans(self, cmd: ShellCommand) -> bool:
        return _removes(cmd, *self.paths) or _CLEANS[self.key](cmd)


_INSTALLS = {
    "apt": is_apt_install,
    "apk": lambda c: c.name == "apk" and c.subcommand() == "add" and not c.has_flag("--no-cache"),
    "pip": lambda c: is_pip_install(c) and not c.has_flag("--no-cache-dir"),
    "npm": is_npm_install,
    "yarn": is_yarn_install,
    "yum": lambda c: c.name in ("yum", "dnf", "microdnf") and c.subcommand() == "install",
}
_CLEANS = {
    "apt": lambda c: c.name in ("apt-get", "apt") and c.subcommand() == "dist-clean",
    "apk": lambda c: c.name == "apk" and c.subcommand() == "cache",
    "pip": lambda c: _PIP.match(c.name) is not None and c.subcommand() == "cache",
    "npm": lambda c: c.name == "npm" and c.subcommand() == "cache",
    "yarn": lambda c: c.name == "yarn" and c.subcommand() == "cache",
    "yum": lambda c: c.name in ("yum", "dnf", "microdnf") and c.subcommand() == "clean",
}
CACHES = (
    _Cache("apt", "apt-get install", ("/var/lib/apt/lists",)),
    _Cache("apk", "apk add", ("/var/cache/apk", "/etc/apk/cache")),
    _Cache("pip", "pip install", ("/root/.cache/pip", "/root/.cache")),
    _Cache("npm", "npm install", ("/root/.npm", "/root/.npm/_cacache")),
    _Cache("yarn", "yarn install", ("/usr/local/share/.cache/yarn", "/root/.cache/yarn")),
    _Cache("yum", "yum/dnf install", ("/var/cache/yum", "/var/cache/dnf")),
)
_CACHE_MOUNT_HINT = {
    "apt": "/var/lib/apt",
    "apk": "/var/cache/apk",
    "pip": "/root/.cache/pip",
    "npm": "/root/.npm",
    "yarn": "/usr/local/share/.cache/yarn",
    "yum": "/var/cache/dnf",
}


def _mounted(rs: RunScript, cache: _Cache) -> bool:
    """True when a cache/tmpfs mount of this RUN holds the cache (nothing lands in the layer)."""
    if any(rs.covers(p) for p in cache.paths):
        return True
    if cache.key == "apt" and rs.covers("/var/lib/apt"):
        return True
    targets = rs.cache_targets()
    if cache.key == "pip":
        return any(t.endswith(("/.cache", "/.cache/pip")) or "pip" in t for t in targets)
    if cache.key in ("npm", "yarn"):
        return any(cache.key in t or t.endswith("/.cache") for t in targets)
    return False


def _run_commands(rs: RunScript) -> list[tuple[ShellCommand, int]]:
    return list(rs.commands())


def _apt_yes(cmd: ShellCommand, previous: ShellCommand | None) -> bool:
    if cmd.has_flag("-y", "--yes", "--assume-yes", "--force-yes"):
        return True
    for i, arg in enumerate(cmd.args):
        if re.fullmatch(r"-q{2,}[a-z]*|--quiet=[2-9]", arg):
            return True
        if arg == "-o" and i + 1 < len(cmd.args) and "assume-yes" in cmd.args[i + 1].lower():
            return True
        if arg.startswith("-oAPT::Get::Assume-Yes") or "Assume-Yes=" in arg:
            return True
    return previous is not None and cmd.connector == "|" and previous.name == "yes"


def _recommends_off(cmd: ShellCommand) -> bool:
    if cmd.has_flag("--no-install-recommends"):
        return True
    return any("install-recommends" in a.lower() for a in cmd.args)


def check(ctx: LintContext) -> Iterator[Finding]:
    """All package-manager rules, stage by stage."""
    for model in ctx.stages:
        yield from _stage(ctx, model)


def _stage(ctx: LintContext, model: StageModel) -> Iterator[Finding]:
    env_names = ctx.env_names(model)
    recommends_configured = False
    pending: dict[str, tuple[int, RunCommand]] = {}  # cache key -> (install line, RUN)
    later_cleaned: set[tuple[str, int]] = set()
    size_findings: list[tuple[str, int, Finding]] = []
    for run, rs in model.runs:
        commands = _run_commands(rs)
        text = rs.instruction.source
        prev: ShellCommand | None = None
        updates = [line for c, line in commands if is_apt_update(c)]
        installs_apt = any(
            c.name in ("apt-get", "apt")
            and c.subcommand()
            in ("install", "upgrade", "dist-upgrade", "build-dep", "full-upgrade")
            for c, _ in commands
        )
        if updates and not installs_apt:
            yield ctx.finding(
                "FL202",
                "apt-get update runs in a RUN without apt-get install; the cached update goes stale",
                updates[0],
                end_line=run.node.end_line,
            )
        apt_reported = False
        for cmd, line in commands:
            if cmd.name == "apt" and not apt_reported:
                apt_reported = True
                yield ctx.finding(
                    "FL213",
                    f"apt {cmd.subcommand()} in a script; apt's interface is not stable for scripts",
                    line,
                    fix=f"Use apt-get {cmd.subcommand()} (apt-cache for search/show)".rstrip(),
                )
            if is_apt_install(cmd):
                if not _apt_yes(cmd, prev):
                    yield ctx.finding(
                        "FL203",
                        "apt-get install without -y will wait for confirmation and fail the build",
                        line,
                    )
                if not _recommends_off(cmd) and not recommends_configured:
                    yield ctx.finding(
                        "FL204",
                        "apt-get install without --no-install-recommends installs recommended packages too",
                        line,
                    )
            if (
                cmd.name in ("yum", "dnf")
                and cmd.subcommand() in ("install", "groupinstall")
                and not cmd.has_flag("-y", "--assumeyes")
            ):
                yield ctx.finding(
                    "FL214", f"{cmd.name} install without -y will wait for confirmation", line
                )
            if (
                cmd.name == "zypper"
                and cmd.subcommand() in ("install", "in")
                and not cmd.has_flag("-n", "--non-interactive", "-y", "--no-confirm")
            ):
                yield ctx.finding(
                    "FL214",
                    "zypper install without --non-interactive will wait for confirmation",
                    line,
                    fix="Use zypper --non-interactive install (or zypper install -y)",
                )
            prev = cmd
        if "Install-Recommends" in text or "install-recommends" in text.lower():
            recommends_configured = recommends_configured or any(
                c.name in ("echo", "printf", "tee") for c, _ in commands
            )
        if not model.final:
            continue
        # -- size rules: what stays in this RUN's layer
        for cache in CACHES:
            install = next(((c, ln) for c, ln in commands if cache.installs(c)), None)
            cleaned = any(cache.cleans(c) for c, _ in commands)
            if install is not None and not cleaned and not _mounted(rs, cache):
                if cache.key == "pip" and (
                    "PIP_NO_CACHE_DIR" in env_names
                    or any(a.startswith("PIP_NO_CACHE_DIR=") for a in install[0].assignments)
                ):
                    continue
                if cache.key == "apk" and install[0].has_flag("--no-cache"):
                    continue
                pending[cache.key] = (install[1], run)
                size_findings.append((cache.key, install[1], _size_finding(ctx, cache, install)))
            elif install is None and cleaned and cache.key in pending:
                where, _ = pending.pop(cache.key)
                clean_line = next(ln for c, ln in commands if cache.cleans(c))
                later_cleaned.add((cache.key, where))
                yield ctx.finding(
                    "FL201",
                    f"this RUN cleans the {cache.key} cache of the {cache.tool} at line {where}; "
                    "that layer still holds it",
                    clean_line,
                    end_line=run.node.end_line,
                    fix=f"Move the cleanup into the RUN at line {where} (same layer), "
                    f"or use RUN --mount=type=cache,target={_CACHE_MOUNT_HINT[cache.key]}",
                )
        for cmd, line in commands:
            if cmd.name in ("yum", "dnf", "zypper") and cmd.subcommand() in ("install", "in"):
                cleaned = any(
                    c.name == cmd.name and c.subcommand() in ("clean", "cc") for c, _ in commands
                ) or any(
                    _removes(c, "/var/cache/yum", "/var/cache/dnf", "/var/cache/zypp")
                    for c, _ in commands
                )
                mounted = any(
                    rs.covers(p) for p in ("/var/cache/yum", "/var/cache/dnf", "/var/cache/zypp")
                )
                if not cleaned and not mounted and cmd.name == "zypper":
                    yield ctx.finding(
                        "FL215",
                        "zypper install leaves its cache in the layer",
                        line,
                        fix="End the same RUN with && zypper clean --all",
                    )
    for key, line, finding in size_findings:
        if (key, line) not in later_cleaned:
            yield finding


def _size_finding(ctx: LintContext, cache: _Cache, install: tuple[ShellCommand, int]) -> Finding:
    cmd, line = install
    key = cache.key
    if key == "apt":
        return ctx.finding(
            "FL205",
            "apt-get install leaves /var/lib/apt/lists in the layer",
            line,
        )
    if key == "apk":
        return ctx.finding(
            "FL206", "apk add without --no-cache keeps the APK index in the layer", line
        )
    if key == "pip":
        return ctx.finding(
            "FL207",
            f"{cmd.name} install without --no-cache-dir keeps pip's cache in the layer",
            line,
        )
    if key in ("npm", "yarn"):
        clean = "npm cache clean --force" if key == "npm" else "yarn cache clean"
        return ctx.finding(
            "FL208",
            f"{cmd.name} {cmd.subcommand() or 'install'} leaves the {key} cache in the layer",
            line,
            fix=f"Add && {clean} to the same RUN, or RUN --mount=type=cache,target={_CACHE_MOUNT_HINT[key]}",
        )
    manager = cmd.name
    return ctx.finding(
        "FL215",
        f"{manager} install without {manager} clean all leaves its cache in the layer",
        line,
        fix=f"End the same RUN with && {manager} clean all",
    )
