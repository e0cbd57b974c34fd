"""Containers: ``forklift run`` / ``ps`` / ``rm`` — an image's layers plus a kept writable layer.

Each container lives in ``$FORKLIFT_HOME/containers/<id>/``::

    container.json   the record (see :class:`ContainerRecord`)
    upper/ work/     its writable layer (overlay upper and work dirs)
    rootfs/          the merged view, mounted only while it runs
    bundle/          config.json, hosts, resolv.conf, hostname, runtime.log

A container also registers a store root (``roots/containers/<id>.json``, the
image's manifest descriptor), so ``forklift rmi`` + ``prune`` cannot take its
image's blobs or snapshots away until it is removed. ``--rm`` removes all of
it when the process ends.

A record holds the PID (and its start time) of the forklift process
supervising the container from the moment it is created; if that process died
without updating the record (kill -9), the next forklift command notices
(:mod:`forklift.runtime.recovery`), kills and deletes the container, releases
its mount and shows it as exited (or removes it, for ``--rm``).
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as _dt
import fcntl
import json
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from forklift.errors import Conflict, ForkliftError, InvalidInput, NotFound, UsageError
from forklift.fsutil import atomic_write, private_dir
from forklift.oci.config import ContainerConfig, ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.manifest import ImageIndex, ImageManifest
from forklift.oci.platform import host_platform
from forklift.runtime import overlay
from forklift.runtime.oci_runtime import (
    INHERIT,
    Input,
    OciRuntime,
    Output,
    RunResult,
    find_runtime,
)
from forklift.runtime.runner import new_container_id, run_container
from forklift.runtime.snapshots import LayerRef, Snapshotter, layers_from, remove_tree
from forklift.runtime.spec import ContainerSpec, Mount
from forklift.store.store import Leftover, Store, StoredImage

ROOT_KIND = "containers"
RECORD = "container.json"
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_ADJECTIVES = (
    "agile", "bold", "brave", "calm", "clever", "crisp", "eager", "fancy", "gentle", "happy",
    "jolly", "keen", "lucid", "merry", "nimble", "proud", "quiet", "rapid", "sharp", "steady",
    "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)  # fmt: skip
_NOUNS = (
    "badger", "beaver", "crane", "dolphin", "falcon", "ferret", "gecko", "heron", "ibis",
    "jackal", "koala", "lemur", "lynx", "marmot", "otter", "panda", "puffin", "quokka",
    "raven", "salmon", "tapir", "walrus", "wombat", "yak", "zebra",
)  # fmt: skip


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of /proc/PID/stat), to tell a reused PID apart."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


@dataclass(frozen=True)
class ContainerRecord:
    """What ``container.json`` holds (and ``forklift ps --format json`` prints).

    ``status`` is ``created``, ``running`` or ``exited``; ``exit_code`` is
    None until the container exited (and stays None if its supervisor died).
    """

    id: str
    name: str
    image: str
    image_id: str
    image_digest: str
    command: tuple[str, ...]
    created: str
    status: str = "created"
    exit_code: int | None = None
    started: str | None = None
    finished: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    runtime: str = "runc"
    remove: bool = False
    error: str | None = None
    #: the signal ``forklift stop`` sends first (the image's StopSignal, else SIGTERM)
    stop_signal: str = "SIGTERM"
    #: started with ``run -d``: its output is in ``container.log`` (``forklift logs``)
    detached: bool = False

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["command"] = list(self.command)
        return out

    @classmethod
    def from_json(cls, value: dict[str, object]) -> ContainerRecord:
        fields = {k: v for k, v in value.items() if k in cls.__dataclass_fields__}
        fields["command"] = tuple(fields.get("command") or ())  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def active(self) -> bool:
        """Running, or created and about to be started (its process may still write)."""
        return self.status == "running" or (self.status == "created" and self.error is None)

    def supervisor_alive(self) -> bool:
        """Whether the forklift process that runs this container still exists."""
        return (
            self.pid is not None
            and self.pid_start is not None
            and process_start(self.pid) == self.pid_start
        )


@dataclass(frozen=True)
class RunOptions:
    """``forklift run`` flags as data (Docker's semantics; see :func:`container_spec`)."""

    command: tuple[str, ...] = ()
    entrypoint: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    mounts: tuple[Mount, ...] = ()
    network: str = "default"
    name: str | None = None
    remove: bool = False
    interactive: bool = False
    tty: bool = False
    hostname: str | None = None
    runtime: str | None = None
    stop_timeout: float = 10.0
    read_only: bool = False
    group_add: tuple[str, ...] = ()
    detach: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def command_for(config: ContainerConfig, options: RunOptions) -> tuple[str, ...]:
    """Docker's rule: Entrypoint + Cmd, where CMD args replace Cmd and --entrypoint resets both."""
    if options.entrypoint is not None:
        entrypoint: tuple[str, ...] = (options.entrypoint,) if options.entrypoint else ()
        cmd = options.command
    else:
        entrypoint = config.entrypoint or ()
        cmd = options.command or config.cmd or ()
    return (*entrypoint, *cmd)


def container_spec(
    config: ContainerConfig, options: RunOptions, container_id: str
) -> ContainerSpec:
    """The :class:`ContainerSpec` for running an image with ``config`` under ``options``."""
    args = command_for(config, options)
    if not args:
        raise UsageError(
            "no command specified: the image has no Entrypoint or Cmd; give one after the image"
        )
    workdir = options.workdir if options.workdir is not None else config.working_dir or "/"
    if not workdir.startswith("/"):
        raise UsageError(f"the working directory {workdir!r} is invalid: it must be absolute")
    host_net = options.network in ("host", "default")
    if options.hostname:
        hostname = options.hostname
    elif host_net:
        hostname = os.uname().nodename
    else:
        hostname = container_id[:12]
    env = [f"HOSTNAME={hostname}"]
    if options.tty:
        env.append("TERM=xterm")
    env.extend(config.env)
    env.extend(options.env)
    return ContainerSpec(
        args=args,
        env=tuple(env),
        cwd=workdir,
        user=options.user if options.user is not None else config.user,
        extra_groups=options.group_add,
        hostname=hostname,
        terminal=options.tty,
        network=options.network,
        mounts=options.mounts,
        readonly_rootfs=options.read_only,
    )


def parse_env_file(
    path: str | os.PathLike[str], environ: dict[str, str] | None = None
) -> list[str]:
    """``--env-file``: ``KEY=value`` lines (value taken literally), ``KEY`` alone from the host env.

    Blank lines and lines starting with ``#`` are skipped; a malformed line
    is an error naming ``file:line``.
    """
    source = os.environ if environ is None else environ
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise InvalidInput(f"cannot read env file {path}: {exc.strerror}") from None
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise InvalidInput(
                f"{path}:{number}: invalid variable name {key!r} (no spaces, not empty)"
            )
        if sep:
            out.append(f"{key}={value}")
        elif key in source:
            out.append(f"{key}={source[key]}")
    return out


def expand_env(items: tuple[str, ...], environ: dict[str, str] | None = None) -> list[str]:
    """``-e K=V`` as given; ``-e K`` takes K from the host environment (dropped if unset)."""
    source = os.environ if environ is None else environ
    out = []
    for item in items:
        key, sep, _ = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable {item!r}")
        if sep:
            out.append(item)
        elif key in source:
            out.append(f"{key}={source[key]}")
    return out


@dataclass(frozen=True)
class RunOutcome:
    """The record of a finished ``run`` and the runtime's result."""

    record: ContainerRecord
    result: RunResult


class Containers:
    """The containers under ``$FORKLIFT_HOME/containers``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.home / "containers"

    # -- records ---------------------------------------------------------------------

    def dir_of(self, container_id: str) -> Path:
        return self.root / container_id

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialises name allocation and removal across processes."""
        private_dir(self.root)  # writable layers hold whatever the containers made
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self, container_id: str) -> ContainerRecord | None:
        try:
            raw = (self.dir_of(container_id) / RECORD).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return ContainerRecord.from_json(json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"container record {container_id} is damaged: {exc}") from None

    def save(self, record: ContainerRecord) -> None:
        """Write a record atomically (nothing if the container was removed meanwhile)."""
        directory = self.dir_of(record.id)
        if directory.is_dir():
            atomic_write(directory / RECORD, json.dumps(record.to_json(), indent=1).encode())

    def _all(self) -> list[ContainerRecord]:
        out = []
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if len(entry.name) == 64:
                    with contextlib.suppress(ForkliftError):
                        record = self._read(entry.name)
                        if record is not None:
                            out.append(record)
        return out

    def list(self, *, all: bool = False) -> list[ContainerRecord]:
        """Containers, newest first; only running ones unless ``all``."""
        records = [self._reconcile(r) for r in self._all()]
        records.sort(key=lambda r: r.created, reverse=True)
        return [r for r in records if all or r.status == "running"]

    def get(self, text: str) -> ContainerRecord:
        """A container by full ID, name, or unique ID prefix (Docker's rules)."""
        records = self._all()
        for r in records:
            if r.id == text or r.name == text:
                return self._reconcile(r)
        hits = [r for r in records if text and r.id.startswith(text)]
        if len(hits) == 1:
            return self._reconcile(hits[0])
        if len(hits) > 1:
            raise Conflict(f"{text!r} matches {len(hits)} containers; give more characters")
        raise NotFound(f"no such container: {text}")

    def refresh(self, container_id: str) -> ContainerRecord | None:
        """The current record of a container by full ID (None once it is removed)."""
        record = self._read(container_id)
        return self._reconcile(record) if record is not None else None

    def _reconcile(self, record: ContainerRecord) -> ContainerRecord:
        """A record claiming ``created``/``running`` whose supervisor is gone: clean up after it.

        Its container is killed and deleted and its mount released. A ``--rm``
        container is removed altogether; one that was running is marked exited;
        one whose process never started stays ``created`` with the error (as
        docker shows a container that never started).
        """
        if not _orphaned(record):
            return record
        self._release(record)
        if record.status == "created":
            fixed = replace(
                record,
                pid=None,
                pid_start=None,
                exit_code=record.exit_code if record.error is not None else 125,
                error=record.error or "the container's supervisor died before the process started",
            )
        else:
            fixed = replace(
                record,
                status="exited",
                finished=record.finished or _now(),
                pid=None,
                pid_start=None,
                error=record.error or "forklift process supervising the container died",
            )
        if record.remove:
            with self._lock():
                self._destroy_locked(fixed)
        else:
            self.save(fixed)
        return fixed

    def leftovers(self) -> builtins.list[Leftover]:
        """Containers whose supervising ``forklift`` process died (nothing is changed)."""
        out = [
            Leftover("container", r.id, f"process {r.pid} (forklift run), dead")
            for r in self._all()
            if _orphaned(r)
        ]
        with self._lock():
            out += [
                Leftover("directory", str(self.dir_of(n)), "forklift run, killed while creating")
                for n in self._half_created()
            ]
        return out

    def recover(self) -> builtins.list[Leftover]:
        """Clean up after supervisors that died (see :meth:`_reconcile`); returns what was done."""
        found = self.leftovers()
        for r in self._all():
            self._reconcile(r)
        with self._lock():
            for name in self._half_created():
                remove_tree(self.dir_of(name))
                self.store.delete_root(ROOT_KIND, name)
        return found

    def _half_created(self) -> builtins.list[str]:
        """Container directories without a record: a process died inside :meth:`create`
        (which holds :meth:`_lock` from making the directory to writing the record, as
        the caller of this must)."""
        if not self.root.is_dir():
            return []
        return [
            e.name for e in self.root.iterdir() if len(e.name) == 64 and not (e / RECORD).exists()
        ]

    def _release(self, record: ContainerRecord) -> None:
        """Stop whatever a container may still hold: its process, runtime state, mount."""
        with contextlib.suppress(ForkliftError):
            rt = find_runtime(record.runtime, home=self.store.home)
            rt.delete(record.id)
        for point in overlay.mounts_under(self.dir_of(record.id)):
            with contextlib.suppress(ForkliftError):
                overlay.unmount(point)

    # -- lifecycle ---------------------------------------------------------------------

    def _unique_name(self, wanted: str | None, taken: set[str]) -> str:
        if wanted is not None:
            if not _NAME.fullmatch(wanted):
                raise UsageError(
                    f"invalid container name {wanted!r}: use letters, digits, '_', '.', '-'"
                )
            if wanted in taken:
                raise Conflict(
                    f"the container name {wanted!r} is already in use",
                    hint=f"remove it first (forklift rm {wanted}) or choose another --name",
                )
            return wanted
        for _ in range(100):
            name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"
            if name not in taken:
                return name
        return f"c_{secrets.token_hex(6)}"

    def create(
        self, image: StoredImage, image_text: str, command: tuple[str, ...], options: RunOptions,
        container_id: str, runtime: str,
    ) -> ContainerRecord:  # fmt: skip
        """Allocate the container's directory, record and store root."""
        with self._lock():
            name = self._unique_name(options.name, {r.name for r in self._all()})
            directory = self.dir_of(container_id)
            directory.mkdir(parents=True)
            os.chmod(directory, 0o700)
            record = ContainerRecord(
                id=container_id,
                name=name,
                image=image_text,
                image_id=str(image.id),
                image_digest=str(image.digest),
                command=command,
                created=_now(),
                # The supervisor from the start: if it dies before the container runs, the
                # next command still knows the mount and directory it made are orphans.
                pid=os.getpid(),
                pid_start=process_start(os.getpid()),
                runtime=runtime,
                remove=options.remove,
                stop_signal=_stop_signal(image.config),
                detached=options.detach,
            )
            self.save(record)
        self.store.set_root(ROOT_KIND, container_id, image.descriptor)
        return record

    def remove(self, text: str, *, force: bool = False) -> ContainerRecord:
        """``forklift rm``: delete a container's writable layer, record and store root."""
        record = self.get(text)
        if record.status == "running":
            if not force:
                raise Conflict(
                    f"cannot remove container {record.name}: it is running",
                    hint="stop it first, or use forklift rm -f to kill it",
                )
            with contextlib.suppress(ForkliftError):
                find_runtime(record.runtime, home=self.store.home).kill(record.id, "KILL")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                current = self._read(record.id)
                if current is None or current.status != "running":
                    break
                if not current.supervisor_alive():
                    break
                time.sleep(0.05)
        self._destroy(record)
        return record

    def _destroy(self, record: ContainerRecord) -> None:
        with self._lock():
            self._destroy_locked(record)

    def _destroy_locked(self, record: ContainerRecord) -> None:
        self._release(record)
        remove_tree(self.dir_of(record.id))
        self.store.delete_root(ROOT_KIND, record.id)

    # -- running ------------------------------------------------------------------------

    def _prepare(
        self, image_text: str, options: RunOptions
    ) -> tuple[ContainerRecord, ContainerSpec, OciRuntime, tuple[LayerRef, ...]]:
        """Resolve the image, make the spec and create the container (status ``created``).

        Image errors raise before anything is created.
        """
        image = self.store.resolve(image_text)
        manifest_desc, manifest, config = _single_image(self.store, image)
        layers = layers_from(manifest, config)
        runtime = find_runtime(options.runtime, home=self.store.home)
        container_id = new_container_id()
        spec = container_spec(config.config, options, container_id)
        stored = StoredImage(
            manifest_desc, image.names, manifest, config, image.size
        )  # the platform's manifest, so the root keeps exactly what runs
        record = self.create(stored, image_text, spec.args, options, container_id, runtime.name)
        return record, spec, runtime, layers

    def run(
        self,
        image_text: str,
        options: RunOptions,
        *,
        stdin: Input = None,
        stdout: Output = INHERIT,
        stderr: Output = INHERIT,
        timeout: float | None = None,
    ) -> RunOutcome:
        """Create a container from an image in the store, run it to the end, record the result.

        The writable layer is kept (``forklift ps -a`` lists it) unless
        ``options.remove``. Image errors raise before anything is created.
        (``options.detach`` is :meth:`start_detached`'s business and ignored here.)
        """
        record, spec, runtime, layers = self._prepare(image_text, options)
        return self.execute(
            record, spec, runtime, layers, options.stop_timeout,
            stdin=stdin, stdout=stdout, stderr=stderr, timeout=timeout,
        )  # fmt: skip

    def execute(
        self,
        record: ContainerRecord,
        spec: ContainerSpec,
        runtime: OciRuntime,
        layers: tuple[LayerRef, ...],
        stop_timeout: float,
        *,
        stdin: Input = None,
        stdout: Output = INHERIT,
        stderr: Output = INHERIT,
        timeout: float | None = None,
    ) -> RunOutcome:
        """Run a created container to its end in this process and record how it ended.

        A container whose process never started (its executable is missing, a
        mount failed...) goes back to ``created``, with the error and Docker's
        exit code (125/126/127), as ``docker ps -a`` shows such containers.
        """
        container_id = record.id
        directory = self.dir_of(container_id)
        result: RunResult | None = None
        error: str | None = None
        try:
            with Snapshotter(self.store) as snapshots:
                mounted = snapshots.mount(layers, workspace=directory)
                try:
                    record = replace(
                        record,
                        status="running",
                        started=_now(),
                        pid=os.getpid(),
                        pid_start=process_start(os.getpid()),
                    )
                    self.save(record)
                    result = run_container(
                        spec,
                        mounted,
                        runtime=runtime,
                        container_id=container_id,
                        bundle_dir=directory / "bundle",
                        stdin=stdin,
                        stdout=stdout,
                        stderr=stderr,
                        timeout=timeout,
                        stop_timeout=stop_timeout,
                        forward_signals=True,  # as docker run does
                    )
                    error = result.runtime_error
                finally:
                    mounted.close()
        except BaseException as exc:
            error = str(exc) if isinstance(exc, ForkliftError) else type(exc).__name__
            raise
        finally:
            started = result is not None and (
                result.runtime_error is None or result.timed_out or result.interrupted is not None
            )
            record = replace(
                record,
                status="exited" if started else "created",
                exit_code=result.exit_code if result is not None else None,
                started=record.started if started else None,
                finished=_now() if started else None,
                pid=None,
                pid_start=None,
                error=error,
            )
            if record.remove:
                self._destroy(record)
            else:
                self.save(record)
        assert result is not None
        return RunOutcome(record, result)

    # -- detached containers, stop, wait ------------------------------------------------

    def start_detached(self, image_text: str, options: RunOptions) -> ContainerRecord:
        """``run -d``: create the container and run it under a supervisor process of its own.

        The supervisor (``python -m forklift.runtime.supervisor``) outlives this
        process, writes the container's output to ``container.log`` and records
        how it ended. Returns once the process runs (or ended, or failed to
        start: then the record is ``created`` with the error and exit code).
        """
        if options.tty or options.interactive:
            raise UsageError(
                "-d cannot be combined with -i or -t: forklift has no attach, so a detached "
                "container gets no input and no terminal",
                hint="drop -i/-t; read its output with forklift logs",
            )
        options = replace(options, detach=True)
        record, spec, runtime, _ = self._prepare(image_text, options)
        directory = self.dir_of(record.id)
        try:
            from forklift.runtime.supervisor import spawn, write_request

            write_request(directory, spec, runtime, options.stop_timeout)
            proc = spawn(self.store.home, record.id)
        except BaseException:
            self._destroy(record)
            raise
        while True:
            current = self._read(record.id)
            if current is None:  # --rm: it ran and is gone already
                return replace(record, status="exited")
            if current.status == "exited" or (
                current.status == "created" and current.error is not None
            ):
                return current
            if current.status == "running" and self._process_running(current):
                return current
            if proc.poll() is not None:
                current = self._read(record.id) or current
                if current.status in ("running", "created") and current.error is None:
                    current = replace(
                        current,
                        status="created",
                        error=f"the container's supervisor exited with status {proc.returncode}",
                        exit_code=125,
                    )
                    self.save(current)
                return current
            time.sleep(0.02)

    def _process_running(self, record: ContainerRecord) -> bool:
        """Whether the runtime has started the container's process (runc/crun ``state``)."""
        with contextlib.suppress(ForkliftError):
            state = find_runtime(record.runtime, home=self.store.home).state(record.id)
            return state is not None and state.get("status") in ("running", "stopped")
        return False

    def stop(self, text: str, timeout: float = 10.0) -> ContainerRecord:
        """``forklift stop``: the container's stop signal, then SIGKILL after ``timeout`` s.

        A container that is not running is left as it is (as with docker).
        """
        record = self.get(text)
        if record.status != "running":
            return record
        rt = find_runtime(record.runtime, home=self.store.home)
        rt.kill(record.id, record.stop_signal.removeprefix("SIG") or "TERM")
        current = self._wait_until_exited(record.id, timeout)
        if current is None or current.status == "running":
            rt.kill(record.id, "KILL")
            current = self._wait_until_exited(record.id, 30)
        return current or record

    def _wait_until_exited(
        self, container_id: str, timeout: float | None
    ) -> ContainerRecord | None:
        """Poll the record until it is no longer ``running`` (None: removed meanwhile)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self._read(container_id)
            if current is None:
                return None
            current = self._reconcile(current)
            if current.status != "running":
                return current
            if deadline is not None and time.monotonic() >= deadline:
                return current
            time.sleep(0.05)

    def wait(self, text: str) -> int | None:
        """``forklift wait``: block until the container has exited; its exit code.

        A container that never started returns the exit code of its failure.
        """
        record = self.get(text)
        while True:
            current = self._wait_until_exited(record.id, None)
            if current is None:
                return record.exit_code
            if current.status == "exited" or current.error is not None:
                return current.exit_code
            time.sleep(0.05)  # created, about to be started by its supervisor

    def log_path(self, record: ContainerRecord) -> Path:
        """Where a detached container's output goes (see :mod:`forklift.runtime.logs`)."""
        return self.dir_of(record.id) / "container.log"


