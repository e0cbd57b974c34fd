"""What a RUN instruction executes, as the lint rules see it.

A RUN is one of: a shell-form command line (run by the stage's SHELL, default
``/bin/sh -c``), an exec-form argv (``RUN ["bash", "-c", "..."]``), or
heredocs (``RUN <<EOF``: the body is the script; a ``#!`` line picks another
interpreter, ``RUN python3 <<EOF`` feeds the body to a program). This module
turns each into a :class:`RunScript`: the shell script text (``None`` when the
code is not shell, e.g. a Python heredoc) with a map from script lines back to
Dockerfile lines, so findings point at the physical line of a long RUN.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property

from forklift.dockerfile.ast import Instruction
from forklift.dockerfile.instructions import DEFAULT_SHELL
from forklift.dockerfile.mounts import Mount, MountError, parse_mount
from forklift.dockerfile.parser import parse_heredoc_marker
from forklift.dockerfile.shell import ExpansionError
from forklift.lint.shellscript import (
    SHELLS,
    Script,
    ShellCommand,
    parse_script,
    shell_c_argument,
)

_NON_POSIX = frozenset({"powershell", "pwsh", "cmd", "powershell.exe", "cmd.exe", "pwsh.exe"})


@dataclass(frozen=True)
class RunScript:
    """The code one RUN executes.

    ``interpreter`` is the program that runs it (``sh``, ``bash``, ``python3``);
    ``script`` is ``None`` when that is not a POSIX shell. ``lines[i]`` is the
    Dockerfile line of script line ``i``. ``pipefail`` is true when the shell
    was started with ``-o pipefail``.
    """

    instruction: Instruction
    interpreter: str
    script: Script | None
    lines: tuple[int, ...]
    mounts: tuple[Mount, ...] = ()
    pipefail: bool = False
    exec_form: bool = False
    extra: tuple[RunScript, ...] = ()

    @property
    def is_shell(self) -> bool:
        """True when the code is a POSIX-like shell script the rules can read."""
        return self.script is not None

    @property
    def is_bash(self) -> bool:
        """True for bash/zsh/ksh (shells that have ``pipefail`` for sure)."""
        return self.interpreter in ("bash", "zsh", "ksh", "mksh")

    def file_line(self, script_line: int) -> int:
        """The Dockerfile line of a 0-based script line."""
        if not self.lines:
            return self.instruction.start_line
        if script_line < 0:
            return self.lines[0]
        return self.lines[min(script_line, len(self.lines) - 1)]

    def commands(self) -> Iterator[tuple[ShellCommand, int]]:
        """Every command this RUN runs (nested ``sh -c`` included) with its Dockerfile line."""
        return iter(self._commands)

    @cached_property
    def _commands(self) -> list[tuple[ShellCommand, int]]:
        out: list[tuple[ShellCommand, int]] = []
        if self.script is not None:
            out.extend((cmd, self.file_line(cmd.line)) for cmd in self.script.all_commands())
        for sub in self.extra:
            out.extend(sub.commands())
        return out

    def scripts(self) -> Iterator[RunScript]:
        """This script and the heredoc bodies fed to a shell (``RUN bash <<EOF``)."""
        yield self
        for sub in self.extra:
            yield from sub.scripts()

    def cache_targets(self) -> tuple[str, ...]:
        """Targets of ``--mount=type=cache`` and ``type=tmpfs`` (contents never reach the layer)."""
        return tuple(
            posixpath.normpath(m.target)
            for m in self.mounts
            if m.type in ("cache", "tmpfs") and m.target
        )

    def covers(self, path: str) -> bool:
        """True when a cache/tmpfs mount holds ``path`` (so its contents are not in the layer)."""
        path = posixpath.normpath(path)
        for target in self.cache_targets():
            if path == target or path.startswith(target.rstrip("/") + "/"):
                return True
        return False


def interpreter_name(argv0: str) -> str:
    """``/usr/bin/env bash`` style and ``/bin/bash`` -> ``bash``."""
    parts = argv0.split()
    if not parts:
        return ""
    name = posixpath.basename(parts[0])
    if name == "env" and len(parts) > 1:
        rest = [p for p in parts[1:] if not p.startswith("-")]
        name = posixpath.basename(rest[0]) if rest else ""
    return name


def _shebang(body: str) -> str | None:
    if not body.startswith("#!"):
        return None
    first = body.split("\n", 1)[0][2:].strip()
    return interpreter_name(first)


def _pieces(instr: Instruction, escape: str) -> list[tuple[str, int]]:
    """The physical pieces of an instruction's logical line (as the parser joins them)."""
    lines = instr.source.split("\n")
    # Only the instruction's own lines, not its heredoc bodies.
    last = instr.end_line
    if instr.heredocs:
        last = instr.heredocs[0].start_line - 1
    count = max(1, last - instr.start_line + 1)
    out: list[tuple[str, int]] = []
    for i, raw in enumerate(lines[:count]):
        number = instr.start_line + i
        text = raw.rstrip("\r")
        if i == 0:
            text = text.lstrip(" \t")
        else:
            stripped = text.lstrip(" \t")
            if stripped.startswith("#") or stripped == "":
                continue
        end = len(text)
        while end and text[end - 1] in " \t":
            end -= 1
        if end and text[end - 1] == escape and not (end >= 2 and text[end - 2] == escape):
            out.append((text[: end - 1], number))
        else:
            out.append((text, number))
    return out


