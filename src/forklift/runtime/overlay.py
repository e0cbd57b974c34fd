"""overlayfs (and tmpfs) mounts through mount(2)/umount2(2), with long lower-dir lists handled.

The kernel takes all mount options in one page (4096 bytes), so an absolute
``lowerdir=`` list of ~40 deep snapshot paths already overflows it. When the
plain option string would not fit (or a path holds ``:``, ``,`` or ``\\``,
which overlayfs would split on), each directory is passed as
``/proc/self/fd/N`` of an ``O_PATH`` descriptor instead: ~18 bytes a layer,
so well over 128 layers fit, and no ``chdir`` (which would race with other
threads of the process) is needed.

The mount is made with ``redirect_dir=off``, ``metacopy=off`` and
``index=off`` so that the upper directory is always a *complete* diff:
renaming a lower directory copies it up in full and a chmod copies up the
data, which is what turning the upper dir into a layer tar needs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from forklift.errors import RuntimeFailure

if TYPE_CHECKING:
    import ctypes

MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8  # never unmount what a symlink at the last component points to
_OPTION_LIMIT = 4000  # the kernel's page minus some headroom
# Kernel-side limit of stacked lower layers (OVL_MAX_STACK).
MAX_LOWER_LAYERS = 500
FIXED_OPTIONS = ("redirect_dir=off", "metacopy=off", "index=off")

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        # ctypes (and ctypes.util's helpers) load on the first mount, not with every command
        import ctypes
        import ctypes.util

        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _plain_ok(paths: Sequence[str]) -> bool:
    return not any(c in p for p in paths for c in ":,\\")


def overlay_options(lower: Sequence[str], upper: str, work: str) -> str:
    """The option string for absolute paths (top lower first), as mount(2) receives it."""
    parts = [f"lowerdir={':'.join(lower)}", f"upperdir={upper}", f"workdir={work}"]
    return ",".join([*parts, *FIXED_OPTIONS])


def mount_overlay(
    lower: Sequence[str | os.PathLike[str]],
    upper: str | os.PathLike[str],
    work: str | os.PathLike[str],
    target: str | os.PathLike[str],
) -> None:
    """Mount overlayfs at ``target``: ``lower`` (topmost first) under a writable ``upper``.

    ``work`` must be an empty directory on the same filesystem as ``upper``.
    Raises :class:`RuntimeFailure` saying what the kernel refused.
    """
    if not lower:
        raise RuntimeFailure("an overlay mount needs at least one lower directory")
    if len(lower) > MAX_LOWER_LAYERS:
        raise RuntimeFailure(
            f"the image has {len(lower)} layers; overlayfs stacks at most {MAX_LOWER_LAYERS}"
        )
    lows = [os.path.abspath(p) for p in lower]
    up, wk = os.path.abspath(upper), os.path.abspath(work)
    options = overlay_options(lows, up, wk)
    fds: list[int] = []
    try:
        if len(options) > _OPTION_LIMIT or not _plain_ok([*lows, up, wk]):
            # Short stand-ins for every path: the kernel resolves the magic links.
            def short(path: str) -> str:
                fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                fds.append(fd)
                return f"/proc/self/fd/{fd}"

            options = overlay_options([short(p) for p in lows], short(up), short(wk))
            if len(options) > _OPTION_LIMIT:
                raise RuntimeFailure(
                    f"too many layers ({len(lows)}) for one overlay mount option string"
                )
        _mount("overlay", os.fspath(target), "overlay", 0, options)
    finally:
        for fd in fds:
            os.close(fd)


MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


def mount_tmpfs(target: str | os.PathLike[str], *, mode: int = 0o700) -> None:
    """Mount a fresh tmpfs (``nosuid,nodev,noexec``) at ``target``: memory, never disk.

    What forklift keeps there (a build's secrets) never reaches the disk, and a
    killed process's tmpfs is unmounted by the next command (recovery).
    """
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _mount("tmpfs", os.fspath(target), "tmpfs", flags, f"mode={mode:o}")


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    rc = _lib().mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode())
    if rc != 0:
        err = _errno()
        detail = os.strerror(err)
        hint = None
        if err == errno.EPERM:
            hint = "mounting overlayfs needs root (rootless mode is not supported)"
        elif err == errno.EINVAL:
            hint = (
                "overlayfs refused the options; is the snapshot directory on a filesystem "
                "overlayfs supports as upper (not overlayfs itself)?"
            )
        raise RuntimeFailure(f"cannot mount {fstype} at {target}: {detail}", hint=hint)


def unmount(target: str | os.PathLike[str], *, attempts: int = 20) -> None:
    """Unmount ``target``; a busy mount is retried briefly, then detached lazily.

    Not being mounted is not an error (cleanup paths call this unconditionally).
    """
    path = os.fspath(target).encode()
    for attempt in range(attempts):
        if _lib().umount2(path, UMOUNT_NOFOLLOW) == 0:
            return
        err = _errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return  # not a mount point (any more)
        if err != errno.EBUSY:
            raise RuntimeFailure(f"cannot unmount {target}: {os.strerror(err)}")
        time.sleep(0.01 * (attempt + 1))
    # Something still holds it (a straggling process); detach so the path is free now.
    if _lib().umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) != 0:
        err = _errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise RuntimeFailure(f"cannot unmount {target}: {os.strerror(err)}")


def is_mounted(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` is a mount point according to /proc/self/mountinfo."""
    want = os.path.realpath(target)
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ")
            if len(fields) > 4 and _unescape(fields[4]) == want:
                return True
    return False


def mounts_under(prefix: str | os.PathLike[str]) -> list[str]:
    """Mount points at or below ``prefix`` (deepest first, ready to be unmounted in order)."""
    root = os.path.realpath(prefix)
    found: list[str] = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" ")
            if len(fields) > 4:
                point = _unescape(fields[4])
                if point == root or point.startswith(root.rstrip("/") + "/"):
                    found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _unescape(field: bytes) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


@contextlib.contextmanager
def mounted_overlay(
    lower: Sequence[str | os.PathLike[str]],
    upper: str | os.PathLike[str],
    work: str | os.PathLike[str],
    target: str | os.PathLike[str],
) -> Iterator[Path]:
    """:func:`mount_overlay` for the duration of a ``with`` block."""
    mount_overlay(lower, upper, work, target)
    try:
        yield Path(target)
    finally:
        unmount(target)
