"""SPDX 2.3 and CycloneDX 1.6 output: official schemas, the formats' own parsers, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forklift.sbom import inventory
from forklift.sbom.formats import render
from forklift.sbom.formats.jsonfmt import load
from tests.analyze.images import Layer, Member, make_layout
from tests.helpers import run_cli
from tests.sbom.validate import (
    cyclonedx_lib_check,
    cyclonedx_schema_errors,
    spdx_schema_errors,
    spdx_tools_check,
)

STATUS = """\
Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library

Package: bsdutils
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5)
Version: 1:2.38.1-5+b1
Description: basic utilities
"""


def _text(path: str, text: str) -> Member:
    return Member(path, data=text.encode())


def mixed_image(root: Path) -> str:
    """Three layers: Debian packages, then pip/npm/gem/composer packages, then a removal."""
    site = "usr/local/lib/python3.11/site-packages"
    return make_layout(root, [
        Layer([
            _text("etc/os-release", 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
                  'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
            _text("var/lib/dpkg/status", STATUS),
            _text("var/lib/dpkg/info/libc6:amd64.list", "/.\n/usr\n/usr/lib\n/usr/lib/libc.so.6\n"),
            _text("usr/share/doc/libc6/copyright",
                  "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
                  "Files: *\nLicense: LGPL-2.1+\n\nFiles: debian/*\nLicense: Custom-Debian-Terms\n"),
        ], created_by="ADD rootfs.tar /"),
        Layer([
            _text(f"{site}/requests-2.31.0.dist-info/METADATA",
                  "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nbody\n"),
            _text(f"{site}/requests-2.31.0.dist-info/RECORD",
                  "requests/__init__.py,sha256=x,10\nrequests-2.31.0.dist-info/METADATA,,\n"),
            _text(f"{site}/six-1.16.0.dist-info/METADATA",
                  "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\n"
                  "Classifier: License :: OSI Approved :: MIT License\n"),
            _text("app/node_modules/@scope/pkg/package.json",
                  json.dumps({"name": "@scope/pkg", "version": "1.0.0", "license": "(MIT OR Apache-2.0)"})),
            _text("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec",
                  '# stub\nGem::Specification.new do |s|\n  s.name = "rake".freeze\n'
                  '  s.version = "13.0.6"\n  s.licenses = ["MIT".freeze]\nend\n'),
            _text("srv/vendor/composer/installed.json",
                  json.dumps({"packages": [{"name": "monolog/monolog", "version": "3.5.0",
                                            "license": ["MIT"]}]})),
        ], created_by="RUN pip install requests six && npm install", comment="forklift: Dockerfile:7"),
        Layer([Member(f"{site}/.wh.six-1.16.0.dist-info")], created_by="RUN pip uninstall -y six"),
    ])  # fmt: skip


@pytest.fixture
def image(tmp_path: Path) -> str:
    return mixed_image(tmp_path / "img")


def test_inventory_of_the_mixed_image(image: str) -> None:
    inv = inventory(image)
    got = {(p.ecosystem.value, p.name, p.version, p.layer.index if p.layer else None)
           for p in inv.packages}  # fmt: skip
    assert got == {
        ("deb", "libc6", "2.36-9+deb12u4", 0),
        ("deb", "bsdutils", "1:2.38.1-5+b1", 0),
        ("pypi", "requests", "2.31.0", 1),
        ("npm", "@scope/pkg", "1.0.0", 1),
        ("gem", "rake", "13.0.6", 1),
        ("composer", "monolog/monolog", "3.5.0", 1),
    }  # six was uninstalled by the last layer
    by = {p.name: p for p in inv.packages}
    assert by["bsdutils"].source_name == "util-linux"
    assert by["bsdutils"].source_version == "2.38.1-5"
    assert by["libc6"].licenses == ("LGPL-2.1-or-later", "Custom-Debian-Terms")
    assert by["libc6"].files == ("/usr/lib/libc.so.6",)
    assert by["requests"].licenses == ("Apache-2.0",)
    assert by["requests"].files == (
        "/usr/local/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
        "/usr/local/lib/python3.11/site-packages/requests/__init__.py",
    )
    assert by["requests"].layer is not None and by["requests"].layer.line == 7
    assert by["@scope/pkg"].purl == "pkg:npm/%40scope/pkg@1.0.0"
    assert by["@scope/pkg"].licenses == ("MIT OR Apache-2.0",)
    assert inv.os is not None and inv.os.codename == "bookworm"


def test_spdx_validates_and_round_trips(
    image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    inv = inventory(image)
    text = render(inv, "spdx-json")
    doc = json.loads(text)
    assert spdx_schema_errors(doc) == []
    path = tmp_path / "sbom.spdx.json"
    path.write_text(text)
    parsed, messages = spdx_tools_check(path)
    assert messages == []
    assert parsed.creation_info.created.isoformat() == "2023-11-14T22:13:20"
    purls = {ref.locator for p in parsed.packages for ref in p.external_references
             if ref.reference_type == "purl"}  # fmt: skip
    assert {p.purl for p in inv.packages} <= purls
    # the non-SPDX licence is carried as a LicenseRef with its text
    extracted = {x.extracted_text for x in parsed.extracted_licensing_info}
    assert "Custom-Debian-Terms" in extracted
    # layer relationships: layer 1 CONTAINS requests
    names = {p.spdx_id: p.name for p in parsed.packages}
    contains = {(names.get(r.spdx_element_id), names.get(r.related_spdx_element_id))
                for r in parsed.relationships if r.relationship_type.name == "CONTAINS"}  # fmt: skip
    assert ("layer 1", "requests") in contains
    assert ("debian", "libc6") in contains
    assert (inv.target, "layer 0") in contains


def test_cyclonedx_validates_and_round_trips(image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    inv = inventory(image)
    text = render(inv, "cyclonedx-json", files=True)
    doc = json.loads(text)
    assert cyclonedx_schema_errors(doc) == []
    error, bom = cyclonedx_lib_check(text)
    assert error is None
    purls = {str(c.purl) for c in bom.components if c.purl is not None}
    assert purls == {p.purl for p in inv.packages}
    assert str(bom.metadata.component.type.value) == "container"
    assert bom.metadata.timestamp.year == 2023
    requests = next(c for c in bom.components if c.name == "requests")
    props = {p.name: p.value for p in requests.properties}
    assert props["forklift:layer:index"] == "1"
    assert props["forklift:layer:digest"] == inv.layers[1].digest
    assert props["forklift:layer:dockerfile"] == "Dockerfile:7"
    libc = next(c for c in doc["components"] if c["name"] == "libc6")
    # one licence does not parse as SPDX: each is named instead of an expression
    assert libc["licenses"] == [{"license": {"name": "LGPL-2.1-or-later"}},
                                {"license": {"name": "Custom-Debian-Terms"}}]  # fmt: skip
    node = next(c for c in doc["components"] if c["name"] == "@scope/pkg")
    assert node["licenses"] == [{"expression": "MIT OR Apache-2.0"}]


def test_documents_are_deterministic(
    image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    for fmt in ("spdx-json", "cyclonedx-json", "json", "table"):
        first = render(inventory(image), fmt)
        second = render(inventory(image), fmt)
        assert first == second, fmt
    assert '"created":"1970-01-01T00:00:00Z"' in render(inventory(image), "spdx-json")


def test_json_round_trip(image: str) -> None:
    inv = inventory(image)
    assert load(render(inv, "json", files=True)) == inv


def test_cli_formats_and_output_file(image: str, tmp_path: Path, home: Path) -> None:
    out = tmp_path / "out" / "sbom.cdx.json"
    r = run_cli("sbom", image, "--format", "cyclonedx-json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert json.loads(out.read_text())["bomFormat"] == "CycloneDX"
    table = run_cli("sbom", image).stdout
    lines = table.splitlines()
    assert lines[0] == "OS: Debian GNU/Linux 12 (bookworm)"
    assert any(line.split() == ["requests", "2.31.0", "pypi", "1"] for line in lines)
    assert run_cli("sbom", image, "--rootfs", str(tmp_path)).returncode != 0
    missing = run_cli("sbom", "oci:/nonexistent/layout")
    assert missing.returncode != 0
    assert missing.stderr.startswith("Error:") and len(missing.stderr.strip().splitlines()) <= 2
