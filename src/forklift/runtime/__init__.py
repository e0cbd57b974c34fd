"""Running processes in images: overlay snapshots, OCI runtime bundles, runc/crun.

The pieces, bottom up:

- :mod:`~forklift.runtime.snapshots`: each layer unpacked once per chain ID;
  :meth:`Snapshotter.mount` stacks a chain with overlayfs under a fresh upper
  dir; :meth:`Mounted.commit` turns a finished upper dir into the next snapshot.
- :mod:`~forklift.runtime.spec` / :mod:`~forklift.runtime.bundle`: a frozen
  :class:`ContainerSpec` and the OCI ``config.json`` made from it, with the
  user resolved from the image's /etc/passwd and /etc/group.
- :mod:`~forklift.runtime.oci_runtime`: runc or crun, signals, exit codes.
- :func:`run_container`: all of the above for one process (a build's RUN).
- :mod:`~forklift.runtime.containers`: ``forklift run``/``ps``/``rm``.

Example (what the builder does for ``RUN make``)::

    snaps = Snapshotter(store)
    with snaps.mount(image_layers(store, base)) as m:
        spec = ContainerSpec(args=("/bin/sh", "-c", "make"), env=env, cwd="/src")
        result = run_container(spec, m.rootfs, stdout=show, stderr=STDOUT)
        if result.ok:
            info = write_layer(blob_file, m.upper, overlay=True)
            m.commit(info.diff_id)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are imported on first use (PEP 562), so that a command needing one module
# (the recovery every command runs, ``ps``) does not load runc plumbing it never uses.
_WHERE = {
    "INHERIT": "oci_runtime",
    "STDOUT": "oci_runtime",
    "OciRuntime": "oci_runtime",
    "RunResult": "oci_runtime",
    "exit_code_for_error": "oci_runtime",
    "find_runtime": "oci_runtime",
    "ExecUser": "rootfs",
    "resolve_in_root": "rootfs",
    "resolve_user": "rootfs",
    "new_container_id": "runner",
    "run_container": "runner",
    "LayerRef": "layerstack",
    "Mounted": "snapshots",
    "Snapshot": "snapshots",
    "Snapshotter": "snapshots",
    "chain_id": "layerstack",
    "chain_ids": "layerstack",
    "image_layers": "layerstack",
    "layers_from": "layerstack",
    "next_chain_id": "layerstack",
    "DEFAULT_CAPABILITIES": "spec",
    "BindMount": "spec",
    "ContainerSpec": "spec",
    "Mount": "spec",
    "TmpfsMount": "spec",
}

if TYPE_CHECKING:
    from forklift.runtime.oci_runtime import (
        INHERIT,
        STDOUT,
        OciRuntime,
        RunResult,
        exit_code_for_error,
        find_runtime,
    )
    from forklift.runtime.rootfs import ExecUser, resolve_in_root, resolve_user
    from forklift.runtime.runner import new_container_id, run_container
    from forklift.runtime.snapshots import (
        LayerRef,
        Mounted,
        Snapshot,
        Snapshotter,
        chain_id,
        chain_ids,
        image_layers,
        layers_from,
        next_chain_id,
    )
    from forklift.runtime.spec import (
        DEFAULT_CAPABILITIES,
        BindMount,
        ContainerSpec,
        Mount,
        TmpfsMount,
    )


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"forklift.runtime.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_CAPABILITIES",
    "INHERIT",
    "STDOUT",
    "BindMount",
    "ContainerSpec",
    "ExecUser",
    "LayerRef",
    "Mount",
    "Mounted",
    "OciRuntime",
    "RunResult",
    "Snapshot",
    "Snapshotter",
    "TmpfsMount",
    "chain_id",
    "chain_ids",
    "exit_code_for_error",
    "find_runtime",
    "image_layers",
    "layers_from",
    "new_container_id",
    "next_chain_id",
    "resolve_in_root",
    "resolve_user",
    "run_container",
]
