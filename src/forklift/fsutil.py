"""Filesystem helpers: atomic writes, directory fsync, advisory file locks, in-root paths.

Trees that a container or an image could have written (a mounted rootfs, an
overlay upper dir, an unpacked layer) are only ever changed through directory
file descriptors: :func:`open_dir_beneath` walks a relative path one component
at a time with ``O_NOFOLLOW`` and refuses symlinks and mount crossings (the
semantics of ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV)``),
and the final operation is an ``*at`` call on the parent's descriptor. A
container that swaps a directory for a symlink to a host path after forklift
looked at it therefore makes the operation fail, never reach the host.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

#: Flags for opening a directory that must not be a symlink.
DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a directory only its owner can enter (mode 0700), made if missing.

    For what holds files from images and containers unpacked as they are:
    setuid binaries and device nodes there must not be reachable by other
    users of the machine (a world-traversable ``$FORKLIFT_HOME`` would
    otherwise hand them an image's setuid-root shell).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(os.stat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry change (a rename) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mkstemp_locked(directory: str | os.PathLike[str], prefix: str, suffix: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` whose file is flocked while its descriptor is open.

    A temporary file of a live writer is always locked, so one that can be
    locked (and is older than a moment, the time between creating and locking
    it) was left by a process that died: see :func:`abandoned`.
    """
    import tempfile  # here: reading commands never write (start-up time)

    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:  # e.g. a signal's Cancelled: the caller never learns the name
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


#: How old an unlocked temporary file must be before it counts as abandoned.
ABANDON_GRACE = 5.0


def abandoned(path: str | os.PathLike[str], *, grace: float = ABANDON_GRACE) -> bool:
    """Whether the temporary file ``path`` (made by :func:`mkstemp_locked`) lost its writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return time.time() - os.fstat(fd).st_mtime > grace
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new content, never a mix.

    The temporary file (``.<name>.<random>.tmp``) is locked while written, so
    one a killed process left is recognised (:func:`abandoned`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = mkstemp_locked(path.parent, f".{path.name}.", ".tmp")
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


# --------------------------------------------------------------------------- trees others wrote


def rel_parts(path: str) -> list[str]:
    """The components of a path taken relative to a root (``/`` and ``.`` dropped).

    Raises ``OSError(EINVAL)`` for a ``..`` component: callers resolve paths
    before they reach here, so one left is a bug or an attack.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise OSError(errno.EINVAL, "'..' in a path that must stay inside its root", path)
    return parts


def open_root(path: str | os.PathLike[str]) -> int:
    """A descriptor of the directory ``path`` (a root forklift itself made; it may not be a
    symlink either)."""
    return os.open(path, DIR_NOFOLLOW)


def open_dir_beneath(root_fd: int, parts: Sequence[str]) -> int:
    """Open the directory ``parts`` (relative components) below ``root_fd``.

    Every component is opened with ``O_NOFOLLOW`` relative to the previous
    one, so a symlink anywhere fails (``ELOOP``/``ENOTDIR``) instead of being
    followed, and a component on another filesystem (a mount point) fails with
    ``EXDEV``. Returns a new descriptor (a duplicate of ``root_fd`` for no
    parts); the caller closes it.
    """
    root_dev = os.fstat(root_fd).st_dev
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise OSError(errno.EINVAL, "not a plain path component", part)
            nfd = os.open(part, DIR_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nfd
            if os.fstat(fd).st_dev != root_dev:
                raise OSError(errno.EXDEV, "a mount point is in the way", "/".join(parts))
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def dir_beneath(root_fd: int, parts: Sequence[str]) -> Iterator[int]:
    """:func:`open_dir_beneath` for the duration of a ``with`` block."""
    fd = open_dir_beneath(root_fd, parts)
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in ``dir_fd``, or None if it is not there."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def remove_if_empty(dir_fd: int, name: str) -> bool:
    """Remove ``name`` from ``dir_fd`` if it is an empty directory or an empty regular file.

    Never follows a symlink (a symlink, a device, a non-empty file or directory
    is left alone). Returns whether something was removed.
    """
    st = lstat_at(dir_fd, name)
    if st is None:
        return False
    try:
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=dir_fd)  # unlinkat(AT_REMOVEDIR): fails unless empty
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(name, dir_fd=dir_fd)
        else:
            return False
    except OSError:
        return False
    return True


_MAX_DEPTH = 64  # directory levels held open at once while removing a tree


