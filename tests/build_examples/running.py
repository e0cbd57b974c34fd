"""Building the examples and running what they make.

Every example result is run twice: with ``forklift run --rm`` and with podman after
``forklift save | podman load`` (podman with private storage, the ``podman`` fixture).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import Podman, run_cli

_STEP = re.compile(r"^#(\d+) \[[^\]]+\] (.*)$")
_STATUS = re.compile(r"^#(\d+) (CACHED|DONE|ERROR)\b")


@dataclass(frozen=True)
class Built:
    """One build: the image ID and how each step went (instruction -> CACHED/DONE)."""

    image_id: str
    steps: dict[str, str]
    output: str

    def status(self, instruction_start: str) -> str:
        """The status of the one step whose instruction starts with ``instruction_start``."""
        found = [s for i, s in self.steps.items() if i.startswith(instruction_start)]
        assert len(found) == 1, f"{instruction_start!r} matches {len(found)} steps:\n{self.output}"
        return found[0]


def build(context: Path, tag: str, *extra: str) -> Built:
    """``forklift build --progress plain`` and the outcome of every step."""
    iid = context.parent / f"{tag.replace(':', '_').replace('/', '_')}.iid"
    result = run_cli(
        "build", "--progress", "plain", "--iidfile", str(iid), "-t", tag, *extra, str(context)
    )
    assert result.returncode == 0, result.stderr
    names: dict[str, str] = {}
    steps: dict[str, str] = {}
    for line in result.stderr.splitlines():
        if m := _STEP.match(line):
            names[m.group(1)] = m.group(2)
        elif (m := _STATUS.match(line)) and m.group(1) in names:
            steps[names[m.group(1)]] = m.group(2)
    return Built(iid.read_text().strip(), steps, result.stderr)


def run_both(
    podman: Podman, image: str, args: tuple[str, ...] = (), *, stdin: bytes | None = None
) -> tuple[str, str]:
    """Run ``image`` with forklift and with podman; returns both stdouts."""
    flag = ("-i",) if stdin is not None else ()
    ours = run_cli("run", "--rm", *flag, image, *args, input=stdin)
    assert ours.returncode == 0, f"forklift run: {ours.returncode}\n{ours.stderr}"
    # forklift save | podman load, as a user would type it
    save = subprocess.Popen(
        [sys.executable, "-m", "forklift", "save", image], stdout=subprocess.PIPE
    )
    load = subprocess.run(
        podman_argv(podman, "load"), stdin=save.stdout, capture_output=True, timeout=300
    )
    assert save.stdout is not None
    save.stdout.close()
    assert save.wait(timeout=300) == 0 and load.returncode == 0, load.stderr.decode()
    theirs = subprocess.run(
        podman_argv(podman, "run", "--rm", *flag, "--network", "none", image, *args),
        input=stdin,
        capture_output=True,
        timeout=300,
    )
    assert theirs.returncode == 0, f"podman run: {theirs.returncode}\n{theirs.stderr.decode()}"
    return ours.stdout, theirs.stdout.decode()


def podman_argv(podman: Podman, *args: str) -> list[str]:
    """The full command line of the ``podman`` fixture's private podman."""
    return [
        "podman", "--root", str(podman.base / "r"), "--runroot", str(podman.base / "rr"),
        "--runtime", "runc", "--storage-driver", "vfs", *args,
    ]  # fmt: skip


def http_body(response: str) -> str:
    """The body of an HTTP/1.x response (after the blank line)."""
    head, sep, body = response.replace("\r\n", "\n").partition("\n\n")
    assert sep and head.startswith("HTTP/1.") and " 200 " in head.splitlines()[0], response[:300]
    return body
