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
