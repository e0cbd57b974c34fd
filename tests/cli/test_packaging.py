"""Packaging: the serve extra, granian's own warnings, the pinned dependency ranges."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.helpers import REPO
from tests.registry_server.servers import start_forklift


def test_serve_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    # as if granian were not installed (an install without forklift[serve])
    code = (
        "import sys; sys.modules['granian'] = None\n"
        "from forklift.cli import main\n"
        f"main(['serve', '--root', {str(tmp_path / 'r')!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "Error: forklift serve needs granian, which come with the serve extra",
        "Hint: pip install 'forklift[serve]'",
    ]


def test_granian_warnings_are_shown_but_not_the_embedding_notice(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # more Rust threads than cores makes granian warn; that warning must reach the log
    monkeypatch.setenv("FORKLIFT_SERVE_THREADS", str((os.cpu_count() or 1) + 8))
    server = start_forklift(tmp_path / "root")  # returns once it answers /v2/
    server.stop()
    log = server.log_text()
    assert "granian: WARNING: Configured number of Rust threads" in log, log
    assert "experimental" not in log


def test_dependency_ranges() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = {d.split(">")[0].split("[")[0]: d for d in project["dependencies"]}
    # the server's own libraries are an extra; the compressors are pinned to checked ranges
    for name in ("granian", "uvloop", "bcrypt"):
        assert name not in deps
        assert any(d.startswith(name) for d in project["optional-dependencies"]["serve"])
    assert "<" in deps["isal"] and "<" in deps["zstandard"]
    # body.py reads past httpcore's and h11's internals: both pinned to checked ranges
    assert "<" in deps["httpcore"] and "<" in deps["h11"]
    # forklift speaks HTTP through httpcore alone; httpx is the tests' client
    assert "httpx" not in deps
    test = project["optional-dependencies"]["test"]
    assert "forklift[serve]" in test and any(d.startswith("httpx") for d in test)
