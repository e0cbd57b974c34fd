"""Where a build's result goes besides the store (``--output``, BuildKit's exporters).

* ``type=oci`` / ``type=docker``: the image as an OCI or docker archive, written
  by the same copy engine as ``forklift save``;
* ``type=tar``: the final stage's filesystem as one plain tar (what the image
  would show in a container, whiteouts applied), written from a read-only
  overlay mount of its layers;
* ``type=local``: that filesystem written into a directory (each layer applied
  in order, whiteouts deleting, symlinks resolved inside the directory);

and ``dest=-`` writes an archive or tar to standard output (a scratch file
first where the archive format needs to seek).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from forklift.build.options import Output
from forklift.errors import UsageError
from forklift.oci.descriptor import Descriptor
from forklift.reference import Reference
from forklift.store.store import Store

if TYPE_CHECKING:
    from forklift.runtime.snapshots import LayerRef, Snapshotter


def export(
    output: Output,
    store: Store,
    image: Descriptor,
    layers: Sequence[LayerRef],
    snapshotter: Snapshotter,
    *,
    names: Sequence[Reference] = (),
    stdout: BinaryIO | None = None,
) -> str:
    """Write the built ``image`` (whose layers are ``layers``) where ``output`` says.

    Returns a short description of what was written (``""`` for ``type=image``).
    ``stdout`` is where ``dest=-`` goes (default: the process's standard output).
    """
    if output.type == "image":
        return ""
    assert output.dest is not None
    if output.type == "local":
        _local(store, layers, output.dest)
        return f"the filesystem in {output.dest}"
    if output.to_stdout:
        out = stdout if stdout is not None else _stdout()
        _check_not_a_terminal(out)
        if output.type == "tar":
            _tar(layers, snapshotter, out)
        else:
            # spooled in the scratch space the next command cleans if this one is killed
            with snapshotter.scratch() as tmp:
                path = os.path.join(tmp, "archive.tar")
                _archive(output.type, store, image, path, names)
                with open(path, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
            out.flush()
        return f"a {output.type} archive on standard output"
    if output.type == "tar":
        _tar(layers, snapshotter, output.dest)
        return f"the filesystem as {output.dest}"
    _archive(output.type, store, image, output.dest, names)
    return f"a {output.type} archive {output.dest}"


def _stdout() -> BinaryIO:
    import sys

    return sys.stdout.buffer


def _check_not_a_terminal(out: Any) -> None:
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        raise UsageError(
            "refusing to write an archive to a terminal: redirect standard output to a file"
        )


def _archive(
    kind: str, store: Store, image: Descriptor, path: str, names: Sequence[Reference]
) -> None:
    from forklift.transports.archive import DockerArchiveDestination, OciArchiveDestination
    from forklift.transports.copy import copy_image
    from forklift.transports.layout import StoreSource

    dst: Any = (
        OciArchiveDestination(path, None) if kind == "oci" else DockerArchiveDestination(path)
    )
    with StoreSource(store, str(image.digest)) as src, dst:
        copy_image(src, dst, names=tuple(names))
        dst.commit()


def _tar(layers: Sequence[LayerRef], snapshotter: Snapshotter, out: BinaryIO | str) -> None:
    """The merged filesystem of ``layers`` as a plain tar, into a stream or (atomically) a file."""
    from forklift.layers import write_layer, write_layer_file

    def write(root: str) -> None:
        if isinstance(out, str):
            write_layer_file(out, root, compression="")
        else:
            write_layer(out, root, compression="")

    if not layers:
        with snapshotter.scratch() as empty:
            write(str(empty))
        return
    with snapshotter.mount(layers) as m:
        write(str(m.rootfs))


def _local(store: Store, layers: Sequence[LayerRef], dest: str) -> None:
    from forklift.layers import extract_layer

    if os.path.exists(dest) and not os.path.isdir(dest):
        raise UsageError(f"--output type=local,dest={dest}: exists and is not a directory")
    os.makedirs(dest, exist_ok=True)
    for n, layer in enumerate(layers, 1):
        assert layer.blob is not None
        with store.open_blob(layer.blob.digest) as blob:
            extract_layer(blob, dest, label=f"layer {n}")