def _stop_signal(config: ImageConfig | None) -> str:
    """The image's StopSignal as a name (``SIGTERM`` when unset or unreadable)."""
    raw = (config.config.stop_signal if config is not None else "") or "SIGTERM"
    text = raw.upper()
    if text.isdigit():
        with contextlib.suppress(ValueError):
            return signal.Signals(int(text)).name
        return "SIGTERM"
    return text if text.startswith("SIG") else f"SIG{text}"


def _orphaned(record: ContainerRecord) -> bool:
    """A container not yet exited whose supervising forklift process is gone."""
    return (
        record.status in ("created", "running")
        and record.pid is not None
        and not record.supervisor_alive()
    )


def _single_image(
    store: Store, image: StoredImage
) -> tuple[Descriptor, ImageManifest, ImageConfig]:
    """The manifest and config to run: the image itself, or this host's entry of an index."""
    if image.error:
        raise InvalidInput(f"image {image.digest} cannot be read: {image.error}")
    desc, manifest = image.descriptor, image.manifest
    if isinstance(manifest, ImageIndex):
        desc = manifest.select(
            host_platform(),
            f"image {image.digest} (in the store)",
            lambda d: store.has_blob(d.digest),
        )
        manifest = store.get_manifest(desc.digest, desc.media_type)
    if not isinstance(manifest, ImageManifest):
        raise InvalidInput(f"image {image.digest} is not a runnable image")
    config = store.get_config(manifest.config.digest)
    plat = config.platform
    if plat.os and plat.architecture and not host_platform().can_run(plat):
        raise UsageError(
            f"the image is for {plat}, this host runs {host_platform()} (no emulation is set up)"
        )
    return desc, manifest, config


__all__ = [
    "ContainerRecord",
    "Containers",
    "RunOptions",
    "RunOutcome",
    "command_for",
    "container_spec",
    "expand_env",
    "parse_env_file",
]
