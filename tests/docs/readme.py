"""Run the README's examples: a fenced block marked with an HTML comment right above it.

Markers (invisible on GitHub)::

    <!-- example: run [id=NAME] [after=NAME,NAME] [needs=root,registry,network]
                      [files=PATH[:DEST],...] [check=output|status] -->
    <!-- example: shown -->          what a command prints, a file format, a config file
    <!-- example: skip REASON -->    a command that cannot run here, and why

Every fenced block in the README carries one (``tests/docs/test_readme.py``
fails on an unmarked block and names it), so a new README section cannot add
an example that nothing checks. A ``run`` block is executed in a sandbox of its
own: a temporary working directory (with ``files=PATH`` copied in from the
repository, to the same relative path or to ``DEST``: ``files=examples/hello``,
``files=tests/docs/fixtures/build:.``), a fresh ``$FORKLIFT_HOME`` and ``$HOME``, forklift on
``PATH``. The blocks named by ``after=`` run first in the same sandbox (e.g.
``after=busybox-base`` to have the README's base image). ``needs=registry``
starts a CNCF distribution registry and replaces ``localhost:5000`` in the
block with its address; ``needs=root`` and ``needs=network`` skip (or, for
network, deselect) the example where those are missing.

``sh`` blocks run as one ``bash -e`` script and must succeed. ``console``
blocks are sessions: each ``$ command`` runs, and the lines after it are its
expected output (stdout and stderr together), line by line, where ``...``
stands for any text; a command whose expected output has an ``Error:`` line
must fail, any other must succeed. ``check=status`` checks only the exit
statuses. ``python`` blocks run with forklift's interpreter.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
_MARKER = re.compile(r"^<!--\s*example:\s*(run|shown|skip)\b(.*?)-->\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass
class Block:
    """One fenced block of the README and its marker."""

    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    kind: str = ""  # run | shown | skip | "" (unmarked)
    options: dict[str, str] = field(default_factory=dict)
    reason: str = ""

    @property
    def name(self) -> str:
        return self.options.get("id") or f"line-{self.line}"

    @property
    def needs(self) -> set[str]:
        return {n for n in self.options.get("needs", "").split(",") if n}


def parse(path: Path = README) -> list[Block]:
    """Every fenced block of ``path``, with the marker on the line above it (if any)."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        block = Block(start + 1, m.group(1), "\n".join(lines[i + 1 : j]) + "\n")
        marker = _MARKER.match(lines[start - 1]) if start > 0 else None
        if marker:
            block.kind = marker.group(1)
            rest = marker.group(2).strip()
            if block.kind == "skip":
                block.reason = rest
            else:
                for word in rest.split():
                    key, _, value = word.partition("=")
                    block.options[key] = value
        blocks.append(block)
        i = j + 1
    return blocks


# -- running -------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """Where one example runs: its directory, environment and (maybe) a registry."""

    root: Path
    env: dict[str, str]
    registry: str | None = None


def sandbox(root: Path) -> Sandbox:
    work = root / "work"
    work.mkdir(parents=True)
    env = {
        **os.environ,
        "FORKLIFT_HOME": str(root / "forklift-home"),
        "HOME": str(root / "user-home"),
        "XDG_RUNTIME_DIR": str(root / "runtime"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    for d in ("user-home", "runtime"):
        (root / d).mkdir()
    env.pop("FORKLIFT_DEBUG", None)
    return Sandbox(work, env)


def _text(block: Block, box: Sandbox) -> str:
    text = block.text
    if box.registry is not None:
        text = text.replace("localhost:5000", box.registry)
    return text


def _shell(script: str, box: Sandbox, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=box.root,
        env=box.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class ExampleFailed(AssertionError):
    pass


def run_block(block: Block, box: Sandbox) -> None:
    """Run one block in ``box``; raise :class:`ExampleFailed` saying what went wrong."""
    for item in filter(None, block.options.get("files", "").split(",")):
        source, _, dest = item.partition(":")
        shutil.copytree(
            REPO / source, box.root / (dest or source), dirs_exist_ok=True, symlinks=True
        )
    text = _text(block, box)
    where = f"README.md:{block.line}"
    if block.lang == "sh":
        proc = _shell("set -eo pipefail\n" + text, box)
        if proc.returncode != 0:
            raise ExampleFailed(f"{where}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    elif block.lang == "console":
        _console(text, box, where, block.options.get("check", "output"))
    elif block.lang == "python":
        proc = subprocess.run(
            [sys.executable, "-c", text], cwd=box.root, env=box.env, capture_output=True,
            text=True, timeout=600, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ExampleFailed(f"{where}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    else:
        raise ExampleFailed(f"{where}: cannot run a {block.lang or 'plain'} block")


def _console(text: str, box: Sandbox, where: str, check: str) -> None:
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and steps[-1][0].endswith("\\") and not steps[-1][1]:
            steps[-1] = (steps[-1][0] + "\n" + line, steps[-1][1])  # a continued command
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise ExampleFailed(f"{where}: output before the first $ command: {line!r}")
    for command, expected in steps:
        proc = _shell(command + " 2>&1", box)
        actual = proc.stdout.rstrip("\n").splitlines()
        failing = any(e.startswith("Error:") for e in expected)
        if (proc.returncode != 0) != failing:
            raise ExampleFailed(
                f"{where}: $ {command}\nexit {proc.returncode}"
                f"{' (expected a failure)' if failing else ''}\n{proc.stdout}"
            )
        if check == "output" and not _matches(expected, actual):
            raise ExampleFailed(
                f"{where}: $ {command}\nexpected:\n" + "\n".join(expected)
                + "\nactual:\n" + "\n".join(actual)
            )  # fmt: skip


def _matches(expected: list[str], actual: list[str]) -> bool:
    expected = [e.rstrip() for e in expected]
    while expected and not expected[-1]:
        expected.pop()
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(p) for p in re.split(r"\.\.\.|…", want))
        if not re.fullmatch(pattern, got.rstrip()):
            return False
    return True


def quoted(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)
