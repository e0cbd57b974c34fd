"""Every example in the README runs (or says why it cannot), so docs and behaviour agree.

The harness and the marker syntax are in ``tests/docs/readme.py``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.docs.readme import Block, parse, run_block, sandbox
from tests.registry_server.servers import start_distribution

BLOCKS = parse()
BY_ID = {b.options["id"]: b for b in BLOCKS if b.kind == "run" and "id" in b.options}
RUNNABLE = [b for b in BLOCKS if b.kind == "run"]


def test_every_block_is_marked() -> None:
    unmarked = [f"README.md:{b.line} ({b.lang or 'plain'})" for b in BLOCKS if not b.kind]
    assert not unmarked, (
        "README blocks without an example marker (see tests/docs/readme.py): " + ", ".join(unmarked)
    )


def test_markers_are_well_formed() -> None:
    for b in BLOCKS:
        where = f"README.md:{b.line}"
        if b.kind == "skip":
            assert b.reason, f"{where}: say why the example cannot run"
        for name in filter(None, b.options.get("after", "").split(",")):
            assert name in BY_ID, f"{where}: after={name} names no block"
        assert b.needs <= {"root", "registry", "network"}, where
        if b.kind == "run":
            assert b.lang in ("sh", "console", "python"), f"{where}: cannot run {b.lang}"


def _chain(block: Block) -> list[Block]:
    out: list[Block] = []
    for name in filter(None, block.options.get("after", "").split(",")):
        for b in _chain(BY_ID[name]):
            if b not in out:
                out.append(b)
    out.append(block)
    return out


def _params() -> list[object]:
    out = []
    for b in RUNNABLE:
        needs = set().union(*(x.needs for x in _chain(b)))
        marks = [pytest.mark.network] if "network" in needs else []
        out.append(pytest.param(b, id=b.name, marks=marks))
    return out


@pytest.mark.parametrize("block", _params())
def test_example(block: Block, tmp_path: Path) -> None:
    chain = _chain(block)
    needs = set().union(*(b.needs for b in chain))
    if "root" in needs and os.geteuid() != 0:
        pytest.skip("this README example needs root (runc, overlayfs)")
    box = sandbox(tmp_path)
    registry = None
    if "registry" in needs:
        assert shutil.which("docker-registry"), "CNCF distribution is part of the test setup"
        registry = start_distribution(tmp_path / "registry")
        box.registry = registry.host
    try:
        for b in chain:
            run_block(b, box)
    finally:
        if registry is not None:
            registry.stop()
