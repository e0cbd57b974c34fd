"""Correctness: cd vs WORKDIR, COPY --from targets, unused ARGs, pipes without pipefail,
and shipping a compiler toolchain from a single-stage build.

(The checks BuildKit also makes, such as relative WORKDIR or multiple CMDs,
are in :mod:`.buildkit`.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from forklift.dockerfile.gocompat import suggest
from forklift.dockerfile.instructions import ArgCommand, Command, CopyCommand, RunCommand
from forklift.dockerfile.mounts import MountError, mount_from
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext, StageModel

#: ARGs that programs read from the environment without a $reference in the Dockerfile
_ENV_CONSUMED = re.compile(
    r"(DEBIAN_FRONTEND|DEBCONF_.*|TZ|LANG|LC_.*|PIP_.*|PYTHON.*|UV_.*|POETRY_.*|NPM_.*|NODE_.*|"
    r"YARN_.*|GO.*|CGO_.*|CARGO_.*|RUST.*|MAVEN_.*|GRADLE_.*|JAVA_.*|JDK_.*|"
    r"(HTTP|HTTPS|FTP|NO|ALL)_PROXY|BUILDKIT_.*|SOURCE_DATE_EPOCH|"
    r"(TARGET|BUILD)(PLATFORM|OS|ARCH|VARIANT|OSVERSION|STAGE))\Z",
    re.IGNORECASE,
)
_TOOLCHAIN_PACKAGES = re.compile(
    r"^(build-essential|build-base|gcc(-\d+)?|g\+\+(-\d+)?|clang(-\d+)?|golang(-go)?(-\d[\d.]*)?|"
    r"go|rustc|cargo|rust|openjdk-\d+-jdk(-headless)?|java-\d+-openjdk-devel|maven|gradle|"
    r"gcc-c\+\+|musl-dev|libc6?-dev|cmake|autoconf|automake)$"
)
_REMOVERS = {
    "apt-get": ("purge", "remove", "autoremove"),
    "apt": ("purge", "remove", "autoremove"),
    "apk": ("del",),
    "yum": ("remove", "erase", "autoremove"),
    "dnf": ("remove", "erase", "autoremove"),
}
_INSTALLERS = {
    "apt-get": "install",
    "apt": "install",
    "apk": "add",
    "yum": "install",
    "dnf": "install",
    "microdnf": "install",
}


def check(ctx: LintContext) -> Iterator[Finding]:
    for model in ctx.stages:
        yield from _cd(ctx, model)
        yield from _copy_from(ctx, model)
        yield from _pipefail(ctx, model)
    yield from _unused_args(ctx)
    yield from _toolchain(ctx)


def _cd(ctx: LintContext, model: StageModel) -> Iterator[Finding]:
    for run, rs in model.runs:
        for script in rs.scripts():
            if script.script is None:
                continue
            cmd = next((c for c in script.script.commands if c.name == "cd"), None)
            if cmd is not None:
                target = cmd.args[0] if cmd.args else "~"
                yield ctx.finding(
                    "FL502",
                    f"RUN changes directory with cd {target}",
                    script.file_line(cmd.line),
                    end_line=run.node.end_line,
                    fix=f"Use WORKDIR {target} before the RUN (cd lasts only for this RUN)",
                )
                break


def _copy_from(ctx: LintContext, model: StageModel) -> Iterator[Finding]:
    refs: list[tuple[str, Command]] = []
    for cmd in model.stage.commands:
        if isinstance(cmd, CopyCommand) and cmd.from_:
            refs.append((cmd.from_, cmd))
        elif isinstance(cmd, RunCommand):
            for spec in cmd.mount_specs:
                try:
                    source = mount_from(spec)
                except MountError:
                    continue
                if source:
                    refs.append((source, cmd))
    names = [m.name for m in ctx.stages if m.name]
    for value, ref_cmd in refs:
        node = ref_cmd.node
        if "$" in value:
            continue
        target = ctx.parsed.stage(value)
        if target is not None:
            if target.index == model.index:
                yield ctx.at(
                    "FL506", f"--from={value} names the stage this instruction is in", node
                )
            elif target.index > model.index:
                yield ctx.at(
                    "FL521",
                    f"--from={value} names a stage defined later (line {target.line})",
                    node,
                    fix=f"Move stage {value!r} above line {model.stage.line}",
                )
            continue
        if value.isdigit():
            yield ctx.at("FL505", f"--from={value}: there is no stage {value}", node)
            continue
        if any(ch in value for ch in "/:@."):
            continue  # an image reference, deliberately
        hint = suggest(value.lower(), names, case_sensitive=False)
        extra = f" (did you mean {hint}?)" if hint else ""
        yield ctx.at(
            "FL505",
            f"--from={value} names no stage of this file, so the image {value}:latest is pulled{extra}",
            node,
            fix=(f"Use --from={hint}" if hint else "Name an earlier stage, or a tagged image"),
        )


def _pipefail(ctx: LintContext, model: StageModel) -> Iterator[Finding]:
    for _run, rs in model.runs:
        for script in rs.scripts():
            if script.script is None or not script.is_bash or script.pipefail:
                continue
            pipefail_set = False
            for cmd in script.script.commands:
                inner = cmd.unwrapped()
                if inner.name == "set" and any("pipefail" in a for a in inner.args):
                    pipefail_set = True
                if cmd.connector == "|" and not pipefail_set:
                    yield ctx.finding(
                        "FL513",
                        f"a pipe into {inner.name} runs under {script.interpreter} without pipefail: "
                        "only the last command's failure fails the build",
                        script.file_line(cmd.line),
                    )
                    break


def _references(text: str, name: str) -> bool:
    return re.search(r"\$\{?" + re.escape(name) + r"(?![A-Za-z0-9_])", text) is not None


def _stage_text(model: StageModel, after_line: int) -> str:
    parts: list[str] = []
    for cmd in model.stage.commands:
        node = cmd.node
        if node.start_line <= after_line:
            continue
        parts.append(node.original)
        parts.extend(f.text for f in node.flags)
        parts.extend(h.content for h in node.heredocs)
    return "\n".join(parts)


def _unused_args(ctx: LintContext) -> Iterator[Finding]:
    children: dict[int, list[StageModel]] = {}
    for m in ctx.stages:
        if m.base is not None:
            children.setdefault(m.base, []).append(m)
    # Global ARGs: used by a FROM line or imported by a stage.
    from_text = "\n".join(
        " ".join(f.text for f in m.stage.node.flags) + " " + m.stage.base_name for m in ctx.stages
    )
    imported = {
        a.key
        for m in ctx.stages
        for c in m.stage.commands
        if isinstance(c, ArgCommand)
        for a in c.args
    }
    for cmd in ctx.parsed.meta_args:
        for arg in cmd.args:
            if _ENV_CONSUMED.match(arg.key) or arg.key in imported:
                continue
            later = "\n".join(
                a.value or "" for c in ctx.parsed.meta_args if c.line > cmd.line for a in c.args
            )
            if not _references(from_text, arg.key) and not _references(later, arg.key):
                yield ctx.at(
                    "FL511",
                    f"global ARG {arg.key} is used by no FROM line and imported by no stage",
                    cmd.node,
                    fix=f"Remove ARG {arg.key}, or declare ARG {arg.key} in the stage that needs it",
                )
    for model in ctx.stages:
        for stage_cmd in model.stage.commands:
            if not isinstance(stage_cmd, ArgCommand):
                continue
            for arg in stage_cmd.args:
                if _ENV_CONSUMED.match(arg.key):
                    continue
                texts = [_stage_text(model, stage_cmd.line)]
                todo = list(children.get(model.index, ()))
                while todo:
                    child = todo.pop()
                    texts.append(_stage_text(child, 0))
                    todo.extend(children.get(child.index, ()))
                rest = [a.value or "" for a in stage_cmd.args if a is not arg]
                if not any(_references(t, arg.key) for t in (*texts, *rest)):
                    yield ctx.at(
                        "FL511",
                        f"ARG {arg.key} is never referenced after its declaration",
                        stage_cmd.node,
                        fix=f"Remove ARG {arg.key} (RUN steps still see it only if something uses it)",
                    )


def _toolchain(ctx: LintContext) -> Iterator[Finding]:
    if len(ctx.stages) != 1:
        return
    model = ctx.stages[0]
    for run, rs in model.runs:
        commands = list(rs.commands())
        removed: set[str] = set()
        for cmd, _ in commands:
            if cmd.subcommand() in _REMOVERS.get(cmd.name, ()):
                removed.update(cmd.positional()[1:])
                if cmd.name == "apk":
                    removed.add("*virtual*")
        for cmd, line in commands:
            sub = cmd.subcommand()
            if _INSTALLERS.get(cmd.name) == sub:
                tools = [
                    p for p in cmd.positional()[1:] if _TOOLCHAIN_PACKAGES.match(p.split("=")[0])
                ]
                virtual = cmd.name == "apk" and cmd.has_flag("--virtual", "-t")
                if (
                    tools
                    and not (virtual and "*virtual*" in removed)
                    and not (set(tools) & removed)
                ):
                    if cmd.name in ("apt-get", "apt") and {"autoremove", "purge", "remove"} & {
                        c.subcommand() for c, _ in commands if c.name in ("apt-get", "apt")
                    }:
                        continue  # build dependencies removed again in the same RUN
                    yield ctx.finding(
                        "FL601",
                        f"{cmd.name} {sub} {' '.join(tools)} ships a build toolchain in the only stage",
                        line,
                        end_line=run.node.end_line,
                    )
                    return
            build = _build_step(cmd)
            if build:
                yield ctx.finding(
                    "FL601",
                    f"{build} runs in the only stage, so its toolchain ships in the image",
                    line,
                    end_line=run.node.end_line,
                )
                return


def _build_step(cmd) -> str:  # type: ignore[no-untyped-def]
    name, sub = cmd.name, cmd.subcommand()
    if name == "go" and sub == "build":
        return "go build"
    if name == "cargo" and sub == "build":
        return "cargo build"
    if name in ("npm", "yarn", "pnpm") and sub == "run" and "build" in cmd.positional()[1:2]:
        return f"{name} run build"
    if name in ("yarn", "pnpm") and sub == "build":
        return f"{name} build"
    if name in ("mvn", "./mvnw") and sub in ("package", "install"):
        return f"{name} {sub}"
    if name in ("gradle", "./gradlew") and sub in ("build", "assemble", "installDist"):
        return f"{name} {sub}"
    return ""
