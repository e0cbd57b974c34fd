"""The build context: which files COPY/ADD select, and their content checksums.

The context is walked once per build with the ``.dockerignore`` rules (files it
excludes do not exist for COPY). A source path is resolved inside the context as
if it were the root of a chroot: ``..`` stops at the top and symlinks pointing
outside resolve *inside* the context, so no COPY can read outside it.

Content digests come through a stat cache (path, size, mtime, ctime, inode ->
sha256) kept in SQLite, so a rebuild of an unchanged context hashes nothing and
touching a file without changing it costs one re-hash and no cache miss.
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import os
import posixpath
import re
import sqlite3
import stat as stat_mod
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from forklift.dockerfile.context import DIR, FILE, SYMLINK, walk_context
from forklift.dockerfile.ignore import IgnoreMatcher
from forklift.errors import BuildError, NotFound
from forklift.fsutil import resolve_in_root

_GLOB_CHARS = re.compile(r"[*?\[]")
#: How old (ns) a file's last change must be for its digest to be remembered (above the
#: kernel's timestamp granularity, a clock tick of at most 10 ms).
RACY_NS = 50_000_000


@dataclass(frozen=True)
class Selected:
    """One path a COPY source selects.

    ``rel`` is where it lands relative to the copy's destination root ("" for a
    single file, which then takes the destination's name). ``path`` is the file
    on disk, ``kind`` ``f``/``d``/``l``, ``digest`` the content (file) or link
    target (symlink) checksum.
    """

    rel: str
    path: str
    kind: str
    mode: int
    size: int
    mtime: int
    link_target: str = ""
    digest: str = ""
    # identity of a regular file with other hard links (0 otherwise): hard links within
    # one copied tree stay hard links, as BuildKit's copier keeps them
    inode: tuple[int, int] = (0, 0)


class StatCache:
    """(path, size, mtime_ns, ctime_ns, inode) -> sha256 hex, persisted in SQLite.

    A file whose size, times and inode are those recorded is not read again
    (BuildKit's contenthash keys its cache the same way). :meth:`prefetch` loads
    the rows under a directory in one query, so copying a directory of thousands
    of files costs one query rather than one per file (a single file costs one).
    A digest is remembered only when the file's last change is older than
    :data:`RACY_NS` at the end of the read: a write in the same clock tick as the
    read would leave every recorded field unchanged (git's "racily clean" case),
    so such a file is hashed again next time instead.
    """

    def __init__(self, db_path: str | os.PathLike[str] | None) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, int, int, int, int, str]] = []
        self._known: dict[str, tuple[int, int, int, int, str]] = {}
        self._prefetched: list[str] = []
        if db_path is not None:
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(os.fspath(db_path), timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime INTEGER, ctime INTEGER, ino INTEGER, digest TEXT)"
            )
        self.hashed = 0  # files actually read this build (for tests and --explain-cache)

    def prefetch(self, root: str) -> None:
        """Load every row recorded below the directory ``root`` (an absolute path)."""
        prefix = root.rstrip("/") + "/"
        if self._db is None or any(prefix.startswith(p) for p in self._prefetched):
            return
        with self._lock:
            # the paths below prefix sort between prefix and prefix with its "/" bumped to "0"
            rows = self._db.execute(
                "SELECT path, size, mtime, ctime, ino, digest FROM files "
                "WHERE path >= ? AND path < ?",
                (prefix, prefix[:-1] + "0"),
            ).fetchall()
            for path, *rest in rows:
                self._known[path] = tuple(rest)
            self._prefetched.append(prefix)

    def digest(self, path: str, st: os.stat_result) -> str:
        """The sha256 (hex) of the regular file ``path`` whose lstat is ``st``."""
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        known = self._known.get(path)
        if known is None and self._db is not None and not self._covered(path):
            with self._lock:
                known = self._db.execute(
                    "SELECT size, mtime, ctime, ino, digest FROM files WHERE path = ?", (path,)
                ).fetchone()
        if known is not None and tuple(known[:4]) == key:
            return str(known[4])
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as exc:
            raise BuildError(f"cannot read {path}: {exc.strerror}") from None
        digest = h.hexdigest()
        with self._lock:
            self.hashed += 1
            if time.time_ns() - max(st.st_ctime_ns, st.st_mtime_ns) >= RACY_NS:
                self._pending.append((path, *key, digest))
        return digest

    def _covered(self, path: str) -> bool:
        return any(path.startswith(p) for p in self._prefetched)

    def flush(self) -> None:
        """Write the digests computed since the last flush."""
        if self._db is None:
            return
        with self._lock:
            if self._pending:
                self._db.executemany(
                    "INSERT OR REPLACE INTO files (path, size, mtime, ctime, ino, digest) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    self._pending,
                )
                self._db.commit()
                self._pending.clear()

    def close(self) -> None:
        """Flush and close the database."""
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None


def has_glob(path: str) -> bool:
    return bool(_GLOB_CHARS.search(path))


def clean_source(path: str) -> str:
    """A source path relative to the context root (leading ``/`` and ``..`` removed)."""
    cleaned = posixpath.normpath("/" + path.replace("\\", "/")).lstrip("/")
    return "" if cleaned == "." else cleaned


def _go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match for one component (``*`` does not cross ``/``)."""
    if pattern == name:
        return True
    # fnmatch's [!x] is Go's [^x]; translate the negation and keep everything else.
    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))


