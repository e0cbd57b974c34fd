"""Every corpus Dockerfile is linted without a crash, and syntax errors show up as FL000."""

from __future__ import annotations

import json
import time
from pathlib import Path

from forklift.lint import lint_file


def test_whole_corpus_lints_without_crashing(corpus: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    files = sorted(
        p for p in (corpus / "dockerfiles").rglob("*") if p.is_file() and p.suffix != ".tsv"
    )
    assert len(files) > 1500
    start = time.perf_counter()
    results = {p: lint_file(p) for p in files}
    elapsed = time.perf_counter() - start
    total = sum(len(r.findings) for r in results.values())
    with capsys.disabled():
        print(
            f"\nlinted {len(files)} files in {elapsed:.1f}s ({len(files) / elapsed:.0f} files/s), {total} findings"
        )
    # Files BuildKit's parser rejects get exactly one FL000 and nothing else.
    oracle = corpus / "oracle" / "buildkit-parse-lint.jsonl"
    for line in oracle.read_text().splitlines():
        rec = json.loads(line)
        path = corpus / rec["file"]
        if rec.get("parse_error") and path in results:
            findings = results[path].findings
            assert [f.rule for f in findings] == ["FL000"], rec["file"]
    assert all(f.line >= 1 for r in results.values() for f in r.findings)
