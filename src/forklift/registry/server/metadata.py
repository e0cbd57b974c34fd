"""What the registry knows besides blob bytes: the :class:`MetadataStore` interface and SQLite.

Repositories, tags, manifests (their exact bytes are kept here, so a manifest
push is one transaction), which repository may see which blob, referrers and
uploads in progress. Blob *bytes* live in the storage driver; a blob row here
means "committed and complete". A PostgreSQL store for several replicas will
implement the same methods.

What every implementation must guarantee:

- Each method is one atomic, isolated operation (a transaction): readers see
  the state before or after a write, never part of it. Writes are durable when
  the method returns, at least against a crash of the process (SQLite: WAL
  with ``synchronous=NORMAL`` loses nothing on SIGKILL; a power loss may roll
  back the last transactions, never to an inconsistent state).
- A ``blobs`` row exists only after the storage driver committed the bytes
  durably (the app calls :meth:`MetadataStore.add_blob` after
  ``commit_upload``, under the commit lock).
- ``put_manifest`` checks that every referenced blob and child manifest is
  visible in the repository *in the same write transaction* that records the
  manifest and its tags; ``delete_blob_if_unused`` and
  ``collect_untagged_manifests`` re-check references and age in the write
  transaction that deletes. So a push and a collection can interleave in any
  order: the push either lands first (and keeps what it references) or fails
  with the missing references named (and the client uploads them again).
- A re-push of an existing manifest refreshes its age in the repository, so a
  collection that started earlier cannot delete it.
- Methods block (disk or network): the app calls writes from worker threads;
  reads must be fast enough for the event loop (an indexed lookup) and must
  not wait for writers (SQLite: WAL readers never do).
- After a crash, nothing needs repair: every invariant above holds at every
  commit boundary. Upload sessions may outlive their bytes or the other way
  round; garbage collection removes both kinds of leftover.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from forklift.errors import StoreError


@dataclass(frozen=True)
class ManifestRecord:
    """A stored manifest: its digest, media type and exact bytes."""

    digest: str
    media_type: str
    body: bytes


@dataclass(frozen=True)
class NewManifest:
    """A manifest about to be stored, with what it references."""

    digest: str
    media_type: str
    body: bytes
    blobs: tuple[tuple[str, int], ...]  # (digest, size) of the config (first) and layers
    children: tuple[str, ...]  # manifests an index lists
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass(frozen=True)
class Referrer:
    """One entry of a referrers listing."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass(frozen=True)
class UploadRecord:
    """An upload session: which repository it belongs to and when it was last used."""

    id: str
    repo: str
    created: float
    updated: float


@dataclass(frozen=True)
class PutResult:
    """Outcome of :meth:`MetadataStore.put_manifest`."""

    missing_blobs: tuple[str, ...] = ()
    missing_manifests: tuple[str, ...] = ()
    wrong_size: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing_blobs or self.missing_manifests or self.wrong_size)


