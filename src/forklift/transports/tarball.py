"""Tar archives of images (OCI archives, docker-archive): indexed reading, streamed writing.

Reading indexes the members once (headers only) and then serves each member
with positional reads, so several blobs can be read at once without seeking a
shared file. Writing streams members straight into the output; a member whose
size is not known in advance (a layer being decompressed) gets its header
patched afterwards, which the GNU number encoding makes possible at any size.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from forklift.copyrange import FileExtent, copy_while_draining
from forklift.errors import InvalidInput, NotFound
from forklift.fsutil import fsync_dir


class Readable(Protocol):
    """Anything with ``read(n)``: a file, or a reader that hashes or tees what passes."""

    def read(self, n: int = -1, /) -> bytes: ...


BLOCK = 512
_BUFSIZE = 1 << 20
_MEMBER_BUFSIZE = 64 << 10


class RangeReader(io.RawIOBase):
    """A read-only stream over ``size`` bytes at ``offset`` of a file descriptor (pread)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        super().__init__()
        self._fd = fd
        self._start = offset
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        left = self._size - self._pos
        if left <= 0:
            return 0
        view = memoryview(buf)[: min(len(buf), left)]
        n = os.preadv(self._fd, [view], self._start + self._pos)
        if n == 0:
            raise InvalidInput("archive truncated: a member ends early")
        self._pos += n
        return n

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        buf = bytearray(min(n, max(0, self._size - self._pos)))
        got = self.readinto(buf) if buf else 0
        return bytes(buf[:got])


@dataclass(frozen=True)
class Member:
    name: str
    offset: int
    size: int
    linkname: str = ""


class TarIndex:
    """The members of an uncompressed tar file, readable by name."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise InvalidInput(f"{self.path}: is a directory, not an archive") from None
        self.members: dict[str, Member] = {}
        try:
            with open(self._fd, "rb", closefd=False) as f, tarfile.open(fileobj=f, mode="r:") as tf:
                for info in tf:
                    name = _clean(info.name)
                    if info.isreg():
                        self.members[name] = Member(name, info.offset_data, info.size)
                    elif info.issym() or info.islnk():
                        self.members[name] = Member(name, 0, 0, _clean(info.linkname))
        except tarfile.TarError as exc:
            os.close(self._fd)
            raise InvalidInput(f"{self.path}: not a valid tar archive ({exc})") from None

    def __contains__(self, name: str) -> bool:
        return _clean(name) in self.members

    def _member(self, name: str) -> Member:
        seen = 0
        member = self.members.get(_clean(name))
        while member is not None and member.linkname and seen < 16:
            member = self.members.get(member.linkname)
            seen += 1
        if member is None or member.linkname:
            raise NotFound(f"{self.path}: no member {name!r}")
        return member

    def size(self, name: str) -> int:
        return self._member(name).size

    def extent(self, name: str) -> FileExtent:
        """Where member ``name``'s bytes lie in the archive file."""
        return FileExtent(self.path, self._member(name).offset)

    def open(self, name: str) -> BinaryIO:
        m = self._member(name)
        # A small buffer: reads of a chunk or more (a blob's copy) then go straight into
        # the caller's buffer instead of being copied once more through this one.
        return io.BufferedReader(RangeReader(self._fd, m.offset, m.size), _MEMBER_BUFSIZE)

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        m = self._member(name)
        if m.size > limit:
            raise InvalidInput(f"{self.path}: member {name} is too large ({m.size} bytes)")
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


class TarWriter:
    """Writes a tar archive to ``path`` atomically (a temp file renamed on :meth:`commit`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, self._tmp = tempfile.mkstemp(
            dir=directory, prefix=f".{self.path.name}.", suffix=".partial"
        )
        self._f = os.fdopen(fd, "w+b", buffering=_BUFSIZE)
        self._names: set[str] = set()
        self._done = False

    def __contains__(self, name: str) -> bool:
        return name in self._names

    @staticmethod
    def _header(name: str, size: int, mode: int = 0o644, type_: bytes = tarfile.REGTYPE) -> bytes:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = mode
        info.type = type_
        info.mtime = 0
        info.uname = info.gname = ""
        return info.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="strict")

    def _pad(self, size: int) -> None:
        rem = size % BLOCK
        if rem:
            self._f.write(b"\0" * (BLOCK - rem))

    def add_dir(self, name: str) -> None:
        if name in self._names:
            return
        self._names.add(name)
        self._f.write(self._header(name.rstrip("/") + "/", 0, 0o755, tarfile.DIRTYPE))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._names.add(name)
        self._f.write(self._header(name, len(data)))
        self._f.write(data)
        self._pad(len(data))

    def add_stream(
        self,
        name: str,
        stream: Readable,
        size: int | None = None,
        *,
        final_name: Callable[[], str] | None = None,
    ) -> int:
        """Copy a stream in as member ``name``.

        With ``size`` unknown, the header is rewritten once the data is written;
        ``final_name`` then may rename the member (both names must fit one header block).
        """
        start = self._f.tell()
        self._f.write(self._header(name, size or 0))
        written = 0
        buf = bytearray(_BUFSIZE)
        view = memoryview(buf)
        readinto = getattr(stream, "readinto", None)
        while True:
            chunk: bytes | memoryview
            if readinto is not None:
                n = readinto(view)
                chunk = view[:n]
            else:
                chunk = stream.read(_BUFSIZE)
                n = len(chunk)
            if not n:
                break
            self._f.write(chunk)
            written += n
        if size is not None and written != size:
            raise InvalidInput(f"member {name}: expected {size} bytes, got {written}")
        self._pad(written)
        if final_name is not None:
            name = final_name()
        self._names.add(name)
        if size is None or final_name is not None:
            header = self._header(name, written)
            if len(header) != BLOCK:
                raise InvalidInput(f"member name too long for a patched header: {name}")
            end = self._f.tell()
            self._f.seek(start)
            self._f.write(header)
            self._f.seek(end)
        return written

    def reserve(self, name: str, size: int) -> int:
        """Write member ``name``'s header and leave room for its ``size`` bytes; return
        where they go. Fill the room with :meth:`fill` (other members may be added
        meanwhile, from other threads, under the caller's lock)."""
        self._f.write(self._header(name, size))
        start = self._f.tell()
        # a hole: zeros until filled, padding included (the archive's end extends the file)
        self._f.seek(start + size + (-size % BLOCK))
        self._names.add(name)
        return start

    def fill(self, offset: int, size: int, extent: FileExtent, stream: BinaryIO) -> None:
        """Put ``size`` bytes from ``extent`` at ``offset`` (from :meth:`reserve`), copied
        by the kernel while ``stream``, a verifying reader of the same bytes, is drained.
        Safe to run in several threads at once, for different members."""
        copy_while_draining(extent, self._f.fileno(), offset, size, stream)

    def commit(self) -> None:
        self._f.write(b"\0" * (BLOCK * 2))
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self.path)
        fsync_dir(self.path.parent if str(self.path.parent) else ".")
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(Exception):
            self._f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


def spool_to_file(stream: BinaryIO, directory: str | None = None) -> Path:
    """Copy a non-seekable stream (stdin) into a temporary file and return its path."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="forklift-spool-", suffix=".tar")
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(_BUFSIZE):
            out.write(chunk)
    return Path(tmp)
