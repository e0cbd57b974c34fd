"""What goes into a layer: a directory walk, an overlayfs upper dir, or an explicit list.

Each source yields :class:`Planned` members in layer order (see
:func:`forklift.layers.entry.sort_key`): the :class:`LayerEntry` plus where its
data comes from. The writer turns them into tar bytes; nothing here writes.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from forklift.errors import InvalidInput, UsageError
from forklift.layers.entry import (
    OPAQUE_WHITEOUT,
    WHITEOUT_PREFIX,
    EntryType,
    LayerEntry,
    clean_path,
    sort_key,
)

#: xattrs never copied into a layer: overlayfs bookkeeping (meaningless, even
#: dangerous, on another mount) and the host's SELinux label (Docker drops it too).
PRIVATE_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
SKIPPED_XATTRS = frozenset({"security.selinux"})
#: The xattrs a layer keeps by default: BuildKit (containerd's archive writer) and moby
#: store only file capabilities, so POSIX ACLs, ``user.*`` and the rest stay out and the
#: same build gives the same layer bytes as theirs.
LAYER_XATTRS = frozenset({"security.capability"})
#: Which xattrs to store: True for all (but the private and skipped ones), False for
#: none, or the names to keep.
XattrPolicy = bool | frozenset[str]
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
# Overlay features whose upper dir is not a self-contained diff: the data or
# the directory content lives in the lower layers.
_UNSUPPORTED_OVERLAY_XATTRS = {
    "trusted.overlay.redirect": "redirect_dir",
    "user.overlay.redirect": "redirect_dir",
    "trusted.overlay.metacopy": "metacopy",
    "user.overlay.metacopy": "metacopy",
}

#: (path in layer, is a directory) -> True to leave it (and, for a directory, its subtree) out.
Exclude = Callable[[str, bool], bool]


@dataclass(frozen=True)
class Normalize:
    """How to normalise entry metadata for reproducible layers.

    ``uid``/``gid``/``uname``/``gname`` replace every entry's owner when set.
    ``fixed_mtime`` sets every mtime (e.g. ``SOURCE_DATE_EPOCH``);
    ``mtime_clamp`` only lowers mtimes newer than it (BuildKit's
    ``rewrite-timestamp``). ``canonical_modes`` maps permissions to 0755 (dirs,
    symlinks, anything executable) or 0644 and drops setuid/setgid/sticky.
    """

    uid: int | None = None
    gid: int | None = None
    uname: str | None = None
    gname: str | None = None
    fixed_mtime: int | None = None
    mtime_clamp: int | None = None
    canonical_modes: bool = False

    def apply(self, entry: LayerEntry) -> LayerEntry:
        """``entry`` with this normalisation applied."""
        changes: dict[str, object] = {}
        if self.uid is not None:
            changes["uid"] = self.uid
        if self.gid is not None:
            changes["gid"] = self.gid
        if self.uname is not None:
            changes["uname"] = self.uname
        if self.gname is not None:
            changes["gname"] = self.gname
        mtime = entry.mtime
        if self.fixed_mtime is not None:
            mtime = self.fixed_mtime
        if self.mtime_clamp is not None and mtime > self.mtime_clamp:
            mtime = self.mtime_clamp
        if mtime != entry.mtime:
            changes["mtime"] = mtime
        if self.canonical_modes:
            if entry.type in (EntryType.DIR, EntryType.SYMLINK) or entry.mode & 0o111:
                changes["mode"] = 0o755 if entry.type is not EntryType.SYMLINK else 0o777
            else:
                changes["mode"] = 0o644
        return replace(entry, **changes) if changes else entry  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Planned:
    """A member to write: its header data and, for regular files, where the bytes are.

    ``data`` is ``None`` (no data), ``bytes`` (in memory) or a filesystem path
    (read when written; ``dev``/``ino`` guard against it being swapped).
    """

    entry: LayerEntry
    data: bytes | str | None = None
    dev: int = 0
    ino: int = 0


@dataclass(frozen=True)
class LayerItem:
    """One entry of an explicit layer (e.g. what a Dockerfile ``COPY`` adds).

    ``path`` is the path inside the layer. ``source`` is a file on disk (its
    type, content, link target, mode, owner, mtime and xattrs are read with
    ``lstat``; a directory gives only the directory entry, not its content),
    ``bytes`` (a regular file with that content) or ``None`` (a synthetic entry:
    ``type`` is then required and defaults come from the type). The other
    fields override what the source says.
    """

    path: str
    source: str | os.PathLike[str] | bytes | None = None
    type: EntryType | None = None
    linkname: str | None = None
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None
    mtime: int | None = None
    xattrs: Mapping[str, bytes] | None = None


# --------------------------------------------------------------------------- helpers


def _read_xattrs(
    path: str, *, overlay: bool, keep: XattrPolicy = True
) -> tuple[tuple[tuple[str, bytes], ...], bool]:
    """The xattrs to store for ``path`` and, in overlay mode, whether it is an opaque dir."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return (), False
        raise
    if not names:
        return (), False
    pairs: list[tuple[str, bytes]] = []
    opaque = False
    for name in names:
        if overlay and name in _UNSUPPORTED_OVERLAY_XATTRS:
            feature = _UNSUPPORTED_OVERLAY_XATTRS[name]
            raise InvalidInput(
                f"{path}: overlayfs {feature} is in use, so this upper dir is not a complete diff",
                hint=f"mount the overlay with {feature}=off",
            )
        if name.startswith(PRIVATE_XATTR_PREFIXES):
            if overlay and name in _OPAQUE_XATTRS:
                try:
                    opaque = os.getxattr(path, name, follow_symlinks=False) == b"y"
                except OSError:
                    opaque = False
            continue
        if name in SKIPPED_XATTRS or not _kept(name, keep):
            continue
        try:
            pairs.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                continue  # removed meanwhile, or unreadable on this filesystem
            raise
    pairs.sort()
    return tuple(pairs), opaque


