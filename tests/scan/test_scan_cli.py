"""``forklift scan`` from the command line: Trivy's flags, exit codes and report formats.

Scans an SBOM (CycloneDX and SPDX) and a root filesystem against the corpus database;
SARIF is validated against the 2.1.0 schema, CycloneDX against the 1.6 schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from forklift.scan.db.index import Database
from forklift.scan.db.model import Severity
from forklift.scan.scanner import ScanOptions, scan_sbom
from tests.helpers import assert_no_traceback, run_cli

SARIF_SCHEMA = Path(__file__).parents[1] / "lint" / "sarif-schema-2.1.0.json"
CDX_SCHEMAS = Path(__file__).parents[1] / "sbom" / "data" / "schemas"

PACKAGES = [
    "pkg:pypi/requests@2.20.0",
    "pkg:pypi/urllib3@1.24.3",
    "pkg:pypi/django@2.2.24",
    "pkg:pypi/jinja2@3.1.4",
    "pkg:deb/debian/dpkg@1.18.25?arch=amd64&distro=debian-9",
    "pkg:deb/debian/libssl1.1@1.1.0l-1~deb9u5?arch=amd64&upstream=openssl&distro=debian-9",
    "pkg:npm/formidable@3.2.1",
]


def cyclonedx_sbom(path: Path, purls: list[str] = PACKAGES) -> Path:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {"component": {"type": "container", "name": "app:1"}},
        "components": [{"type": "operating-system", "name": "debian", "version": "9"}]
        + [{"type": "library", "name": p.split("/")[-1].split("@")[0], "purl": p} for p in purls],
    }
    path.write_text(json.dumps(doc))
    return path


def spdx_sbom(path: Path, purls: list[str] = PACKAGES) -> Path:
    doc = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "app:1",
        "packages": [
            {"SPDXID": f"SPDXRef-{i}", "name": p, "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p}]}
            for i, p in enumerate(purls)
        ],
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def sbom(tmp_path: Path) -> Path:
    return cyclonedx_sbom(tmp_path / "bom.cdx.json")


def _scan(*args: str, cwd_sbom: Path) -> Any:
    r = run_cli("scan", "--sbom", str(cwd_sbom), "--format", "json", *args)
    assert r.returncode in (0,), r.stderr
    return json.loads(r.stdout)


def _ids(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (v["PkgName"], v["VulnerabilityID"])
        for res in doc["Results"]
        for v in res.get("Vulnerabilities", [])
    }


def test_sbom_scan_cyclonedx_and_spdx_agree(
    scan_home: Path, tmp_path: Path, corpus_db: Path
) -> None:
    cdx = scan_sbom(cyclonedx_sbom(tmp_path / "a.json"), ScanOptions(db_path=corpus_db))
    spdx = scan_sbom(spdx_sbom(tmp_path / "b.json"), ScanOptions(db_path=corpus_db))
    key = lambda r: {(v.package.name, v.id, v.fixed) for v in r.vulnerabilities}  # noqa: E731
    assert key(cdx) == key(spdx) and key(cdx)
    names = {v.package.name for v in cdx.vulnerabilities}
    assert {"requests", "urllib3", "django", "dpkg", "libssl1.1"} <= names
    assert "jinja2" not in names  # 3.1.4 has no advisory in the corpus
    dpkg = [v for v in cdx.vulnerabilities if v.package.name == "dpkg"]
    assert [v.id for v in dpkg] == ["CVE-2022-1664"] and dpkg[0].fixed == "1.18.26"
    targets = {t.name: t for t in cdx.targets}
    assert "debian 9" in targets and "Python" in targets and "Node.js" in targets


# -- exit codes and severities, as Trivy behaves ------------------------------------------------

EXIT_CASES = [
    # (flags, exit code Trivy gives for this SBOM: computed from the findings, checked below)
    ((), 0),  # --exit-code defaults to 0: findings never fail the run
    (("--exit-code", "1"), 1),
    (("--exit-code", "7"), 7),
    (("--exit-code", "1", "--severity", "CRITICAL"), 0),  # nothing is CRITICAL here
    (("--exit-code", "1", "--severity", "HIGH,CRITICAL"), 1),  # urllib3: CVSS 3.1 HIGH
    (("--exit-code", "1", "--severity", "UNKNOWN"), 1),  # PYSEC and DLA records carry no rating
    (("--exit-code", "1", "--pkg-types", "os", "--severity", "HIGH,CRITICAL"), 0),
    (
        ("--exit-code", "1", "--pkg-types", "library", "--severity", "LOW"),
        1,
    ),  # GHSA rates formidable LOW
    (("--exit-code", "1", "--ignore-unfixed", "--severity", "MEDIUM"), 1),
    (("--exit-code", "1", "--scanners", "secret"), 0),  # an SBOM has no files to hold secrets
]


@pytest.mark.parametrize(
    ("flags", "code"), EXIT_CASES, ids=[" ".join(f) or "default" for f, _ in EXIT_CASES]
)
def test_exit_code_and_severity(
    scan_home: Path, sbom: Path, flags: tuple[str, ...], code: int, corpus_db: Path
) -> None:
    r = run_cli("scan", "--sbom", str(sbom), "--format", "json", *flags)
    assert r.returncode == code, r.stderr
    doc = json.loads(r.stdout)
    # what is reported is exactly what the flags select, computed from the unfiltered scan
    full = scan_sbom(sbom, ScanOptions(db_path=corpus_db))
    sev = set(Severity)
    if "--severity" in flags:
        sev = {Severity(s) for s in flags[flags.index("--severity") + 1].split(",")}
    kinds = (
        flags[flags.index("--pkg-types") + 1].split(",")
        if "--pkg-types" in flags
        else ["os", "library"]
    )
    scanners = flags[flags.index("--scanners") + 1] if "--scanners" in flags else "vuln,secret"
    want = {
        (v.package.name, v.id)
        for v in full.vulnerabilities
        if v.severity in sev
        and ("os" if v.package.ecosystem.is_os else "library") in kinds
        and not ("--ignore-unfixed" in flags and not v.fixed)
        and "vuln" in scanners
    }
    assert _ids(doc) == want
    exit_code = int(flags[flags.index("--exit-code") + 1]) if "--exit-code" in flags else 0
    assert code == (exit_code if want else 0)


def test_usage_errors_are_one_line(scan_home: Path, sbom: Path) -> None:
    for args, text in [
        (("--sbom", str(sbom), "--severity", "SEVERE"), "severe"),
        (("--sbom", str(sbom), "--scanners", "misconfig"), "misconfig"),
        (("--sbom", str(sbom), "--db-max-age", "a week"), "invalid duration"),
        ((), "exactly one of"),
        (("img", "--sbom", str(sbom)), "exactly one of"),
        (("--sbom", str(sbom), "--format", "template"), "--template"),
        (("--sbom", "/nonexistent.json"), "not found"),
        (("--rootfs", "/nonexistent"), "not a directory"),
    ]:
        r = run_cli("scan", *args)
        assert (r.returncode != 0 and text in r.stderr.lower()) or text in r.stderr, (
            args,
            r.stderr,
        )
        assert_no_traceback(r)


def test_missing_database_says_how_to_get_one(home: Path, sbom: Path) -> None:
    r = run_cli("scan", "--sbom", str(sbom))
    assert r.returncode == 1 and "forklift db update" in r.stderr and "db pull" in r.stderr
    assert_no_traceback(r)
    # secrets only: no database needed
    assert run_cli("scan", "--sbom", str(sbom), "--scanners", "secret").returncode == 0


def test_old_database_warns_but_scans(scan_home: Path, sbom: Path) -> None:
    r = run_cli("scan", "--sbom", str(sbom), "--db-max-age", "0s")
    assert r.returncode == 0 and "days old" in r.stderr and "forklift db update" in r.stderr


# -- formats ------------------------------------------------------------------------------------


def test_sarif_validates_and_locates_findings(scan_home: Path, sbom: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.sarif"
    r = run_cli("scan", "--sbom", str(sbom), "--format", "sarif", "-o", str(out))
    assert r.returncode == 0 and r.stdout == ""
    log = json.loads(out.read_text())
    jsonschema.validate(log, json.loads(SARIF_SCHEMA.read_text()))
    run = log["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert "CVE-2022-1664" in rules
    for res in run["results"]:
        assert (
            res["ruleId"] in rules
            and rules[res["ruleId"]] == run["tool"]["driver"]["rules"][res["ruleIndex"]]
        )
        assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert res["level"] in ("error", "warning", "note")
        float(rules[res["ruleId"]]["properties"]["security-severity"])
    assert len(run["results"]) == len(
        json.loads(run_cli("scan", "--sbom", str(sbom), "-f", "json").stdout)["Results"][0][
            "Vulnerabilities"
        ]
    ) + sum(
        len(x.get("Vulnerabilities", []))
        for x in json.loads(run_cli("scan", "--sbom", str(sbom), "-f", "json").stdout)["Results"][
            1:
        ]
    )


def test_sarif_schema_rejects_a_broken_log(scan_home: Path, sbom: Path) -> None:
    log = json.loads(run_cli("scan", "--sbom", str(sbom), "-f", "sarif").stdout)
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, json.loads(SARIF_SCHEMA.read_text()))


def _cdx_validator() -> jsonschema.protocols.Validator:
    schemas = {p.name: json.loads(p.read_text()) for p in CDX_SCHEMAS.glob("*.schema.json")}
    registry: Registry = Registry()
    for name, s in schemas.items():
        res = Resource.from_contents(s)
        registry = registry.with_resource(name, res)
        if "$id" in s:
            registry = registry.with_resource(s["$id"], res)
    main = schemas["bom-1.6.schema.json"]
    cls = jsonschema.validators.validator_for(main)
    return cls(main, registry=registry, format_checker=cls.FORMAT_CHECKER)


def test_cyclonedx_report_validates(scan_home: Path, sbom: Path, tmp_path: Path) -> None:
    vex = tmp_path / "vex.json"
    vex.write_text(json.dumps({"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
        {"vulnerability": {"name": "CVE-2022-1664"}, "products": [{"@id": "pkg:deb/debian/dpkg@1.18.25"}],
         "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]}))  # fmt: skip
    doc = json.loads(
        run_cli("scan", "--sbom", str(sbom), "-f", "cyclonedx", "--vex", str(vex)).stdout
    )
    _cdx_validator().validate(doc)
    ids = {v["id"] for v in doc["vulnerabilities"]}
    assert "CVE-2022-1664" in ids
    dpkg = next(v for v in doc["vulnerabilities"] if v["id"] == "CVE-2022-1664")
    assert (
        dpkg["analysis"]["state"] == "not_affected"
        and dpkg["analysis"]["justification"] == "code_not_reachable"
    )
    refs = {c["bom-ref"] for c in doc["components"]}
    assert all(a["ref"] in refs for v in doc["vulnerabilities"] for a in v["affects"])


def test_json_fields_and_template(scan_home: Path, sbom: Path, tmp_path: Path) -> None:
    doc = json.loads(run_cli("scan", "--sbom", str(sbom), "-f", "json").stdout)
    assert doc["SchemaVersion"] == 2 and doc["ArtifactType"] == "sbom"
    v = next(
        v
        for r in doc["Results"]
        for v in r.get("Vulnerabilities", [])
        if v["PkgName"] == "requests"
    )
    for field in ("VulnerabilityID", "Aliases", "PkgID", "PkgName", "PkgIdentifier", "InstalledVersion",
                  "FixedVersion", "Status", "Severity", "SeveritySource", "PrimaryURL", "Title", "DataSource", "Fix"):  # fmt: skip
        assert field in v
    tpl = tmp_path / "t.j2"
    tpl.write_text(
        "{% for r in report.Results %}{% for v in r.Vulnerabilities or [] %}{{ v.PkgName }} {{ v.VulnerabilityID }}\n{% endfor %}{% endfor %}"
    )
    text = run_cli("scan", "--sbom", str(sbom), "-f", "template", "--template", f"@{tpl}").stdout
    assert set(text.split("\n")) - {""} == {f"{p} {i}" for p, i in _ids(doc)}
    bad = run_cli("scan", "--sbom", str(sbom), "-f", "template", "--template", "{% for %}")
    assert bad.returncode == 1 and "template syntax error" in bad.stderr
    table = run_cli("scan", "--sbom", str(sbom)).stdout
    assert "Python (python-pkg)" in table and "debian 9" in table and "CVE-2022-1664" in table


# -- ignore files and VEX ------------------------------------------------------------------------


def test_trivyignore_plain_and_yaml(scan_home: Path, sbom: Path, tmp_path: Path) -> None:
    base = _ids(json.loads(run_cli("scan", "--sbom", str(sbom), "-f", "json").stdout))
    plain = tmp_path / ".trivyignore"
    plain.write_text(
        "# accepted\nCVE-2022-1664\nGHSA-j8r2-6x86-q33q exp:2999-01-01\nCVE-2023-43804 exp:2000-01-01\n"
    )
    doc = json.loads(
        run_cli("scan", "--sbom", str(sbom), "-f", "json", "--ignorefile", str(plain)).stdout
    )
    ignored = base - _ids(doc)
    # a GHSA id ignores the finding it is an alias of; an expired entry ignores nothing
    assert ignored == {("dpkg", "CVE-2022-1664"), ("requests", "CVE-2023-32681")}
    assert {s["VulnerabilityID"] for s in doc["Suppressed"]} == {"CVE-2022-1664", "CVE-2023-32681"}
    assert all(".trivyignore:" in s["Reason"] for s in doc["Suppressed"])
    yml = tmp_path / "ignore.yaml"
    yml.write_text(
        "vulnerabilities:\n"
        "  - id: CVE-2023-32681\n    purls: ['pkg:pypi/requests@2.20.0']\n    statement: not exposed\n"
        "  - id: CVE-2020-26137\n    purls: ['pkg:pypi/other']\n"
        "  - id: CVE-2023-45803\n    expired_at: 2001-01-01\n"
    )
    doc = json.loads(
        run_cli("scan", "--sbom", str(sbom), "-f", "json", "--ignorefile", str(yml)).stdout
    )
    assert base - _ids(doc) == {("requests", "CVE-2023-32681")}
    assert doc["Suppressed"][0]["Statement"] == "not exposed"
    broken = tmp_path / "broken.yaml"
    broken.write_text("vulnerabilities:\n  - statement: no id\n")
    r = run_cli("scan", "--sbom", str(sbom), "--ignorefile", str(broken))
    assert r.returncode != 0 and "needs an 'id'" in r.stderr
    assert_no_traceback(r)


def test_default_trivyignore_in_the_current_directory(
    scan_home: Path, sbom: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    (tmp_path / ".trivyignore").write_text("CVE-2022-1664\n")
    out = subprocess.run([sys.executable, "-m", "forklift", "scan", "--sbom", str(sbom), "-f", "json"],
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert ("dpkg", "CVE-2022-1664") not in _ids(json.loads(out))


def test_openvex(scan_home: Path, sbom: Path, tmp_path: Path) -> None:
    vex = tmp_path / "app.vex.json"
    vex.write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "statements": [
            {"vulnerability": {"name": "PYSEC-2023-74"}, "products": [{"@id": "pkg:pypi/requests@2.20.0"}],
             "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
             "timestamp": "2024-01-01T00:00:00Z"},
            {"vulnerability": {"name": "CVE-2023-32681"}, "products": [{"@id": "pkg:pypi/requests@2.20.0"}],
             "status": "affected", "timestamp": "2023-01-01T00:00:00Z"},
            {"vulnerability": "CVE-2022-1664", "products": [{"@id": "pkg:deb/debian/dpkg"}], "status": "under_investigation"},
            {"vulnerability": "CVE-2020-26137", "products": [{"@id": "pkg:pypi/urllib3@9.9"}], "status": "not_affected"},
        ],
    }))  # fmt: skip
    base = _ids(json.loads(run_cli("scan", "--sbom", str(sbom), "-f", "json").stdout))
    doc = json.loads(run_cli("scan", "--sbom", str(sbom), "-f", "json", "--vex", str(vex)).stdout)
    # the newest statement about the requests finding (by an alias) says not_affected
    assert base - _ids(doc) == {("requests", "CVE-2023-32681")}
    sup = doc["Suppressed"][0]
    assert (
        sup["Reason"].startswith("VEX not_affected")
        and sup["Statement"] == "vulnerable_code_not_in_execute_path"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"statements": [{"vulnerability": "X", "status": "maybe"}]}')
    r = run_cli("scan", "--sbom", str(sbom), "--vex", str(bad))
    assert r.returncode == 1 and "valid status" in r.stderr


# -- a root filesystem -----------------------------------------------------------------------------


def test_rootfs(scan_home: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="9"\nVERSION_CODENAME=stretch\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: dpkg\nStatus: install ok installed\nVersion: 1.18.25\nArchitecture: amd64\n\n"
    )
    (root / "srv").mkdir()
    (root / "srv/.env").write_text("SECRET_KEY=4f9a8b7c6d5e4f3a2b1c\n")
    doc = json.loads(run_cli("scan", "--rootfs", str(root), "-f", "json").stdout)
    assert doc["ArtifactType"] == "filesystem"
    assert ("dpkg", "CVE-2022-1664") in _ids(doc)
    secrets = [s for r in doc["Results"] for s in r.get("Secrets", [])]
    assert [(s["RuleID"], s["Target"], s["StartLine"]) for s in secrets] == [
        ("dotenv-secret", "/srv/.env", 1)
    ]
    assert "4f9a8b7c6d5e4f3a2b1c" not in json.dumps(doc)


def test_db_lookup_counts(db: Database) -> None:
    assert db.count() > 40000 and db.count("pypi") > 2500
