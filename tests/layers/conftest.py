"""Fixtures for the layer tests (helpers live in :mod:`tests.layers.trees`)."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.layers.trees import build_tar, make_sample_tree, member, snapshot


@pytest.fixture
def tree_snapshot() -> Callable[..., dict[str, tuple[Any, ...]]]:
    return snapshot


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    return make_sample_tree(tmp_path / "sample")


@pytest.fixture
def tar_of() -> Callable[..., bytes]:
    return build_tar


@pytest.fixture
def tar_member() -> Callable[..., tarfile.TarInfo]:
    return member
