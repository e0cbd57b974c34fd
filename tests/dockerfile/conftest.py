"""Fixtures for the Dockerfile front-end tests: the shared real-world corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The read-only corpus directory (``../shared/corpus`` from the repo root)."""
    if not CORPUS.is_dir():  # pragma: no cover - the corpus is part of the workspace
        pytest.fail(f"corpus not found at {CORPUS}")
    return CORPUS.resolve()


@pytest.fixture(scope="session")
def oracle(corpus: Path) -> list[dict[str, Any]]:
    """BuildKit's parse/lint output for every corpus Dockerfile (one dict per file)."""
    with open(corpus / "oracle" / "buildkit-parse-lint.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]
