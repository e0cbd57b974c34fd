"""Run one process in a mounted root filesystem: bundle, runtime, cleanup.

This is what a build's ``RUN`` calls (with a rootfs from
:meth:`Snapshotter.mount`) and what ``forklift run`` builds on::

    with snapshotter.mount(layers) as m:
        result = run_container(ContainerSpec(args=("/bin/sh", "-c", "make")), m.rootfs,
                               stdout=on_output, stderr=STDOUT)
        if not result.ok: ...
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from forklift.runtime.bundle import Bundle, create_bundle, remove_stubs
from forklift.runtime.oci_runtime import (
    INHERIT,
    Input,
    OciRuntime,
    Output,
    RunResult,
    exit_code_for_error,
    find_runtime,
)
from forklift.runtime.rootfs import find_executable
from forklift.runtime.snapshots import Mounted
from forklift.runtime.spec import ContainerSpec, lookup_env


def new_container_id() -> str:
    """A random 64-hex-digit container ID (Docker's format)."""
    return secrets.token_hex(32)


def _covered_by_mount(spec: ContainerSpec, path: str) -> bool:
    return any(path == m.target or path.startswith(m.target.rstrip("/") + "/") for m in spec.mounts)


def precheck_executable(spec: ContainerSpec, rootfs: Path, env: list[str]) -> str | None:
    """Docker's message if ``spec.args[0]`` cannot be executed in ``rootfs``, else None.

    Skipped (None) when a mount could provide the executable, since mounts
    are not visible before the runtime makes them.
    """
    name = spec.args[0]
    path_env = lookup_env(env, "PATH")
    if "/" in name:
        full = name if name.startswith("/") else f"{spec.cwd.rstrip('/')}/{name}"
        if _covered_by_mount(spec, full):
            return None
    elif any(_covered_by_mount(spec, d or ".") for d in (path_env or "").split(":")):
        return None
    _, problem = find_executable(rootfs, name, path_env, spec.cwd)
    if problem is None:
        return None
    return f'exec: "{name}": {problem}'


def _copy_up_candidates(bundle: Bundle, upper: Path) -> list[str]:
    """Existing directories above each stub that are not in the upper dir yet (before the run)."""
    out = []
    for stub in bundle.stubs:
        parts = stub.top[:-1]
        while parts:
            if not os.path.lexists(upper.joinpath(*parts)):
                out.append("/".join(parts))
            parts = parts[:-1]
    return out


def run_container(
    spec: ContainerSpec,
    rootfs: str | os.PathLike[str] | Mounted,
    *,
    runtime: OciRuntime | None = None,
    container_id: str | None = None,
    bundle_dir: str | os.PathLike[str] | None = None,
    stdin: Input = None,
    stdout: Output = INHERIT,
    stderr: Output | str = INHERIT,
    timeout: float | None = None,
    stop_timeout: float = 10.0,
    forward_signals: bool = False,
) -> RunResult:
    """Run ``spec`` on the mounted ``rootfs`` with an OCI runtime and wait for it.

    ``rootfs`` is a directory, or a :class:`Mounted` overlay (then directories
    copied up only to hold mount points are dropped from its upper dir when
    it is unmounted). ``runtime`` defaults to :func:`find_runtime` (runc, else crun).
    ``container_id`` defaults to a fresh ``fk-<lease>-<hex>`` for a
    :class:`Mounted` rootfs (see :mod:`forklift.runtime.recovery`), ``fk-<hex>``
    otherwise (pass one to be able to :meth:`OciRuntime.kill` the run from
    another thread). The bundle goes to
    ``bundle_dir`` (kept) or a temporary directory under the runtime's state
    parent (removed). Mount points the run needed but the image lacked are
    removed afterwards. Output handling and timeouts: see :meth:`OciRuntime.run`.
    Signals: with ``forward_signals`` (``forklift run``), SIGINT/SIGTERM go to the
    container as ``docker run`` forwards them; without (a build's RUN), a
    cancelled command (:mod:`forklift.cancel`) kills the container at once and
    :class:`~forklift.cancel.Cancelled` is raised once it is cleaned up. A process that cannot be started gives a result
    with ``runtime_error`` (and exit code 125/126/127), not an exception.
    """
    rt = runtime if runtime is not None else find_runtime()
    mounted = rootfs if isinstance(rootfs, Mounted) else None
    # Named after the snapshot lease of this process, so that if it is killed, the next
    # forklift command knows the container (and its bundle) lost their owner.
    owner = f"{mounted.snapshotter.lease_stem()}-" if mounted is not None else ""
    cid = container_id or f"fk-{owner}{secrets.token_hex(8)}"
    root = mounted.rootfs if mounted is not None else Path(rootfs)  # type: ignore[arg-type]
    temporary = bundle_dir is None
    bdir = Path(bundle_dir) if bundle_dir is not None else rt.state_root.parent / "bundles" / cid
    try:
        bundle = create_bundle(bdir, spec, root, container_id=cid, cgroups_path=f"/forklift/{cid}")
        candidates = _copy_up_candidates(bundle, mounted.upper) if mounted is not None else []
        try:
            env = bundle.config["process"]["env"]  # type: ignore[index]
            problem = precheck_executable(spec, bundle.rootfs, list(env))
            if problem is not None:
                return RunResult(exit_code_for_error(problem), runtime_error=problem)
            return rt.run(
                bdir,
                cid,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,  # type: ignore[arg-type]
                timeout=timeout,
                stop_timeout=stop_timeout,
                forward_signals=forward_signals,
            )
        finally:
            remove_stubs(bundle.rootfs, bundle.stubs)
            if mounted is not None:
                mounted.note_copied_up(candidates)
    finally:
        if temporary:
            shutil.rmtree(bdir, ignore_errors=True)
