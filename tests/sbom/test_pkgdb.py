"""OS package databases from ../shared/corpus/pkgdb, checked against dpkg-query itself."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from forklift.sbom import inventory_rootfs
from forklift.sbom.analyzers.apk import parse_installed
from forklift.sbom.analyzers.dpkg import copyright_licenses, parse_status

FORMAT = "${Package} ${Version} ${source:Package} ${source:Version} ${db:Status-Status}\n"
DPKG_FILES = [
    "debian12-host/var-lib-dpkg-status",
    "fixtures/quay__claircore__dpkg_testdata_debian-only.status",
    "fixtures/quay__claircore__dpkg_testdata_postgresql.status",
    "fixtures/quay__claircore__dpkg_testdata_texlive.status",
    "trivy-txtar",
]


def _status_text(corpus: Path, name: str) -> str:
    if name == "trivy-txtar":
        txtar = (corpus / "pkgdb/fixtures").glob("aquasecurity__trivy__*dpkg_testdata_valid.txtar")
        text = next(iter(txtar)).read_text()
        # txtar: the section after "-- var/lib/dpkg/status --" up to the next "-- name --" line
        section = text.split("-- var/lib/dpkg/status --\n", 1)[1]
        return re.split(r"^-- \S+ --$", section, flags=re.MULTILINE)[0]
    return (corpus / "pkgdb" / name).read_text()


def dpkg_query(status: str, tmp: Path) -> list[str]:
    """What dpkg itself lists for a status file (an admin dir made for it)."""
    admin = tmp / "admin"
    (admin / "info").mkdir(parents=True, exist_ok=True)
    (admin / "updates").mkdir(exist_ok=True)
    (admin / "status").write_text(status)
    proc = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", FORMAT],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return sorted(proc.stdout.splitlines())


@pytest.mark.parametrize("name", DPKG_FILES)
def test_dpkg_status_matches_dpkg_query(corpus: Path, tmp_path: Path, name: str) -> None:
    assert shutil.which("dpkg-query")
    text = _status_text(corpus, name)
    expected = dpkg_query(text, tmp_path)
    records = parse_status(text)
    got = sorted(
        f"{r.package} {r.version} {r.source_name} {r.source_version} {r.state}" for r in records
    )
    assert got == expected
    assert len(records) == text.count("\nPackage: ") + text.startswith("Package: ")


def test_dpkg_epochs_and_source_versions_are_kept(corpus: Path) -> None:
    records = {r.package: r for r in parse_status(_status_text(corpus, DPKG_FILES[0]))}
    # picked from the file with grep, not from the parser
    epoch = [r for r in records.values() if ":" in r.version]
    assert epoch, "the Debian 12 status has epoch versions"
    versioned_source = [r for r in records.values() if "(" in r.source]
    assert versioned_source
    for r in versioned_source:
        assert r.source_version != r.version


def test_vcpkg_lookalike_is_refused_like_dpkg_does(corpus: Path, tmp_path: Path) -> None:
    text = (corpus / "pkgdb/fixtures/quay__claircore__dpkg_testdata_vcpkg.status").read_text()
    with pytest.raises(subprocess.CalledProcessError):
        dpkg_query(text, tmp_path)
    with pytest.raises(ValueError, match="no Version"):
        parse_status(text)
    # in an image it becomes a warning, not the end of the inventory
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(text)
    inv = inventory_rootfs(str(root))
    assert inv.packages == ()
    assert any("/var/lib/dpkg/status: not a readable dpkg file" in w for w in inv.warnings)


def test_debian_host_rootfs_with_os_release(corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy(corpus / "pkgdb/debian12-host/var-lib-dpkg-status", root / "var/lib/dpkg/status")
    shutil.copy(corpus / "pkgdb/debian12-host/os-release", root / "etc/os-release")
    inv = inventory_rootfs(str(root))
    assert inv.os is not None and (inv.os.id, inv.os.version_id, inv.os.codename) == (
        "debian", "12", "bookworm",
    )  # fmt: skip
    expected = dpkg_query((root / "var/lib/dpkg/status").read_text(), tmp_path)
    installed = [line for line in expected if line.endswith(" installed")]
    assert len(inv.packages) == len(installed) == 795
    libc = next(p for p in inv.packages if p.name == "libc6")
    assert libc.purl.startswith("pkg:deb/debian/libc6@") and "distro=debian-12" in libc.purl


def test_apk_database(corpus: Path) -> None:
    path = (
        corpus
        / "pkgdb/fixtures/aquasecurity__trivy__pkg_fanal_analyzer_testdata_lib_apk_db_installed"
    )
    text = path.read_text()
    records = parse_installed(text)
    # independent reading: the P:/V:/o: lines of each stanza
    stanzas = [s for s in text.split("\n\n") if s.strip()]
    expected = []
    for s in stanzas:
        fields = dict(
            line.split(":", 1) for line in s.splitlines() if line[1:2] == ":" and line[0] in "PVo"
        )
        expected.append((fields["P"], fields["V"], fields.get("o", "")))
    assert [(r.name, r.version, r.origin) for r in records] == expected
    musl = records[0]
    assert musl.files == ("/lib/libc.musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1")
    assert musl.license == "MIT"


def test_apk_image_layers_attribute_the_installing_layer(tmp_path: Path) -> None:
    from forklift.sbom import inventory
    from tests.analyze.images import Layer, Member, make_layout

    def db(*pkgs: tuple[str, str]) -> Member:
        text = "\n".join(
            f"P:{n}\nV:{v}\nA:x86_64\nL:MIT\no:{n}\nF:usr/bin\nR:{n}\n" for n, v in pkgs
        )
        return Member("lib/apk/db/installed", data=text.encode())

    osr = Member(
        "etc/os-release", data=b'ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
    )
    name = make_layout(tmp_path / "img", [
        Layer([osr, db(("musl", "1.2.4-r2"), ("busybox", "1.36.1-r15"))], created_by="base"),
        Layer([db(("musl", "1.2.4-r2"), ("busybox", "1.36.1-r15"), ("curl", "8.5.0-r0"))], created_by="apk add curl"),
        Layer([db(("musl", "1.2.4-r3"), ("busybox", "1.36.1-r15"), ("curl", "8.5.0-r0"))], created_by="apk upgrade musl"),
    ])  # fmt: skip
    inv = inventory(name)
    got = {p.name: (p.version, p.layer.index if p.layer else None) for p in inv.packages}
    assert got == {"busybox": ("1.36.1-r15", 0), "curl": ("8.5.0-r0", 1), "musl": ("1.2.4-r3", 2)}
    curl = next(p for p in inv.packages if p.name == "curl")
    assert curl.purl == "pkg:apk/alpine/curl@8.5.0-r0?arch=x86_64&distro=alpine-3.19.1"
    assert curl.layer is not None and curl.layer.created_by == "apk add curl"
    assert curl.files == ("/usr/bin/curl",)


def test_dep5_copyright_licences() -> None:
    text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: 2000 Someone\nLicense: GPL-2+\n\n"
        "Files: lib/*\nLicense: LGPL-2.1+ or BSD-3-clause\n\n"
        "License: GPL-2+\n This program is free software\n"
    )
    assert copyright_licenses(text) == ["GPL-2+", "LGPL-2.1+ or BSD-3-clause"]
    assert copyright_licenses("This is free-form text.\nLicense: GPL\n") == []
    from forklift.sbom.licenses import normalize

    assert normalize("GPL-2+") == "GPL-2.0-or-later"
    assert normalize("LGPL-2.1+ or BSD-3-clause") == "LGPL-2.1-or-later OR BSD-3-Clause"
    assert normalize("Expat") == "MIT"
    assert normalize("mit") == "MIT"
    assert normalize("Some Custom Licence") == "Some Custom Licence"


def test_distroless_status_d_and_os_fallbacks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg/status.d").mkdir(parents=True)
    (root / "etc").mkdir()
    # distroless: one stanza per file, no Status field, files in <name>.md5sums
    (root / "var/lib/dpkg/status.d/tzdata").write_text(
        "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\nSource: tzdata\n"
    )
    (root / "var/lib/dpkg/status.d/tzdata.md5sums").write_text(
        "0123456789abcdef0123456789abcdef  usr/share/zoneinfo/UTC\n"
    )
    (root / "etc/debian_version").write_text("12.5\n")
    inv = inventory_rootfs(str(root))
    assert [(p.name, p.version, p.files) for p in inv.packages] == [
        ("tzdata", "2024a-0+deb12u1", ("/usr/share/zoneinfo/UTC",))
    ]
    assert inv.os is not None and (inv.os.id, inv.os.version_id) == ("debian", "12")
    alpine = tmp_path / "alpine"
    (alpine / "etc").mkdir(parents=True)
    (alpine / "etc/alpine-release").write_text("3.19.1\n")
    assert inventory_rootfs(str(alpine)).os.version_id == "3.19.1"  # type: ignore[union-attr]


def test_corrupt_layer_is_a_one_line_error(tmp_path: Path) -> None:
    from tests.analyze.images import Layer, Member, make_layout
    from tests.helpers import run_cli

    name = make_layout(
        tmp_path / "img", [Layer([Member("var/lib/dpkg/status", data=b"Package: a\n")])]
    )
    import json

    blobs = tmp_path / "img/blobs/sha256"
    index = json.loads((tmp_path / "img/index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    blob = blobs / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    r = run_cli("sbom", name)
    assert r.returncode != 0
    assert r.stderr.startswith("Error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2, r.stderr
    missing = run_cli("sbom", "--rootfs", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "no such directory" in missing.stderr
