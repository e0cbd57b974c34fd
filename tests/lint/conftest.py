"""Fixtures for the lint tests: the shared corpus and a helper to lint text."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/corpus (read-only real-world material)."""
    return CORPUS.resolve()
