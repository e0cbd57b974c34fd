"""What one tar member of a layer says: type, path, owner, mode, times, link, xattrs.

Paths are kept *clean*: relative, ``/``-separated, without ``.`` or empty
components and without a trailing slash (directories are told apart by
:attr:`LayerEntry.type`). ``..`` components are kept as they are, so that an
extractor can see and refuse them.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

#: Basename prefix of an OCI whiteout: ``dir/.wh.name`` deletes ``dir/name`` of lower layers.
WHITEOUT_PREFIX = ".wh."
#: Basename of an OCI opaque whiteout: ``dir/.wh..wh..opq`` hides every lower child of ``dir``.
OPAQUE_WHITEOUT = ".wh..wh..opq"


class EntryType(enum.Enum):
    """Kinds of tar members a layer can hold; the value is the tar typeflag."""

    FILE = "0"
    HARDLINK = "1"
    SYMLINK = "2"
    CHAR = "3"
    BLOCK = "4"
    DIR = "5"
    FIFO = "6"


def clean_path(name: str) -> str:
    """Make an archive member name relative and canonical, keeping ``..`` components.

    ``/etc//passwd``, ``./etc/passwd`` and ``etc/./passwd/`` all become
    ``etc/passwd``; the archive root (``./``, ``/``) becomes ``""``.
    """
    return "/".join(part for part in name.split("/") if part not in ("", "."))


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One member of a layer tar, as written or as read (data not included).

    ``mode`` holds permission and setuid/setgid/sticky bits only (``0o7777``);
    the file type is ``type``. ``linkname`` is the target of a symlink, or the
    clean path of the member a hard link points at. ``xattrs`` are sorted
    ``(name, value)`` pairs so entries compare and hash by value.
    """

    path: str
    type: EntryType
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()

    @property
    def name(self) -> str:
        """The last path component."""
        return posixpath.basename(self.path)

    @property
    def parent(self) -> str:
        """The clean path of the directory holding this entry (``""`` for the root)."""
        return posixpath.dirname(self.path)

    @property
    def xattr_map(self) -> Mapping[str, bytes]:
        """The extended attributes as a dict."""
        return dict(self.xattrs)

    @property
    def is_whiteout(self) -> bool:
        """True for OCI whiteout markers, plain and opaque."""
        return self.name.startswith(WHITEOUT_PREFIX)

    @property
    def opaque_dir(self) -> str | None:
        """For an opaque whiteout, the directory whose lower children it hides."""
        return self.parent if self.name == OPAQUE_WHITEOUT else None

    @property
    def whiteout_target(self) -> str | None:
        """For a plain whiteout ``d/.wh.x``, the path it deletes (``d/x``); else None."""
        name = self.name
        if not name.startswith(WHITEOUT_PREFIX) or name == OPAQUE_WHITEOUT:
            return None
        return posixpath.join(self.parent, name[len(WHITEOUT_PREFIX) :])


def sort_key(path: str) -> tuple[tuple[int, bytes], ...]:
    """Order of entries in layers forklift writes: parents before children, whiteouts first.

    Paths compare component by component (so a directory is followed by its
    whole subtree), and inside one directory the opaque marker comes first,
    then plain whiteouts, then everything else, as the OCI layer spec asks
    ("whiteout files appear before sibling directory entries"). Names compare
    as UTF-8 bytes so the order does not depend on the locale.
    """
    parts = []
    for part in path.split("/"):
        if part == OPAQUE_WHITEOUT:
            rank = 0
        elif part.startswith(WHITEOUT_PREFIX):
            rank = 1
        else:
            rank = 2
        parts.append((rank, part.encode("utf-8", "surrogateescape")))
    return tuple(parts)
