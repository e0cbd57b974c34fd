"""The local vulnerability database: one SQLite file, looked up by (ecosystem, package).

Tables: ``meta`` (schema version, build time), ``sources`` (one row per
imported source: where it came from, when, how many records), ``advisories``
and ``affected`` (one row per advisory and affected package, indexed on
``(ecosystem, package)``). A lookup is one indexed query; version ranges are
then evaluated in Python with the ecosystem's comparator.

The file is replaced atomically: :func:`build` writes a new file next to the
old one (copying the sources it does not replace) and renames it into place,
so a failed update leaves the old database as it was.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from forklift.errors import InvalidInput, NotFound, StoreError
from forklift.scan.db.model import CVSS, Advisory, Affected, Range, Severity, Status

SCHEMA_VERSION = 1
FILENAME = "vuln.db"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, origin TEXT NOT NULL, imported_at TEXT NOT NULL,
    records INTEGER NOT NULL, withdrawn INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE advisories (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, vuln_id TEXT NOT NULL, aliases TEXT NOT NULL,
    summary TEXT NOT NULL, severity TEXT NOT NULL, severity_source TEXT NOT NULL,
    cvss TEXT NOT NULL, published TEXT NOT NULL, modified TEXT NOT NULL,
    withdrawn TEXT NOT NULL, refs TEXT NOT NULL
);
CREATE TABLE affected (
    advisory INTEGER NOT NULL REFERENCES advisories(id), ecosystem TEXT NOT NULL,
    package TEXT NOT NULL, ranges TEXT NOT NULL, versions TEXT NOT NULL, status TEXT NOT NULL,
    fixed TEXT NOT NULL, severity TEXT NOT NULL, note TEXT NOT NULL
);
CREATE INDEX affected_lookup ON affected (ecosystem, package);
CREATE INDEX advisories_source ON advisories (source);
CREATE INDEX advisories_vuln ON advisories (vuln_id);
"""


@dataclass(frozen=True)
class SourceInfo:
    """One imported source, as ``db status`` shows it."""

    name: str
    kind: str
    origin: str
    imported_at: str  # ISO 8601 UTC
    records: int
    withdrawn: int
    sha256: str

    @property
    def age_seconds(self) -> float:
        return time.time() - datetime.fromisoformat(self.imported_at).timestamp()


@dataclass(frozen=True)
class Match:
    """One affected row of one advisory: what a matcher evaluates."""

    advisory: Advisory  # with ``affected`` left empty (the row is ``affected``)
    affected: Affected


def default_path() -> Path:
    """``$FORKLIFT_HOME/db/vuln.db``."""
    from forklift.store.store import default_home

    return default_home() / "db" / FILENAME


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Database:
    """A read-only view of a database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise NotFound(
                f"no vulnerability database at {path}",
                hint="run 'forklift db update' (or 'forklift db pull REF' in an air-gapped CI)",
            )
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
            version = self.meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a forklift vulnerability database ({exc})") from None
        if version != str(SCHEMA_VERSION):
            raise StoreError(
                f"{path}: database schema {version or '?'}, this forklift reads {SCHEMA_VERSION}",
                hint="run 'forklift db update' to rebuild it",
            )
        self._cache: dict[tuple[str, str], list[Match]] = {}

    @classmethod
    def open(cls, path: Path | None = None) -> Database:
        return cls(path or default_path())

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def meta(self, key: str) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else ""

    @property
    def built_at(self) -> str:
        return self.meta("built_at")

    def sources(self) -> list[SourceInfo]:
        rows = self.conn.execute(
            "SELECT name, kind, origin, imported_at, records, withdrawn, sha256 FROM sources"
            " ORDER BY name"
        ).fetchall()
        return [SourceInfo(*r) for r in rows]

    def oldest_import(self) -> float | None:
        """Age in seconds of the least recently imported source (None if empty)."""
        ages = [s.age_seconds for s in self.sources()]
        return max(ages) if ages else None

    def lookup(self, ecosystem: str, package: str) -> list[Match]:
        """Every non-withdrawn advisory row for one package (an indexed query)."""
        key = (ecosystem, package)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rows = self.conn.execute(
            "SELECT a.source, a.vuln_id, a.aliases, a.summary, a.severity, a.severity_source,"
            " a.cvss, a.published, a.modified, a.refs, f.ranges, f.versions, f.status, f.fixed,"
            " f.severity, f.note FROM affected f JOIN advisories a ON a.id = f.advisory"
            " WHERE f.ecosystem = ? AND f.package = ? AND a.withdrawn = ''",
            key,
        ).fetchall()
        out = [_match(ecosystem, package, r) for r in rows]
        self._cache[key] = out
        return out

    def count(self, ecosystem: str | None = None) -> int:
        if ecosystem is None:
            return int(self.conn.execute("SELECT count(*) FROM advisories").fetchone()[0])
        return int(
            self.conn.execute(
                "SELECT count(DISTINCT advisory) FROM affected WHERE ecosystem = ?", (ecosystem,)
            ).fetchone()[0]
        )


def _match(ecosystem: str, package: str, r: tuple) -> Match:
    adv = Advisory(
        id=r[1],
        source=r[0],
        aliases=tuple(json.loads(r[2])),
        summary=r[3],
        severity=Severity(r[4]),
        severity_source=r[5],
        cvss=tuple(CVSS(*c) for c in json.loads(r[6])),
        published=r[7],
        modified=r[8],
        references=tuple(json.loads(r[9])),
    )
    aff = Affected(
        ecosystem=ecosystem,
        package=package,
        ranges=tuple(Range(t, tuple((k, v) for k, v in ev)) for t, ev in json.loads(r[10])),
        versions=tuple(json.loads(r[11])),
        status=Status(r[12]) if r[12] else None,
        fixed=r[13],
        severity=r[14],
        note=r[15],
    )
    return Match(adv, aff)


@dataclass(frozen=True)
class Imported:
    """What one source's import stored."""

    name: str
    records: int
    withdrawn: int


