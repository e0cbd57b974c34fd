"""A read-only look at a stage's filesystem (a mounted snapshot), resolved like a chroot.

COPY needs it to decide whether a destination is an existing directory, which
parent directories it must create, and what ``--chown=name`` means in this
image (``/etc/passwd`` and ``/etc/group`` of the image, not of the host).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from forklift.errors import BuildError
from forklift.fsutil import resolve_in_root


class RootView:
    """Paths of an image filesystem rooted at ``root`` (``None``: an empty filesystem)."""

    def __init__(self, root: str | None) -> None:
        self.root = root

    def kind(self, path: str, *, follow: bool = True) -> str | None:
        """``d``, ``f``, ``l`` or ``o`` for what ``path`` is, ``None`` if nothing is there."""
        if self.root is None:
            return "d" if path.strip("/") == "" else None
        try:
            rel = resolve_in_root(self.root, path, follow_final=follow)
            st = os.lstat(os.path.join(self.root, rel))
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return "d"
        if stat.S_ISREG(st.st_mode):
            return "f"
        if stat.S_ISLNK(st.st_mode):
            return "l"
        return "o"

    def resolve(self, path: str) -> str:
        """The path with symlinks resolved inside the root (absolute, ``/`` for the root)."""
        if self.root is None:
            return "/" + path.strip("/")
        return "/" + resolve_in_root(self.root, path)

    def read(self, path: str, limit: int = 16 << 20) -> bytes | None:
        if self.root is None:
            return None
        try:
            rel = resolve_in_root(self.root, path)
            with open(os.path.join(self.root, rel), "rb") as f:
                return f.read(limit)
        except OSError:
            return None


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def resolve_chown(spec: str, view: RootView, what: str = "--chown") -> Owner:
    """``user[:group]`` (names or ids) as COPY/ADD ``--chown`` means it.

    Names are looked up in the image's ``/etc/passwd`` and ``/etc/group``. A user
    name without a group gets that user's primary group; a bare numeric id gets the
    same number as its group (BuildKit's rules).
    """
    from forklift.runtime.rootfs import parse_group, parse_passwd

    user, sep, group = spec.partition(":")
    if not user or (sep and not group):
        raise BuildError(f"invalid {what} value {spec!r}: expected user[:group]")
    users = {e.name: e for e in parse_passwd(view.read("/etc/passwd") or b"")}
    groups = {e.name: e for e in parse_group(view.read("/etc/group") or b"")}
    if user.isdigit():
        uid = int(user)
        gid = uid  # a bare numeric id means the same id for the group
    else:
        entry = users.get(user)
        if entry is None:
            raise BuildError(f"{what}={spec}: no user named {user!r} in the image's /etc/passwd")
        uid, gid = entry.uid, entry.gid  # a name: that user's primary group (BuildKit)
    if sep:
        if group.isdigit():
            gid = int(group)
        elif group in groups:
            gid = groups[group].gid
        else:
            raise BuildError(f"{what}={spec}: no group named {group!r} in the image's /etc/group")
    return Owner(uid, gid)
