"""Starting the disk write of a file's new bytes early, so its final fsync has little left.

A blob is written to a temporary file, fsynced, then renamed into place. Left
alone, the kernel keeps the written pages dirty until the fsync (or its
30-second flusher), and the fsync then waits for all of them at once: about a
seventh of a 340 MB pull here. Asking for the write-out of each few megabytes
as soon as they are written (``sync_file_range(SYNC_FILE_RANGE_WRITE)``, which
starts it and does not wait) overlaps the disk with the download, the copy or
the hashing; the fsync that makes the file durable stays where it was and
still decides. Only a hint: where the call is missing or refused, nothing
changes.
"""

from __future__ import annotations

import threading
from typing import Any

#: start the write-out every this many bytes
STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2

_lock = threading.Lock()
_call: Any = None  # the libc function once loaded; False when unavailable


def _sync_file_range(wait: bool = False) -> Any:
    """The libc function, False if unavailable, None while another thread loads it
    (that writer skips this hint rather than wait, unless ``wait``)."""
    global _call
    if _call is None:
        if not _lock.acquire(blocking=wait):
            return None
        try:
            if _call is None:
                # loaded on the first large write only: ctypes costs start-up time
                import ctypes

                fn = ctypes.CDLL(None, use_errno=True).sync_file_range
                fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
                fn.restype = ctypes.c_int
                _call = fn
        except (ImportError, OSError, AttributeError):
            _call = False
        finally:
            _lock.release()
    return _call


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes of ``fd`` from ``offset`` to disk.

    Returns at once; never raises (a filesystem that refuses only loses the head start).
    """
    global _call
    fn = _sync_file_range()
    if not fn or length <= 0:
        return
    if fn(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:
        _call = False  # refused here (ENOSYS, a filesystem without it): stop asking


def prepare() -> None:
    """Load the libc function now, on this thread, so that writers started next (a
    copy's threads) all get their head start instead of skipping it while one loads it."""
    _sync_file_range(wait=True)


class WriteBehind:
    """Follows sequential writes to ``fd`` from ``offset`` and starts the write-out of
    every :data:`STEP` bytes. Call :meth:`wrote` after the bytes reached the kernel."""

    __slots__ = ("_end", "_fd", "_started")

    def __init__(self, fd: int, offset: int = 0) -> None:
        self._fd = fd
        self._started = offset
        self._end = offset

    def wrote(self, n: int) -> None:
        """``n`` more bytes were written (passed to the kernel) after the previous ones."""
        self._end += n
        if self._end - self._started >= STEP:
            start_writeback(self._fd, self._started, self._end - self._started)
            self._started = self._end
