"""``forklift run``, ``ps``, ``rm``, ``logs``, ``stop`` and ``wait``: containers from images."""

from __future__ import annotations

import os
import shlex
import sys

import click

from forklift.cli._common import (
    cancellable,
    open_store,
    parse_size,
    print_json,
    print_table,
    refuse_options,
    time_ago,
    time_since,
)
from forklift.cli._policy import enforcer, policy_options
from forklift.errors import ForkliftError, UsageError
from forklift.reference import Reference
from forklift.runtime.containers import (
    ContainerRecord,
    Containers,
    RunOptions,
    expand_env,
    parse_env_file,
)
from forklift.runtime.oci_runtime import INHERIT
from forklift.runtime.spec import NETWORKS, BindMount, Mount, TmpfsMount
from forklift.store.store import Store

#: forklift's own failures under ``run`` exit like Docker's: 125.
RUN_ERROR_EXIT = 125


def parse_volume(text: str) -> BindMount:
    """``-v HOST:CONTAINER[:ro|rw]``; a missing host directory is created, as Docker does."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"invalid volume {text!r}: expected HOST:CONTAINER[:ro]")
    host, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    unknown = [o for o in options if o not in ("ro", "rw", "z", "Z")]
    if unknown:
        raise UsageError(f"invalid volume {text!r}: unknown option {unknown[0]!r}")
    if not host.startswith("/"):
        raise UsageError(
            f"invalid volume {text!r}: named volumes are not supported; give an absolute host path"
        )
    if not target.startswith("/"):
        raise UsageError(f"invalid volume {text!r}: the container path must be absolute")
    if not os.path.exists(host):
        os.makedirs(host, exist_ok=True)
    return BindMount(os.path.realpath(host), target, readonly="ro" in options)


def parse_tmpfs(text: str) -> TmpfsMount:
    """``--tmpfs /path[:size=64m,mode=1777]``."""
    target, _, opts = text.partition(":")
    size: int | None = None
    mode = 0o1777
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key == "size":
            size = parse_size(value)
        elif key == "mode":
            try:
                mode = int(value, 8)
            except ValueError:
                raise UsageError(f"invalid tmpfs mode {value!r}") from None
        else:
            raise UsageError(f"unsupported tmpfs option {opt!r} (size=, mode=)")
    if not target.startswith("/"):
        raise UsageError(f"invalid tmpfs target {target!r}: must be absolute")
    return TmpfsMount(target, size, mode)


def _check_terminal() -> None:
    """``-t``: the runtime relays forklift's own terminal, so one of its stdio must be one."""
    if not any(os.isatty(fd) for fd in (0, 1, 2)):
        raise UsageError(
            "the input device is not a TTY: -t needs forklift to run in a terminal",
            hint="drop -t (use -i alone to pipe input)",
        )


