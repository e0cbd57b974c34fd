"""A real Debian 12 minbase (debootstrap) against dpkg itself, then a purge layer and an install layer.

The expected lists come from ``dpkg-query``: with ``--admindir`` over the
debootstrapped tree, and inside the built images through ``forklift run``.
Debootstrap and ``apt-get download`` reach Debian's mirror: ``network``.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from forklift.sbom import inventory, inventory_rootfs
from forklift.sbom.model import Ecosystem
from tests.debian import debootstrap_tar
from tests.helpers import run_cli

pytestmark = [pytest.mark.network, pytest.mark.root]

QUERY = "${Package} ${Version} ${source:Package} ${source:Version} ${db:Status-Status}\\n"
PURGED = "e2fsprogs"  # nothing in minbase depends on it (apt still calls it essential)
ADDED = "hello"  # GNU hello: depends on libc6 only


def _installed(lines: list[str]) -> list[str]:
    """dpkg-query lines of installed packages, without the status column."""
    return sorted(line.rsplit(" ", 1)[0] for line in lines if line.endswith(" installed"))


def _ours(inv) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(f"{p.name} {p.version} {p.source_name} {p.source_version}"
                  for p in inv.by_ecosystem(Ecosystem.DEB))  # fmt: skip


@pytest.fixture(scope="module")
def minbase_tar() -> Path:
    return debootstrap_tar("debian-bookworm-minbase")


@pytest.fixture(scope="module")
def minbase_dir(minbase_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("minbase") / "rootfs"
    root.mkdir()
    with tarfile.open(minbase_tar) as tf:
        tf.extractall(root, filter="tar")
    return root


def test_minbase_matches_dpkg_query(minbase_dir: Path, minbase_tar: Path, home: Path) -> None:
    proc = subprocess.run(
        ["dpkg-query", f"--admindir={minbase_dir}/var/lib/dpkg", "-W", "-f", QUERY.replace("\\n", "\n")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = _installed(proc.stdout.splitlines())
    assert len(expected) > 80
    # the directory, and the same tree imported as an image
    assert _ours(inventory_rootfs(str(minbase_dir))) == expected
    run_cli("import", str(minbase_tar), "minbase:12", check=True)
    inv = inventory("minbase:12")
    assert _ours(inv) == expected
    assert inv.os is not None and (inv.os.id, inv.os.version_id, inv.os.codename) == (
        "debian", "12", "bookworm",
    )  # fmt: skip
    assert {p.layer.index for p in inv.packages if p.layer} == {0}
    # nothing but dpkg packages in a minbase (perl's modules and the like are dpkg-owned)
    assert {p.ecosystem for p in inv.packages} == {Ecosystem.DEB}
    bash = next(p for p in inv.packages if p.name == "bash")
    assert "/usr/bin/bash" in bash.files or "/bin/bash" in bash.files


def test_purge_and_install_layers(minbase_tar: Path, home: Path, tmp_path: Path) -> None:
    run_cli("import", str(minbase_tar), "minbase:12", check=True)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    subprocess.run(["apt-get", "download", ADDED], cwd=ctx, check=True, capture_output=True)
    deb = next(ctx.glob(f"{ADDED}_*.deb")).name
    (ctx / "Dockerfile").write_text(
        "FROM minbase:12\n"
        f"RUN apt-get purge -y --allow-remove-essential {PURGED}\n"
        f"COPY {deb} /tmp/\n"
        f"RUN dpkg -i /tmp/{deb} && rm /tmp/{deb}\n"
    )
    r = run_cli("build", "-t", "layered:1", "--progress", "plain", str(ctx))
    assert r.returncode == 0, r.stderr[-3000:]
    query = run_cli(
        "run", "--rm", "layered:1", "dpkg-query", "-W", "-f", QUERY.replace("\\n", "\n")
    )
    assert query.returncode == 0, query.stderr
    expected = _installed(query.stdout.splitlines())
    assert not any(line.startswith(f"{PURGED} ") for line in expected)
    assert any(line.startswith(f"{ADDED} ") for line in expected)
    inv = inventory("layered:1")
    assert _ours(inv) == expected
    by = {p.name: p for p in inv.packages}
    assert PURGED not in by
    added = by[ADDED]
    assert added.layer is not None and added.layer.index == 3
    assert added.layer.line == 4 and "dpkg -i" in added.layer.created_by
    # every other package is still the base layer's, though each layer rewrote the status file
    assert {p.layer.index for p in inv.packages if p.name != ADDED and p.layer} == {0}
