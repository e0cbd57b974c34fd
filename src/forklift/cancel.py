"""Cancelling a command at once on SIGINT or SIGTERM, the way BuildKit cancels a build.

One process-wide token. :func:`handling` (used by the CLI around ``build``,
``pull``, ``push``, ``run``...) installs handlers on the main thread; the first
signal cancels the token and raises :class:`Cancelled` in the main thread,
which interrupts whatever it waits for (a process, a socket read, a future).
Every ``finally`` then releases what it holds: containers are killed and
deleted, mounts unmounted, temporary files removed, locks released. Other
threads see the token at their next :func:`check` (layer and copy loops, the
runtime after a container) and unwind the same way; what they run that cannot
check (a container) is stopped by the callbacks registered with
:func:`on_cancel`, which run on a thread of their own as soon as the token is
cancelled. A second signal during that cleanup ends the process immediately;
whatever it still held is then cleaned by the next forklift command
(:mod:`forklift.runtime.recovery`).

``Cancelled`` derives from ``BaseException``, like ``KeyboardInterrupt``, so
``except Exception`` in cleanup code never swallows it. The CLI reports it as
``<what> canceled`` and exits with 128 + the signal number (130, 143).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Cancelled(BaseException):
    """The command was cancelled by a signal (see the module docs)."""

    def __init__(self, signum: int, what: str = "command") -> None:
        super().__init__(signum, what)
        self.signum = signum
        self.what = what

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process the signal killed."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    def __str__(self) -> str:
        return f"{self.what} canceled ({self.signal_name})"


class Token:
    """A cancellation flag with callbacks; :data:`TOKEN` is the process's.

    :meth:`cancel` may run inside a signal handler, on a main thread that was
    interrupted anywhere (even inside this class, or while starting a thread):
    it only sets an event, which a watcher thread started beforehand
    (:meth:`watch`) waits for to run the callbacks. It takes no lock the
    interrupted code could hold.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.RLock()
        self._callbacks: dict[int, Callable[[], object]] = {}
        self._ids = itertools.count()
        self.signum: int | None = None
        self.what = "command"
        self._watcher: threading.Thread | None = None
        self._runners: list[threading.Thread] = []
        self._pending: list[Callable[[], object]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the token was cancelled."""
        if self._event.is_set():
            raise Cancelled(self.signum or signal.SIGINT, self.what)

    def watch(self) -> None:
        """Start the thread that runs the callbacks once the token is cancelled (idempotent)."""
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._wait, name="fk-cancel", daemon=True)
                self._watcher.start()

    def _wait(self) -> None:
        self._event.wait()
        _run_all(self._pending)

    def cancel(self, signum: int = signal.SIGINT) -> None:
        """Cancel: :meth:`check` raises from now on, registered callbacks run (once)."""
        # Reentrant: a handler interrupting this thread inside the lock just goes on; a
        # handler waiting for another thread's short hold of it cannot deadlock.
        with self._lock:
            if self._event.is_set():
                return
            self.signum = signum
            self._pending = list(self._callbacks.values())
            self._event.set()
        if self._watcher is None:  # not from a handler: a thread may be started here
            self.watch()

    def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the callbacks of a cancellation to finish."""
        with self._lock:
            threads = [t for t in (self._watcher, *self._runners) if t is not None]
        for thread in threads:
            thread.join(timeout)

    def add(self, callback: Callable[[], object]) -> int:
        """Register ``callback`` until :meth:`remove`; it runs at once if already cancelled."""
        with self._lock:
            key = next(self._ids)
            self._callbacks[key] = callback
            already = self._event.is_set()
        if already:
            runner = threading.Thread(target=_run_all, args=([callback],), daemon=True)
            with self._lock:
                self._runners.append(runner)
            runner.start()
        return key

    def remove(self, key: int) -> None:
        """Forget a callback :meth:`add` registered."""
        with self._lock:
            self._callbacks.pop(key, None)

    @contextlib.contextmanager
    def on_cancel(self, callback: Callable[[], object]) -> Iterator[None]:
        """Call ``callback`` (on another thread) if the token is cancelled during the block."""
        key = self.add(callback)
        try:
            yield
        finally:
            self.remove(key)

    def reset(self) -> None:
        """Forget a cancellation (for a process that goes on, e.g. a test)."""
        with self._lock:
            if not self._event.is_set():
                return
            self.settle(5)
            self._event.clear()
            self.signum = None
            self._watcher = None
            self._runners.clear()


def _run_all(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        with contextlib.suppress(Exception):
            callback()


TOKEN = Token()


def check() -> None:
    """Raise :class:`Cancelled` if this process's command was cancelled."""
    TOKEN.check()


def cancelled() -> bool:
    """Whether this process's command was cancelled."""
    return TOKEN.cancelled


def on_cancel(callback: Callable[[], object]) -> contextlib.AbstractContextManager[None]:
    """Run ``callback`` if the command is cancelled while the block runs (see :class:`Token`)."""
    return TOKEN.on_cancel(callback)


@contextlib.contextmanager
def handling(what: str) -> Iterator[None]:
    """SIGINT and SIGTERM cancel ``what`` (e.g. ``"build"``) while the block runs.

    Only on the main thread (elsewhere the block runs without handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    TOKEN.what = what

    def handler(signum: int, _frame: object) -> None:
        if TOKEN.cancelled:
            # A second signal while cleaning up: the user wants out now. What is still
            # held is cleaned by the next forklift command.
            with contextlib.suppress(Exception):
                sys.stderr.write(f"\n{what} canceled ({signal.Signals(signum).name}), exiting\n")
                sys.stderr.flush()
            os._exit(128 + signum)
        TOKEN.cancel(signum)
        raise Cancelled(signum, what)

    TOKEN.watch()  # started now: the handler itself must not start threads
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["TOKEN", "Cancelled", "Token", "cancelled", "check", "handling", "on_cancel"]
