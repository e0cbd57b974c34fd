"""The process that keeps a detached container (``forklift run -d``) running.

forklift has no daemon: ``run -d`` creates the container, writes what is
needed to run it (``request.json``: the :class:`ContainerSpec`, the runtime,
the stop timeout) and starts ``python -m forklift.runtime.supervisor HOME ID``
in a session of its own. That process does what a foreground ``run`` does
(mount, run in the OCI runtime, record the end; signals it receives are
forwarded to the container) with the container's output going to
``container.log`` (:mod:`forklift.runtime.logs`) instead of a terminal; its
own messages go to ``supervisor.log`` beside it. ``ps`` sees it as the
container's supervisor, so a killed supervisor is noticed as for a foreground
run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from forklift.errors import ForkliftError, InvalidInput
from forklift.fsutil import atomic_write
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest
from forklift.runtime.oci_runtime import OciRuntime, find_runtime
from forklift.runtime.spec import BindMount, ContainerSpec, Mount, TmpfsMount

REQUEST = "request.json"


def spec_to_json(spec: ContainerSpec) -> dict[str, Any]:
    """A :class:`ContainerSpec` as JSON data (mounts tagged with their kind)."""
    out = asdict(spec)
    out["mounts"] = [
        {"kind": "bind" if isinstance(m, BindMount) else "tmpfs", **asdict(m)} for m in spec.mounts
    ]
    return out


def spec_from_json(value: dict[str, Any]) -> ContainerSpec:
    """The inverse of :func:`spec_to_json`."""
    mounts: list[Mount] = []
    for m in value.get("mounts", []):
        fields = {k: v for k, v in m.items() if k != "kind"}
        mounts.append(BindMount(**fields) if m["kind"] == "bind" else TmpfsMount(**fields))
    tuples = ("args", "env", "extra_groups", "capabilities")
    fields = {k: (tuple(v) if k in tuples else v) for k, v in value.items() if k != "mounts"}
    fields["extra_hosts"] = tuple(tuple(h) for h in value.get("extra_hosts", ()))
    return ContainerSpec(**fields, mounts=tuple(mounts))


def write_request(
    directory: Path, spec: ContainerSpec, runtime: OciRuntime, stop_timeout: float
) -> None:
    """What the supervisor needs to run the container, next to its record."""
    request = {
        "spec": spec_to_json(spec),
        "runtime": runtime.path,
        "stop_timeout": stop_timeout,
    }
    atomic_write(directory / REQUEST, json.dumps(request, indent=1).encode())


def spawn(home: Path, container_id: str) -> subprocess.Popen[bytes]:
    """Start the supervisor of ``container_id``, detached from this process's session."""
    log = open(home / "containers" / container_id / "supervisor.log", "ab")  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "forklift.runtime.supervisor", str(home), container_id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()


def supervise(home: Path, container_id: str) -> int:
    """Run the created container ``container_id`` to its end; the process's exit status."""
    from forklift.runtime.containers import Containers, process_start
    from forklift.runtime.logs import LogWriter
    from forklift.runtime.snapshots import layers_from
    from forklift.store.store import Store

    containers = Containers(Store(home))
    record = containers.get(container_id)
    # from now on `ps` can tell whether this supervisor is alive, even before the process runs
    record = replace(record, pid=os.getpid(), pid_start=process_start(os.getpid()))
    containers.save(record)
    directory = containers.dir_of(record.id)
    try:
        request = json.loads((directory / REQUEST).read_bytes())
        spec = spec_from_json(request["spec"])
        stop_timeout = float(request["stop_timeout"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"container {record.id}: unreadable {REQUEST}: {exc}") from None
    runtime = find_runtime(request["runtime"], home=home)
    digest = Digest.parse(record.image_digest)
    manifest = containers.store.get_manifest(digest)
    if not isinstance(manifest, ImageManifest):
        raise InvalidInput(f"container {record.id}: {digest} is not an image manifest")
    config = containers.store.get_config(manifest.config.digest)
    writer = LogWriter(containers.log_path(record))
    try:
        outcome = containers.execute(
            record, spec, runtime, layers_from(manifest, config), stop_timeout,
            stdin=None, stdout=writer.stdout, stderr=writer.stderr,
        )  # fmt: skip
    finally:
        writer.close()
    return outcome.result.exit_code


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m forklift.runtime.supervisor HOME CONTAINER-ID", file=sys.stderr)
        sys.exit(2)
    os.umask(0o022)
    try:
        code = supervise(Path(args[0]), args[1])
    except ForkliftError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(125)
    sys.exit(code)


if __name__ == "__main__":
    main()