def glob_match(pattern: str, path: str) -> bool:
    """Match a slash-separated path component by component; ``**`` spans any depth."""
    pparts = pattern.split("/")
    parts = path.split("/")

    def rec(i: int, j: int) -> bool:
        while i < len(pparts):
            if pparts[i] == "**":
                return any(rec(i + 1, k) for k in range(j, len(parts) + 1))
            if j >= len(parts) or not _go_match(pparts[i], parts[j]):
                return False
            i += 1
            j += 1
        return j == len(parts)

    return rec(0, 0)


class BuildContext:
    """A local directory used as a build context, seen through its ignore rules."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        matcher: IgnoreMatcher | None = None,
        stat_cache: StatCache | None = None,
        name: str = "context",
        *,
        hash_contents: bool = True,
        observe: bool = False,
    ) -> None:
        self.hash_contents = hash_contents
        #: with ``observe``: the absolute paths whose lstat the answers so far depend on
        #: (every path selected or looked up, every directory listed); a rebuild with all
        #: of them unchanged selects the same (see :mod:`forklift.build.noop`)
        self.observed: dict[str, None] | None = {} if observe else None
        #: a source was reached through a symlink (the links on the way are not observed)
        self.followed_link = False
        self.root = os.path.realpath(os.fspath(root))
        self._prefix = self.root.rstrip("/") + "/"
        if not os.path.isdir(self.root):
            raise NotFound(f"build context {root} is not a directory")
        self.matcher = matcher
        self.stat_cache = stat_cache or StatCache(None)
        self.name = name
        self._kinds: dict[str, str] | None = None
        self._sorted: list[str] = []

    # -- the walk ------------------------------------------------------------------
    # With an ignore file the whole context is walked once (the walker knows which
    # excluded directories it may skip). Without one, only the subtrees a COPY asks
    # for are read: that is how stage and image filesystems are used as sources.

    def _walk(self) -> dict[str, str]:
        if self._kinds is None:
            kinds: dict[str, str] = {}
            listed: list[str] | None = [] if self.observed is not None else None
            for path, kind, _entry in walk_context(self.root, self.matcher, listed):
                kinds[path] = kind
            for directory in listed or ():
                self._saw(directory)
            self._kinds = kinds
            self._sorted = sorted(kinds)
        return self._kinds

    def _saw(self, path: str) -> None:
        if self.observed is not None:
            self.observed[path] = None

    @property
    def _whole(self) -> bool:
        return bool(self.matcher)

    def kind_of(self, rel: str) -> str | None:
        """``f``/``d``/``l``/``o`` for an included path, None if absent or ignored."""
        if rel == "":
            return DIR
        if self._whole:
            return self._walk().get(rel)
        path = os.path.join(self.root, rel)
        self._saw(path)
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if stat_mod.S_ISDIR(st.st_mode):
            return DIR
        if stat_mod.S_ISREG(st.st_mode):
            return FILE
        if stat_mod.S_ISLNK(st.st_mode):
            return SYMLINK
        return "o"

    def included(self, rel: str) -> bool:
        """Whether ``rel`` is part of the context (exists and is not ignored)."""
        return self.kind_of(rel) is not None

    def _below(self, rel: str) -> list[str]:
        """Every included path strictly below ``rel``, sorted."""
        if self._whole:
            self._walk()
            if rel == "":
                return list(self._sorted)
            prefix = rel + "/"
            i = bisect.bisect_left(self._sorted, prefix)
            out = []
            while i < len(self._sorted) and self._sorted[i].startswith(prefix):
                out.append(self._sorted[i])
                i += 1
            return out
        out = []
        stack = [rel]
        while stack:
            current = stack.pop()
            directory = os.path.join(self.root, current) if current else self.root
            self._saw(directory)
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except OSError:
                continue
            for e in entries:
                child = f"{current}/{e.name}" if current else e.name
                out.append(child)
                if e.is_dir(follow_symlinks=False):
                    stack.append(child)
        out.sort()
        return out

    # -- resolving paths inside the root ------------------------------------------------

    def resolve(self, rel: str) -> str:
        """Follow symlinks in ``rel`` as if the context were ``/`` (never leaving it)."""
        try:
            resolved = resolve_in_root(self.root, rel)
        except OSError as exc:
            raise BuildError(f"{rel}: {exc.strerror}") from None
        if resolved != rel.strip("/"):
            self.followed_link = True
        return resolved

    def _selected(self, rel_in_dest: str, rel_in_context: str) -> Selected:
        # (concatenation, not os.path.join: this runs once per selected file)
        path = self._prefix + rel_in_context if rel_in_context else self.root
        self._saw(path)
        st = os.lstat(path)
        if stat_mod.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            return Selected(rel_in_dest, path, SYMLINK, st.st_mode, 0, st.st_mtime_ns // 10**9, target,
                            hashlib.sha256(target.encode()).hexdigest())  # fmt: skip
        if stat_mod.S_ISDIR(st.st_mode):
            return Selected(rel_in_dest, path, DIR, st.st_mode, 0, st.st_mtime_ns // 10**9)
        if stat_mod.S_ISREG(st.st_mode):
            return Selected(rel_in_dest, path, FILE, st.st_mode, st.st_size, st.st_mtime_ns // 10**9,
                            digest=self.stat_cache.digest(path, st) if self.hash_contents else "",
                            inode=(st.st_dev, st.st_ino) if st.st_nlink > 1 else (0, 0))  # fmt: skip
        raise BuildError(
            f"{rel_in_context}: unsupported file type in the build context (socket or device)"
        )

    # -- selection -------------------------------------------------------------------------

    def select(
        self, source: str, *, excludes: Iterable[str] = (), parents: bool = False
    ) -> tuple[list[Selected], bool]:
        """What one COPY source selects, and whether it named a single file.

        A directory contributes its *contents* (not itself); a glob may match several
        files and directories. With ``parents`` the paths keep their directories
        (``COPY --parents``), relative to a ``/./`` pivot if the source has one.
        """
        pivot = ""
        if parents and "/./" in "/" + source:
            before, _, _ = ("/" + source).partition("/./")
            pivot = clean_source(before)
        src = clean_source(source)
        exclude_patterns = [clean_source(e) for e in excludes]

        def excluded(rel: str) -> bool:
            return any(glob_match(p, rel) or glob_match(p + "/**", rel) for p in exclude_patterns)

        if has_glob(src):
            literal: list[str] = []
            for part in src.split("/"):
                if has_glob(part):
                    break
                literal.append(part)
            base_dir = "/".join(literal)
            if base_dir and self.kind_of(base_dir) != DIR:
                base_dir = ""
            roots = [p for p in self._below(base_dir) if glob_match(src, p)]
            # A match inside another match's directory is already covered by it.
            roots = [r for r in roots if not any(r.startswith(o + "/") for o in roots if o != r)]
            # A wildcard matching nothing selects nothing (BuildKit allows empty wildcards
            # for context sources); COPY fails only when no source selects anything.
            single = False
        else:
            resolved = self.resolve(src)
            if not self.included(resolved):
                what = (
                    "is excluded by .dockerignore"
                    if os.path.lexists(os.path.join(self.root, resolved))
                    else "not found"
                )
                raise NotFound(f"{source}: {what} in the {self.name}")
            roots = [resolved]
            single = self.kind_of(resolved) != DIR
        out: list[Selected] = []
        for root in roots:
            if excluded(root):
                continue
            # Every source path, a wildcard match included, is followed if it is a symlink
            # (inside the context); what lies below it is copied as it is.
            real = self.resolve(root) if self.kind_of(root) == SYMLINK else root
            if real != root and not self.included(real):
                raise NotFound(
                    f"{source}: {root} points at {real or '/'}, which is not in the {self.name}"
                )
            kind = self.kind_of(real) or DIR
            if parents:
                base = root if not pivot else posixpath.relpath(root, pivot)
                if base.startswith(".."):
                    base = root
            if kind == DIR:
                if self.hash_contents:  # one query for the digests recorded below it
                    self.stat_cache.prefetch(self._prefix + real if real else self.root)
                if parents and base not in ("", "."):
                    out.append(self._selected(base, real))
                for child in self._below(real):
                    if excluded(child):
                        continue
                    rel = child[len(real) + 1 :] if real else child  # child is below real
                    dest_rel = (
                        posixpath.join(base, rel) if parents and base not in ("", ".") else rel
                    )
                    out.append(self._selected(dest_rel, child))
            else:
                if parents:
                    dest_rel = base
                elif has_glob(src) or len(roots) > 1:
                    dest_rel = posixpath.basename(root)
                else:
                    dest_rel = ""
                out.append(self._selected(dest_rel, real))
        return out, single and not parents


def checksum(selected: Iterable[Selected], extra: str = "") -> str:
    """A content checksum of a selection: names, types, modes and contents, never mtimes."""
    h = hashlib.sha256(extra.encode())
    for s in selected:
        h.update(f"{s.rel}\0{s.kind}\0{s.mode & 0o7777:o}\0{s.digest}\n".encode())
    return h.hexdigest()
