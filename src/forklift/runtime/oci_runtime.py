"""Running a bundle with an OCI runtime binary (runc or crun).

``runc run`` (or ``crun run``) stays in the foreground: it is forklift's
child, the container's stdio is whatever forklift hands it (inherited fds,
pipes read into callbacks, or a terminal the runtime sets up with
``terminal: true``), its exit status is the container's (128+N after signal
N), and it deletes the container when the process ends. The runtime keeps its
state in a private ``--root`` (``$FORKLIFT_HOME/run/<runtime>``) so forklift's
containers never mix with podman's or docker's.

Signals: while a run is in progress on the main thread, SIGINT, SIGTERM and
SIGHUP sent to forklift are forwarded to the container (the runtime passes
them on to the container's init); if the container has not exited
``stop_timeout`` seconds later, or at a second signal, it is killed with
SIGKILL. Whatever happens (an exception, a timeout), the container is killed
and the runtime's state for it deleted before :meth:`OciRuntime.run` returns.

The runtime's own failure (the process never started: executable not found,
bad mount...) is read from its JSON log and reported in
:attr:`RunResult.runtime_error`, with Docker's exit codes: 127 for "not
found", 126 for "permission denied"/"is a directory", 125 otherwise.

crun refuses to start on a "hybrid" cgroup host whose cgroup2 hierarchy has
controllers attached (crun: "cgroups in hybrid mode not supported"); there
forklift runs crun in a private mount namespace without that hierarchy
mounted, which makes crun manage the cgroup v1 controllers only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from forklift import cancel
from forklift.errors import RuntimeFailure, UsageError
from forklift.fsutil import private_dir

RUNTIMES = ("runc", "crun")
INHERIT: Literal["inherit"] = "inherit"
STDOUT: Literal["stdout"] = "stdout"

#: Where output goes: INHERIT (forklift's own fd), None (discarded), an open fd,
#: or a callable receiving each chunk of bytes as it arrives (called from a reader thread).
Output = Literal["inherit"] | int | Callable[[bytes], object] | None
#: Where input comes from: INHERIT, None (/dev/null), an open fd, or bytes to feed.
Input = Literal["inherit"] | int | bytes | None

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_CHUNK = 65536


@dataclass(frozen=True)
class RunResult:
    """How a container run ended.

    ``exit_code`` is the container process's status (128+N if killed by
    signal N), or Docker's 125/126/127 when the runtime could not start it,
    with the runtime's message in ``runtime_error``. ``timed_out`` says the
    ``timeout`` expired and the container was killed; ``interrupted`` the
    signal (SIGINT...) forklift received and forwarded, if any.
    """

    exit_code: int
    runtime_error: str | None = None
    timed_out: bool = False
    interrupted: int | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.runtime_error is None


def exit_code_for_error(message: str) -> int:
    """Docker's exit code for a container that could not start, from the runtime's message."""
    text = message.lower()
    if (
        "executable file not found" in text
        or "no such file or directory" in text
        or "not found in $path" in text
    ):
        return 127
    if "permission denied" in text or "is a directory" in text:
        return 126
    return 125


def _hybrid_cgroup_with_v2_controllers() -> bool:
    """A cgroup v1 host whose cgroup2 hierarchy at /sys/fs/cgroup/unified holds controllers."""
    try:
        return bool(Path("/sys/fs/cgroup/unified/cgroup.controllers").read_text().split())
    except OSError:
        return False


class OciRuntime:
    """One runtime binary with its private state directory."""

    def __init__(self, name: str, path: str, state_root: str | os.PathLike[str]) -> None:
        self.name = name
        self.path = path
        self.state_root = Path(state_root)
        self._wrapper: list[str] = []
        if name == "crun" and _hybrid_cgroup_with_v2_controllers():
            unshare = shutil.which("unshare") or "/usr/bin/unshare"
            script = 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"'
            self._wrapper = [unshare, "--mount", "--propagation", "private", "--"]
            self._wrapper += ["/bin/sh", "-c", script]

    def __repr__(self) -> str:
        return f"OciRuntime({self.name!r}, {self.path!r}, state_root={str(self.state_root)!r})"

    # -- plumbing ------------------------------------------------------------------

    def command(self, *args: str, log: Path | None = None) -> list[str]:
        """The argv for ``runtime --root STATE [log options] ARGS...``."""
        cmd = [*self._wrapper, self.path, "--root", str(self.state_root)]
        if log is not None:
            if self.name == "crun":
                cmd += [f"--log=file:{log}", "--log-format=json"]
            else:
                cmd += ["--log", str(log), "--log-format", "json"]
        return [*cmd, *args]

    def _call(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        private_dir(self.state_root)
        try:
            proc = subprocess.run(
                self.command(*args), capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"{self.name} {args[0]} did not finish in {timeout:g} s") from None
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeFailure(
                f"{self.name} {' '.join(args)} failed: {detail[-1] if detail else proc.returncode}"
            )
        return proc.stdout

    def version(self) -> str:
        """The first line of ``runtime --version``."""
        out = subprocess.run([self.path, "--version"], capture_output=True, text=True, timeout=30)
        return (out.stdout.splitlines() or [""])[0].strip()

    def has_state(self, container_id: str) -> bool:
        """Whether the runtime still keeps state for ``container_id``."""
        return (self.state_root / container_id).exists()

    def state(self, container_id: str) -> dict[str, Any] | None:
        """``runtime state ID`` as a dict (status, pid...), or None if unknown to the runtime."""
        if not self.has_state(container_id):
            return None
        try:
            return json.loads(self._call("state", container_id))
        except (RuntimeFailure, ValueError):
            return None

    def kill(self, container_id: str, sig: str | int = "KILL") -> bool:
        """Send a signal to the container's init; False if it is not running."""
        if not self.has_state(container_id):
            return False
        name = sig if isinstance(sig, str) else signal.Signals(sig).name.removeprefix("SIG")
        try:
            self._call("kill", container_id, name)
        except RuntimeFailure:
            return False
        return True

    def delete(self, container_id: str) -> None:
        """Forget the container (killing it first if it still runs); no-op if unknown."""
        if self.has_state(container_id):
            with contextlib.suppress(RuntimeFailure):
                self._call("delete", "--force", container_id)
            if self.has_state(container_id):
                # The runtime could not clean up (e.g. it was killed mid-way); drop its state.
                shutil.rmtree(self.state_root / container_id, ignore_errors=True)

    # -- running -------------------------------------------------------------------------

    def run(
        self,
        bundle: str | os.PathLike[str],
        container_id: str,
        *,
        stdin: Input = None,
        stdout: Output = INHERIT,
        stderr: Output | Literal["stdout"] = INHERIT,
        timeout: float | None = None,
        stop_timeout: float = 10.0,
        log: str | os.PathLike[str] | None = None,
        forward_signals: bool = True,
    ) -> RunResult:
        """Run the bundle in the foreground until the container exits (see the module docs).

        ``stderr=STDOUT`` sends both streams to the ``stdout`` target. (In the
        foreground, runc relays the container's stdout and stderr through a
        pipe each, so lines written to the two streams in quick succession may
        swap places; the order within each stream is kept.) ``timeout``
        kills the container after that many seconds. Another thread can stop
        the run with :meth:`kill` and the same ``container_id``.
        """
        bundle = Path(bundle)
        log_path = Path(log) if log is not None else bundle / "runtime.log"
        with contextlib.suppress(FileNotFoundError):
            log_path.unlink()
        private_dir(self.state_root)
        cmd = self.command("run", "--bundle", str(bundle), container_id, log=log_path)

        closers: list[int] = []
        readers: list[threading.Thread] = []
        feeder: threading.Thread | None = None
        stdin_arg: Any
        shared_terminal = False
        if stdin == INHERIT:
            stdin_arg = None
            with contextlib.suppress(OSError, ValueError):
                shared_terminal = os.isatty(0)
        elif stdin is None:
            stdin_arg = subprocess.DEVNULL
        elif isinstance(stdin, int):
            stdin_arg = stdin
        else:
            stdin_arg = subprocess.PIPE

        def sink(target: Output) -> Any:
            if target == INHERIT:
                return None
            if target is None:
                return subprocess.DEVNULL
            if isinstance(target, int):
                return target
            r, w = os.pipe()
            closers.append(w)
            readers.append(
                threading.Thread(target=_pump, args=(r, target), daemon=True, name="fk-output")
            )
            return w

        stdout_arg = sink(stdout)
        stderr_arg = subprocess.STDOUT if stderr == STDOUT else sink(stderr)

        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=stdin_arg,
                stdout=stdout_arg,
                stderr=stderr_arg,
                close_fds=True,
                # Own process group unless the container reads our terminal: a background
                # group reading the tty would be stopped (SIGTTIN).
                process_group=None if shared_terminal else 0,
            )
        except OSError as exc:
            for fd in closers:
                os.close(fd)
            raise RuntimeFailure(f"cannot start {self.path}: {exc.strerror or exc}") from None
        for fd in closers:
            os.close(fd)
        for t in readers:
            t.start()
        if isinstance(stdin, bytes):
            feeder = threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True)
            feeder.start()

        supervisor = _Supervisor(self, proc, container_id, stop_timeout, shared_terminal)
        timer: threading.Timer | None = None
        if timeout is not None:
            timer = threading.Timer(timeout, supervisor.time_out)
            timer.daemon = True
            timer.start()
        restore = supervisor.install_signal_handlers() if forward_signals else None
        # Without forwarding (a build's RUN), a cancelled command kills the container at once;
        # on the main thread the wait below is interrupted, other threads see it return.
        stop = contextlib.nullcontext() if forward_signals else cancel.on_cancel(supervisor.kill)
        try:
            with stop:
                returncode = proc.wait()
        finally:
            if restore is not None:
                restore()
            if timer is not None:
                timer.cancel()
            supervisor.finish()
            if proc.poll() is None:
                self.kill(container_id, "KILL")
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    # runc itself is stuck (or had not created the container yet): stop it;
                    # delete --force below then takes down a container it leaves running.
                    proc.kill()
                    proc.wait()
            self.delete(container_id)
            for t in readers:
                t.join(timeout=5)
            if feeder is not None:
                feeder.join(timeout=1)
        cancel.check()  # a cancelled build reports the cancellation, not the killed step
        duration = time.monotonic() - start
        if returncode < 0:  # the runtime itself died of a signal
            returncode = 128 - returncode
        error = _runtime_error(log_path) if returncode != 0 else None
        if error is not None and not supervisor.timed_out and supervisor.interrupted is None:
            returncode = exit_code_for_error(error)
        return RunResult(
            exit_code=returncode,
            runtime_error=error,
            timed_out=supervisor.timed_out,
            interrupted=supervisor.interrupted,
            duration=duration,
        )


