"""The final filesystem of an image, streamed: which files exist at the end and which layer wrote them.

Layers are read bottom-up as tar streams (never unpacked). Only the files some
analyzer asks for are read; each is parsed while its layer streams past and
the result is kept under its path. A later layer that deletes the path (a
whiteout, an opaque directory above it, a file or link standing where one of
its directories was) or overwrites it replaces that result, so when the last
layer has streamed the kept results are exactly the files of the final image,
each with the layer that last wrote it. Memory grows with the number of files
the analyzers keep, never with layer bytes or with the number of paths.

Analyzers that attribute records to the layer that *introduced* them (a
package database rewritten by every ``apt-get``) ask for ``keep_history``: the
earlier versions of the same path since it was last deleted are kept too,
each reduced by the analyzer's ``summarize``.

``walk_rootfs`` feeds the same analyzers from a plain directory.
"""

from __future__ import annotations

import io
import lzma
import os
import posixpath
import sqlite3
import stat
import struct
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from forklift.errors import ForkliftError, InvalidInput
from forklift.layers.entry import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, EntryType

#: What ``TarReader.headers()`` yields: path, type, size, mode, link target.
Header = tuple[str, EntryType, int, int, str]

#: Executables smaller than this cannot be Go or Rust programs; not worth reading.
MIN_BINARY = 16 * 1024

# Errors an analyzer's parser may raise on a malformed file: they become a warning
# for that file, never the end of the inventory.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    UnicodeError,
    LookupError,
    struct.error,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    sqlite3.DatabaseError,
    RecursionError,
    OverflowError,
    InvalidInput,
)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file an analyzer asked for, as the final filesystem has it."""

    path: str  # clean and relative: "var/lib/dpkg/status"
    size: int
    mode: int  # permission bits
    layer: int  # index of the layer that wrote it; -1 for a plain directory
    link: str = ""  # a symlink's target (then there is no content)

    @property
    def abspath(self) -> str:
        return "/" + self.path


@dataclass
class Found:
    """One file of the final filesystem and what its analyzer made of it."""

    info: FileInfo
    value: object
    #: earlier versions of the same path (layer, summary), oldest first, when the
    #: analyzer keeps history; the chain restarts when the path is deleted
    history: list[tuple[int, object]] = field(default_factory=list)


class Analyzer(ABC):
    """Finds one kind of file and parses it; subclasses say which files and how.

    A file is offered to the first analyzer that claims it, in this order: an
    exact ``paths`` match, a path starting with one of ``prefixes``, a basename in ``names``, a basename ending with one of
    ``suffixes``, and (with ``executables``) any regular file with an execute
    bit of at least :data:`MIN_BINARY` bytes. ``accepts`` then has the last
    word on the whole path.
    """

    name = ""
    paths: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()  # leading parts of clean paths
    executables = False
    symlinks = False  # also offer symlinks (``read_link``) at matching paths
    keep_history = False
    #: files larger than this are skipped with a warning (0: no limit; the
    #: analyzer then streams)
    max_size = 64 << 20

    def accepts(self, path: str) -> bool:
        """Whether ``path`` (clean, relative) is really one of this analyzer's files."""
        return True

    @abstractmethod
    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        """Parse the file; None when it turns out not to be one (it is then forgotten)."""

    def read_link(self, info: FileInfo) -> object | None:
        """What a symlink at a matching path means (``symlinks`` analyzers only)."""
        return None

    def summarize(self, value: object) -> object:
        """The part of an overwritten version worth keeping as history."""
        return value


class Dispatcher:
    """Picks the analyzer for a path quickly (called for every tar member)."""

    def __init__(self, analyzers: Sequence[Analyzer]) -> None:
        self.analyzers = tuple(analyzers)
        self.by_path: dict[str, Analyzer] = {}
        self.by_name: dict[str, Analyzer] = {}
        self.by_suffix: list[tuple[str, Analyzer]] = []
        self.by_prefix: list[tuple[str, Analyzer]] = []
        self.executable: Analyzer | None = None
        for a in analyzers:
            for p in a.paths:
                self.by_path.setdefault(p, a)
            for n in a.names:
                self.by_name.setdefault(n, a)
            self.by_suffix.extend((s, a) for s in a.suffixes)
            self.by_prefix.extend((p, a) for p in a.prefixes)
            if a.executables and self.executable is None:
                self.executable = a
        self._suffixes = tuple(s for s, _ in self.by_suffix)
        self._prefixes = tuple(p for p, _ in self.by_prefix)

    def pick(self, path: str, kind: EntryType, mode: int, size: int) -> Analyzer | None:
        """The analyzer that wants this member, if any."""
        a = self.by_path.get(path)
        if a is None and self._prefixes and path.startswith(self._prefixes):
            for prefix, cand in self.by_prefix:
                if path.startswith(prefix):
                    a = cand
                    break
        if a is None:
            name = path.rpartition("/")[2]
            a = self.by_name.get(name)
            if a is None and self._suffixes and name.endswith(self._suffixes):
                for suffix, cand in self.by_suffix:
                    if name.endswith(suffix):
                        a = cand
                        break
            if (
                a is None
                and self.executable is not None
                and kind is EntryType.FILE
                and mode & 0o111
                and size >= MIN_BINARY
            ):
                a = self.executable
        if a is None:
            return None
        if kind is EntryType.SYMLINK:
            if not a.symlinks:
                return None
        elif kind not in (EntryType.FILE, EntryType.HARDLINK):
            return None
        return a if a.accepts(path) else None