def _open_for_removal(dir_fd: int, name: str) -> int:
    try:
        return os.open(name, DIR_NOFOLLOW, dir_fd=dir_fd)
    except PermissionError:
        # A directory without permissions (overlay's work/work is 0000, or a non-root user's
        # tree): open it up through an O_PATH descriptor, which cannot be a followed symlink.
        ref = os.open(
            name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd
        )
        try:
            os.chmod(f"/proc/self/fd/{ref}", 0o700)
        finally:
            os.close(ref)
        return os.open(name, DIR_NOFOLLOW, dir_fd=dir_fd)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """``rm -rf path`` through directory descriptors, safe on trees others wrote.

    Never follows a symlink, never descends into another filesystem (a mount
    point below ``path`` raises ``OSError(EBUSY)`` once everything else is
    gone: unmount first), copes with directories without permissions and
    with trees deeper than the descriptors a process may hold (deep
    subdirectories are moved up and removed from there). A missing ``path``
    is not an error.
    """
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    try:
        parent_fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        st = lstat_at(parent_fd, name)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent_fd)
            return
        if st.st_dev != os.fstat(parent_fd).st_dev:
            raise OSError(errno.EBUSY, "is a mount point", path)
        top = _open_for_removal(parent_fd, name)
        try:
            _empty_tree(top)
        finally:
            os.close(top)
        os.rmdir(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _empty_tree(top: int) -> None:
    """Remove everything inside the directory ``top`` (see :func:`remove_tree`)."""
    dev = os.fstat(top).st_dev
    moved = itertools.count()
    busy: list[str] = []
    # Each frame: (descriptor, names still to look at); top's own frame never closes its fd.
    stack: list[tuple[int, list[str]]] = [(top, sorted(os.listdir(top)))]
    try:
        while stack:
            fd, names = stack[-1]
            if not names:
                stack.pop()
                if stack:
                    os.close(fd)
                    parent_fd, parent_names = stack[-1]
                    # The directory just emptied is the name this frame came from.
                    try:
                        os.rmdir(parent_names.pop(), dir_fd=parent_fd)
                    except FileNotFoundError:
                        pass
                    except OSError:
                        if not busy:  # else: it holds the mount point reported below
                            raise
                continue
            name = names[-1]
            st = lstat_at(fd, name)
            if st is None:
                names.pop()
                continue
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)
                names.pop()
                continue
            if st.st_dev != dev:
                busy.append(name)
                names.pop()
                continue
            if len(stack) >= _MAX_DEPTH:
                # Too deep to hold every level open: move the subtree up to the top.
                new = f".fk-rm-{os.getpid()}-{next(moved)}"
                os.rename(name, new, src_dir_fd=fd, dst_dir_fd=top)
                names.pop()
                stack[0][1].insert(0, new)
                continue
            sub = _open_for_removal(fd, name)
            stack.append((sub, sorted(os.listdir(sub))))
    finally:
        for fd, _ in stack[1:]:
            os.close(fd)
    if busy:
        raise OSError(errno.EBUSY, "a mount point is in the way", busy[0])


def copy_tree(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy a file or a directory tree that others wrote to the new path ``dst``.

    Nothing is followed or read that is not a regular file: symlinks are
    copied as symlinks, FIFOs and device nodes are made anew (devices only as
    root, else skipped), sockets are skipped. Modes, owners (as root) and
    times are kept. Raises ``OSError`` on a tree deeper than a process can hold open.
    """
    src_parent, src_name = os.path.split(os.path.abspath(src))
    dst_parent, dst_name = os.path.split(os.path.abspath(dst))
    sfd = os.open(src_parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dfd = os.open(dst_parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _copy_entry(sfd, src_name, dfd, dst_name, depth=0)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


_COPY_MAX_DEPTH = 512


def _copy_entry(sfd: int, name: str, dfd: int, new: str, *, depth: int) -> None:
    st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        if depth > _COPY_MAX_DEPTH:
            raise OSError(errno.ELOOP, "directory tree too deep to copy", name)
        os.mkdir(new, 0o700, dir_fd=dfd)
        with dir_beneath(sfd, [name]) as sub, dir_beneath(dfd, [new]) as dsub:
            for child in sorted(os.listdir(sub)):
                _copy_entry(sub, child, dsub, child, depth=depth + 1)
    elif stat.S_ISREG(mode):
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return  # swapped meanwhile
            out = os.open(
                new, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dfd
            )
            try:
                while chunk := os.read(fd, 1 << 20):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view) :]
            finally:
                os.close(out)
        finally:
            os.close(fd)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=sfd), new, dir_fd=dfd)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(new, 0o600, dir_fd=dfd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        if os.geteuid() != 0:
            return
        os.mknod(new, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dfd)
    else:
        return  # sockets cannot be copied
    if os.geteuid() == 0:
        os.chown(new, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    if not stat.S_ISLNK(mode):
        # chmod after chown: chown clears setuid/setgid bits.
        os.chmod(new, stat.S_IMODE(mode), dir_fd=dfd)
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
