"""Write a layer: tar + compression + diff ID + blob digest in one pass.

Two threads share the work so both cores are busy: the caller's thread walks
the source, builds tar headers, reads file data into fixed 1 MiB chunks and
hashes them (the diff ID); a worker thread compresses each chunk, hashes the
compressed bytes (the blob digest) and writes them out. hashlib and ISA-L
release the GIL on large buffers, so the two really run in parallel. Chunk
boundaries depend only on the tar stream, never on timing, so the output is
byte-for-byte reproducible.
"""

from __future__ import annotations

import contextlib
import os
import queue
import stat
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from forklift import cancel
from forklift.errors import ForkliftError, InvalidInput
from forklift.layers.compression import (
    ENCODER_ANNOTATION,
    GZIP,
    encoder_id,
    make_compressor,
    normalize_compression,
)
from forklift.layers.entry import EntryType
from forklift.layers.source import (
    LAYER_XATTRS,
    Exclude,
    LayerItem,
    Normalize,
    Planned,
    XattrPolicy,
    plan_items,
    walk_tree,
)
from forklift.layers.tarformat import END_OF_ARCHIVE, encode_header, padding
from forklift.oci import mediatypes
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, Hasher

CHUNK = 1 << 20
_BUFFERS = 6  # chunks in flight: enough to ride out a slow file open or a slow write


class Writable(Protocol):
    """Anything with ``write(bytes)``: a file, a socket file, a hashing sink."""

    def write(self, data: bytes | memoryview, /) -> Any: ...


@dataclass(frozen=True)
class LayerInfo:
    """What writing a layer produced.

    ``diff_id`` is the sha256 of the uncompressed tar (what an image config's
    ``rootfs.diff_ids`` lists); ``digest`` and ``size`` describe the blob as
    written (what a manifest's layer descriptor lists).
    """

    diff_id: Digest
    digest: Digest
    size: int
    uncompressed_size: int
    media_type: str
    compression: str
    #: how the blob was compressed (:func:`encoder_id`), "" for a plain tar or when
    #: unknown (:func:`describe_layer` of an existing blob); not part of equality
    encoder: str = field(default="", compare=False)

    def descriptor(self, **kwargs: Any) -> Descriptor:
        """The manifest descriptor of the blob, annotated with its encoder.

        The annotation records what decides the blob's bytes (format, level,
        compressor), so two builds that should give one digest can be compared.
        Extra fields (e.g. more annotations) via kwargs.
        """
        annotations = dict(kwargs.pop("annotations", {}))
        if self.encoder:
            annotations.setdefault(ENCODER_ANNOTATION, self.encoder)
        return Descriptor(
            self.media_type, self.digest, self.size, annotations=annotations, **kwargs
        )


class _Abort(Exception):
    """The other side of the pipeline failed; its error is re-raised instead."""


class _Pipeline:
    """Fixed-size tar chunks from the caller's thread, compressed+hashed+written by a worker."""

    def __init__(self, out: Writable, compression: str, level: int | None) -> None:
        self._out = out
        self._compression = compression
        self._compressor = make_compressor(compression, level)
        self.diff = Hasher()
        self.blob = Hasher() if compression else self.diff
        self._free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(_BUFFERS):
            self._free.put(bytearray(CHUNK))
        self._full: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._cancelled = False
        self._buf = self._free.get()
        self._view = memoryview(self._buf)
        self._pos = 0
        self._worker = threading.Thread(target=self._run, name="forklift-layer-writer", daemon=True)
        self._worker.start()

    # -- the compress + hash + write stage

    def _process(self, data: memoryview) -> None:
        if self._compression:
            out = self._compressor.compress(data)
            if out:
                self.blob.update(out)
                self._out.write(out)
        else:
            # A copy: the buffer is reused, and a writer may keep what it is given.
            self._out.write(bytes(data))

    def _end_stream(self) -> None:
        if self._compression:
            tail = self._compressor.flush()
            self.blob.update(tail)
            self._out.write(tail)

    def _run(self) -> None:
        try:
            while True:
                item = self._full.get()
                if item is None:
                    break
                buf, n = item
                if self._cancelled:
                    continue
                self._process(memoryview(buf)[:n])
                self._free.put(buf)
            if not self._cancelled:
                self._end_stream()
        except BaseException as exc:
            self._error = exc
            self._free.put(bytearray(CHUNK))  # unblock a producer waiting for a buffer

    # -- producer side

    def _check(self) -> None:
        if self._error is not None:
            raise _Abort

    def _emit(self) -> None:
        self.diff.update(self._view[: self._pos])
        self._full.put((self._buf, self._pos))
        self._check()
        self._buf = self._free.get()
        self._check()
        self._view = memoryview(self._buf)
        self._pos = 0

    def write(self, data: bytes) -> None:
        """Append ``data`` to the tar stream."""
        mv = memoryview(data)
        while mv:
            n = min(len(mv), CHUNK - self._pos)
            self._view[self._pos : self._pos + n] = mv[:n]
            self._pos += n
            mv = mv[n:]
            if self._pos == CHUNK:
                self._emit()
                cancel.check()  # a large file must not hold up a cancelled command

    def write_zeros(self, n: int) -> None:
        if n:
            self.write(bytes(n))

    def copy_fd(self, fd: int, size: int, name: str) -> None:
        """Append exactly ``size`` bytes read from ``fd``; fail if the file is shorter."""
        left = size
        while left:
            room = CHUNK - self._pos
            want = min(room, left)
            got = os.readv(fd, [self._view[self._pos : self._pos + want]])
            if got == 0:
                raise InvalidInput(f"{name} shrank while it was being added to the layer")
            self._pos += got
            left -= got
            if self._pos == CHUNK:
                self._emit()

    def finish(self) -> None:
        if self._pos:
            self.diff.update(self._view[: self._pos])
            self._full.put((self._buf, self._pos))
        self._full.put(None)
        self._worker.join()
        if self._error is not None:
            raise _Abort

    def cancel(self) -> None:
        """Stop the worker without writing anything more."""
        self._cancelled = True
        self._full.put(None)
        self._worker.join()

    @property
    def error(self) -> BaseException | None:
        return self._error


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_source(path: str) -> int:
    try:
        # O_NOATIME keeps a layer build from dirtying every inode it reads;
        # only the owner (or root) may ask for it.
        return os.open(path, _OPEN_FLAGS | os.O_NOATIME)
    except PermissionError:
        return os.open(path, _OPEN_FLAGS)


