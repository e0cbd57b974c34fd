"""Java archives: real Maven-built jars from Debian's maven-repo, alone and nested in a fat jar.

The expected group, artifact and version come from the maven-repo directory
layout (``/usr/share/maven-repo/GROUP/ARTIFACT/VERSION/``), not from the jars.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from forklift.sbom import inventory
from forklift.sbom.model import Ecosystem
from tests.helpers import run_cli

REPO = Path("/usr/share/maven-repo")
WANTED = [("commons-io", "commons-io"), ("commons-cli", "commons-cli")]


def maven_jars() -> list[tuple[str, str, str, Path]]:
    out = []
    for group, artifact in WANTED:
        base = REPO / group / artifact
        versions = [d for d in base.iterdir() if d.name[:1].isdigit()] if base.is_dir() else []
        assert versions, f"{base} is missing (apt-get install lib{artifact}-java)"
        v = versions[0]
        out.append((group, artifact, v.name, (v / f"{artifact}-{v.name}.jar").resolve()))
    return out


def test_jars_and_a_fat_jar(home: Path, tmp_path: Path) -> None:
    assert shutil.which("jar"), (
        "the JDK's jar tool is needed (apt-get install default-jdk-headless)"
    )
    jars = maven_jars()
    fat_src = tmp_path / "fat"
    (fat_src / "BOOT-INF/lib").mkdir(parents=True)
    for _, artifact, version, path in jars:
        shutil.copy(path, fat_src / "BOOT-INF/lib" / f"{artifact}-{version}.jar")
    (fat_src / "manifest.txt").write_text(
        "Implementation-Title: shop\nImplementation-Version: 7.1\n"
    )
    fat = tmp_path / "shop.jar"
    subprocess.run(["jar", "--create", "--file", str(fat), "--manifest", str(fat_src / "manifest.txt"),
                    "-C", str(fat_src), "BOOT-INF"], check=True)  # fmt: skip
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(jars[0][3], arcname=f"opt/lib/{jars[0][1]}.jar")
        tf.add(fat, arcname="app/shop.jar")
    run_cli("import", str(tar), "java:latest", check=True)
    inv = inventory("java:latest")
    got = sorted((p.purl, p.location) for p in inv.by_ecosystem(Ecosystem.MAVEN))
    g0, a0, v0, _ = jars[0]
    expected = [(f"pkg:maven/{g0}/{a0}@{v0}", f"/opt/lib/{a0}.jar")]
    for g, a, v, _ in jars:
        expected.append((f"pkg:maven/{g}/{a}@{v}", f"/app/shop.jar!/BOOT-INF/lib/{a}-{v}.jar"))
    expected.append(("pkg:maven/shop@7.1", "/app/shop.jar"))  # named by its manifest
    assert got == sorted(expected)


def test_not_a_zip_is_a_warning(tmp_path: Path) -> None:
    from forklift.sbom import inventory_rootfs

    (tmp_path / "r").mkdir()
    (tmp_path / "r/broken.jar").write_bytes(b"PK\x03\x04 truncated")
    inv = inventory_rootfs(str(tmp_path / "r"))
    assert inv.packages == ()


@pytest.mark.parametrize("name", ["app-1.2.3.jar", "app.jar"])
def test_manifest_less_jar_named_by_file(tmp_path: Path, name: str) -> None:
    import zipfile

    from forklift.sbom import inventory_rootfs

    (tmp_path / "r").mkdir()
    with zipfile.ZipFile(tmp_path / "r" / name, "w") as zf:
        zf.writestr("a/B.class", b"\xca\xfe\xba\xbe")
    inv = inventory_rootfs(str(tmp_path / "r"))
    assert [(p.name, p.version) for p in inv.packages] == (
        [("app", "1.2.3")] if "1" in name else []
    )
