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


def _table(view: RootView, path: str) -> dict[str, list[str]]:
    data = view.read(path)
    out: dict[str, list[str]] = {}
    if not data:
        return out
    for line in data.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and not fields[0].startswith(("#", "+", "-")):
            out.setdefault(fields[0], fields)
    return out


def resolve_chown(spec: str, view: RootView, what: str = "--chown") -> Owner:
    """``user[:group]`` (names or ids) as COPY/ADD ``--chown`` means it.

    Names are looked up in the image's ``/etc/passwd`` and ``/etc/group``. A user
    name without a group gets that user's primary group; a bare numeric id gets the
    same number as its group (BuildKit's rules).
    """
    user, sep, group = spec.partition(":")
    if not user or (sep and not group):
        raise BuildError(f"invalid {what} value {spec!r}: expected user[:group]")

    def lookup(name: str, table_path: str, kind: str) -> int:
        if name.isdigit():
            return int(name)
        row = _table(view, table_path).get(name)
        if row is None or not row[2].isdigit():
            raise BuildError(f"{what}={spec}: no {kind} named {name!r} in the image's {table_path}")
        return int(row[2])

    uid = lookup(user, "/etc/passwd", "user")
    if sep:
        gid = lookup(group, "/etc/group", "group")
    elif user.isdigit():
        gid = uid  # a bare numeric id means the same id for the group
    else:
        row = _table(view, "/etc/passwd")[user]  # a name: that user's primary group (BuildKit)
        gid = int(row[3]) if len(row) > 3 and row[3].isdigit() else uid
    return Owner(uid, gid)