def _write_member(pipe: _Pipeline, plan: Planned) -> None:
    entry = plan.entry
    pipe.write(encode_header(entry))
    if entry.type is not EntryType.FILE or entry.size == 0:
        return
    data = plan.data
    if isinstance(data, bytes):
        pipe.write(data)
    elif isinstance(data, str):
        try:
            fd = _open_source(data)
        except OSError as exc:
            raise InvalidInput(f"cannot read {data}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if plan.ino and (st.st_ino != plan.ino or st.st_dev != plan.dev):
                raise InvalidInput(f"{data} was replaced while the layer was being written")
            if not stat.S_ISREG(st.st_mode):
                raise InvalidInput(f"{data} is no longer a regular file")
            pipe.copy_fd(fd, entry.size, data)
        finally:
            os.close(fd)
    else:  # pragma: no cover - Planned invariants
        raise AssertionError(f"regular file {entry.path!r} without data")
    pipe.write_zeros(padding(entry.size))


def write_layer(
    out: Writable | BinaryIO,
    source: str | os.PathLike[str] | Iterable[LayerItem],
    *,
    compression: str = GZIP,
    level: int | None = None,
    normalize: Normalize | None = None,
    overlay: bool = False,
    xattrs: XattrPolicy = LAYER_XATTRS,
    hardlinks: bool = True,
    exclude: Exclude | None = None,
) -> LayerInfo:
    """Write a layer blob to ``out`` and return its diff ID, digest and sizes.

    ``source`` is a directory (everything under it, not the directory itself)
    or an iterable of :class:`LayerItem`. ``compression`` is ``"gzip"``
    (default), ``"zstd"`` or ``""``/``"none"``; ``level`` None means the
    measured default. ``overlay=True`` treats the directory as an overlayfs
    upper dir and converts its whiteouts. ``xattrs`` says which extended
    attributes go in: by default only ``security.capability``, as BuildKit and
    moby write layers (True: all of them, False: none). ``normalize`` rewrites owners,
    modes and mtimes for reproducible builds. ``exclude(path, is_dir)`` can
    leave paths out of a directory walk.

    Entries are sorted (parents first, whiteouts before their siblings), so
    the same tree and options always give the same bytes.
    """
    kind = normalize_compression(compression)
    if isinstance(source, str | os.PathLike):
        plans: Iterable[Planned] = walk_tree(
            source, overlay=overlay, xattrs=xattrs, hardlinks=hardlinks, exclude=exclude
        )
    else:
        if overlay:
            raise InvalidInput("overlay=True needs a directory (an overlayfs upper dir)")
        plans = plan_items(source, xattrs=xattrs)
    pipe = _Pipeline(out, kind, level)
    try:
        for plan in plans:
            cancel.check()
            if normalize is not None:
                plan = Planned(normalize.apply(plan.entry), plan.data, plan.dev, plan.ino)
            _write_member(pipe, plan)
        pipe.write(END_OF_ARCHIVE)
        pipe.finish()
    except _Abort:
        pipe.cancel()
        err = pipe.error
        if isinstance(err, ForkliftError):
            raise err from None
        if isinstance(err, OSError):
            raise ForkliftError(f"cannot write layer: {err.strerror or err}") from err
        raise err  # type: ignore[misc]
    except BaseException:
        pipe.cancel()
        raise
    return LayerInfo(
        diff_id=pipe.diff.digest(),
        digest=pipe.blob.digest(),
        size=pipe.blob.size,
        uncompressed_size=pipe.diff.size,
        media_type=mediatypes.oci_layer_type(kind),
        compression=kind,
        encoder=encoder_id(kind, level),
    )


def write_layer_file(
    path: str | os.PathLike[str],
    source: str | os.PathLike[str] | Iterable[LayerItem],
    **options: Any,
) -> LayerInfo:
    """:func:`write_layer` into ``path`` atomically (temp file, fsync, rename).

    Readers see either no file or the complete blob; a failure leaves nothing behind.
    """
    dest = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(dest))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".layer-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            info = write_layer(f, source, **options)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return info
