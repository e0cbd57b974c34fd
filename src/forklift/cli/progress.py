"""Progress display for copies: rich bars on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Any

from forklift.oci.descriptor import Descriptor


class PlainProgress:
    """One line per blob, as skopeo prints them; safe to use from several threads."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def _say(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def blob_started(self, desc: Descriptor, *, skipped: bool) -> None:
        verb = "Skipping" if skipped else "Copying"
        suffix = " (already present)" if skipped else ""
        self._say(f"{verb} {desc.kind} {desc.digest}{suffix}")

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        pass

    def blob_finished(self, desc: Descriptor) -> None:
        pass

    def message(self, text: str) -> None:
        self._say(text)


class RichProgress:
    """A bar per blob and a total, drawn by rich on a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._total = self._progress.add_task("total", total=0)
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def blob_started(self, desc: Descriptor, *, skipped: bool) -> None:
        with self._lock:
            label = f"{desc.kind} {desc.digest.short}"
            if skipped:
                self._progress.console.print(f"{label}: already present")
                return
            self._tasks[str(desc.digest)] = self._progress.add_task(label, total=desc.size)
            total = self._progress.tasks[self._total].total or 0
            self._progress.update(self._total, total=total + desc.size)

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        task = self._tasks.get(str(desc.digest))
        if task is not None:
            self._progress.advance(task, nbytes)
            self._progress.advance(self._total, nbytes)

    def blob_finished(self, desc: Descriptor) -> None:
        pass

    def message(self, text: str) -> None:
        self._progress.console.print(text)


class NoProgress:
    def blob_started(self, desc: Descriptor, *, skipped: bool) -> None:
        pass

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        pass

    def blob_finished(self, desc: Descriptor) -> None:
        pass

    def message(self, text: str) -> None:
        pass


def make_progress(quiet: bool = False) -> Any:
    """A context manager yielding the right progress sink for where output goes."""
    import contextlib

    if quiet:
        return contextlib.nullcontext(NoProgress())
    if sys.stderr.isatty():
        return RichProgress()
    return contextlib.nullcontext(PlainProgress())
