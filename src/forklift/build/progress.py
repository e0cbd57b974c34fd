"""Build progress: one line per step with CACHED/DONE and its time, RUN output streamed.

``plain`` prints BuildKit-style lines (``#3 [build 2/5] RUN make``) and is what CI
logs get; ``tty`` draws a live, folded view with rich (each running step shows
its last output lines); ``quiet`` prints nothing but the image ID at the end.
Stages may run concurrently, so every line carries its step number.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any


@dataclass
class _Step:
    number: int
    label: str
    started: float = field(default_factory=time.monotonic)
    status: str = "running"
    seconds: float = 0.0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=6))
    notes: list[str] = field(default_factory=list)


class BuildProgress:
    """Base: collects step state; subclasses render it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[int, _Step] = {}
        self._next = 0
        self.warnings: list[str] = []

    def start(self, label: str) -> int:
        """Announce a step; returns its number."""
        with self._lock:
            self._next += 1
            step = _Step(self._next, label)
            self._steps[step.number] = step
        self._render_start(step)
        return step.number

    def output(self, number: int, line: str) -> None:
        step = self._steps[number]
        step.tail.append(line)
        self._render_output(step, line)

    def note(self, number: int, text: str) -> None:
        """A remark on a step (e.g. why its cache missed)."""
        step = self._steps[number]
        step.notes.append(text)
        self._render_note(step, text)

    def cached(self, number: int) -> None:
        self._finish(number, "cached")

    def done(self, number: int) -> None:
        self._finish(number, "done")

    def failed(self, number: int, reason: str = "") -> None:
        self._finish(number, "error", reason)

    def canceled(self, number: int) -> None:
        """The build was cancelled while this step ran (BuildKit's ``CANCELED``)."""
        self._finish(number, "canceled")

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self._render_warning(text)

    def _finish(self, number: int, status: str, reason: str = "") -> None:
        step = self._steps[number]
        step.status = status
        step.seconds = time.monotonic() - step.started
        self._render_finish(step, reason)

    def close(self) -> None:
        """Stop drawing (the tty view)."""

    # Rendering hooks: the base class draws nothing (QuietProgress relies on that).
    def _render_start(self, step: _Step) -> None:
        return None

    def _render_output(self, step: _Step, line: str) -> None:
        return None

    def _render_note(self, step: _Step, text: str) -> None:
        return None

    def _render_finish(self, step: _Step, reason: str) -> None:
        return None

    def _render_warning(self, text: str) -> None:
        return None

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PlainProgress(BuildProgress):
    """BuildKit's plain output: every event on its own line."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self._out = threading.Lock()
        self._t0 = time.monotonic()

    def _say(self, text: str) -> None:
        with self._out:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _render_start(self, step: _Step) -> None:
        self._say(f"#{step.number} {step.label}")

    def _render_output(self, step: _Step, line: str) -> None:
        self._say(f"#{step.number} {time.monotonic() - step.started:.3f} {line}")

    def _render_note(self, step: _Step, text: str) -> None:
        self._say(f"#{step.number} {text}")

    def _render_finish(self, step: _Step, reason: str) -> None:
        if step.status == "cached":
            self._say(f"#{step.number} CACHED")
        elif step.status == "done":
            self._say(f"#{step.number} DONE {step.seconds:.1f}s")
        elif step.status == "canceled":
            self._say(f"#{step.number} CANCELED")
        else:
            self._say(f"#{step.number} ERROR: {reason}" if reason else f"#{step.number} ERROR")

    def _render_warning(self, text: str) -> None:
        self._say(f"WARNING: {text}")


class TtyProgress(BuildProgress):
    """A live view: finished steps as one line each, running steps with their last output."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self._live = Live(console=self.console, refresh_per_second=8, transient=False)
        self._live.start()
        self._t0 = time.monotonic()

    def _renderable(self) -> Any:
        from rich.text import Text

        text = Text()
        elapsed = time.monotonic() - self._t0
        text.append(f"[+] Building {elapsed:.1f}s\n", style="bold")
        for step in list(self._steps.values()):
            if step.status == "cached":
                text.append(f" => CACHED {step.label}\n", style="blue")
            elif step.status == "done":
                text.append(f" => {step.label}  {step.seconds:.1f}s\n", style="green")
            elif step.status == "canceled":
                text.append(f" => CANCELED {step.label}\n", style="red")
            elif step.status == "error":
                text.append(f" => ERROR {step.label}\n", style="red")
                for line in step.tail:
                    text.append(f"    {line}\n", style="red")
            else:
                text.append(f" => {step.label}  {time.monotonic() - step.started:.1f}s\n")
                for note in step.notes[-2:]:
                    text.append(f"    {note}\n", style="yellow")
                for line in step.tail:
                    text.append(f"    {line}\n", style="dim")
        return text

    def _refresh(self) -> None:
        with self._lock:
            self._live.update(self._renderable())

    def _render_start(self, step: _Step) -> None:
        self._refresh()

    def _render_output(self, step: _Step, line: str) -> None:
        self._refresh()

    def _render_note(self, step: _Step, text: str) -> None:
        self._refresh()

    def _render_finish(self, step: _Step, reason: str) -> None:
        self._refresh()

    def _render_warning(self, text: str) -> None:
        self.console.print(f"WARNING: {text}", style="yellow")

    def close(self) -> None:
        self._refresh()
        self._live.stop()


class QuietProgress(BuildProgress):
    """Nothing but warnings."""

    def _render_warning(self, text: str) -> None:
        print(f"WARNING: {text}", file=sys.stderr)


def make_progress(mode: str) -> BuildProgress:
    """``auto`` picks ``tty`` on a terminal and ``plain`` otherwise."""
    if mode == "auto":
        mode = "tty" if sys.stderr.isatty() else "plain"
    if mode == "tty":
        return TtyProgress()
    if mode == "quiet":
        return QuietProgress()
    return PlainProgress()
