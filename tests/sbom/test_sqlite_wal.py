"""A write-ahead log applied in memory reads as SQLite itself reads the pair on disk.

SQLite is the oracle: each case makes a real WAL-mode database with Python's sqlite3,
takes the database and its ``-wal`` file as an image layer would hold them, and
compares what SQLite reads from copies of both on disk with what the in-memory
image gives.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from forklift.sbom.analyzers.sqlite_wal import apply_wal

Rows = list[tuple[int, str]]


def _snapshot(tmp_path: Path, work: Callable[[sqlite3.Connection], None]) -> tuple[bytes, bytes]:
    """(db, wal) bytes while a connection still holds changes in the log (no checkpoint)."""
    path = tmp_path / "live.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the table is in the file, the log empty
    work(conn)
    db, wal = path.read_bytes(), (tmp_path / "live.sqlite-wal").read_bytes()
    conn.close()
    return db, wal


def _sqlite_reads(tmp_path: Path, db: bytes, wal: bytes) -> Rows:
    d = tmp_path / "oracle"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    (d / "x.sqlite").write_bytes(db)
    (d / "x.sqlite-wal").write_bytes(wal)
    conn = sqlite3.connect(d / "x.sqlite")
    try:
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def _memory_reads(db: bytes, wal: bytes) -> Rows:
    buf = bytearray(apply_wal(db, wal))
    if buf[18:20] == b"\x02\x02":
        buf[18:20] = b"\x01\x01"
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(bytes(buf))
        return conn.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def _many_commits(conn: sqlite3.Connection) -> None:
    for i in range(40):
        conn.execute("INSERT INTO t(v) VALUES (?)", ("x" * (i * 50),))
    conn.execute("DELETE FROM t WHERE id % 3 = 0")
    conn.execute("UPDATE t SET v = 'changed' WHERE id = 2")


def test_committed_transactions_are_applied(tmp_path: Path) -> None:
    db, wal = _snapshot(tmp_path, _many_commits)
    assert wal and _memory_reads(db, b"") == []  # without the log: the empty table
    want = _sqlite_reads(tmp_path, db, wal)
    assert len(want) == 27 and (2, "changed") in want
    assert _memory_reads(db, wal) == want


def test_a_database_that_grew_past_its_file_is_extended(tmp_path: Path) -> None:
    def grow(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t(v) VALUES (?)", ("y" * 200_000,))  # many new pages

    db, wal = _snapshot(tmp_path, grow)
    assert len(apply_wal(db, wal)) > len(db)
    assert _memory_reads(db, wal) == _sqlite_reads(tmp_path, db, wal)


def test_frames_of_an_open_transaction_are_not_applied(tmp_path: Path) -> None:
    def spill(conn: sqlite3.Connection) -> None:
        for i in range(60):
            conn.execute("INSERT INTO t(v) VALUES (?)", (f"committed {i} " + "c" * 3000,))
        conn.execute("PRAGMA cache_size=2")  # a big transaction spills pages into the log
        conn.execute("BEGIN")
        # rewrites pages the last commit has (numbers within its size), then adds more
        conn.execute("UPDATE t SET v = 'open ' || id || ' ' || substr(v, 1, 3000)")
        for _ in range(100):
            conn.execute("INSERT INTO t(v) VALUES (?)", ("z" * 3000,))

    db, wal = _snapshot(tmp_path, spill)
    want = _sqlite_reads(tmp_path, db, wal)
    assert len(want) == 60 and all(v.startswith("committed ") for _, v in want)
    assert _memory_reads(db, wal) == want


@pytest.mark.parametrize("where", ["cut", "flipped", "stale salt"])
def test_a_damaged_tail_ends_the_log_where_sqlite_ends_it(tmp_path: Path, where: str) -> None:
    def three(conn: sqlite3.Connection) -> None:
        for v in ("a", "b", "c"):
            conn.execute("INSERT INTO t(v) VALUES (?)", (v,))

    db, wal = _snapshot(tmp_path, three)
    page = int.from_bytes(wal[8:12], "big")
    frames = (len(wal) - 32) // (24 + page)
    assert frames >= 3
    last = 32 + (frames - 1) * (24 + page)
    damaged = bytearray(wal)
    if where == "cut":
        damaged = damaged[: last + 24 + page // 2]
    elif where == "flipped":
        damaged[last + 24 + 100] ^= 0xFF
    else:
        damaged[last + 8] ^= 0x01  # salt-1 of the last frame: a frame of an older log
    want = _sqlite_reads(tmp_path, db, bytes(damaged))
    assert want == [(1, "a"), (2, "b")]  # the last commit is gone, the others stay
    assert _memory_reads(db, bytes(damaged)) == want


def test_an_invalid_log_header_is_ignored(tmp_path: Path) -> None:
    db, wal = _snapshot(tmp_path, _many_commits)
    for bad in (wal[:20], b"\x00" * 32 + wal[32:], wal[:24] + b"\x00" * 8 + wal[32:]):
        assert apply_wal(db, bad) == db
        assert _memory_reads(db, bad) == _sqlite_reads(tmp_path, db, bad) == []
