"""Security: the user the image runs as, sudo, scripts piped from the network.

(Secret-looking ARG/ENV names are BuildKit's check, in :mod:`.buildkit`.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from forklift.dockerfile.instructions import UserCommand
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext, StageModel
from forklift.lint.runscripts import RunScript
from forklift.lint.shellscript import SHELLS, Script, ShellCommand, parse_script, shell_c_argument

_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "http", "aria2c"})
_INTERPRETERS = SHELLS | {"python", "python3", "perl", "ruby", "node"}
_PROCESS_SUBST = re.compile(r"\b(?:ba|z|k|da|a)?sh\s+<\(\s*(?:curl|wget)\b")
_NONROOT_HINT = re.compile(r"non-?root|rootless|distroless.*:nonroot", re.IGNORECASE)


def _chain(ctx: LintContext) -> list[StageModel]:
    """The final image's stages, base first."""
    return [m for m in ctx.stages if m.final]


def _is_root(user: str) -> bool:
    name = user.split(":", 1)[0].strip()
    return name in ("root", "0")


def check(ctx: LintContext) -> Iterator[Finding]:
    yield from _user(ctx)
    for model in ctx.stages:
        for run, rs in model.runs:
            sudo_line = next(
                (ln for c, ln in rs.commands() if c.name == "sudo" or "sudo" in c.wrappers), None
            )
            if sudo_line is not None:
                yield ctx.finding(
                    "FL403", "sudo is used in RUN", sudo_line, end_line=run.node.end_line
                )
            yield from _pipe_to_shell(ctx, rs)


def _user(ctx: LintContext) -> Iterator[Finding]:
    chain = _chain(ctx)
    if not chain:
        return
    last: UserCommand | None = None
    for model in chain:
        for cmd in model.stage.commands:
            if isinstance(cmd, UserCommand):
                last = cmd
    if last is not None:
        if _is_root(last.user):
            yield ctx.at(
                "FL401",
                f"the last USER is {last.user}: the container runs as root",
                last.node,
            )
        return
    root_stage = chain[0].stage
    if _NONROOT_HINT.search(root_stage.base_name):
        return
    final = chain[-1].stage
    yield ctx.at(
        "FL402",
        f"the final stage (from {root_stage.base_name}) never sets USER; it runs as the base image's user",
        final.node,
    )


def _pipelines(script: Script, depth: int = 0) -> Iterator[list[ShellCommand]]:
    """The pipelines of ``script`` (commands unwrapped), nested scripts included."""
    groups: dict[int, list[ShellCommand]] = {}
    for cmd in script.commands:
        groups.setdefault(cmd.pipeline, []).append(cmd.unwrapped())
        if depth < 3:
            for sub in cmd.substitutions:
                yield from _pipelines(parse_script(sub), depth + 1)
            code = shell_c_argument(cmd.unwrapped())
            if code is not None:
                yield from _pipelines(parse_script(code), depth + 1)
    yield from groups.values()


def _pipe_to_shell(ctx: LintContext, rs: RunScript) -> Iterator[Finding]:
    for script in rs.scripts():
        if script.script is None:
            continue
        for pipeline in _pipelines(script.script):
            for i, cmd in enumerate(pipeline):
                if i and cmd.name in _INTERPRETERS:
                    source = next((c for c in pipeline[:i] if c.name in _DOWNLOADERS), None)
                    if source is not None:
                        yield ctx.finding(
                            "FL405",
                            f"{source.name} output is piped into {cmd.name}: the script runs unverified",
                            script.file_line(pipeline[0].line),
                        )
                        return
                if cmd.name in SHELLS and re.search(
                    r"\$\(\s*(curl|wget)\b|`\s*(curl|wget)\b", " ".join(cmd.args)
                ):
                    yield ctx.finding(
                        "FL405",
                        f"{cmd.name} runs a script fetched by command substitution, unverified",
                        script.file_line(cmd.line),
                    )
                    return
        if _PROCESS_SUBST.search(script.script.text):
            yield ctx.finding(
                "FL405",
                "a shell runs a downloaded script through process substitution, unverified",
                rs.instruction.start_line,
                end_line=rs.instruction.end_line,
            )
            return