class _LayerReadError(Exception):
    """An error of the layer stream itself, carried through an analyzer unharmed."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class MemberStream(io.RawIOBase):
    """The data of the current tar member, for an analyzer to read once."""

    def __init__(self, read: Callable[[int], bytes], size: int) -> None:
        self._read = read
        self.size = size

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        try:
            return self._read(-1 if n is None else n)
        except ForkliftError as e:
            raise _LayerReadError(e) from e

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buf))
        memoryview(buf)[: len(data)] = data
        return len(data)


@dataclass
class _Rec:
    analyzer: Analyzer
    found: Found


class FinalView:
    """The kept files of the final filesystem, built layer by layer (see the module doc)."""

    def __init__(self, analyzers: Sequence[Analyzer]) -> None:
        self.dispatch = Dispatcher(analyzers)
        self.records: dict[str, _Rec] = {}
        # how many records sit below each directory: prefix deletions look only here
        self.below: dict[str, int] = {}
        self.warnings: list[str] = []
        self.layer = -1

    # -- bookkeeping

    def _index(self, path: str, delta: int) -> None:
        below = self.below
        end = path.rfind("/")
        while True:
            parent = path[:end] if end > 0 else ""
            count = below.get(parent, 0) + delta
            if count:
                below[parent] = count
            else:
                del below[parent]
            if end <= 0:
                break
            end = path.rfind("/", 0, end)

    def _drop(self, path: str) -> None:
        if self.records.pop(path, None) is not None:
            self._index(path, -1)

    def _drop_below(self, directory: str, older_than: int | None) -> None:
        """Forget records under ``directory/`` (only lower layers' when ``older_than``)."""
        if directory not in self.below:
            return
        prefix = directory + "/" if directory else ""
        doomed = []
        for p, r in self.records.items():
            if not p.startswith(prefix):
                continue
            if older_than is None or r.found.info.layer < older_than:
                doomed.append(p)
            else:
                r.found.history = []  # this layer's own copy stays; what it replaced is gone
        for p in doomed:
            self._drop(p)

    def delete(self, target: str, layer: int) -> None:
        """A whiteout in ``layer`` deletes ``target`` (and its subtree) of the layers below."""
        rec = self.records.get(target)
        if rec is not None:
            if rec.found.info.layer < layer:
                self._drop(target)
            else:
                rec.found.history = []
        self._drop_below(target, layer)

    def opaque(self, directory: str, layer: int) -> None:
        """An opaque whiteout in ``layer`` hides every lower-layer child of ``directory``."""
        self._drop_below(directory, layer)

    def put(self, analyzer: Analyzer, info: FileInfo, value: object) -> None:
        """Keep what ``analyzer`` found in ``info`` (replacing an older version of the path)."""
        old = self.records.get(info.path)
        history: list[tuple[int, object]] = []
        if old is not None:
            if old.analyzer is analyzer and analyzer.keep_history:
                history = old.found.history
                if old.found.info.layer != info.layer:
                    summary = analyzer.summarize(old.found.value)
                    if summary is not None:
                        history.append((old.found.info.layer, summary))
        else:
            self._index(info.path, +1)
        self.records[info.path] = _Rec(analyzer, Found(info, value, history))

    def replaced(self, path: str, is_dir: bool) -> None:
        """A member at ``path`` that no analyzer kept: it hides what was there before."""
        if path in self.records:
            self._drop(path)
        if not is_dir:
            self._drop_below(path, None)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    # -- reading one file

    def offer(
        self,
        analyzer: Analyzer,
        info: FileInfo,
        stream: BinaryIO | None,
    ) -> None:
        """Let ``analyzer`` read one file and keep the result (or note why not)."""
        try:
            if info.link:
                value = analyzer.read_link(info)
            elif analyzer.max_size and info.size > analyzer.max_size:
                self.warn(
                    f"/{info.path}: {info.size} bytes, larger than the {analyzer.name} "
                    f"analyzer reads ({analyzer.max_size}); skipped"
                )
                value = None
            else:
                assert stream is not None
                value = analyzer.read(info, stream)
        except _LayerReadError as e:
            raise e.error from None
        except PARSE_ERRORS as e:
            self.warn(f"/{info.path}: not a readable {analyzer.name} file ({_reason(e)})")
            value = None
        if value is None:
            self.replaced(info.path, False)
        else:
            self.put(analyzer, info, value)

    # -- results

    def found(self, analyzer: Analyzer) -> list[Found]:
        """What ``analyzer`` found in the final filesystem, by path."""
        return sorted(
            (r.found for r in self.records.values() if r.analyzer is analyzer),
            key=lambda f: f.info.path,
        )


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text or type(e).__name__


# -- feeding the view from layers ------------------------------------------------------


@dataclass
class _Pending:
    """A hard link at a wanted path whose target this layer did not keep."""

    path: str
    target: str
    analyzer: Analyzer
    mode: int


class LayerFeeder:
    """Apply one layer's tar members to a :class:`FinalView`."""

    def __init__(self, view: FinalView, layer: int) -> None:
        self.view = view
        self.layer = layer
        self.pending: list[_Pending] = []
        # wanted members seen in this layer and what they were, for hard links
        self.seen: dict[str, tuple[Analyzer, FileInfo]] = {}

    def feed(self, members: Iterable[Header], read: Callable[[int], bytes]) -> None:
        """Apply every member (``TarReader.headers()``); ``read`` gives the current one's data."""
        view, layer = self.view, self.layer
        pick = view.dispatch.pick
        records = view.records
        below = view.below
        for path, kind, size, mode, linkname in members:
            if not path:
                continue
            name = path.rpartition("/")[2]
            if name.startswith(WHITEOUT_PREFIX):
                parent = path.rpartition("/")[0]
                if name == OPAQUE_WHITEOUT:
                    view.opaque(parent, layer)
                else:
                    view.delete(posixpath.join(parent, name[len(WHITEOUT_PREFIX) :]), layer)
                continue
            analyzer = pick(path, kind, mode, size)
            if analyzer is None:
                if path in records or path in below:
                    view.replaced(path, kind is EntryType.DIR)
                continue
            if path in below:
                view.replaced(path, False)
            if kind is EntryType.HARDLINK:
                self._hardlink(path, linkname, mode, analyzer)
                continue
            info = FileInfo(path, size, mode, layer, linkname if kind is EntryType.SYMLINK else "")
            stream = None if info.link else MemberStream(read, size)
            view.offer(analyzer, info, stream)  # type: ignore[arg-type]
            self.seen[path] = (analyzer, info)

    def _hardlink(self, path: str, target: str, mode: int, analyzer: Analyzer) -> None:
        view = self.view
        rec = view.records.get(target)
        if rec is not None and rec.analyzer is analyzer:
            info = rec.found.info
            view.put(analyzer, FileInfo(path, info.size, mode, self.layer), rec.found.value)
            return
        # The target was not kept (another analyzer's path, or none): read it again later.
        view.replaced(path, False)
        self.pending.append(_Pending(path, target, analyzer, mode))

    def resolve(self, members: Iterable[Header], read: Callable[[int], bytes]) -> None:
        """Second pass over the same layer for the targets of pending hard links."""
        wanted: dict[str, list[_Pending]] = {}
        for p in self.pending:
            wanted.setdefault(p.target, []).append(p)
        for path, kind, size, _mode, _link in members:
            links = wanted.pop(path, None)
            if not links or kind is not EntryType.FILE:
                continue
            data = read(-1) if size <= 64 << 20 else None
            for p in links:
                if data is None:
                    self.view.warn(f"/{p.path}: hard link to a file too large to re-read; skipped")
                    continue
                info = FileInfo(p.path, size, p.mode, self.layer)
                self.view.offer(p.analyzer, info, io.BytesIO(data))
            if not wanted:
                break
        for links in wanted.values():
            for p in links:
                self.view.warn(
                    f"/{p.path}: hard link to /{p.target}, which is not in its layer; skipped"
                )


# -- feeding the view from a directory ----------------------------------------------------


#: Top-level directories of a root that hold kernel file systems, never files of an image.
VIRTUAL_DIRS = frozenset({"proc", "sys", "dev"})


def _scan(path: str, rel: str, view: FinalView) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError as e:
        view.warn(f"/{rel}: not readable ({e.strerror})")
        return []


def walk_rootfs(root: str, view: FinalView) -> None:
    """Offer the files of the directory ``root`` (not following symlinks) to the view."""
    dispatch = view.dispatch
    root = os.path.abspath(root)
    stack = [""]
    while stack:
        rel = stack.pop()
        entries = _scan(os.path.join(root, rel) if rel else root, rel, view)
        for de in entries:
            if not rel and de.name in VIRTUAL_DIRS:
                continue
            path = f"{rel}/{de.name}" if rel else de.name
            try:
                st = de.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(path)
                continue
            if stat.S_ISREG(st.st_mode):
                kind = EntryType.FILE
            elif stat.S_ISLNK(st.st_mode):
                kind = EntryType.SYMLINK
            else:
                continue
            mode = stat.S_IMODE(st.st_mode)
            analyzer = dispatch.pick(path, kind, mode, st.st_size)
            if analyzer is None:
                continue
            if kind is EntryType.SYMLINK:
                try:
                    link = os.readlink(de.path)
                except OSError:
                    continue
                view.offer(analyzer, FileInfo(path, 0, mode, -1, link), None)
                continue
            try:
                fd = os.open(de.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as e:
                view.warn(f"/{path}: not readable ({e.strerror})")
                continue
            with os.fdopen(fd, "rb") as f:
                view.offer(analyzer, FileInfo(path, st.st_size, mode, -1), f)
