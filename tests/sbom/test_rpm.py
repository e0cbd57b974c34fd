"""The SQLite rpmdb, written by Debian's real rpm (rpmbuild + ``rpm --justdb``) and read back by rpm."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from forklift.sbom import inventory, inventory_rootfs
from forklift.sbom.model import Ecosystem
from tests.analyze.images import Layer, Member, make_layout

SPEC = """\
Name: demo
Version: 1.2.3
Release: 4.el9
Epoch: 2
Summary: demo
License: MIT AND (Apache-2.0 OR GPL-2.0-or-later)
BuildArch: x86_64
%description
demo
%package -n libdemo
Summary: the library
License: GPLv2+
%description -n libdemo
lib
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib64
echo hi > %{buildroot}/usr/bin/demo
echo x > %{buildroot}/usr/lib64/libdemo.so.1
%files
/usr/bin/demo
%files -n libdemo
/usr/lib64/libdemo.so.1
"""
EXTRA_SPEC = SPEC.replace("Name: demo", "Name: extra").replace("Epoch: 2\n", "").split("%package")[
    0
] + (
    "%install\nmkdir -p %{buildroot}/usr/bin\necho e > %{buildroot}/usr/bin/extra\n%files\n/usr/bin/extra\n"
)
QF = "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{SOURCERPM} %{LICENSE}\\n"


def _rpm() -> str:
    rpm = shutil.which("rpm")
    assert rpm and shutil.which("rpmbuild"), "rpm and rpmbuild are needed (apt-get install rpm)"
    return rpm


def build_rpms(tmp: Path, name: str, spec: str) -> list[Path]:
    top = tmp / f"build-{name}"
    (top / "SPECS").mkdir(parents=True)
    (top / "SPECS" / f"{name}.spec").write_text(spec)
    subprocess.run(["rpmbuild", "--define", f"_topdir {top}", "-bb", str(top / "SPECS" / f"{name}.spec")],
                   check=True, capture_output=True)  # fmt: skip
    return sorted((top / "RPMS").rglob("*.rpm"))


def install(root: Path, rpms: list[Path]) -> None:
    subprocess.run([_rpm(), "--root", str(root), "--dbpath", "/var/lib/rpm", "-i", "--nodeps",
                    "--justdb", "--ignorearch", *map(str, rpms)], check=True, capture_output=True)  # fmt: skip


def rpm_qa(root: Path) -> list[str]:
    out = subprocess.run([_rpm(), "--root", str(root), "--dbpath", "/var/lib/rpm", "-qa", "--qf", QF],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return sorted(out.splitlines())


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    tmp = tmp_path_factory.mktemp("rpms")
    return build_rpms(tmp, "demo", SPEC), build_rpms(tmp, "extra", EXTRA_SPEC)


def _line(p) -> str:  # type: ignore[no-untyped-def]
    epoch, _, vr = p.version.rpartition(":") if ":" in p.version else ("0", "", p.version)
    srpm = dict(p.extra).get("source-rpm", "")
    return f"{p.name} {epoch}:{vr} {p.arch} {srpm} {p.licenses[0] if p.licenses else ''}"


def test_rpmdb_matches_rpm_qa(rpms: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(root, rpms[0])
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID="rhel"\nVERSION_ID="9.3"\n')
    expected = rpm_qa(root)
    inv = inventory_rootfs(str(root))
    pkgs = inv.by_ecosystem(Ecosystem.RPM)
    # licences as declared; "GPLv2+" is rpm's old spelling of GPL-2.0-or-later
    got = sorted(_line(p).replace("GPL-2.0-or-later", "GPLv2+") if p.name == "libdemo" else _line(p)
                 for p in pkgs)  # fmt: skip
    assert got == expected
    lib = next(p for p in pkgs if p.name == "libdemo")
    assert (lib.source_name, lib.source_version) == ("demo", "1.2.3-4.el9")
    assert lib.purl == "pkg:rpm/redhat/libdemo@1.2.3-4.el9?arch=x86_64&distro=rhel-9.3&epoch=2"
    ql = subprocess.run([_rpm(), "--root", str(root), "--dbpath", "/var/lib/rpm", "-ql", "libdemo"],
                        check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    assert list(lib.files) == ql


def test_rpm_layers_and_write_ahead_log(
    rpms: tuple[list[Path], list[Path]], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    install(root, rpms[0])
    db0 = (root / "var/lib/rpm/rpmdb.sqlite").read_bytes()
    install(root, rpms[1])
    db1 = (root / "var/lib/rpm/rpmdb.sqlite").read_bytes()
    assert [line.split()[0] for line in rpm_qa(root)] == ["demo", "extra", "libdemo"]
    # A later layer's database whose last change is still in its -wal file: "demo" deleted.
    wal_root = tmp_path / "wal"
    shutil.copytree(root / "var/lib/rpm", wal_root)
    conn = sqlite3.connect(wal_root / "rpmdb.sqlite")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    names = [r[1] for r in conn.execute("SELECT hnum, key FROM Name")]
    assert "demo" in names
    hnum = conn.execute("SELECT hnum FROM Name WHERE key='demo'").fetchone()[0]
    conn.execute("DELETE FROM Packages WHERE hnum=?", (hnum,))
    conn.commit()
    db2, wal2 = (
        (wal_root / "rpmdb.sqlite").read_bytes(),
        (wal_root / "rpmdb.sqlite-wal").read_bytes(),
    )
    conn.close()
    assert wal2, "the change is in the write-ahead log"
    osr = Member("etc/os-release", data=b'ID="rhel"\nVERSION_ID="9.3"\n')
    name = make_layout(tmp_path / "img", [
        Layer([osr, Member("var/lib/rpm/rpmdb.sqlite", data=db0)], created_by="base"),
        Layer([Member("var/lib/rpm/rpmdb.sqlite", data=db1)], created_by="dnf install extra"),
        Layer([Member("var/lib/rpm/rpmdb.sqlite", data=db2),
               Member("var/lib/rpm/rpmdb.sqlite-wal", data=wal2)], created_by="rpm -e demo"),
    ])  # fmt: skip
    inv = inventory(name)
    got = {p.name: p.layer.index for p in inv.packages if p.layer is not None}
    assert got == {"libdemo": 0, "extra": 1}


def test_old_rpmdb_formats_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/rpm").mkdir(parents=True)
    (root / "var/lib/rpm/Packages").write_bytes(b"\x00" * 4096)  # Berkeley DB
    inv = inventory_rootfs(str(root))
    assert inv.packages == ()
    assert len(inv.warnings) == 1
    assert "Berkeley DB format is not readable" in inv.warnings[0]
