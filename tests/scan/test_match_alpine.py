"""Alpine: secdb's fixed versions per release and origin package, with apk's version order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from forklift.sbom.model import Ecosystem, Package
from forklift.scan.db.index import Database
from forklift.scan.match import match_package
from tests.helpers import corpus_cases


def apk(name: str, version: str, origin: str = "") -> Package:
    return Package(
        name, version, Ecosystem.APK, f"pkg:apk/alpine/{name}@{version}", source_name=origin or name
    )


def _secdb(c: Path) -> list[dict]:  # type: ignore[type-arg]
    return [
        json.loads(p.read_text())
        for p in sorted((c / "vulndb/alpine/alpinelinux__alpine-secdb").glob("v*/*.json"))
    ]


def test_secdb_records(corpus: Path, db: Database) -> None:
    """Every (release, origin, fix, CVE) of every secdb file: vulnerable below the fix, not at it."""
    checked = 0
    for doc in _secdb(corpus):
        if not isinstance(doc["packages"], list):
            continue
        ns = "alpine:" + doc["distroversion"].lstrip("v")
        for item in doc["packages"][:40]:
            pkg = item["pkg"]
            fixes: dict[str, set[str]] = {}
            for fixed, ids in pkg["secfixes"].items():
                if fixed == "0":
                    continue
                for text in ids:
                    for cve in re.findall(r"CVE-\d{4}-\d{4,}", text):
                        fixes.setdefault(cve, set()).add(fixed)
            if not fixes:
                continue
            oldest = {
                v.id: set(v.fixed.split(", "))
                for v in match_package(db, apk("x", "0.0.1-r0", pkg["name"]), ns)
            }
            for cve, versions in fixes.items():
                assert oldest.get(cve) == versions, (ns, pkg["name"], cve)
                for fixed in versions:
                    at_fix = {v.id for v in match_package(db, apk("x", fixed, pkg["name"]), ns)}
                    if len(versions) == 1:
                        assert cve not in at_fix, (ns, pkg["name"], cve, fixed)
                checked += 1
    assert checked > 500


def test_binary_packages_match_through_their_origin(db: Database) -> None:
    # libcrypto1.1 is built from openssl: advisories are keyed by the origin
    found = {
        v.id for v in match_package(db, apk("libcrypto1.1", "1.1.1c-r0", "openssl"), "alpine:3.10")
    }
    assert {"CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"} <= found
    assert match_package(db, apk("libcrypto1.1", "1.1.1d-r0", "openssl"), "alpine:3.10") == []
    assert (
        match_package(db, apk("openssl", "1.1.1c-r0"), "alpine:3.99") == []
    )  # no data for that release


def _oracle(c: Path) -> list[object]:
    rows = [
        json.loads(x)
        for x in (c / "vulndb/osv-api-oracle/osv-scanner-cassettes.jsonl").read_text().splitlines()
    ]
    return [
        pytest.param(r, id=f"{r['ecosystem']}:{r['name']}@{r['version']}")
        for r in rows
        if (r["ecosystem"] or "").startswith("Alpine:")
    ]


@pytest.mark.parametrize("query", corpus_cases(_oracle))
def test_osv_oracle_alpine(corpus: Path, db: Database, query: dict) -> None:  # type: ignore[type-arg]
    """For the releases the corpus's secdb covers, forklift finds what osv.dev found (as CVEs)."""
    release = query["ecosystem"].split(":v", 1)[1]
    ns = f"alpine:{release}"
    found = {v.id for v in match_package(db, apk(query["name"], query["version"]), ns)}
    known: set[str] = set()
    for doc in _secdb(corpus):
        if doc["distroversion"] == f"v{release}" and isinstance(doc["packages"], list):
            for item in doc["packages"]:
                if item["pkg"]["name"] == query["name"]:
                    known |= {
                        c
                        for ids in item["pkg"]["secfixes"].values()
                        for t in ids
                        for c in t.split()
                    }
    expected = {i.removeprefix("ALPINE-") for i in query["vuln_ids"]} & known
    assert found == expected
