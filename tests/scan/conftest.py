"""Fixtures for the scanner tests: a database built from the corpus, once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from forklift.scan.db.index import Database
from forklift.scan.db.sources import parse_specs
from forklift.scan.db.update import update
from tests.helpers import need_corpus

VULNDB = "vulndb"
DEBIAN_FIXTURE = "debian/fixtures/anchore__vunnel/tests/unit/providers/debian/test-fixtures"


def corpus_sources(c: Path) -> list[str]:
    v = c / VULNDB
    return [
        f"PyPI={v}/pypi/pypa-osv.jsonl",
        f"debian={v}/{DEBIAN_FIXTURE}/input/debian.json",
        f"debian-dsa={v}/debian/tracker-format/DSA-list",
        f"debian-dla={v}/debian/tracker-format/DLA-list",
        f"alpine-secdb={v}/alpine/alpinelinux__alpine-secdb",
        f"ghsa={v}/ghsa",
    ]


@pytest.fixture(scope="session")
def corpus_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of every corpus source (PyPI, Debian, Alpine, GHSA samples)."""
    c = need_corpus()
    path = tmp_path_factory.mktemp("vulndb") / "vuln.db"
    update(parse_specs(corpus_sources(c)), path=path)
    return path


@pytest.fixture
def db(corpus_db: Path) -> Database:
    d = Database(corpus_db)
    yield d  # type: ignore[misc]
    d.close()


@pytest.fixture
def scan_home(home: Path, corpus_db: Path) -> Path:
    """$FORKLIFT_HOME with the corpus database installed."""
    (home / "db").mkdir(parents=True, exist_ok=True)
    shutil.copy(corpus_db, home / "db" / "vuln.db")
    return home
