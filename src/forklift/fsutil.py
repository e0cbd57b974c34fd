"""Filesystem helpers: atomic writes, directory fsync, advisory file locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry change (a rename) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new content, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here: reading commands never write (start-up time)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


class FileLock:
    """An flock(2)-based lock shared by processes, and by the threads of one process.

    ``shared()`` admits many holders at once; ``exclusive()`` waits until there
    are none. flock locks belong to an open file, so one process keeps a single
    descriptor and counts its threads' holds itself; it never upgrades a held
    shared lock (that would deadlock), which is reported as a bug.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._shared = 0
        self._owner: int | None = None
        self._depth = 0
        self._local = threading.local()

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        return self._fd

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                nested_in_exclusive = True
            else:
                nested_in_exclusive = False
                while self._owner is not None:
                    self._cond.wait()
                if self._shared == 0:
                    fcntl.flock(self._open(), fcntl.LOCK_SH)
                self._shared += 1
        self._local.held = getattr(self._local, "held", 0) + 1
        try:
            yield
        finally:
            self._local.held -= 1
            with self._cond:
                if nested_in_exclusive:
                    self._depth -= 1
                else:
                    self._shared -= 1
                    if self._shared == 0:
                        fcntl.flock(self._open(), fcntl.LOCK_UN)
                        self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                if getattr(self._local, "held", 0):
                    raise RuntimeError(f"{self.path}: cannot upgrade a shared lock to exclusive")
                while self._owner is not None or self._shared:
                    self._cond.wait()
                fcntl.flock(self._open(), fcntl.LOCK_EX)
                self._owner = me
                self._depth = 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._open(), fcntl.LOCK_UN)
                    self._owner = None
                    self._cond.notify_all()


def resolve_in_root(root: str, path: str, *, follow_final: bool = True, max_links: int = 40) -> str:
    """Resolve ``path`` inside ``root`` as if ``root`` were ``/`` (a chroot).

    ``..`` stops at the top and symlinks (absolute or relative) are followed
    without ever leaving ``root``. Returns the resolved path relative to
    ``root`` (``""`` for the root itself). Components that do not exist are
    kept as they are. With ``follow_final=False`` a final symlink is not followed.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if (parts or follow_final) and (st.st_mode & 0o170000) == 0o120000:
            links += 1
            if links > max_links:
                raise OSError(40, "Too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return "/".join(resolved)