class _Supervisor:
    """Signal forwarding, the stop grace period and the timeout of one run."""

    def __init__(
        self,
        runtime: OciRuntime,
        proc: subprocess.Popen[bytes],
        container_id: str,
        stop_timeout: float,
        shared_terminal: bool,
    ) -> None:
        self.runtime = runtime
        self.proc = proc
        self.container_id = container_id
        self.stop_timeout = stop_timeout
        self.shared_terminal = shared_terminal
        self.timed_out = False
        self.interrupted: int | None = None
        self._grace: threading.Timer | None = None
        # Re-entrant: a signal handler runs on the main thread, possibly inside finish().
        self._lock = threading.RLock()
        self._done = False

    def install_signal_handlers(self) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None  # only the main thread may handle signals; callers use kill()
        previous = {sig: signal.getsignal(sig) for sig in _FORWARDED}
        for sig in _FORWARDED:
            signal.signal(sig, self._on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _on_signal(self, signum: int, _frame: object) -> None:
        first = self.interrupted is None
        self.interrupted = self.interrupted or signum
        if not first:
            self._kill_now()
            return
        # A terminal's Ctrl-C already reached the runtime (same process group); else forward it.
        if not (self.shared_terminal and signum == signal.SIGINT):
            threading.Thread(
                target=self._forward_once_running, args=(signum,), daemon=True, name="fk-forward"
            ).start()
        with self._lock:
            if not self._done and self._grace is None:
                self._grace = threading.Timer(self.stop_timeout, self._kill_now)
                self._grace.daemon = True
                self._grace.start()

    def _forward_once_running(self, signum: int) -> None:
        """Send ``signum`` to the runtime once the container's process runs.

        In its first milliseconds the runtime may not handle signals yet (runc, a Go
        program, exits with status 2 on a SIGINT it has no handler for) and the
        container's init is still the runtime's own, which a SIGINT ends: sent then, the
        signal would end the start-up instead of reaching the program. The grace
        period's kill does not wait for this.
        """
        deadline = time.monotonic() + max(self.stop_timeout, 1.0)
        while self.proc.poll() is None and time.monotonic() < deadline:
            state = self.runtime.state(self.container_id)
            if state is not None and state.get("status") == "running":
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signum)
                return
            time.sleep(0.01)

    def time_out(self) -> None:
        self.timed_out = True
        self._kill_now()

    def kill(self) -> None:
        """Kill the container now (the command was cancelled)."""
        self._kill_now()

    def _kill_now(self) -> None:
        with self._lock:
            if self._done:
                return
        if self.proc.poll() is None and not self.runtime.kill(self.container_id, "KILL"):
            # Not started yet (or the runtime hangs): stop the runtime process itself.
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    def finish(self) -> None:
        with self._lock:
            self._done = True
            if self._grace is not None:
                self._grace.cancel()


