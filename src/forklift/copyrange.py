"""Copying a blob's bytes from one local file into another, verified on the way.

When a blob moves unchanged from one local file to another (``save`` from the
store into an archive, ``load`` from an archive into the store, ``copy``
between OCI layouts), the destination must hold the bytes that were hashed.
:func:`copy_while_draining` reads the source once, through its verifying
stream (which hashes each chunk and raises on a mismatch), while a second
thread writes those same chunks: hashing and writing run on two cores, no byte
is read twice, and what is written is exactly what was verified. A whole blob
file copied into another (a layout-to-layout copy) is copied by the kernel
instead (``copy_file_range``, a reflink on filesystems that share blocks, which
costs neither CPU nor disk) while the stream is read beside it. A tar member
never is: behind its 512-byte headers it is rarely block-aligned, so the kernel
could only copy page by page what the hash has read already. Nothing the
stream did not verify becomes visible: the destination is a temporary file
until it is committed.
"""

from __future__ import annotations

import errno
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from forklift import writeback
from forklift.errors import SizeMismatch
from forklift.writeback import WriteBehind

# bytes per copy_file_range call: small enough to stop soon after the verifier fails
_STEP = 8 << 20
# bytes per read of the verifying stream: small enough that the chunk is still in the
# core's cache when it is hashed, large enough that Python's per-chunk cost is noise
_READ = 1 << 20
# chunks read ahead of the writer (bounded memory: _DEPTH * _READ)
_DEPTH = 4
# below this a thread costs more than it saves
SMALL = 1 << 20
# errors that mean "this kernel or filesystem cannot copy_file_range here"
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


@dataclass(frozen=True)
class FileExtent:
    """Where a blob's bytes lie, unchanged, in a local file: ``path`` from ``offset``."""

    path: Path
    offset: int = 0


def copy_range(src_fd: int, src_offset: int, dst_fd: int, dst_offset: int, count: int) -> None:
    """Copy ``count`` bytes between two files at the given offsets (file positions unused).

    ``os.copy_file_range`` where the kernel and filesystems allow it, else
    ``pread``/``pwrite``. Raises :class:`EOFError` if the source ends early.
    """
    _copy(src_fd, src_offset, dst_fd, dst_offset, count, threading.Event())


def _copy(
    src_fd: int, src_off: int, dst_fd: int, dst_off: int, count: int, stop: threading.Event
) -> None:
    in_kernel = hasattr(os, "copy_file_range")
    behind = WriteBehind(dst_fd, dst_off)  # the disk starts while the copy goes on
    while count > 0 and not stop.is_set():
        step = min(count, _STEP)
        n = 0
        if in_kernel:
            try:
                n = os.copy_file_range(src_fd, dst_fd, step, src_off, dst_off)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                in_kernel = False
        if not in_kernel:
            data = os.pread(src_fd, min(step, _READ), src_off)
            n = len(data)
            _pwrite_all(dst_fd, memoryview(data), dst_off)
        if n == 0:
            raise EOFError(f"the source file ended {count} bytes early")
        src_off += n
        dst_off += n
        count -= n
        behind.wrote(n)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    written = 0
    while written < len(data):
        written += os.pwrite(fd, data[written:], offset + written)


def in_kernel(src: FileExtent, dst_offset: int) -> bool:
    """True if :func:`copy_while_draining` lets the kernel copy these bytes: a whole
    file into another (both at offset 0), which a filesystem may turn into a reflink."""
    return hasattr(os, "copy_file_range") and src.offset == 0 and dst_offset == 0


def copy_while_draining(
    src: FileExtent, dst_fd: int, dst_offset: int, count: int, drain: BinaryIO
) -> None:
    """Put the ``count`` bytes of ``src`` into ``dst_fd`` at ``dst_offset`` while reading
    ``drain`` (the same bytes, through a verifying stream) to its end here.

    The bytes written are the ones ``drain`` yields (verified), written by a
    second thread, unless :func:`in_kernel` says the kernel copies ``src``
    beside the read. An error on either side stops the other and is raised
    (the verifier's first). The caller must discard ``dst_fd``'s data when
    this raises.
    """
    # Loaded here, before any writer thread starts: a writer that found another thread
    # loading it would skip its head start (the first blobs of a load did, all of them).
    writeback.prepare()
    if in_kernel(src, dst_offset):
        _kernel_copy_while_draining(src, dst_fd, dst_offset, count, drain)
    else:
        write_drained(drain, dst_fd, dst_offset, count)


def write_drained(drain: BinaryIO, dst_fd: int, dst_offset: int, count: int) -> None:
    """Read ``drain`` to its end here and write what it yields into ``dst_fd`` from
    ``dst_offset`` on a second thread, chunk by chunk, as each is read.

    ``drain`` must yield exactly ``count`` bytes (else :class:`SizeMismatch`).
    """
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[memoryview, int, bytearray] | None] = queue.SimpleQueue()
    for _ in range(_DEPTH):
        free.put(bytearray(_READ))
    stop = threading.Event()
    failure: list[BaseException] = []

    def write() -> None:
        behind = WriteBehind(dst_fd, dst_offset)  # the disk starts while the hash goes on
        try:
            while (item := full.get()) is not None:
                data, offset, buf = item
                if not stop.is_set():
                    _pwrite_all(dst_fd, data, offset)
                    behind.wrote(len(data))
                data.release()
                free.put(buf)
        except BaseException as exc:
            failure.append(exc)
            stop.set()
            free.put(None)  # wakes the reader if it waits for a buffer

    worker = threading.Thread(target=write, name="forklift-write", daemon=True)
    worker.start()
    readinto = getattr(drain, "readinto", None)
    total = 0
    try:
        while not failure:
            buf = free.get()
            if buf is None:
                break
            view = memoryview(buf)
            if readinto is not None:
                n = readinto(view)
            else:
                chunk = drain.read(_READ)
                n = len(chunk)
                view[:n] = chunk
            if not n:
                break
            if total + n > count:
                raise SizeMismatch(f"the source yields more than the {count} bytes expected")
            full.put((view[:n], dst_offset + total, buf))
            total += n
    except BaseException:
        stop.set()
        raise
    finally:
        full.put(None)
        worker.join()
    if failure:
        raise failure[0]
    if total != count:
        raise SizeMismatch(f"the source ended after {total} of the {count} bytes expected")


def _kernel_copy_while_draining(
    src: FileExtent, dst_fd: int, dst_offset: int, count: int, drain: BinaryIO
) -> None:
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with open(src.path, "rb") as f:
                _copy(f.fileno(), src.offset, dst_fd, dst_offset, count, stop)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="forklift-copy-range", daemon=True)
    worker.start()
    try:
        buf = bytearray(_READ)
        view = memoryview(buf)
        readinto = getattr(drain, "readinto", None)
        while not failure:  # the kernel copy failed: no point reading on
            if not (readinto(view) if readinto is not None else drain.read(_READ)):
                break
    except BaseException:
        stop.set()
        raise
    finally:
        worker.join()
    if failure:
        raise failure[0]