def _command_text(instr: Instruction, command: str, escape: str) -> tuple[str, tuple[int, ...]]:
    """The shell text of a shell-form RUN with one line per physical line, and the line map.

    Falls back to the joined line (all on the first line) when the physical
    lines cannot be matched with the parser's logical line.
    """
    pieces = _pieces(instr, escape)
    joined = "".join(p for p, _ in pieces)
    offset = len(joined.rstrip()) - len(command)
    if offset < 0 or joined[offset : offset + len(command)] != command:
        return command, (instr.start_line,)
    texts: list[str] = []
    lines: list[int] = []
    pos = 0
    remaining = len(command)
    for text, number in pieces:
        start = max(0, offset - pos)
        pos += len(text)
        if start >= len(text) or remaining <= 0:
            continue
        chunk = text[start : start + remaining]
        remaining -= len(chunk)
        texts.append(chunk)
        lines.append(number)
    return "\\\n".join(texts), tuple(lines)


def _mounts(instr: Instruction) -> tuple[Mount, ...]:
    out: list[Mount] = []
    for flag in instr.flags:
        if flag.name != "mount" or flag.value is None:
            continue
        try:
            out.append(parse_mount(flag.value))
        except (MountError, ExpansionError, ValueError):
            continue
    return tuple(out)


def analyse_run(
    instr: Instruction, shell: tuple[str, ...] = DEFAULT_SHELL, escape: str = "\\"
) -> RunScript:
    """Work out what ``instr`` (a RUN) executes under the stage's ``shell``."""
    mounts = _mounts(instr)
    shell_name = interpreter_name(shell[0]) if shell else "sh"
    pipefail = "pipefail" in shell[1:]
    if instr.json:
        argv = tuple(instr.args)
        name = interpreter_name(argv[0]) if argv else ""
        cmd = ShellCommand(argv=argv)
        if name in SHELLS:
            code = shell_c_argument(cmd)
            if code is not None:
                return RunScript(
                    instr,
                    name,
                    parse_script(code),
                    (instr.start_line,),
                    mounts,
                    pipefail="pipefail" in argv,
                    exec_form=True,
                )
        return RunScript(
            instr,
            name,
            Script(" ".join(argv), (cmd,)),
            (instr.start_line,),
            mounts,
            exec_form=True,
        )
    command = instr.args[0] if instr.args else ""
    posix = shell_name not in _NON_POSIX and (shell_name in SHELLS or shell_name.endswith("sh"))
    if instr.heredocs:
        first = instr.heredocs[0]
        try:
            marker = parse_heredoc_marker(command.strip())
        except (ExpansionError, ValueError):
            marker = None
        if marker is not None and len(instr.heredocs) == 1:
            # RUN <<EOF: the body is the script, run by its #! line or the shell.
            body = first.body()
            interp = _shebang(body) or shell_name
            lines = tuple(range(first.start_line, first.end_line + 1))
            is_posix = interp in SHELLS or (interp == shell_name and posix)
            return RunScript(
                instr,
                interp,
                parse_script(body) if is_posix else None,
                lines,
                mounts,
                pipefail=pipefail and interp == shell_name,
            )
    text, lines = _command_text(instr, command, escape)
    if not posix:
        return RunScript(instr, shell_name, None, lines, mounts)
    script = parse_script(text)
    extra: list[RunScript] = []
    if instr.heredocs:
        # RUN bash <<EOF / RUN python3 <<EOF: the body goes to the first command's stdin.
        feeder = next((c.unwrapped() for c in script.commands), None)
        for doc in instr.heredocs:
            body = doc.body()
            if feeder is None or feeder.name not in SHELLS:
                continue
            if _shebang(body) not in (None, *SHELLS):
                continue
            extra.append(
                RunScript(
                    instr,
                    feeder.name,
                    parse_script(body),
                    tuple(range(doc.start_line, doc.end_line + 1)),
                    mounts,
                )
            )
    return replace(
        RunScript(instr, shell_name, script, lines, mounts, pipefail=pipefail), extra=tuple(extra)
    )