#: docker run flags forklift does not have: (flags, takes a value, what to do instead)
UNSUPPORTED_RUN_FLAGS: tuple[tuple[tuple[str, ...], bool, str], ...] = (
    (
        ("-p", "--publish"),
        True,
        "there is no bridge network to publish from: the container "
        "shares the host's network (--network host, the default), so a server in it listens "
        "on the host's ports directly",
    ),
    (
        ("-P", "--publish-all"),
        False,
        "there is no bridge network: the container's ports are "
        "the host's (--network host, the default)",
    ),
    (("--expose",), True, "ports need no exposing: the container shares the host's network"),
    (
        ("--restart",),
        True,
        "there is no daemon to restart containers; use a service manager "
        "(a systemd unit running forklift run)",
    ),
    (
        (
            "-m",
            "--memory",
            "--memory-swap",
            "--memory-reservation",
            "--cpus",
            "--cpu-shares",
            "-c",
            "--cpuset-cpus",
            "--pids-limit",
            "--blkio-weight",
            "--ulimit",
            "--shm-size",
        ),
        True,
        "resource limits are not set by forklift (the container inherits forklift's)",
    ),
    (("--privileged",), False, "containers always run with docker's default capabilities"),
    (
        (
            "--cap-add",
            "--cap-drop",
            "--security-opt",
            "--device",
            "--device-cgroup-rule",
            "--userns",
            "--pid",
            "--ipc",
            "--uts",
            "--cgroupns",
            "--cgroup-parent",
        ),
        True,
        "the isolation settings are fixed (docker's defaults; see the README's 'Isolation "
        "defaults')",
    ),
    (("--mount",), True, "use -v HOST:CONTAINER[:ro] for bind mounts or --tmpfs PATH"),
    (
        (
            "--add-host",
            "--dns",
            "--dns-search",
            "--dns-option",
            "--mac-address",
            "--ip",
            "--ip6",
            "--link",
            "--network-alias",
        ),
        True,
        "the container uses the host's /etc/resolv.conf and only --network none|host|default",
    ),
    (
        (
            "-l",
            "--label",
            "--label-file",
            "--health-cmd",
            "--health-interval",
            "--health-retries",
            "--health-timeout",
            "--health-start-period",
            "--log-driver",
            "--log-opt",
            "--cidfile",
            "--platform",
            "--gpus",
            "--init",
            "--stop-signal",
            "--detach-keys",
            "-a",
            "--attach",
        ),
        True,
        "forklift run does not have it",
    ),
)


