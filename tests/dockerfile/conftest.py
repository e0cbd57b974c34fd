"""Fixtures for the Dockerfile front-end tests: the shared real-world corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def oracle(corpus: Path) -> list[dict[str, Any]]:
    """BuildKit's parse/lint output for every corpus Dockerfile (one dict per file)."""
    with open(corpus / "oracle" / "buildkit-parse-lint.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]