class MetadataStore(Protocol):
    """Registry metadata. Every method is one atomic operation (see the module docstring)."""

    # blobs
    def blob_size(self, digest: str) -> int | None:
        """Size of a committed blob, or None."""
        ...

    def repo_blob_size(self, repo: str, digest: str) -> int | None:
        """Size of a blob if it is visible in ``repo``, else None."""
        ...

    def add_blob(self, repo: str, digest: str, size: int) -> None:
        """Record a committed blob, make it visible in ``repo`` and restart its grace period."""
        ...

    def link_blob(self, repo: str, digest: str) -> bool:
        """Make an existing blob visible in ``repo`` (mount); False if it does not exist."""
        ...

    def blob_repos(self, digest: str, limit: int) -> list[str]:
        """Repositories in which a blob is visible, in name order, at most ``limit``."""
        ...

    def unlink_blob(self, repo: str, digest: str) -> bool:
        """Hide a blob from ``repo``; False if it was not visible there."""
        ...

    def touch_blob(self, digest: str) -> None:
        """Mark a blob as recently used (its GC grace period restarts)."""
        ...

    # manifests and tags
    def put_manifest(
        self, repo: str, manifest: NewManifest, tags: Sequence[str], *, sparse: bool = False
    ) -> PutResult:
        """Store a manifest and point ``tags`` at it, if what it references is in ``repo``.

        All or nothing: on a missing reference nothing changes and the result
        names what is missing. ``sparse`` accepts absent layers and child
        manifests (blobs that are present must still have the right size; the
        config must be present). Re-storing an existing manifest restarts its
        age in ``repo``.
        """
        ...

    def get_manifest(self, repo: str, reference: str, by_digest: bool) -> ManifestRecord | None:
        """A manifest of ``repo`` by tag or digest."""
        ...

    def delete_tag(self, repo: str, tag: str) -> bool:
        """Remove a tag; False if it did not exist."""
        ...

    def delete_manifest(self, repo: str, digest: str) -> bool:
        """Remove a manifest (and the tags pointing at it) from ``repo``."""
        ...

    def repo_exists(self, repo: str) -> bool:
        """True if anything was ever pushed to ``repo``."""
        ...

    def list_tags(self, repo: str, limit: int | None, last: str | None) -> list[str]:
        """Tags of ``repo`` in lexical order, after ``last``, at most ``limit``."""
        ...

    def list_repos(self, limit: int | None, last: str | None) -> list[str]:
        """Repository names in lexical order, after ``last``, at most ``limit``."""
        ...

    def referrers(
        self,
        repo: str,
        subject: str,
        artifact_type: str | None,
        limit: int | None = None,
        last: str | None = None,
    ) -> list[Referrer]:
        """Manifests in ``repo`` whose subject is ``subject``, by digest, after ``last``."""
        ...

    # uploads
    def create_upload(self, upload_id: str, repo: str) -> None:
        """Record a new upload session."""
        ...

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        """An upload session, or None."""
        ...

    def touch_upload(self, upload_id: str) -> None:
        """Mark an upload as active now."""
        ...

    def delete_upload(self, upload_id: str) -> None:
        """Forget an upload session."""
        ...

    def uploads_before(self, cutoff: float) -> list[str]:
        """Ids of uploads last used before ``cutoff``."""
        ...

    def upload_ids(self) -> set[str]:
        """Every upload session id."""
        ...

    # garbage collection
    def collect_untagged_manifests(self, cutoff: float, dry_run: bool) -> list[tuple[str, str]]:
        """Delete (or list) the manifests of each repository that no tag reaches.

        A manifest is reached by a tag, as a child of a reached index, or as a
        referrer of a reached manifest. Only manifests stored in the repository
        before ``cutoff`` go. Reachability is computed *in the transaction that
        deletes*, per repository, so a tag or re-push that lands first keeps
        its manifest. Returns (repo, digest) pairs.
        """
        ...

    def delete_orphan_manifests(self, cutoff: float, dry_run: bool) -> list[str]:
        """Drop manifests no repository holds any more; return their digests."""
        ...

    def unused_blobs(self, cutoff: float, ignoring: frozenset[str] = frozenset()) -> list[str]:
        """Blobs no manifest (except those in ``ignoring``) references, unused since ``cutoff``."""
        ...

    def manifest_repos(self, digest: str) -> set[str]:
        """Repositories that hold a manifest."""
        ...

    def delete_blob_if_unused(self, digest: str, cutoff: float) -> bool:
        """Re-check (no reference, unused since ``cutoff``) and forget a blob; True if forgotten."""
        ...

    def all_blob_digests(self) -> set[str]:
        """Every committed blob."""
        ...

    # consistency checks
    def tags_and_manifests(self) -> Iterator[tuple[str, str, str]]:
        """(repo, tag, digest) of every tag."""
        ...

    def manifest_blob_refs(self) -> list[tuple[str, str, str]]:
        """(repo, manifest digest, blob digest) of every blob a held manifest references."""
        ...

    def stats(self) -> dict[str, int]:
        """Counts and total size, for metrics."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS repos(name TEXT PRIMARY KEY, created REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs(
    digest TEXT PRIMARY KEY, size INTEGER NOT NULL, touched REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repo_blobs(
    repo TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(repo, digest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs(digest);
CREATE TABLE IF NOT EXISTS manifests(
    digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, size INTEGER NOT NULL,
    body BLOB NOT NULL, artifact_type TEXT, subject TEXT, annotations TEXT,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(subject);
CREATE TABLE IF NOT EXISTS manifest_refs(
    parent TEXT NOT NULL, child TEXT NOT NULL, kind TEXT NOT NULL,
    PRIMARY KEY(parent, kind, child)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifest_refs_child ON manifest_refs(child, kind);
CREATE TABLE IF NOT EXISTS repo_manifests(
    repo TEXT NOT NULL, digest TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY(repo, digest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS repo_manifests_digest ON repo_manifests(digest);
CREATE TABLE IF NOT EXISTS tags(
    repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY(repo, tag)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_digest ON tags(repo, digest);
CREATE TABLE IF NOT EXISTS uploads(
    id TEXT PRIMARY KEY, repo TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
"""


