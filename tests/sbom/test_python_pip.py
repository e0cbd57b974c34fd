"""Real wheels from PyPI installed by pip inside a Debian image; one uninstalled in a later layer.

The wheels are downloaded on the host (``pip download``: PyPI, hence
``network``) and installed by the image's own pip, so every dist-info comes
from pip. The expected list is what pip itself reports inside the image
(``pip inspect``, packages whose installer is pip); Debian's python3-pip is
dpkg's, never a PyPI package a second time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forklift.sbom import inventory
from forklift.sbom.model import Ecosystem
from tests.debian import debootstrap_tar
from tests.helpers import run_cli

pytestmark = [pytest.mark.network, pytest.mark.root]

WHEELS = {"six": "1.16.0", "idna": "3.4", "attrs": "23.1.0", "packaging": "23.2"}
REMOVED = "idna"


def test_pip_installed_wheels(home: Path, tmp_path: Path) -> None:
    tar = debootstrap_tar("debian-bookworm-python3", ("python3", "python3-pip"))
    run_cli("import", str(tar), "debian-python:bookworm", check=True)
    ctx = tmp_path / "ctx"
    (ctx / "wheels").mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
         "-d", str(ctx / "wheels"), *(f"{n}=={v}" for n, v in WHEELS.items())],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (ctx / "Dockerfile").write_text(
        "FROM debian-python:bookworm\n"
        "COPY wheels /wheels\n"
        "RUN pip install --no-index --break-system-packages /wheels/*.whl\n"
        f"RUN pip uninstall -y --break-system-packages {REMOVED}\n"
    )
    r = run_cli("build", "-t", "pyapp:1", "--progress", "plain", str(ctx))
    assert r.returncode == 0, r.stderr[-3000:]
    report = run_cli("run", "--rm", "pyapp:1", "python3", "-m", "pip", "inspect")
    assert report.returncode == 0, report.stderr
    installed = json.loads(report.stdout)["installed"]
    by_pip = sorted((d["metadata"]["name"], d["metadata"]["version"]) for d in installed
                    if d.get("installer") == "pip")  # fmt: skip
    from_debian = {d["metadata"]["name"].lower() for d in installed if d.get("installer") != "pip"}
    assert "pip" in from_debian  # python3-pip's own dist-info

    inv = inventory("pyapp:1")
    pypi = inv.by_ecosystem(Ecosystem.PYPI)
    assert sorted((p.name, p.version) for p in pypi) == by_pip
    assert sorted(by_pip) == sorted((n, v) for n, v in WHEELS.items() if n != REMOVED)
    for p in pypi:
        assert p.purl == f"pkg:pypi/{p.name.lower()}@{WHEELS[p.name]}"
        assert p.layer is not None and p.layer.index == 2 and p.layer.line == 3
        assert p.location.startswith("/usr/local/lib/python3")
        assert any(f.endswith(".py") for f in p.files)  # from RECORD
    names = {p.name.lower() for p in pypi}
    assert not names & from_debian
    debs = {p.name for p in inv.by_ecosystem(Ecosystem.DEB)}
    assert {"python3-pip", "python3-setuptools"} <= debs
