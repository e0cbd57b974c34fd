"""Apply a layer onto a directory safely, or unpack it for an overlayfs snapshotter.

Safety rules (every violation is :class:`UnsafeArchive` naming the member):

- member names with a ``..`` component are refused; absolute names are made
  relative to the root (as Docker and containerd do);
- every parent directory is resolved component by component from an fd of
  the root with ``O_NOFOLLOW``; a symlink met on the way is followed only
  *inside* the root: an absolute target is taken relative to the root (what it
  means inside the container) and a relative target that climbs above the
  root is refused. Nothing is ever written through a path the kernel resolves
  on its own;
- the final component is never followed: an existing entry is removed and
  recreated (``O_CREAT|O_EXCL|O_NOFOLLOW``), as the OCI spec asks;
- hard links must point at an existing non-directory inside the root;
- device nodes are created only as root (skipped with a warning otherwise),
  and overlayfs-private xattrs in the archive (``trusted.overlay.*``) are
  never applied, since they steer the overlay mount.

Whiteouts follow the OCI layer spec: they delete only what lower layers put
there (an opaque marker keeps what this same layer wrote, whatever the order
of the members), and with ``overlay=True`` they become overlayfs whiteouts
(0/0 character devices and the ``opaque`` xattr) instead of deletions.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from forklift import cancel, logs
from forklift.errors import ForkliftError, InvalidInput, UnsafeArchive, UsageError
from forklift.layers.compression import open_layer
from forklift.layers.entry import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, EntryType, LayerEntry
from forklift.layers.source import PRIVATE_XATTR_PREFIXES
from forklift.layers.tarformat import TarReader
from forklift.oci.digest import Digest, VerifyingReader

log = logs.get("forklift.layers")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINK_HOPS = 40
_FD_CACHE = 64
_COPY_BUF = 1 << 20


@dataclass(frozen=True)
class ExtractResult:
    """What :func:`extract_layer` did.

    ``digest``/``diff_id`` are the verified hashes of the blob and of its tar
    (set when they were asked to be checked, else None). ``skipped`` lists
    members left out (device nodes without root); ``warnings`` says why, along
    with xattrs that could not be set.
    """

    entries: int
    bytes_written: int
    whiteouts: int
    compression: str
    skipped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    digest: Digest | None = None
    diff_id: Digest | None = None


class _Missing(Exception):
    """A directory looked up without ``create`` is not there."""


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


class _Extractor:
    def __init__(
        self,
        root_fd: int,
        label: str,
        *,
        overlay: bool,
        as_root: bool,
        xattrs: bool,
        opaque_xattr: str,
        warn: Callable[[str], None],
    ) -> None:
        self.root_fd = root_fd
        self.label = label
        self.overlay = overlay
        self.as_root = as_root
        self.xattrs = xattrs
        self.opaque_xattr = opaque_xattr
        self._warn = warn
        self.written: set[str] = set()  # paths this layer created or updated
        self.touched: set[str] = set()  # ancestors of those (they hold this layer's content)
        self.whited_out: set[str] = set()  # overlay mode: whiteout devices made by this layer
        self.dirs: list[LayerEntry] = []  # directory metadata, applied last
        self.skipped: list[str] = []
        self.entries = 0
        self.bytes_written = 0
        self.whiteouts = 0
        # Times of lower directories this layer changes without declaring them, put back at
        # the end so that applying the same layers always gives the same tree.
        self._saved_times: dict[str, tuple[int, int]] = {}
        self._cache: dict[tuple[str, ...], tuple[int, tuple[str, ...]]] = {}
        self._cache_dirty = False
        self._buf = bytearray(_COPY_BUF)

    # ------------------------------------------------------------------ messages

    def warn(self, message: str) -> None:
        self._warn(f"{self.label}: {message}")

    def unsafe(self, member: str, why: str) -> UnsafeArchive:
        return UnsafeArchive(f"{self.label}: refusing member {member!r}: {why}")

    # ------------------------------------------------------------------ fd cache

    def start_entry(self) -> None:
        if self._cache_dirty or len(self._cache) > _FD_CACHE:
            self.close()
            self._cache_dirty = False

    def close(self) -> None:
        for fd, _ in self._cache.values():
            os.close(fd)
        self._cache.clear()

    # ------------------------------------------------------------------ resolution

    def resolve_dir(self, parts: list[str], member: str, *, create: bool) -> int | None:
        """An fd of the directory ``parts`` inside the root (owned by the cache).

        Missing directories are created (0755) when ``create``; otherwise None
        is returned, also when a component is not a directory. Symlinks are
        followed only inside the root.
        """
        key = tuple(parts)
        hit = self._cache.get(key)
        if hit is not None:
            return hit[0]
        fd = self.root_fd
        real: list[str] = []
        stack: list[int] = []  # fds opened here, parallel to ``real``
        todo = list(parts)
        for i in range(len(parts) - 1, 0, -1):
            prefix = self._cache.get(key[:i])
            if prefix is not None:
                fd = os.dup(prefix[0])
                real = list(prefix[1])
                stack = [fd]
                todo = list(parts[i:])
                break
        hops = 0
        try:
            while todo:
                comp = todo.pop(0)
                if comp in ("", "."):
                    continue
                if comp == "..":
                    if not real:
                        raise self.unsafe(member, "a symlink on its path leads out of the root")
                    real.pop()
                    if stack:
                        os.close(stack.pop())
                    fd = stack[-1] if stack else self.root_fd
                    if len(stack) < len(real):  # we started from a cached prefix: reopen
                        fd = self._open_real(real)
                        stack.append(fd)
                    continue
                try:
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise _Missing from None
                    self.preserve_times(fd, "/".join(real))
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
                    where = "/".join([*real, comp])
                    if not stat.S_ISLNK(st.st_mode):
                        if not create:
                            raise _Missing from None  # nothing can be below a non-directory
                        raise InvalidInput(
                            f"{self.label}: member {member!r}: {where!r} is not a directory"
                        ) from None
                    hops += 1
                    if hops > _MAX_SYMLINK_HOPS:
                        raise self.unsafe(member, "too many levels of symbolic links") from None
                    target = os.readlink(comp, dir_fd=fd)
                    todo = [p for p in target.split("/") if p] + todo
                    if target.startswith("/"):
                        # Absolute: what it names inside the container, i.e. under the root.
                        for opened in stack:
                            os.close(opened)
                        stack, real, fd = [], [], self.root_fd
                    continue
                stack.append(nfd)
                real.append(comp)
                fd = nfd
        except BaseException as exc:
            for opened in stack:
                os.close(opened)
            if isinstance(exc, _Missing):
                return None
            raise
        for opened in stack[:-1]:
            os.close(opened)
        if not stack:
            return self.root_fd
        self._cache[key] = (stack[-1], tuple(real))
        return stack[-1]

    def _open_real(self, real: list[str]) -> int:
        fd = self.root_fd
        opened: list[int] = []
        try:
            for comp in real:
                fd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                opened.append(fd)
        finally:
            for o in opened[:-1]:
                os.close(o)
        return fd if opened else os.dup(self.root_fd)

    # ------------------------------------------------------------------ bookkeeping

    def mark_written(self, path: str) -> None:
        self.written.add(path)
        parent = path.rpartition("/")[0]
        while parent and parent not in self.touched:
            self.touched.add(parent)
            parent = parent.rpartition("/")[0]

    def preserve_times(self, dir_fd: int, path: str) -> None:
        """Remember a lower directory's times before this layer changes its entries."""
        if path in self.written or path in self._saved_times:
            return
        st = os.fstat(dir_fd)
        self._saved_times[path] = (st.st_atime_ns, st.st_mtime_ns)

    def remove(self, dir_fd: int, name: str, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
        self._cache_dirty = True

    def prune(self, dir_fd: int, path: str) -> None:
        """Remove what lower layers left under ``path``; keep what this layer wrote."""
        with os.scandir(dir_fd) as it:
            children = [(c.name, c.is_dir(follow_symlinks=False)) for c in it]
        self.preserve_times(dir_fd, path)
        for name, is_dir in children:
            child = f"{path}/{name}" if path else name
            if child in self.written or child in self.touched:
                if is_dir:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                    try:
                        self.prune(sub, child)
                    finally:
                        os.close(sub)
                continue
            st = _lstat(name, dir_fd)
            if st is not None:
                self.remove(dir_fd, name, st)

    # ------------------------------------------------------------------ metadata

    def set_xattrs(self, target: int | str, entry: LayerEntry) -> None:
        if not self.xattrs:
            return
        for key, value in entry.xattrs:
            if key.startswith(PRIVATE_XATTR_PREFIXES):
                self.warn(f"ignoring overlayfs xattr {key} on {entry.path!r}")
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as exc:
                self.warn(f"cannot set xattr {key} on {entry.path!r}: {exc.strerror}")

    def set_owner(self, fd: int, entry: LayerEntry) -> None:
        if self.as_root:
            os.fchown(fd, entry.uid, entry.gid)

    def _proc_path(self, dir_fd: int, name: str) -> str:
        # Lets xattr calls address a name relative to a dir fd without following it.
        return f"/proc/self/fd/{dir_fd}/{name}"

    # ------------------------------------------------------------------ entries

    def apply(self, entry: LayerEntry, reader: TarReader) -> None:
        path = entry.path
        self.start_entry()
        if not path:
            if entry.type is EntryType.DIR:
                return  # the archive's "./": the root is the destination itself
            raise self.unsafe(path or "/", "it would replace the root directory")
        parts = path.split("/")
        if ".." in parts:
            raise self.unsafe(path, "'..' in the name would leave the root")
        name = parts[-1]
        if name == OPAQUE_WHITEOUT:
            self.whiteouts += 1
            self.opaque(parts[:-1], path)
            return
        if name.startswith(WHITEOUT_PREFIX):
            target = name[len(WHITEOUT_PREFIX) :]
            if target in ("", ".", ".."):
                raise self.unsafe(path, "the whiteout names no file of its directory")
            self.whiteouts += 1
            self.whiteout(parts[:-1], target, path)
            return
        pfd = self.resolve_dir(parts[:-1], path, create=True)
        assert pfd is not None
        etype = entry.type
        if etype in (EntryType.CHAR, EntryType.BLOCK) and not self.as_root:
            self.skipped.append(path)
            self.warn(f"skipping device node {path!r}: creating devices needs root")
            return
        self.preserve_times(pfd, "/".join(parts[:-1]))
        self.entries += 1
        if etype is EntryType.HARDLINK:
            self.hardlink(entry, pfd, name)
            self.mark_written(path)
            return
        existing = _lstat(name, pfd)
        if etype is EntryType.DIR:
            self.directory(entry, pfd, name, existing)
        else:
            if existing is not None:
                self.remove(pfd, name, existing)
            if etype is EntryType.FILE:
                self.file(entry, pfd, name, reader)
            elif etype is EntryType.SYMLINK:
                os.symlink(entry.linkname, name, dir_fd=pfd)
                if self.as_root:
                    os.chown(name, entry.uid, entry.gid, dir_fd=pfd, follow_symlinks=False)
                if entry.xattrs:
                    self.set_xattrs(self._proc_path(pfd, name), entry)
                ns = entry.mtime * 1_000_000_000
                os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
            else:
                self.special(entry, pfd, name)
        self.mark_written(path)

    def directory(
        self, entry: LayerEntry, pfd: int, name: str, existing: os.stat_result | None
    ) -> None:
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            self.remove(pfd, name, existing)
            existing = None
        if existing is None:
            # Owner-writable until the end, so a read-only directory can still be filled.
            os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        try:
            self.set_owner(fd, entry)
            self.set_xattrs(fd, entry)
            if self.overlay and entry.path in self.whited_out:
                # ".wh.x" then "x/" in one layer: the new x must hide the lower x.
                os.setxattr(fd, self.opaque_xattr, b"y")
        finally:
            os.close(fd)
        self.dirs.append(entry)

    def file(self, entry: LayerEntry, pfd: int, name: str, reader: TarReader) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=pfd)
        try:
            view = memoryview(self._buf)
            left = entry.size
            while left:
                n = reader.readinto(view[: min(left, len(view))])
                left -= n
                done = 0
                while done < n:
                    done += os.write(fd, view[done:n])
            self.bytes_written += entry.size
            self.set_owner(fd, entry)
            # After chown, which clears setuid/setgid and security.capability.
            os.fchmod(fd, entry.mode)
            self.set_xattrs(fd, entry)
            ns = entry.mtime * 1_000_000_000
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)

    def special(self, entry: LayerEntry, pfd: int, name: str) -> None:
        if entry.type is EntryType.FIFO:
            os.mkfifo(name, 0o600, dir_fd=pfd)
        else:
            kind = stat.S_IFCHR if entry.type is EntryType.CHAR else stat.S_IFBLK
            os.mknod(name, kind | 0o600, os.makedev(entry.devmajor, entry.devminor), dir_fd=pfd)
        if self.as_root:
            os.chown(name, entry.uid, entry.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(name, entry.mode, dir_fd=pfd)
        if entry.xattrs:
            self.set_xattrs(self._proc_path(pfd, name), entry)
        ns = entry.mtime * 1_000_000_000
        os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)

    def hardlink(self, entry: LayerEntry, pfd: int, name: str) -> None:
        target = entry.linkname
        tparts = target.split("/") if target else []
        if not tparts or ".." in tparts:
            raise self.unsafe(entry.path, f"hard link target {target!r} is outside the root")
        if target == entry.path:
            return  # a link to itself: nothing to do
        tfd = self.resolve_dir(tparts[:-1], entry.path, create=False)
        tst = _lstat(tparts[-1], tfd) if tfd is not None else None
        if tst is None or tfd is None:
            where = " in this layer" if self.overlay else ""
            raise InvalidInput(
                f"{self.label}: member {entry.path!r}: hard link target {target!r} "
                f"does not exist{where}"
            )
        if stat.S_ISDIR(tst.st_mode):
            raise self.unsafe(entry.path, f"hard link target {target!r} is a directory")
        existing = _lstat(name, pfd)
        if existing is not None:
            self.remove(pfd, name, existing)
        os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)

    # ------------------------------------------------------------------ whiteouts

    def whiteout(self, dir_parts: list[str], target: str, member: str) -> None:
        path = "/".join([*dir_parts, target])
        pfd = self.resolve_dir(dir_parts, member, create=self.overlay)
        if pfd is None:
            return  # nothing below to delete
        existing = _lstat(target, pfd)
        if existing is not None or self.overlay:
            self.preserve_times(pfd, "/".join(dir_parts))
        ours = path in self.written or path in self.touched
        if ours:
            # The spec: a whiteout hides only lower content, never what this layer
            # wrote; for a directory that means "keep ours, drop the rest".
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                fd = os.open(target, _DIR_FLAGS, dir_fd=pfd)
                try:
                    if self.overlay:
                        os.setxattr(fd, self.opaque_xattr, b"y")
                    self.prune(fd, path)
                finally:
                    os.close(fd)
            return
        if existing is not None:
            self.remove(pfd, target, existing)
        if self.overlay:
            try:
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
            except PermissionError:
                raise ForkliftError(
                    f"{self.label}: cannot create the overlay whiteout for {path!r}: "
                    "making 0/0 character devices needs root"
                ) from None
            self.whited_out.add(path)

    def opaque(self, dir_parts: list[str], member: str) -> None:
        path = "/".join(dir_parts)
        fd = self.resolve_dir(dir_parts, member, create=self.overlay)
        if fd is None:
            return
        if self.overlay:
            os.setxattr(fd, self.opaque_xattr, b"y")
        self.prune(fd, path)

    # ------------------------------------------------------------------ finish

    def finish_dirs(self) -> None:
        """Directory modes and mtimes last, deepest first: creating children changes them.

        Lower directories whose entries changed get their old times back.
        """
        for entry in reversed(self.dirs):
            self.start_entry()
            parts = entry.path.split("/")
            fd = self.resolve_dir(parts, entry.path, create=False)
            if fd is None:
                continue  # removed again later in the layer
            os.fchmod(fd, entry.mode)
            ns = entry.mtime * 1_000_000_000
            os.utime(fd, ns=(ns, ns))
        for path, times in self._saved_times.items():
            if path in self.written:
                continue  # this layer declared it: its own metadata was applied above
            self.start_entry()
            fd = self.resolve_dir(path.split("/") if path else [], path, create=False)
            if fd is not None:
                os.utime(fd, ns=times)


