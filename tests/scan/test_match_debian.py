"""Debian: the tracker's status per release, by source package, never upstream records.

Ground truth: vunnel's normalised snapshots of the tracker fixture (what each
release is fixed in), the tracker's DSA/DLA lists, and Debian 12's own
changelogs (``debian12-local``) as "fixed in" facts; expected findings are
computed here with ``dpkg --compare-versions``.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from forklift.sbom.model import Ecosystem, Inventory, OSInfo, Package
from forklift.scan.db.debian import parse_list
from forklift.scan.db.index import Database
from forklift.scan.db.model import Severity, Status
from forklift.scan.db.sources import parse_specs
from forklift.scan.db.update import update
from forklift.scan.match import match_inventory, match_package
from tests.scan.conftest import DEBIAN_FIXTURE

RELEASES = {
    "7": "7",
    "8": "8",
    "9": "9",
    "10": "10",
    "11": "11",
    "12": "12",
    "13": "13",
    "unstable": "sid",
}


def deb(name: str, version: str, source: str = "", source_version: str = "") -> Package:
    return Package(
        name, version, Ecosystem.DEB, f"pkg:deb/debian/{name}@{version}",
        source_name=source or name, source_version=source_version or version,
    )  # fmt: skip


@functools.cache
def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


@pytest.fixture(scope="module")
def vunnel_db(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Database:
    base = corpus / "vulndb" / DEBIAN_FIXTURE / "input"
    path = tmp_path_factory.mktemp("vunnel") / "vuln.db"
    update(parse_specs([f"debian={base}/debian.json", f"debian-dsa={base}/DSA"]), path=path)
    return Database(path)


def _snapshots(corpus: Path) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    for f in sorted((corpus / "vulndb" / DEBIAN_FIXTURE / "snapshots").glob("debian:*/*.json")):
        out.append(
            (f.parent.name.split(":", 1)[1], json.loads(f.read_text())["item"]["Vulnerability"])
        )
    return out


def test_vunnel_snapshots_are_reproduced(corpus: Path, vunnel_db: Database) -> None:
    """Every snapshot expectation about a package the tracker fixture has."""
    tracker = json.loads((corpus / "vulndb" / DEBIAN_FIXTURE / "input/debian.json").read_text())
    known = {(p, cve) for p, cves in tracker.items() for cve in cves}
    checked = 0
    for release, vuln in _snapshots(corpus):
        ns = f"debian:{RELEASES[release]}"
        for fixed_in in vuln["FixedIn"]:
            pkg_name, fixed = fixed_in["Name"], fixed_in["Version"]
            if (pkg_name, vuln["Name"]) not in known:
                continue  # from vunnel's legacy input, not the tracker JSON
            old = match_package(vunnel_db, deb(pkg_name, "0.0-1"), ns)
            ids = {v.id: v for v in old}
            if fixed == "0":  # never affected in this release
                assert vuln["Name"] not in ids
            elif fixed == "None":  # no fix: reported as unfixed
                assert ids[vuln["Name"]].fixed == "" and ids[vuln["Name"]].status.unfixed
            else:
                v = ids[vuln["Name"]]
                assert v.fixed == fixed and v.status is Status.FIXED
                assert vuln["Name"] not in {
                    x.id for x in match_package(vunnel_db, deb(pkg_name, fixed), ns)
                }
                for adv in fixed_in["VendorAdvisory"]["AdvisorySummary"]:
                    assert adv["ID"] in v.aliases  # the DSA that fixed it
                expected = {"High": Severity.HIGH, "Medium": Severity.MEDIUM, "Low": Severity.LOW,
                            "Negligible": Severity.LOW, "Unknown": Severity.UNKNOWN}[vuln["Severity"]]  # fmt: skip
                assert v.severity is expected  # "unimportant" is LOW, as Trivy maps it
            checked += 1
    assert checked >= 20


def _tracker(entries: dict[str, dict[str, dict[str, dict]]]) -> dict:  # type: ignore[type-arg]
    return {
        pkg: {cve: {"description": cve, "releases": rel} for cve, rel in cves.items()}
        for pkg, cves in entries.items()
    }


def _db(tmp_path: Path, tracker: dict, extra: list[str] = ()) -> Database:  # type: ignore[type-arg,assignment]
    f = tmp_path / "tracker.json"
    f.write_text(json.dumps(tracker))
    path = tmp_path / "vuln.db"
    update(parse_specs([f"debian={f}", *extra]), path=path)
    return Database(path)


def test_tracker_statuses(tmp_path: Path) -> None:
    t = _tracker(
        {
            "bash": {
                "CVE-1-OPEN": {"bookworm": {"status": "open", "urgency": "low"}},
                "CVE-2-IGNORED": {"bookworm": {"status": "open", "urgency": "unimportant", "nodsa": "Minor issue", "nodsa_reason": "ignored"}},
                "CVE-3-POSTPONED": {"bookworm": {"status": "open", "urgency": "medium*", "nodsa": "x", "nodsa_reason": "postponed"}},
                "CVE-4-EOL": {"bookworm": {"status": "open", "urgency": "end-of-life"}},
                "CVE-5-UNDET": {"bookworm": {"status": "undetermined", "urgency": "not yet assigned"}},
                "CVE-6-NOTAFF": {"bookworm": {"status": "resolved", "fixed_version": "0", "urgency": "high"}},
                "CVE-7-FIXED": {"bookworm": {"status": "resolved", "fixed_version": "5.2.15-2+deb12u1", "urgency": "high**"}},
                "CVE-8-OTHER": {"bullseye": {"status": "open", "urgency": "high"}},
            }
        }
    )  # fmt: skip
    db = _db(tmp_path, t)
    found = {
        v.id: v
        for v in match_package(db, deb("bash", "5.2.15-2+b8", "bash", "5.2.15-2"), "debian:12")
    }
    assert {k: (v.status, v.severity) for k, v in found.items()} == {
        "CVE-1-OPEN": (Status.AFFECTED, Severity.LOW),
        "CVE-2-IGNORED": (Status.WILL_NOT_FIX, Severity.LOW),
        "CVE-3-POSTPONED": (Status.FIX_DEFERRED, Severity.MEDIUM),
        "CVE-4-EOL": (Status.END_OF_LIFE, Severity.UNKNOWN),
        "CVE-5-UNDET": (Status.UNDETERMINED, Severity.UNKNOWN),
        "CVE-7-FIXED": (Status.FIXED, Severity.HIGH),
    }
    assert found["CVE-7-FIXED"].fixed == "5.2.15-2+deb12u1"
    assert found["CVE-2-IGNORED"].note == "Minor issue"
    # the source version is what is compared (a binNMU +b8 is the same source)
    assert found["CVE-7-FIXED"].installed == "5.2.15-2"
    # another release's status never applies
    assert match_package(db, deb("bash", "5.2.15-2+deb12u1"), "debian:11")[0].id == "CVE-8-OTHER"


def test_binary_packages_match_through_their_source(tmp_path: Path) -> None:
    t = _tracker(
        {
            "openssl": {
                "CVE-9": {
                    "bookworm": {
                        "status": "resolved",
                        "fixed_version": "3.0.20-1~deb12u1",
                        "urgency": "medium",
                    }
                }
            }
        }
    )
    db = _db(tmp_path, t)
    assert [
        v.id for v in match_package(db, deb("libssl3", "3.0.19-1~deb12u2", "openssl"), "debian:12")
    ] == ["CVE-9"]
    assert match_package(db, deb("libssl3", "3.0.19-1~deb12u2", "libssl3"), "debian:12") == []


def test_tracker_wins_over_dsa_lists_and_dsa_ids_are_aliases(tmp_path: Path) -> None:
    t = _tracker({"curl": {
        "CVE-2023-1": {"bookworm": {"status": "resolved", "fixed_version": "7.88.1-10+deb12u3", "urgency": "high"}},
    }})  # fmt: skip
    dsa = tmp_path / "DSA-list"
    dsa.write_text(
        "[01 Oct 2023] DSA-9999-1 curl - security update\n"
        "\t{CVE-2023-1 CVE-2023-2}\n"
        "\t[bookworm] - curl 7.88.1-10+deb12u4\n"
    )
    db = _db(tmp_path, t, [f"debian-dsa={dsa}"])
    at3 = {v.id: v for v in match_package(db, deb("curl", "7.88.1-10+deb12u3"), "debian:12")}
    # CVE-2023-1: the tracker says fixed in u3, so the DSA's u4 does not decide; CVE-2023-2: only the DSA knows
    assert set(at3) == {"CVE-2023-2"} and at3["CVE-2023-2"].fixed == "7.88.1-10+deb12u4"
    at2 = {v.id: v for v in match_package(db, deb("curl", "7.88.1-10+deb12u2"), "debian:12")}
    assert (
        at2["CVE-2023-1"].fixed == "7.88.1-10+deb12u3" and "DSA-9999-1" in at2["CVE-2023-1"].aliases
    )
    assert at2["CVE-2023-2"].aliases == ("DSA-9999-1",)  # a bundle id never merges two CVEs


def test_upstream_records_never_match_distribution_packages(tmp_path: Path) -> None:
    osv = tmp_path / "osv.json"
    osv.write_text(json.dumps([
        {"id": "PYSEC-X", "affected": [{"package": {"ecosystem": "PyPI", "name": "curl"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
        {"id": "GHSA-x", "affected": [{"package": {"ecosystem": "npm", "name": "openssl"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]},
    ]))  # fmt: skip
    db = _db(tmp_path, _tracker({}), [f"osv={osv}"])
    inv = Inventory(
        "t",
        os=OSInfo("debian", "12", "bookworm"),
        packages=(deb("curl", "7.0-1"), deb("libssl3", "1.0-1", "openssl")),
    )
    assert match_inventory(db, inv) == []


def test_dsa_dla_parser_agrees_with_the_corpus_conversion(corpus: Path) -> None:
    """Every advisory of both lists, read here, equals the corpus's independent JSON conversion."""
    for name in ("DSA-list", "DLA-list"):
        base = corpus / "vulndb/debian/tracker-format"
        text = (base / name).read_text(encoding="utf-8", errors="replace")
        mine = [
            {
                "date": a.date,
                "id": a.id,
                "packages": a.packages,
                "title": a.title,
                "cves": a.cves,
                "fixed": a.fixed,
                "notes": a.notes,
            }
            for a in parse_list(text, name)
        ]
        theirs = [
            json.loads(line) for line in (base / f"{name}.parsed.jsonl").read_text().splitlines()
        ]
        assert len(mine) == len(theirs) > 3000
        for m, t in zip(mine, theirs, strict=True):
            assert m == t, (m["id"], t["id"])


