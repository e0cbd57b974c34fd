"""Which repositories of a registry are known to hold a blob, so pushes can mount.

A push of a blob the registry already has in another repository can be a
cross-repository mount (one request) instead of an upload. Registries cannot
be asked "who has this blob", so forklift remembers where it saw each blob:
on pulls, pushes, and positive ``HEAD`` checks. The memory is a small SQLite
file under ``$FORKLIFT_HOME`` (default ``~/.local/share/forklift``); it is only
a hint, so any failure to read or write it is logged and ignored.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forklift import logs

if TYPE_CHECKING:
    import sqlite3

log = logs.get("forklift.registry.client")

DB_NAME = "blob-locations.sqlite3"
# entries not seen for this long are dropped: repositories get deleted
MAX_AGE = 90 * 24 * 3600.0
# how many repositories to remember per blob and registry
MAX_PER_BLOB = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blob_locations (
    registry   TEXT NOT NULL,
    digest     TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen       REAL NOT NULL,
    PRIMARY KEY (registry, digest, repository)
) WITHOUT ROWID;
"""


def _sqlite3() -> Any:
    import sqlite3

    return sqlite3


def forklift_home() -> Path:
    """``$FORKLIFT_HOME``, or ``~/.local/share/forklift``."""
    home = os.environ.get("FORKLIFT_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("HOME") or Path.home()) / ".local" / "share" / "forklift"


def default_path() -> Path:
    return forklift_home() / "registry-client" / DB_NAME


class BlobLocations:
    """A persistent map (registry, blob digest) -> repositories that hold it.

    Thread-safe; several processes may share the file (SQLite locking).
    The database is opened on first use.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is not None or self._broken:
            return self._conn
        import sqlite3  # on first use: many runs never touch the cache (start-up time)

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=10.0, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # a hint cache: losing the last writes on power loss is fine
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute("DELETE FROM blob_locations WHERE seen < ?", (time.time() - MAX_AGE,))
            self._conn = conn
        except (sqlite3.Error, OSError) as exc:
            log.warning("blob location cache %s unusable: %s", self.path, exc)
            self._broken = True
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def remember(self, registry: str, repository: str, digests: Iterable[str]) -> None:
        """Record that ``repository`` of ``registry`` holds each of ``digests``."""
        rows = [(registry, str(d), repository) for d in digests]
        if not rows:
            return
        now = time.time()
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT INTO blob_locations (registry, digest, repository, seen) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (registry, digest, repository) "
                    "DO UPDATE SET seen = excluded.seen",
                    [(*r, now) for r in rows],
                )
                # keep only the most recently seen repositories of each blob
                conn.executemany(
                    "DELETE FROM blob_locations WHERE registry = ? AND digest = ? AND "
                    "repository NOT IN (SELECT repository FROM blob_locations "
                    "WHERE registry = ? AND digest = ? ORDER BY seen DESC LIMIT ?)",
                    [(r[0], r[1], r[0], r[1], MAX_PER_BLOB) for r in rows],
                )
                conn.execute("COMMIT")
            except _sqlite3().Error as exc:
                self._rollback(conn)
                log.warning("blob location cache %s: %s", self.path, exc)

    def forget(self, registry: str, repository: str, digest: str) -> None:
        """Drop one entry (a mount from ``repository`` found the blob gone)."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute(
                    "DELETE FROM blob_locations WHERE registry = ? AND digest = ? "
                    "AND repository = ?",
                    (registry, str(digest), repository),
                )
            except _sqlite3().Error as exc:
                log.warning("blob location cache %s: %s", self.path, exc)

    def repositories(self, registry: str, digest: str, *, exclude: str | None = None) -> list[str]:
        """Repositories of ``registry`` known to hold ``digest``, most recently seen first."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return []
            try:
                rows = conn.execute(
                    "SELECT repository FROM blob_locations WHERE registry = ? AND digest = ? "
                    "AND seen > ? ORDER BY seen DESC",
                    (registry, str(digest), time.time() - MAX_AGE),
                ).fetchall()
            except _sqlite3().Error as exc:
                log.warning("blob location cache %s: %s", self.path, exc)
                return []
        return [r[0] for r in rows if r[0] != exclude]

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("ROLLBACK")
        except _sqlite3().Error:
            pass