# One writer lock per database file for the whole process: writers of several
# SQLiteMetadata objects (the app, a GC run) queue here instead of polling
# SQLite's busy handler. Other processes are kept out by SQLite's own lock.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: str) -> threading.Lock:
    key = os.path.realpath(path)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


class SQLiteMetadata:
    """The default metadata store: one SQLite database in WAL mode.

    Each thread gets its own connection, so readers (the event loop) never wait
    for a writer (a worker thread) or for garbage collection (its own thread and
    connection). Write transactions are ``BEGIN IMMEDIATE`` under a per-file
    process lock. WAL with ``synchronous=NORMAL`` survives a process crash
    (SIGKILL) without losing committed transactions.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_guard = threading.Lock()
        self._wlock = _write_lock(self.path)
        self._closed = False
        with self._wlock:
            db = self._conn()
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open registry database {self.path}: {exc}") from None

    # -- helpers ---------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            return db
        if self._closed:
            raise StoreError(f"registry database {self.path} is closed")
        try:
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open registry database {self.path}: {exc}") from None
        self._local.db = db
        with self._conns_guard:
            self._conns.append(db)
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        with self._wlock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several statements see one snapshot."""
        db = self._conn()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def _one(self, sql: str, args: Sequence[Any]) -> Any:
        return self._conn().execute(sql, args).fetchone()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._conn().execute(sql, args).fetchall()

    # -- blobs -----------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        row = self._one("SELECT size FROM blobs WHERE digest=?", (digest,))
        return row[0] if row else None

    def repo_blob_size(self, repo: str, digest: str) -> int | None:
        row = self._one(
            "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest=r.digest "
            "WHERE r.repo=? AND r.digest=?",
            (repo, digest),
        )
        return row[0] if row else None

    def add_blob(self, repo: str, digest: str, size: int) -> None:
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO blobs(digest, size, touched) VALUES(?,?,?) "
                "ON CONFLICT(digest) DO UPDATE SET touched=excluded.touched",
                (digest, size, now),
            )
            db.execute("INSERT OR IGNORE INTO repos VALUES(?,?)", (repo, now))
            db.execute("INSERT OR IGNORE INTO repo_blobs VALUES(?,?)", (repo, digest))

    def link_blob(self, repo: str, digest: str) -> bool:
        now = time.time()
        with self._write() as db:
            if db.execute("SELECT 1 FROM blobs WHERE digest=?", (digest,)).fetchone() is None:
                return False
            db.execute("UPDATE blobs SET touched=? WHERE digest=?", (now, digest))
            db.execute("INSERT OR IGNORE INTO repos VALUES(?,?)", (repo, now))
            db.execute("INSERT OR IGNORE INTO repo_blobs VALUES(?,?)", (repo, digest))
            return True

    def blob_repos(self, digest: str, limit: int) -> list[str]:
        return [
            r[0]
            for r in self._all(
                "SELECT repo FROM repo_blobs WHERE digest=? ORDER BY repo LIMIT ?", (digest, limit)
            )
        ]

    def unlink_blob(self, repo: str, digest: str) -> bool:
        with self._write() as db:
            cur = db.execute("DELETE FROM repo_blobs WHERE repo=? AND digest=?", (repo, digest))
            return cur.rowcount > 0

    def touch_blob(self, digest: str) -> None:
        with self._write() as db:
            db.execute("UPDATE blobs SET touched=? WHERE digest=?", (time.time(), digest))

    # -- manifests -------------------------------------------------------------

    def put_manifest(
        self, repo: str, manifest: NewManifest, tags: Sequence[str], *, sparse: bool = False
    ) -> PutResult:
        if isinstance(tags, str):
            raise TypeError("tags must be a sequence of tags, not one string")
        now = time.time()
        with self._write() as db:
            missing_blobs: list[str] = []
            wrong_size: list[str] = []
            for i, (digest, size) in enumerate(manifest.blobs):
                row = db.execute(
                    "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest=r.digest "
                    "WHERE r.repo=? AND r.digest=?",
                    (repo, digest),
                ).fetchone()
                if row is None:
                    # in sparse mode only the config (listed first) must be present
                    if not sparse or i == 0:
                        missing_blobs.append(digest)
                elif row[0] != size:
                    wrong_size.append(digest)
            missing_manifests = (
                []
                if sparse
                else [
                    child
                    for child in manifest.children
                    if db.execute(
                        "SELECT 1 FROM repo_manifests WHERE repo=? AND digest=?", (repo, child)
                    ).fetchone()
                    is None
                ]
            )
            result = PutResult(tuple(missing_blobs), tuple(missing_manifests), tuple(wrong_size))
            if not result.ok:
                return result
            db.execute("INSERT OR IGNORE INTO repos VALUES(?,?)", (repo, now))
            db.execute(
                "INSERT OR IGNORE INTO manifests VALUES(?,?,?,?,?,?,?,?)",
                (
                    manifest.digest,
                    manifest.media_type,
                    len(manifest.body),
                    manifest.body,
                    manifest.artifact_type,
                    manifest.subject,
                    json.dumps(manifest.annotations) if manifest.annotations else None,
                    now,
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO manifest_refs VALUES(?,?,'blob')",
                [(manifest.digest, d) for d, _ in manifest.blobs],
            )
            db.executemany(
                "INSERT OR IGNORE INTO manifest_refs VALUES(?,?,'manifest')",
                [(manifest.digest, d) for d in manifest.children],
            )
            db.execute(
                "INSERT INTO repo_manifests VALUES(?,?,?) "
                "ON CONFLICT(repo, digest) DO UPDATE SET created=excluded.created",
                (repo, manifest.digest, now),
            )
            db.executemany(
                "INSERT OR REPLACE INTO tags VALUES(?,?,?,?)",
                [(repo, tag, manifest.digest, now) for tag in dict.fromkeys(tags)],
            )
            return result

    def get_manifest(self, repo: str, reference: str, by_digest: bool) -> ManifestRecord | None:
        if by_digest:
            sql = (
                "SELECT m.digest, m.media_type, m.body FROM repo_manifests r "
                "JOIN manifests m ON m.digest=r.digest WHERE r.repo=? AND r.digest=?"
            )
        else:
            sql = (
                "SELECT m.digest, m.media_type, m.body FROM tags t "
                "JOIN manifests m ON m.digest=t.digest WHERE t.repo=? AND t.tag=?"
            )
        row = self._one(sql, (repo, reference))
        return ManifestRecord(row[0], row[1], row[2]) if row else None

    def delete_tag(self, repo: str, tag: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM tags WHERE repo=? AND tag=?", (repo, tag)).rowcount > 0

    def delete_manifest(self, repo: str, digest: str) -> bool:
        with self._write() as db:
            cur = db.execute("DELETE FROM repo_manifests WHERE repo=? AND digest=?", (repo, digest))
            if cur.rowcount == 0:
                return False
            db.execute("DELETE FROM tags WHERE repo=? AND digest=?", (repo, digest))
            return True

    def repo_exists(self, repo: str) -> bool:
        return self._one("SELECT 1 FROM repos WHERE name=?", (repo,)) is not None

    def list_tags(self, repo: str, limit: int | None, last: str | None) -> list[str]:
        # the spec's "lexical order": case-insensitive, ties broken by the exact bytes
        args: list[Any] = [repo]
        sql = "SELECT tag FROM tags WHERE repo=?"
        if last is not None:
            sql += " AND (lower(tag) > lower(?) OR (lower(tag) = lower(?) AND tag > ?))"
            args += [last, last, last]
        sql += " ORDER BY lower(tag), tag"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [r[0] for r in self._all(sql, args)]

    def list_repos(self, limit: int | None, last: str | None) -> list[str]:
        args: list[Any] = []
        # a repository is listed while it holds a manifest
        sql = "SELECT DISTINCT repo FROM repo_manifests"
        if last is not None:
            sql += " WHERE repo > ?"
            args.append(last)
        sql += " ORDER BY repo"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [r[0] for r in self._all(sql, args)]

    def referrers(
        self,
        repo: str,
        subject: str,
        artifact_type: str | None,
        limit: int | None = None,
        last: str | None = None,
    ) -> list[Referrer]:
        sql = (
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations "
            "FROM repo_manifests r JOIN manifests m ON m.digest=r.digest "
            "WHERE r.repo=? AND m.subject=?"
        )
        args: list[Any] = [repo, subject]
        if artifact_type is not None:
            sql += " AND m.artifact_type=?"
            args.append(artifact_type)
        if last is not None:
            sql += " AND m.digest > ?"
            args.append(last)
        sql += " ORDER BY m.digest"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [
            Referrer(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else {})
            for r in self._all(sql, args)
        ]

    # -- uploads ---------------------------------------------------------------

    def create_upload(self, upload_id: str, repo: str) -> None:
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO uploads VALUES(?,?,?,?)", (upload_id, repo, now, now))

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = self._one("SELECT id, repo, created, updated FROM uploads WHERE id=?", (upload_id,))
        return UploadRecord(*row) if row else None

    def touch_upload(self, upload_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE uploads SET updated=? WHERE id=?", (time.time(), upload_id))

    def delete_upload(self, upload_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM uploads WHERE id=?", (upload_id,))

    def uploads_before(self, cutoff: float) -> list[str]:
        return [r[0] for r in self._all("SELECT id FROM uploads WHERE updated < ?", (cutoff,))]

    def upload_ids(self) -> set[str]:
        """Every upload session id."""
        return {r[0] for r in self._all("SELECT id FROM uploads")}

    # -- garbage collection ----------------------------------------------------

    def collect_untagged_manifests(self, cutoff: float, dry_run: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        repos = [r[0] for r in self._all("SELECT DISTINCT repo FROM repo_manifests")]
        for repo in repos:
            # one transaction per repository: the reachability that decides is
            # the reachability at the moment of deleting
            with self._read() if dry_run else self._write() as db:
                doomed = _unreached(db, repo, cutoff)
                if not dry_run:
                    db.executemany(
                        "DELETE FROM repo_manifests WHERE repo=? AND digest=?",
                        [(repo, d) for d in doomed],
                    )
            out.extend((repo, d) for d in doomed)
        return out

    def delete_orphan_manifests(self, cutoff: float, dry_run: bool) -> list[str]:
        sql = (
            "SELECT digest FROM manifests m WHERE created < ? AND NOT EXISTS "
            "(SELECT 1 FROM repo_manifests r WHERE r.digest=m.digest)"
        )
        if dry_run:
            return [r[0] for r in self._all(sql, (cutoff,))]
        with self._write() as db:
            gone = [r[0] for r in db.execute(sql, (cutoff,)).fetchall()]
            for digest in gone:
                db.execute("DELETE FROM manifests WHERE digest=?", (digest,))
                db.execute("DELETE FROM manifest_refs WHERE parent=?", (digest,))
            return gone

    def unused_blobs(self, cutoff: float, ignoring: frozenset[str] = frozenset()) -> list[str]:
        if not ignoring:
            return [
                r[0]
                for r in self._all(
                    "SELECT digest FROM blobs b WHERE touched < ? AND NOT EXISTS "
                    "(SELECT 1 FROM manifest_refs f WHERE f.child=b.digest AND f.kind='blob')",
                    (cutoff,),
                )
            ]
        # dry runs: pretend the manifests about to go are gone already
        live: set[str] = {
            child
            for parent, child in self._all(
                "SELECT parent, child FROM manifest_refs WHERE kind='blob'"
            )
            if parent not in ignoring
        }
        return [
            r[0]
            for r in self._all("SELECT digest FROM blobs WHERE touched < ?", (cutoff,))
            if r[0] not in live
        ]

    def manifest_repos(self, digest: str) -> set[str]:
        return {
            r[0] for r in self._all("SELECT repo FROM repo_manifests WHERE digest=?", (digest,))
        }

    def delete_blob_if_unused(self, digest: str, cutoff: float) -> bool:
        with self._write() as db:
            row = db.execute(
                "SELECT 1 FROM blobs b WHERE digest=? AND touched < ? AND NOT EXISTS "
                "(SELECT 1 FROM manifest_refs f WHERE f.child=b.digest AND f.kind='blob')",
                (digest, cutoff),
            ).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM blobs WHERE digest=?", (digest,))
            db.execute("DELETE FROM repo_blobs WHERE digest=?", (digest,))
            return True

    def all_blob_digests(self) -> set[str]:
        return {r[0] for r in self._all("SELECT digest FROM blobs")}

    def tags_and_manifests(self) -> Iterator[tuple[str, str, str]]:
        """(repo, tag, digest) of every tag, for consistency checks."""
        yield from self._all("SELECT repo, tag, digest FROM tags ORDER BY repo, tag")

    def manifest_blob_refs(self) -> list[tuple[str, str, str]]:
        """(repo, manifest digest, blob digest) of every blob a held manifest references."""
        return self._all(
            "SELECT r.repo, f.parent, f.child FROM repo_manifests r "
            "JOIN manifest_refs f ON f.parent=r.digest WHERE f.kind='blob'"
        )

    def stats(self) -> dict[str, int]:
        blobs, size = self._one("SELECT COUNT(*), COALESCE(SUM(size),0) FROM blobs", ())
        return {
            "blobs": blobs,
            "blob_bytes": size,
            "manifests": self._one("SELECT COUNT(*) FROM manifests", ())[0],
            "repositories": self._one("SELECT COUNT(*) FROM repos", ())[0],
            "tags": self._one("SELECT COUNT(*) FROM tags", ())[0],
            "uploads": self._one("SELECT COUNT(*) FROM uploads", ())[0],
        }

    def close(self) -> None:
        self._closed = True
        with self._conns_guard:
            conns, self._conns = self._conns, []
        for db in conns:
            db.close()
        self._local = threading.local()


def _unreached(db: sqlite3.Connection, repo: str, cutoff: float) -> list[str]:
    """Manifests of ``repo`` stored before ``cutoff`` that no tag reaches."""
    held = dict(db.execute("SELECT digest, created FROM repo_manifests WHERE repo=?", (repo,)))
    live = {r[0] for r in db.execute("SELECT digest FROM tags WHERE repo=?", (repo,))}
    # children of live indexes and referrers of live manifests stay live
    frontier = sorted(live)
    while frontier:
        found: set[str] = set()
        for start in range(0, len(frontier), 500):  # SQLite caps bound parameters
            args = frontier[start : start + 500]
            marks = ",".join("?" * len(args))
            found.update(
                r[0]
                for r in db.execute(
                    f"SELECT child FROM manifest_refs WHERE kind='manifest' AND parent IN ({marks})",
                    args,
                )
            )
            found.update(
                r[0]
                for r in db.execute(
                    f"SELECT digest FROM manifests WHERE subject IN ({marks})", args
                )
            )
        frontier = sorted((found & held.keys()) - live)
        live.update(frontier)
    return sorted(d for d, created in held.items() if d not in live and created < cutoff)