# -- Debian 12's own changelogs as "fixed in" facts ----------------------------------------


def _changelog_facts(corpus: Path) -> dict[str, list[tuple[str, str]]]:
    """source -> [(version, CVE)] for every bookworm upload that names a CVE."""
    facts: dict[str, list[tuple[str, str]]] = {}
    for line in (
        (corpus / "vulndb/debian/debian12-local/changelog-cve-mentions.tsv")
        .read_text()
        .splitlines()
    ):
        if line.startswith(("#", "source\t")) or not line.strip():
            continue
        source, version, dist, _date, cves = line.split("\t")
        if dist.startswith("bookworm"):
            facts.setdefault(source, []).extend((version, c) for c in cves.split())
    return facts


def _facts_tracker(facts: dict[str, list[tuple[str, str]]]) -> dict:  # type: ignore[type-arg]
    out: dict[str, dict[str, dict]] = {}  # type: ignore[type-arg]
    for source, pairs in facts.items():
        for version, cve in pairs:
            rel = out.setdefault(source, {}).setdefault(
                cve,
                {"bookworm": {"status": "resolved", "fixed_version": version, "urgency": "medium"}},
            )
            if dpkg_lt(version, rel["bookworm"]["fixed_version"]):
                rel["bookworm"]["fixed_version"] = version  # the first upload that fixed it
    return _tracker(out)


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_debian12_changelog_facts(corpus: Path, tmp_path: Path) -> None:
    facts = _changelog_facts(corpus)
    assert sum(len(v) for v in facts.values()) > 30
    db = _db(tmp_path, _facts_tracker(facts))
    installed = {}
    for line in (
        (corpus / "vulndb/debian/debian12-local/installed-packages.tsv").read_text().splitlines()
    ):
        if line.startswith(("#", "package\t")):
            continue
        pkg, version, _arch, source, source_version, _st = line.split("\t")
        installed[pkg] = deb(pkg, version, source, source_version)
    checked = 0
    for pkg in installed.values():
        # the real installed version, and every earlier bookworm upload of its source
        versions = {pkg.source_version} | {v for v, _ in facts.get(pkg.source_name, [])}
        for version in sorted(versions):
            p = deb(pkg.name, version, pkg.source_name, version)
            expected = {}
            for v, cve in facts.get(pkg.source_name, []):
                first = min(
                    (x for x, c in facts[pkg.source_name] if c == cve), key=lambda x: x, default=v
                )
                for x, c in facts[pkg.source_name]:
                    if c == cve and dpkg_lt(x, first):
                        first = x
                if dpkg_lt(version, first):
                    expected[cve] = first
            got = {v.id: v.fixed for v in match_package(db, p, "debian:12")}
            assert got == expected, (pkg.name, version)
            checked += 1
    assert checked > 30
