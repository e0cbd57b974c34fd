"""An SQLite database as SQLite reads it with its write-ahead log beside it, in memory.

A database in WAL mode keeps its latest transactions in ``<db>-wal`` until a
checkpoint copies them into the file; an image layer can hold both (rpm's
``rpmdb.sqlite`` after ``dnf install`` in a ``RUN``). SQLite itself applies the
log only to a database on disk, so forklift used to write both files to a
temporary directory, which a killed process left behind. :func:`apply_wal`
does what SQLite's reader does, following the file format
(https://www.sqlite.org/fileformat2.html, "The WAL File Format"):

* the 32-byte header: magic ``0x377f0682`` (checksums over little-endian words)
  or ``0x377f0683`` (big-endian), format version 3007000, page size, salts, and
  a checksum of its first 24 bytes;
* frames of a 24-byte header (page number, the database's size in pages for a
  commit frame or 0, both salts, a cumulative checksum) and one page;
* a frame counts only while its salts match the header's and its checksum
  (continued from the header's, over the frame header's first 8 bytes and the
  page) is right; the first frame that fails ends the log. Only frames up to
  the last commit frame are applied; the database is cut or extended to that
  commit's size.

A log whose header is not valid is ignored, as SQLite ignores it.
"""

from __future__ import annotations

import struct

_MAGIC_LE = 0x377F0682
_MAGIC_BE = 0x377F0683
_VERSION = 3007000
_HEADER = 32
_FRAME_HEADER = 24
_MASK = 0xFFFFFFFF


def _checksum(data: bytes | memoryview, s0: int, s1: int, order: str) -> tuple[int, int]:
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & _MASK
        s1 = (s1 + words[i + 1] + s0) & _MASK
    return s0, s1


def _db_page_size(db: bytes) -> int | None:
    if len(db) < 100:
        return None
    size = int.from_bytes(db[16:18], "big")
    return 65536 if size == 1 else size


def apply_wal(db: bytes, wal: bytes) -> bytes:
    """``db`` with every committed, valid frame of ``wal`` applied (``db`` if there is none)."""
    if len(wal) < _HEADER:
        return db
    magic, version, page_size, _seq, salt1, salt2, c1, c2 = struct.unpack(">8I", wal[:_HEADER])
    if magic not in (_MAGIC_LE, _MAGIC_BE) or version != _VERSION:
        return db
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        return db
    if _db_page_size(db) not in (None, page_size):
        return db
    order = ">" if magic == _MAGIC_BE else "<"
    view = memoryview(wal)
    s = _checksum(view[:24], 0, 0, order)
    if s != (c1, c2):
        return db
    committed: dict[int, memoryview] = {}
    pending: dict[int, memoryview] = {}
    size: int | None = None
    frame = _FRAME_HEADER + page_size
    off = _HEADER
    while off + frame <= len(wal):
        pgno, commit, f_salt1, f_salt2, f_c1, f_c2 = struct.unpack_from(">6I", wal, off)
        if pgno == 0 or (f_salt1, f_salt2) != (salt1, salt2):
            break
        page = view[off + _FRAME_HEADER : off + frame]
        s = _checksum(page, *_checksum(view[off : off + 8], *s, order), order)
        if s != (f_c1, f_c2):
            break
        pending[pgno] = page
        if commit:
            committed.update(pending)
            pending.clear()
            size = commit
        off += frame
    if size is None:
        return db
    out = bytearray(db[: size * page_size])
    out.extend(bytes(size * page_size - len(out)))
    for pgno, page in committed.items():
        if pgno <= size:
            out[(pgno - 1) * page_size : pgno * page_size] = page
    return bytes(out)