class Builder:
    """Writes a new database file: sources kept from the old one plus new imports."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.executescript(_SCHEMA)
        self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.conn.execute("BEGIN")

    def copy_sources(self, old: Path, keep: Callable[[str], bool]) -> None:
        """Copy the sources of ``old`` that ``keep`` accepts, as they are."""
        self.conn.execute("ATTACH DATABASE ? AS old", (f"file:{old}?mode=ro",))
        try:
            names = [r[0] for r in self.conn.execute("SELECT name FROM old.sources")]
            for name in names:
                if not keep(name):
                    continue
                base = int(
                    self.conn.execute("SELECT coalesce(max(id), 0) FROM advisories").fetchone()[0]
                )
                self.conn.execute(
                    "INSERT INTO sources SELECT * FROM old.sources WHERE name = ?", (name,)
                )
                self.conn.execute(
                    "INSERT INTO advisories SELECT id + ?, source, vuln_id, aliases, summary,"
                    " severity, severity_source, cvss, published, modified, withdrawn, refs"
                    " FROM old.advisories WHERE source = ?",
                    (base, name),
                )
                self.conn.execute(
                    "INSERT INTO affected SELECT f.advisory + ?, f.ecosystem, f.package,"
                    " f.ranges, f.versions, f.status, f.fixed, f.severity, f.note"
                    " FROM old.affected f JOIN old.advisories a ON a.id = f.advisory"
                    " WHERE a.source = ?",
                    (base, name),
                )
        finally:
            self.conn.execute("COMMIT")
            self.conn.execute("DETACH DATABASE old")
            self.conn.execute("BEGIN")

    def add_source(
        self, name: str, kind: str, origin: str, sha256: str, advisories: Iterable[Advisory]
    ) -> Imported:
        """Store every advisory of one source."""
        cur = self.conn.cursor()
        next_id = int(cur.execute("SELECT coalesce(max(id), 0) FROM advisories").fetchone()[0])
        adv_rows: list[tuple[object, ...]] = []
        aff_rows: list[tuple[object, ...]] = []
        records = withdrawn = 0
        for adv in advisories:
            next_id += 1
            records += 1
            if adv.withdrawn:
                withdrawn += 1
            adv_rows.append(
                (
                    next_id,
                    name,
                    adv.id,
                    json.dumps(list(adv.aliases)),
                    adv.summary,
                    adv.severity.value,
                    adv.severity_source,
                    json.dumps([[c.version, c.vector, c.score] for c in adv.cvss]),
                    adv.published,
                    adv.modified,
                    adv.withdrawn,
                    json.dumps(list(adv.references[:5])),
                )
            )
            for a in adv.affected:
                aff_rows.append(
                    (
                        next_id,
                        a.ecosystem,
                        a.package,
                        json.dumps([[r.type, [list(e) for e in r.events]] for r in a.ranges]),
                        json.dumps(list(a.versions)),
                        a.status.value if a.status else "",
                        a.fixed,
                        a.severity,
                        a.note,
                    )
                )
            if len(aff_rows) > 5000:
                self._flush(adv_rows, aff_rows)
        self._flush(adv_rows, aff_rows)
        cur.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, kind, origin, _now(), records, withdrawn, sha256),
        )
        return Imported(name, records, withdrawn)

    def _flush(
        self, adv_rows: list[tuple[object, ...]], aff_rows: list[tuple[object, ...]]
    ) -> None:
        self.conn.executemany("INSERT INTO advisories VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", adv_rows)
        self.conn.executemany("INSERT INTO affected VALUES (?,?,?,?,?,?,?,?,?)", aff_rows)
        adv_rows.clear()
        aff_rows.clear()

    def finish(self) -> None:
        self.conn.execute("INSERT INTO meta VALUES ('built_at', ?)", (_now(),))
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        self.conn.close()

    def abort(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:
            pass


def iter_sources(path: Path) -> Iterator[SourceInfo]:
    """The sources of the database at ``path`` (none if there is none)."""
    if not path.is_file():
        return iter(())
    try:
        with Database(path) as db:
            return iter(db.sources())
    except (StoreError, InvalidInput):
        return iter(())


def install(new: Path, target: Path) -> None:
    """Make ``new`` the database at ``target``: fsync, rename, fsync the directory."""
    fd = os.open(new, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(new, target)
    dfd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