def extract_layer(
    stream: BinaryIO,
    dest: str | os.PathLike[str],
    *,
    overlay: bool = False,
    as_root: bool | None = None,
    xattrs: bool = True,
    userxattr: bool = False,
    digest: Digest | None = None,
    size: int | None = None,
    diff_id: Digest | None = None,
    label: str = "layer",
    on_warning: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Apply the layer blob ``stream`` (gzip, zstd or plain tar) onto directory ``dest``.

    ``dest`` holds the lower layers already (or nothing); whiteouts delete
    from it. With ``overlay=True`` the layer is unpacked for stacking with
    overlayfs instead: whiteouts become 0/0 character devices and opaque
    directories get ``trusted.overlay.opaque=y`` (``user.overlay.opaque``
    with ``userxattr=True``, for rootless overlay mounts).

    ``as_root`` (default: whether the process is root) decides whether owners
    are applied and device nodes created. ``digest`` (and ``size``) of the blob
    and ``diff_id`` of its tar, when given, are checked as the stream ends
    (:class:`DigestMismatch`, :class:`SizeMismatch`); the files are written by
    then, so extract into a fresh directory and rename it into place on success. Warnings go to ``on_warning`` and the
    ``forklift.layers`` logger.
    """
    if as_root is None:
        as_root = os.geteuid() == 0
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        log.warning("%s", message)
        if on_warning is not None:
            on_warning(message)

    source: Any = stream
    blob_check = tar_check = None
    if digest is not None or size is not None:
        if digest is None:
            raise UsageError("extract_layer: size= needs digest= as well")
        source = blob_check = VerifyingReader(stream, digest, size, what=f"{label} blob")
    layer = open_layer(source, label)
    tar_source: Any = layer
    if diff_id is not None:
        tar_source = tar_check = VerifyingReader(layer, diff_id, None, what=f"{label} diff ID")
    reader = TarReader(tar_source, label)

    root = os.fspath(dest)
    os.makedirs(root, exist_ok=True)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    ex = _Extractor(
        root_fd,
        label,
        overlay=overlay,
        as_root=as_root,
        xattrs=xattrs,
        opaque_xattr="user.overlay.opaque" if userxattr else "trusted.overlay.opaque",
        warn=warn,
    )
    try:
        for entry in reader:
            cancel.check()  # a cancelled command stops between members (the caller cleans up)
            try:
                ex.apply(entry, reader)
            except OSError as exc:
                raise ForkliftError(
                    f"{label}: cannot extract {entry.path!r}: {exc.strerror or exc}"
                ) from exc
        reader.drain()
        try:
            ex.finish_dirs()
        except OSError as exc:
            raise ForkliftError(f"{label}: cannot set directory metadata: {exc.strerror}") from exc
    finally:
        ex.close()
        os.close(root_fd)
    # Both readers saw EOF (drain), so a mismatch was raised already; this is the proof.
    if blob_check is not None and not blob_check.verified:  # pragma: no cover - defensive
        raise ForkliftError(f"{label}: the blob was not read to its end")
    if tar_check is not None and not tar_check.verified:  # pragma: no cover - defensive
        raise ForkliftError(f"{label}: the tar was not read to its end")
    return ExtractResult(
        entries=ex.entries,
        bytes_written=ex.bytes_written,
        whiteouts=ex.whiteouts,
        compression=layer.compression,
        skipped=tuple(ex.skipped),
        warnings=tuple(warnings),
        digest=digest if blob_check is not None else None,
        diff_id=diff_id if tar_check is not None else None,
    )
