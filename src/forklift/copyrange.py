"""Copying bytes from one file into another in the kernel, verified on the side.

When a blob moves unchanged from one local file to another (``save`` from the
store into an archive, ``load`` from an archive into the store, ``copy``
between OCI layouts), its bytes need not pass through Python: the kernel
copies them (``copy_file_range``; reflinks or server-side copies where the
filesystem has them) while this thread reads the same bytes through the
source's verifying stream, which hashes them and raises on a mismatch. The
two run at once, on two cores when there are two, and nothing the stream did
not verify becomes visible (the destination is a temporary file until it is
committed).
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from forklift.writeback import WriteBehind

# bytes per copy_file_range call: small enough to stop soon after the verifier fails
_STEP = 8 << 20
_READ = 1 << 20
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
            view = memoryview(data)
            written = 0
            while written < n:
                written += os.pwrite(dst_fd, view[written:], dst_off + written)
        if n == 0:
            raise EOFError(f"the source file ended {count} bytes early")
        src_off += n
        dst_off += n
        count -= n
        behind.wrote(n)


def copy_while_draining(
    src: FileExtent, dst_fd: int, dst_offset: int, count: int, drain: BinaryIO
) -> None:
    """Copy ``count`` bytes of ``src`` into ``dst_fd`` at ``dst_offset`` while reading
    ``drain`` (the same bytes, through a verifying stream) to its end here.

    The kernel copy runs in a thread; an error on either side stops the other
    and is raised (the verifier's first). The caller must discard ``dst_fd``'s
    data when this raises.
    """
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