def _pump(fd: int, callback: Callable[[bytes], object]) -> None:
    try:
        while True:
            try:
                chunk = os.read(fd, _CHUNK)
            except InterruptedError:
                continue
            if not chunk:
                break
            callback(chunk)
    finally:
        os.close(fd)


def _feed(pipe: IO[bytes] | None, data: bytes) -> None:
    if pipe is None:
        return
    with contextlib.suppress(BrokenPipeError, OSError):
        pipe.write(data)
    with contextlib.suppress(BrokenPipeError, OSError):
        pipe.close()


def _runtime_error(log_path: Path) -> str | None:
    """The last error the runtime logged (its own failure, not the container's output)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    message = None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg", "")).strip() or message
    return message


def default_state_root(home: str | os.PathLike[str], name: str) -> Path:
    """``$FORKLIFT_HOME/run/<runtime>``: the runtime's private ``--root``."""
    return Path(home) / "run" / name


def find_runtime(
    name: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    state_root: str | os.PathLike[str] | None = None,
) -> OciRuntime:
    """The runtime ``name`` (``runc``, ``crun`` or a path), or the first of runc/crun on PATH.

    Its state lives in ``state_root`` (default ``$FORKLIFT_HOME/run/<name>``).
    Raises :class:`RuntimeFailure` when no runtime can be found.
    """
    if name is not None and "/" not in name and name not in RUNTIMES:
        raise UsageError(f"unknown OCI runtime {name!r} (use runc, crun or a path to one)")
    candidates = [name] if name is not None else list(RUNTIMES)
    for candidate in candidates:
        path = candidate if "/" in candidate else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            kind = "crun" if os.path.basename(path).startswith("crun") else "runc"
            if state_root is None:
                from forklift.store.store import default_home

                root = default_state_root(home if home is not None else default_home(), kind)
            else:
                root = Path(state_root)
            return OciRuntime(kind, path, root)
    wanted = name or "runc or crun"
    raise RuntimeFailure(
        f"no OCI runtime found: {wanted} is not installed (or not on PATH)",
        hint="install runc or crun (Debian: apt-get install runc), or pass --runtime PATH",
    )
