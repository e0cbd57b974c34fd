"""``forklift import``: an image of one layer from a root filesystem tarball (like ``docker import``)."""

from __future__ import annotations

import os
import sys
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, cast

from forklift.errors import InvalidInput, NotFound
from forklift.layers.compression import (
    ENCODER_ANNOTATION,
    GZIP,
    detect_compression,
    encoder_id,
    make_compressor,
    open_layer,
)
from forklift.oci import mediatypes as mt
from forklift.oci.config import ContainerConfig, History, ImageConfig, created_timestamp
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, Hasher
from forklift.oci.manifest import ImageManifest
from forklift.oci.platform import Platform, host_platform
from forklift.reference import Reference
from forklift.store.store import Store, StoredImage
from forklift.transports.tarball import Readable

_BUFSIZE = 1 << 20
# Applies ``--change`` lines to a container config; the Dockerfile front end provides it.
ChangeApplier = Callable[[ContainerConfig, Sequence[str]], ContainerConfig]


class _Tee:
    """Feeds everything read through a hasher (and an optional sink)."""

    def __init__(
        self, raw: BinaryIO, hasher: Hasher, sink: Callable[[bytes], object] | None = None
    ):
        self._raw = raw
        self._hasher = hasher
        self._sink = sink

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._hasher.update(data)
        if self._sink is not None and data:
            self._sink(data)
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


def _check_tar(stream: Readable, where: str) -> int:
    """Read a tar stream to its end, checking it is one; returns the member count."""
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
            for _ in tf:
                count += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidInput(f"{where}: not a valid (or a truncated) tar archive: {exc}") from None
    while stream.read(_BUFSIZE):  # trailing padding after the end-of-archive blocks
        pass
    return count


def import_rootfs(
    store: Store,
    source: str | os.PathLike[str] | BinaryIO,
    names: Sequence[Reference] = (),
    *,
    changes: Sequence[str] = (),
    apply_changes: ChangeApplier | None = None,
    message: str | None = None,
    platform: Platform | None = None,
) -> StoredImage:
    """Create a one-layer image from a root filesystem tar (plain, gzip or zstd; ``-`` = stdin)."""
    if isinstance(source, str | os.PathLike):
        where = str(source)
        if where == "-":
            f: BinaryIO = sys.stdin.buffer
            close = False
        else:
            try:
                f = open(source, "rb")  # noqa: SIM115
            except FileNotFoundError:
                raise NotFound(f"{where}: no such file") from None
            except IsADirectoryError:
                raise InvalidInput(
                    f"{where}: is a directory; give a tar archive of a root filesystem"
                ) from None
            close = True
    else:
        f, where, close = source, "<stream>", False
    try:
        head = f.peek(8)[:8] if hasattr(f, "peek") else b""
        if not head:
            import io

            f = io.BufferedReader(cast(io.RawIOBase, f))
            head = f.peek(8)[:8]
        compression = detect_compression(head)
        with store.writing():
            layer = _write_layer(store, f, compression, where)
            plat = platform or host_platform()
            config = ContainerConfig()
            if changes:
                if apply_changes is None:
                    raise InvalidInput(
                        "--change needs the Dockerfile front end, which is not available"
                    )
                config = apply_changes(config, changes)
            created = created_timestamp()
            image_config = ImageConfig(
                architecture=plat.architecture,
                os=plat.os,
                variant=plat.variant if plat.architecture != "amd64" else "",
                diff_ids=(layer[1],),
                config=config,
                history=(
                    History(
                        created=created,
                        created_by=f"forklift import {Path(where).name}",
                        comment=message or f"Imported from {where}",
                    ),
                ),
                created=created,
            )
            config_raw = image_config.to_bytes()
            config_digest = store.put_blob(config_raw)
            manifest = ImageManifest(
                config=Descriptor(mt.OCI_CONFIG, config_digest, len(config_raw)),
                layers=(layer[0],),
            )
            raw = manifest.to_bytes()
            digest = store.put_blob(raw)
            desc = Descriptor(mt.OCI_MANIFEST, digest, len(raw))
            store.add_image(desc, names)
        return store.resolve(str(names[0]) if names else str(digest))
    finally:
        if close:
            f.close()


def _write_layer(
    store: Store, f: BinaryIO, compression: str, where: str
) -> tuple[Descriptor, Digest]:
    """Store the layer blob (gzip-compressing a plain tar) and compute its diff ID."""
    diff = Hasher()
    if compression in ("bzip2", "xz"):
        raise InvalidInput(
            f"{where}: {compression}-compressed root filesystems are not supported; use gzip or zstd"
        )
    annotations: dict[str, str] = {}
    if compression:
        # Keep the compressed bytes as they are; the diff ID comes from decompressing them.
        with store.blob_writer() as w:
            tee = _Tee(f, Hasher(), w.write)
            try:
                _check_tar(_Tee(open_layer(tee, where), diff), where)  # type: ignore[arg-type]
            except (EOFError, OSError) as exc:
                raise InvalidInput(
                    f"{where}: corrupt or truncated {compression} data: {exc}"
                ) from None
            while tee.read(_BUFSIZE):
                pass
            digest = w.commit()
            size = w.size
        media_type = mt.oci_layer_type(compression)
    else:
        # the one gzip writer every layer uses (deterministic header, the default level)
        comp = make_compressor(GZIP)
        annotations = {ENCODER_ANNOTATION: encoder_id(GZIP)}
        with store.blob_writer() as w:

            def sink(data: bytes) -> None:
                out = comp.compress(data)
                if out:
                    w.write(out)

            _check_tar(_Tee(f, diff, sink), where)
            w.write(comp.flush())
            digest = w.commit()
            size = w.size
        media_type = mt.OCI_LAYER_GZIP
    return Descriptor(media_type, digest, size, annotations=annotations), diff.digest()
