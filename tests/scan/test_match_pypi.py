"""PyPI matching against the full pypa advisory database, with expectations computed here.

The expected advisories for each (package, version) come from this file's own
reading of the OSV records with ``packaging``: a record applies when the
version is in its ``versions`` list or inside an ``ECOSYSTEM`` range, and it is
not withdrawn. forklift must report exactly those (each merged with its aliases).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.version import InvalidVersion, Version

from forklift.sbom.model import Ecosystem, Package
from forklift.scan.db.index import Database
from forklift.scan.db.model import Range
from forklift.scan.match import in_range, match_package
from forklift.scan.versions import scheme
from tests.helpers import corpus_cases

CASES = [
    ("requests", "2.20.0"),
    ("requests", "2.31.0"),
    ("urllib3", "1.24.3"),
    ("urllib3", "1.26.18"),
    ("Jinja2", "2.10"),
    ("jinja2", "3.1.4"),
    ("PyYAML", "5.3"),
    ("pyyaml", "5.4"),
    ("Django", "2.2.24"),
    ("django", "1.11.29"),
    ("django", "4.2.16"),
    ("Flask", "0.12.2"),
    ("pillow", "8.1.0"),
    ("cryptography", "3.2"),
    ("setuptools", "58.1.0"),
    ("pip", "23.0.1"),
    ("idna", "2.7"),
    ("pandas", "0.23.4"),
    ("tensorflow", "2.4.0"),
    ("no-such-package", "1.0"),
]


def _norm(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _records(c: Path) -> list[dict]:  # type: ignore[type-arg]
    return [
        json.loads(line) for line in (c / "vulndb/pypi/pypa-osv.jsonl").read_text().splitlines()
    ]


def _expected(records: list[dict], name: str, version: str) -> set[str]:  # type: ignore[type-arg]
    v = Version(version)
    out = set()
    for r in records:
        if r.get("withdrawn"):
            continue
        for a in r["affected"]:
            if _norm(a["package"]["name"]) != _norm(name):
                continue
            hit = False
            for listed in a.get("versions", []):
                try:
                    hit = hit or Version(listed) == v
                except InvalidVersion:
                    hit = hit or listed == version
            for rng in a.get("ranges", []):
                if rng["type"] != "ECOSYSTEM":
                    continue
                # straightforward: walk events in order, tracking the latest boundary at or below v
                state = False
                evs = sorted(
                    ((k, val) for e in rng["events"] for k, val in e.items()),
                    key=lambda kv: Version("0") if kv[1] == "0" else Version(kv[1]),
                )
                for k, val in evs:
                    bound = Version("0") if val == "0" else Version(val)
                    if k == "introduced" and v >= bound:
                        state = True
                    elif (k == "fixed" and v >= bound) or (k == "last_affected" and v > bound):
                        state = False
                hit = hit or state
            if hit:
                out.add(r["id"])
    return out


@pytest.fixture(scope="module")
def records(corpus: Path) -> list[dict]:  # type: ignore[type-arg]
    return _records(corpus)


@pytest.mark.parametrize(("name", "version"), CASES)
def test_pypi_findings_are_exactly_what_the_records_say(
    db: Database,
    records: list[dict],
    name: str,
    version: str,  # type: ignore[type-arg]
) -> None:
    pkg = Package(name, version, Ecosystem.PYPI, f"pkg:pypi/{_norm(name)}@{version}")
    found = match_package(db, pkg, None)
    pysec = {i for v in found for i in v.ids if i.startswith("PYSEC-")}
    assert pysec == _expected(records, name, version)
    # one finding per vulnerability: no CVE appears in two findings
    cves = [i for v in found for i in v.ids if i.startswith("CVE-")]
    assert len(cves) == len(set(cves))
    for v in found:
        assert v.installed == version and v.package is pkg


def test_every_record_matches_a_version_it_lists(db: Database, records: list[dict]) -> None:  # type: ignore[type-arg]
    """Whole-database check: for each record, its first listed version is reported with it."""
    checked = 0
    for r in records:
        if r.get("withdrawn"):
            continue
        for a in r["affected"]:
            listed = a.get("versions") or []
            if not listed:
                continue
            version = listed[0]
            pkg = Package(a["package"]["name"], version, Ecosystem.PYPI, "pkg:pypi/x")
            ids = {i for v in match_package(db, pkg, None) for i in v.ids}
            assert r["id"] in ids, (r["id"], version)
            checked += 1
    assert checked > 2000


def test_withdrawn_records_are_never_reported(db: Database, records: list[dict]) -> None:  # type: ignore[type-arg]
    withdrawn = [r for r in records if r.get("withdrawn")]
    assert len(withdrawn) == 10
    for r in withdrawn:
        for a in r["affected"]:
            for version in (a.get("versions") or [])[:3]:
                pkg = Package(a["package"]["name"], version, Ecosystem.PYPI, "pkg:pypi/x")
                ids = {i for v in match_package(db, pkg, None) for i in v.ids}
                assert r["id"] not in ids


def test_git_ranges_are_ignored() -> None:
    # a GIT range has commit hashes, never versions: dropped on import, so nothing to compare
    from forklift.scan.db.osv import parse_record

    adv = parse_record(
        {
            "id": "X-1",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "a"},
                    "ranges": [
                        {
                            "type": "GIT",
                            "repo": "r",
                            "events": [{"introduced": "0"}, {"fixed": "abc"}],
                        }
                    ],
                }
            ],
        },
        "PyPI",
    )
    assert adv.affected[0].ranges == ()


def test_range_evaluation_follows_osv() -> None:
    s = scheme("PyPI")
    r = Range(
        "ECOSYSTEM",
        (("introduced", "1.0"), ("fixed", "1.5"), ("introduced", "2.0"), ("last_affected", "2.3")),
    )
    assert in_range(r, "0.9", s) == (False, ["1.5"])
    assert in_range(r, "1.0", s)[0] and in_range(r, "1.4.9", s)[0]
    assert not in_range(r, "1.5", s)[0] and not in_range(r, "1.9", s)[0]
    assert in_range(r, "2.3", s)[0] and not in_range(r, "2.3.1", s)[0]
    assert in_range(Range("ECOSYSTEM", (("introduced", "0"),)), "0.0.1", s)[0]


# -- the osv.dev oracle --------------------------------------------------------------------


def _oracle(c: Path) -> list[dict]:  # type: ignore[type-arg]
    rows = [
        json.loads(x)
        for x in (c / "vulndb/osv-api-oracle/osv-scanner-cassettes.jsonl").read_text().splitlines()
    ]
    return [
        pytest.param(r, id=f"{r['ecosystem']}:{r['name']}@{r['version']}")
        for r in rows
        if r["ecosystem"] in ("PyPI", "Go", "npm", "Maven", "crates.io", "NuGet", "Packagist")
        or (r["ecosystem"] or "").startswith("Debian")
    ]


ORACLE = corpus_cases(_oracle)


def _corpus_ids(c: Path) -> tuple[set[str], dict[str, dict], dict[str, set[str]]]:  # type: ignore[type-arg]
    ids: set[str] = set()
    by_id: dict[str, dict] = {}  # type: ignore[type-arg]
    related: dict[str, set[str]] = {}  # id -> every id some record pairs it with
    records = _records(c) + [json.loads(f.read_text()) for f in (c / "vulndb/ghsa").rglob("*.json")]
    for r in records:
        group = {r["id"], *r.get("aliases", [])}
        ids |= group
        if r["affected"] and r["affected"][0]["package"]["ecosystem"] == "PyPI":
            by_id[r["id"]] = r
            for a in r.get("aliases", []):
                by_id.setdefault(a, r)
        for i in group:
            related.setdefault(i, set()).update(group)
    for f in ("DSA-list.parsed.jsonl", "DLA-list.parsed.jsonl"):
        for line in (c / "vulndb/debian/tracker-format" / f).read_text().splitlines():
            ids.add(json.loads(line)["id"])
    return ids, by_id, related


@pytest.fixture(scope="module")
def corpus_ids(corpus: Path) -> tuple[set[str], dict[str, dict], dict[str, set[str]]]:  # type: ignore[type-arg]
    return _corpus_ids(corpus)


_ECO = {"PyPI": Ecosystem.PYPI, "Go": Ecosystem.GOLANG, "npm": Ecosystem.NPM, "Maven": Ecosystem.MAVEN,
        "crates.io": Ecosystem.CARGO, "NuGet": Ecosystem.NUGET, "Packagist": Ecosystem.COMPOSER}  # fmt: skip


def _listed_or_in_range(record: dict, name: str, version: str) -> bool:  # type: ignore[type-arg]
    return _norm(name) in {_norm(a["package"]["name"]) for a in record["affected"]} and record[
        "id"
    ] in _expected([record], name, version)


@pytest.mark.parametrize("query", ORACLE)
def test_osv_oracle(corpus_ids: tuple, db: Database, query: dict) -> None:  # type: ignore[type-arg]
    """What osv.dev answered, for the advisories the corpus has, is what forklift finds.

    The corpus is a 2024 snapshot and osv.dev answered later: where the two disagree the
    record in the corpus must itself say so (the version is, or is not, in its ranges).
    """
    ids, by_id, related = corpus_ids
    eco = query["ecosystem"]
    if eco.startswith("Debian"):
        from forklift.scan.db.names import debian_namespace

        pkg = Package(
            query["name"],
            query["version"],
            Ecosystem.DEB,
            "pkg:deb/debian/x",
            source_name=query["name"],
        )
        ns = debian_namespace(eco.split(":", 1)[1])
    else:
        pkg = Package(query["name"], query["version"], _ECO[eco], f"pkg:{_ECO[eco].value}/x")
        ns = None
    found = {i for v in match_package(db, pkg, ns) for i in v.ids}
    expected = {i for i in query["vuln_ids"] if i in ids}
    missing = expected - found
    extra = {i for i in found & ids if not i.startswith("CVE-")} - set(query["vuln_ids"])
    # an extra id is only fine as an alias of something osv.dev did report, or when the
    # corpus record (older than osv.dev's answer) puts the version in its range
    for i in sorted(missing):
        r = by_id.get(i)
        assert (
            r is not None
            and eco == "PyPI"
            and not _listed_or_in_range(r, query["name"], query["version"])
        ), f"{i} missing for {query['name']} {query['version']}"
    for i in sorted(extra):
        if related.get(i, set()) & set(query["vuln_ids"]):
            continue  # an alias of an advisory osv.dev did report
        r = by_id.get(i)
        assert (
            r is not None
            and eco == "PyPI"
            and _listed_or_in_range(r, query["name"], query["version"])
        ), f"{i} reported for {query['name']} {query['version']} but osv.dev did not"