def _kept(name: str, keep: XattrPolicy) -> bool:
    return keep if isinstance(keep, bool) else name in keep


def _entry_from_stat(
    layer_path: str, st: os.stat_result, fs_path: str, *, xattrs: XattrPolicy, overlay: bool
) -> tuple[Planned | None, bool]:
    """A planned member for a filesystem object (None for sockets) and its opaque flag."""
    mode = st.st_mode
    pairs: tuple[tuple[str, bytes], ...] = ()
    opaque = False
    if xattrs or overlay:
        pairs, opaque = _read_xattrs(fs_path, overlay=overlay, keep=xattrs)
    common = {
        "path": layer_path,
        "mode": stat.S_IMODE(mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime": st.st_mtime_ns // 1_000_000_000,
        "xattrs": pairs,
    }
    if stat.S_ISREG(mode):
        entry = LayerEntry(type=EntryType.FILE, size=st.st_size, **common)  # type: ignore[arg-type]
        return Planned(entry, fs_path, st.st_dev, st.st_ino), False
    if stat.S_ISDIR(mode):
        return Planned(LayerEntry(type=EntryType.DIR, **common)), opaque  # type: ignore[arg-type]
    if stat.S_ISLNK(mode):
        target = os.readlink(fs_path)
        entry = LayerEntry(type=EntryType.SYMLINK, linkname=target, **common)  # type: ignore[arg-type]
        return Planned(entry), False
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        etype = EntryType.CHAR if stat.S_ISCHR(mode) else EntryType.BLOCK
        entry = LayerEntry(
            type=etype,
            devmajor=os.major(st.st_rdev),
            devminor=os.minor(st.st_rdev),
            **common,  # type: ignore[arg-type]
        )
        return Planned(entry), False
    if stat.S_ISFIFO(mode):
        return Planned(LayerEntry(type=EntryType.FIFO, **common)), False  # type: ignore[arg-type]
    return None, False  # sockets (and anything stranger) cannot live in a tar


def _is_overlay_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# --------------------------------------------------------------------------- directory trees


def walk_tree(
    root: str | os.PathLike[str],
    *,
    overlay: bool = False,
    xattrs: XattrPolicy = LAYER_XATTRS,
    hardlinks: bool = True,
    exclude: Exclude | None = None,
) -> Iterator[Planned]:
    """Plan the members for everything under ``root`` (not ``root`` itself), in layer order.

    With ``overlay=True`` the tree is an overlayfs upper dir: 0/0 character
    devices become ``.wh.<name>`` whiteouts, directories marked opaque get a
    ``.wh..wh..opq`` member first, and overlay xattrs are left out. Only the
    ``xattrs`` asked for are stored (default :data:`LAYER_XATTRS`). Hard-linked
    files (same device and inode) after the first become tar hard links.
    """
    top = os.fspath(root)
    try:
        st = os.stat(top)
    except OSError as exc:
        raise InvalidInput(f"cannot read layer source {top}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"layer source {top} is not a directory")
    seen: dict[tuple[int, int], str] = {}
    yield from _walk_dir(top, "", overlay, xattrs, hardlinks, exclude, seen)


def _walk_dir(
    fs_dir: str,
    layer_dir: str,
    overlay: bool,
    xattrs: XattrPolicy,
    hardlinks: bool,
    exclude: Exclude | None,
    seen: dict[tuple[int, int], str],
) -> Iterator[Planned]:
    try:
        with os.scandir(fs_dir) as it:
            children = list(it)
    except OSError as exc:
        raise InvalidInput(f"cannot list {fs_dir}: {exc.strerror}") from None
    planned: list[tuple[tuple[tuple[int, bytes], ...], str, os.DirEntry[str]]] = []
    for child in children:
        name = child.name
        st = child.stat(follow_symlinks=False)
        if overlay and _is_overlay_whiteout(st):
            name = WHITEOUT_PREFIX + name
        elif overlay and name.startswith(WHITEOUT_PREFIX):
            raise InvalidInput(
                f"{child.path}: names starting with {WHITEOUT_PREFIX!r} are reserved for OCI "
                "whiteouts and cannot be stored in a layer"
            )
        planned.append((sort_key(name), name, child))
    planned.sort(key=lambda item: item[0])
    for _, name, child in planned:
        layer_path = f"{layer_dir}/{name}" if layer_dir else name
        st = child.stat(follow_symlinks=False)
        is_dir = stat.S_ISDIR(st.st_mode)
        if exclude is not None and exclude(layer_path, is_dir):
            continue
        if overlay and _is_overlay_whiteout(st):
            entry = LayerEntry(
                path=layer_path, type=EntryType.FILE, mode=0, mtime=st.st_mtime_ns // 10**9
            )
            yield Planned(entry, b"")
            continue
        plan, opaque = _entry_from_stat(layer_path, st, child.path, xattrs=xattrs, overlay=overlay)
        if plan is None:
            continue
        if hardlinks and not is_dir and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = seen.get(key)
            if first is None:
                seen[key] = layer_path
            else:
                e = plan.entry
                plan = Planned(replace(e, type=EntryType.HARDLINK, size=0, linkname=first))
        yield plan
        if is_dir:
            if opaque:
                marker = f"{layer_path}/{OPAQUE_WHITEOUT}"
                yield Planned(LayerEntry(path=marker, type=EntryType.FILE, mode=0, mtime=0), b"")
            yield from _walk_dir(child.path, layer_path, overlay, xattrs, hardlinks, exclude, seen)


# --------------------------------------------------------------------------- explicit items

_DEFAULT_MODES = {
    EntryType.DIR: 0o755,
    EntryType.SYMLINK: 0o777,
    EntryType.FILE: 0o644,
    EntryType.HARDLINK: 0o644,
    EntryType.FIFO: 0o644,
}


def _check_layer_path(raw: str) -> str:
    path = clean_path(raw)
    if not path:
        raise UsageError(f"layer item path {raw!r} names the root")
    if ".." in path.split("/"):
        raise UsageError(f"layer item path {raw!r} contains '..'")
    if "\x00" in path:
        raise UsageError(f"layer item path {raw!r} contains a NUL byte")
    return path


def _plan_item(item: LayerItem, xattrs: XattrPolicy) -> Planned | None:
    path = _check_layer_path(item.path)
    source = item.source
    if isinstance(source, bytes | bytearray | memoryview):
        if item.type not in (None, EntryType.FILE):
            raise UsageError(f"layer item {path!r}: bytes content needs type FILE")
        plan = Planned(LayerEntry(path=path, type=EntryType.FILE, size=len(source)), bytes(source))
    elif source is None:
        if item.type is None:
            raise UsageError(f"layer item {path!r} has neither a source nor a type")
        if item.type in (EntryType.CHAR, EntryType.BLOCK):
            raise UsageError(f"layer item {path!r}: device nodes need a source path")
        if item.type in (EntryType.SYMLINK, EntryType.HARDLINK) and not item.linkname:
            raise UsageError(f"layer item {path!r}: a {item.type.name.lower()} needs a linkname")
        entry = LayerEntry(path=path, type=item.type, mode=_DEFAULT_MODES[item.type])
        plan = Planned(entry, b"" if item.type is EntryType.FILE else None)
    else:
        fs_path = os.fspath(source)
        try:
            st = os.lstat(fs_path)
        except OSError as exc:
            raise InvalidInput(f"cannot read {fs_path}: {exc.strerror}") from None
        planned, _ = _entry_from_stat(path, st, fs_path, xattrs=xattrs, overlay=False)
        if planned is None:
            return None
        if item.type is not None and item.type is not planned.entry.type:
            raise UsageError(
                f"layer item {path!r}: {fs_path} is a {planned.entry.type.name.lower()}, "
                f"not a {item.type.name.lower()}"
            )
        plan = planned
    changes: dict[str, object] = {}
    for field in ("uid", "gid", "mode", "mtime", "linkname"):
        value = getattr(item, field)
        if value is not None:
            changes[field] = value
    if item.xattrs is not None:
        changes["xattrs"] = tuple(
            sorted((k, bytes(v)) for k, v in item.xattrs.items() if _kept(k, xattrs))
        )
    if "linkname" in changes and plan.entry.type is EntryType.HARDLINK:
        changes["linkname"] = _check_layer_path(str(changes["linkname"]))
    if "mode" in changes:
        changes["mode"] = int(changes["mode"]) & 0o7777  # type: ignore[call-overload]
    if changes:
        plan = Planned(replace(plan.entry, **changes), plan.data, plan.dev, plan.ino)  # type: ignore[arg-type]
    return plan


def plan_items(items: Iterable[LayerItem], *, xattrs: XattrPolicy = LAYER_XATTRS) -> list[Planned]:
    """Plan an explicit layer: validate the items, read their sources' metadata, sort them."""
    plans: list[Planned] = []
    seen: set[str] = set()
    for item in items:
        plan = _plan_item(item, xattrs)
        if plan is None:
            continue
        if plan.entry.path in seen:
            raise UsageError(f"layer item path {plan.entry.path!r} appears twice")
        seen.add(plan.entry.path)
        plans.append(plan)
    plans.sort(key=lambda p: sort_key(p.entry.path))
    return _hardlinks_after_targets(plans)


def _hardlinks_after_targets(plans: list[Planned]) -> list[Planned]:
    """Make the first name of each hard-link group (in layer order) the one carrying the data.

    Tar readers create a hard link by linking to a member already extracted,
    so the target must come first. Any name of the group can carry the data:
    they all end up as the same inode.
    """
    by_path = {p.entry.path: p for p in plans}
    groups: dict[str, list[str]] = {}
    for plan in plans:
        e = plan.entry
        if e.type is not EntryType.HARDLINK:
            continue
        target, hops = e.linkname, 0
        while target in by_path and by_path[target].entry.type is EntryType.HARDLINK:
            target, hops = by_path[target].entry.linkname, hops + 1
            if hops > len(plans):
                raise UsageError(f"layer item {e.path!r}: hard links form a cycle")
        if target in by_path:  # else: a file of a lower layer, left as it is
            groups.setdefault(target, []).append(e.path)
    for target, links in groups.items():
        names = sorted([target, *links], key=sort_key)
        carrier = by_path[target]
        first = names[0]
        by_path[first] = Planned(
            replace(carrier.entry, path=first), carrier.data, carrier.dev, carrier.ino
        )
        for name in names[1:]:
            by_path[name] = Planned(
                replace(carrier.entry, path=name, type=EntryType.HARDLINK, size=0, linkname=first)
            )
    return [by_path[p.entry.path] for p in plans]