class _RunCommand(click.Command):
    """``run``: usage errors exit 125, as docker run's do (its exit codes are the container's)."""

    def make_context(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            if isinstance(exc, click.NoSuchOption) and exc.possibilities:
                # suggest only options run has, not the hidden unsupported ones
                visible = {o for p in self.params if not getattr(p, "hidden", False)
                           for o in getattr(p, "opts", [])}  # fmt: skip
                exc.possibilities = [o for o in exc.possibilities if o in visible]
            exc.exit_code = RUN_ERROR_EXIT
            raise


@refuse_options(UNSUPPORTED_RUN_FLAGS, "run", RUN_ERROR_EXIT)
@click.command(cls=_RunCommand, context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the ID.")
@click.option(
    "--pull",
    "pull_policy",
    type=click.Choice(["missing", "always", "never"]),
    default="missing",
    show_default=True,
    help="Pull the image: when missing from the store, always, or never.",
)
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits.")
@click.option(
    "-e", "--env", multiple=True, help="Set an environment variable (K=V, or K from host)."
)
@click.option("--env-file", multiple=True, type=click.Path(), help="Read variables from a file.")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-u", "--user", help="User (name|uid)[:(group|gid)].")
@click.option("--group-add", multiple=True, help="Extra supplementary groups.")
@click.option("--entrypoint", help="Replace the image's Entrypoint (and clear its Cmd).")
@click.option("-v", "--volume", multiple=True, help="Bind mount HOST:CONTAINER[:ro].")
@click.option("--tmpfs", multiple=True, help="Mount a tmpfs: PATH[:size=64m,mode=1777].")
@click.option(
    "--network",
    "--net",
    type=click.Choice(NETWORKS),
    default="default",
    show_default=True,
    help="none: only loopback; host/default: the host's network.",
)
@click.option("--name", help="Name the container.")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal.")
@click.option("--hostname", "-h", "hostname", help="Container host name.")
@click.option("--read-only", is_flag=True, help="Mount the root filesystem read-only.")
@click.option(
    "--stop-timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between forwarding SIGINT/SIGTERM and killing the container.",
)
@click.option("--runtime", help="OCI runtime: runc, crun or a path (default: runc, else crun).")
@policy_options
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@cancellable("run")
def run(
    detach: bool,
    pull_policy: str,
    remove: bool,
    env: tuple[str, ...],
    env_file: tuple[str, ...],
    workdir: str | None,
    user: str | None,
    group_add: tuple[str, ...],
    entrypoint: str | None,
    volume: tuple[str, ...],
    tmpfs: tuple[str, ...],
    network: str,
    name: str | None,
    interactive: bool,
    tty: bool,
    hostname: str | None,
    read_only: bool,
    stop_timeout: float,
    runtime: str | None,
    policy_file: str | None,
    verify_policy: bool,
    insecure_policy: bool,
    image: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND (or the image's default) in a new container of IMAGE.

    An image missing from the store is pulled first (--pull). The exit status
    is the container's; 125 if forklift failed, 126 if the command cannot be
    executed, 127 if it was not found. With -d the container runs in the
    background (forklift logs, stop, wait) and its ID is printed.
    """
    try:
        if tty and not detach:
            _check_terminal()
        store = open_store()
        _pull_if_needed(store, image, pull_policy)
        variables: list[str] = []
        for path in env_file:
            variables.extend(parse_env_file(path))
        variables.extend(expand_env(env))
        mounts: list[Mount] = [parse_volume(v) for v in volume]
        mounts.extend(parse_tmpfs(t) for t in tmpfs)
        options = RunOptions(
            command=command,
            entrypoint=entrypoint,
            env=tuple(variables),
            workdir=workdir,
            user=user,
            mounts=tuple(mounts),
            network=network,
            name=name,
            remove=remove,
            interactive=interactive,
            tty=tty,
            hostname=hostname,
            runtime=runtime,
            stop_timeout=stop_timeout,
            read_only=read_only,
            group_add=group_add,
            detach=detach,
        )
        policy = enforcer(policy_file, verify_policy, insecure_policy)
        if policy is not None:
            stored = store.resolve(image)
            from forklift.transports.layout import name_of

            policy.check_stored(store, stored, name_of(image, stored.names))
        if detach:
            record = Containers(store).start_detached(image, options)
        else:
            outcome = Containers(store).run(
                image, options, stdin=INHERIT if (interactive or tty) else None
            )
    except ForkliftError as exc:
        exc.exit_code = RUN_ERROR_EXIT
        raise
    if detach:
        if record.status == "created" and record.error:
            click.echo(f"Error: {record.error}", err=True)
            sys.exit(record.exit_code or RUN_ERROR_EXIT)
        click.echo(record.id)
        return
    result = outcome.result
    if result.runtime_error:
        click.echo(f"Error: {result.runtime_error}", err=True)
    sys.stdout.flush()
    sys.exit(result.exit_code)


def _pull_if_needed(store: Store, image: str, policy: str) -> None:
    """docker run's --pull: say so on stderr, then pull with progress, before creating."""
    from forklift.cli.progress import make_progress
    from forklift.registry.client.images import ensure_image

    def announce(ref: Reference) -> None:
        if policy == "missing":
            click.echo(f"Unable to find image '{ref.familiar()}' locally", err=True)

    with make_progress(False) as progress:
        ensure_image(image, store, policy=policy, progress=progress, on_pull=announce)


def _status(record: ContainerRecord) -> str:
    if record.status == "running":
        return f"Up {time_since(record.started)}"
    if record.status == "exited":
        code = "?" if record.exit_code is None else str(record.exit_code)
        return f"Exited ({code}) {time_ago(record.finished)}"
    return "Created"


def _docker_fields(record: ContainerRecord, no_trunc: bool) -> dict[str, object]:
    """A container under the names docker's ``ps --format`` templates use."""
    return {
        "ID": record.id if no_trunc else record.short_id,
        "Image": record.image,
        "Command": _command(record, no_trunc),
        "CreatedAt": record.created,
        "RunningFor": time_ago(record.created),
        "Status": _status(record),
        "State": record.status,
        "Names": record.name,
        "Labels": "",
        "Mounts": "",
        "Networks": "",
        "Ports": "",
    }


def _command(record: ContainerRecord, no_trunc: bool) -> str:
    text = shlex.join(record.command)
    if not no_trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


@click.command()
@click.option(
    "-a", "--all", "show_all", is_flag=True, help="Show all containers, not only running."
)
@click.option("-q", "--quiet", is_flag=True, help="Only show container IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate IDs and commands.")
@click.option(
    "--format",
    "fmt",
    default="table",
    show_default=True,
    help="table, json (the full records), or a Go template per container ('{{.Names}}').",
)
def ps(show_all: bool, quiet: bool, no_trunc: bool, fmt: str) -> None:
    """List containers (running ones; -a for all)."""
    from forklift.cli._template import check_format, is_template, render

    check_format(fmt, ("table", "json"))
    records = Containers(open_store()).list(all=show_all)
    if fmt == "json":
        print_json([r.to_json() for r in records])
        return
    if is_template(fmt):
        for r in records:
            click.echo(render(fmt, _docker_fields(r, no_trunc)))
        return
    if quiet:
        for r in records:
            click.echo(r.id if no_trunc else r.short_id)
        return
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]]
    for r in records:
        rows.append(
            [
                r.id if no_trunc else r.short_id,
                r.image,
                _command(r, no_trunc),
                time_ago(r.created),
                _status(r),
                r.name,
            ]
        )
    print_table(rows)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Kill and remove running containers.")
@click.argument("containers", nargs=-1, required=True)
def rm(force: bool, containers: tuple[str, ...]) -> None:
    """Remove containers (their writable layers and records)."""
    store = Containers(open_store())
    failed = 0
    for text in containers:
        try:
            store.remove(text, force=force)
        except ForkliftError as exc:
            failed += 1
            click.echo(f"Error: {exc}", err=True)
            if exc.hint:
                click.echo(f"Hint: {exc.hint}", err=True)
            continue
        click.echo(text)
    if failed:
        sys.exit(1)


@click.command()
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until it exits.")
@click.option("-n", "--tail", default="all", help="Only the last N lines (or all).")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.argument("container")
def logs(follow: bool, tail: str, timestamps: bool, container: str) -> None:
    """Print a detached container's output (stdout to stdout, stderr to stderr)."""
    from forklift.runtime.logs import STDOUT, read_lines

    if tail != "all" and not tail.isdigit():
        raise UsageError(f"--tail: expected a number of lines or 'all', not {tail!r}")
    containers = Containers(open_store())
    record = containers.get(container)
    path = containers.log_path(record)
    if not record.detached:
        raise UsageError(
            f"container {record.name} ran in the foreground: its output went to the terminal "
            "and was not kept",
            hint="containers started with forklift run -d keep their output for forklift logs",
        )

    def running() -> bool:
        current = containers.refresh(record.id)
        return current is not None and current.active

    out = {STDOUT: sys.stdout.buffer, 2: sys.stderr.buffer}
    for line in read_lines(
        path, tail=None if tail == "all" else int(tail), follow=running if follow else None
    ):
        stream = out[line.stream]
        if timestamps:
            stream.write(line.timestamp().encode() + b" ")
        stream.write(line.data)
        stream.flush()


@click.command()
@click.option(
    "-t", "--time", "timeout", type=float, default=10.0, show_default=True,
    help="Seconds to wait for the stop signal to work before SIGKILL.",
)  # fmt: skip
@click.argument("containers", nargs=-1, required=True)
def stop(timeout: float, containers: tuple[str, ...]) -> None:
    """Stop running containers: their stop signal (SIGTERM), then SIGKILL after --time."""
    store = Containers(open_store())
    failed = 0
    for text in containers:
        try:
            store.stop(text, timeout)
        except ForkliftError as exc:
            failed += 1
            click.echo(f"Error: {exc}", err=True)
            continue
        click.echo(text)
    if failed:
        sys.exit(1)


@click.command()
@click.argument("containers", nargs=-1, required=True)
def wait(containers: tuple[str, ...]) -> None:
    """Wait until containers exit; print each one's exit code."""
    store = Containers(open_store())
    failed = 0
    for text in containers:
        try:
            code = store.wait(text)
        except ForkliftError as exc:
            failed += 1
            click.echo(f"Error: {exc}", err=True)
            continue
        click.echo("-1" if code is None else str(code))
    if failed:
        sys.exit(1)
