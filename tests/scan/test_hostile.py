"""Bad input to the scanner and the database: one-line errors, no traceback, nothing replaced."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from forklift.errors import ForkliftError, InvalidInput
from forklift.scan.db.index import Database
from forklift.scan.db.sources import parse_specs
from forklift.scan.db.update import update
from tests.helpers import assert_no_traceback, run_cli


def test_garbage_database_file(home: Path, tmp_path: Path) -> None:
    (home / "db").mkdir(parents=True)
    (home / "db" / "vuln.db").write_bytes(b"not sqlite at all" * 100)
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}))
    r = run_cli("scan", "--sbom", str(sbom))
    assert r.returncode == 1 and "not a forklift vulnerability database" in r.stderr
    assert_no_traceback(r)
    with pytest.raises(ForkliftError):
        Database(home / "db" / "vuln.db")


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100000 + b"]" * 100000,  # nesting deeper than the parser's recursion limit
        b'{"id": 5}',  # not a record
        b"\xff\xfe not utf-8",
    ],
    ids=["deep", "no-id", "binary"],
)
def test_hostile_osv_records_fail_cleanly_and_keep_the_database(
    tmp_path: Path, payload: bytes
) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"id": "PYSEC-1", "affected": []}))
    path = tmp_path / "vuln.db"
    update(parse_specs([f"osv={good}"]), path=path)
    before = path.read_bytes()
    bad = tmp_path / "all.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("X.json", payload)
    with pytest.raises(InvalidInput):
        update(parse_specs([f"PyPI={bad}"]), path=path)
    assert path.read_bytes() == before


def test_hostile_sbom_and_ignore_files(home: Path, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100000 + b"]" * 100000)
    for args in (("--sbom", str(deep)), ("--sbom", str(tmp_path))):
        r = run_cli("scan", *args, "--scanners", "secret")
        assert r.returncode != 0
        assert_no_traceback(r)
    ign = tmp_path / "x.yaml"
    ign.write_text("vulnerabilities: [ {id: CVE-1, expired_at: 'soon'} ]\n")
    sbom = tmp_path / "bom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}))
    r = run_cli("scan", "--sbom", str(sbom), "--scanners", "secret", "--ignorefile", str(ign))
    assert r.returncode == 1 and "invalid date" in r.stderr
    assert_no_traceback(r)
