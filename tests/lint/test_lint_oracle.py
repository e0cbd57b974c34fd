"""forklift's BuildKit checks against BuildKit itself (the corpus oracle).

``oracle/buildkit-parse-lint.jsonl`` holds what ``docker build --check``
(BuildKit @ 73ed682) reported for every corpus Dockerfile, run with a stub
resolver (every base image is linux/amd64 with only PATH set) and no build
context. forklift runs the same checks under the same assumptions
(``image_env=None``; ``stop_at_error`` so that a file BuildKit rejects is
only checked as far as BuildKit got) and must report exactly the same
(rule, message, lines) set per file.

Checks that never fire here and why (see the README section):
* CopyIgnoredFile: needs a build context (none was given); tested in
  test_lint_rules.py with a real .dockerignore.
* InvalidBaseImagePlatform: needs the pulled base image's platform.
* ReservedStageName, FromPlatformFlagConstDisallowed, ExposeInvalidFormat,
  ExposeProtoCasing: no corpus file triggers them; unit-tested with
  BuildKit's documented messages.
* InvalidDefinitionDescription: experimental, off in BuildKit by default.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from forklift.dockerfile.parser import parse
from forklift.errors import ParseError
from forklift.lint.catalog import RULES
from forklift.lint.checks import buildkit
from forklift.lint.model import build_context

BUILDKIT_NAME = {r.id: r.buildkit for r in RULES.values() if r.buildkit}
#: checks whose result depends on the real base image; the rest must be exact
IMAGE_DEPENDENT = {"InvalidBaseImagePlatform"}


def _oracle(corpus: Path) -> list[dict]:
    path = corpus / "oracle" / "buildkit-parse-lint.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _expected(record: dict) -> set[tuple[str, str, int, int]]:
    out = set()
    for w in record.get("lint_warnings") or []:
        start = min(r[0] for r in w["lines"])
        end = max(r[1] for r in w["lines"])
        out.add((w["rule"], w["detail"], start, end))
    return out


def _ours(corpus: Path, record: dict) -> tuple[set[tuple[str, str, int, int]], ...]:
    """forklift's BuildKit findings for one file: stopping where BuildKit stops, and not."""
    df = parse((corpus / record["file"]).read_bytes(), record["file"])
    ctx = build_context(df)
    return tuple(
        {
            (BUILDKIT_NAME[f.rule], f.message, f.line, f.end_line)
            for f in buildkit.check(ctx, stop_at_error=stop)
        }
        for stop in (True, False)
    )


@pytest.fixture(scope="module")
def comparison(corpus: Path) -> dict[str, object]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    mismatches: dict[str, list[str]] = defaultdict(list)
    checked = 0
    beyond: list[tuple[dict, set, set]] = []
    for record in _oracle(corpus):
        if record.get("parse_error"):
            # BuildKit's parser rejected the file; so must forklift's.
            with pytest.raises(ParseError):
                parse((corpus / record["file"]).read_bytes(), record["file"])
            continue
        checked += 1
        exp = _expected(record)
        got, unstopped = _ours(corpus, record)
        beyond.append((record, exp, unstopped))
        for item in exp & got:
            tp[item[0]] += 1
        for item in got - exp:
            fp[item[0]] += 1
            mismatches[item[0]].append(f"extra {record['file']}: {item}")
        for item in exp - got:
            fn[item[0]] += 1
            mismatches[item[0]].append(f"missing {record['file']}: {item}")
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "mismatches": mismatches,
        "files": checked,
        "beyond": beyond,
    }


def test_precision_recall_per_check(comparison: dict[str, object], capsys) -> None:  # type: ignore[no-untyped-def]
    tp: Counter[str] = comparison["tp"]  # type: ignore[assignment]
    fp: Counter[str] = comparison["fp"]  # type: ignore[assignment]
    fn: Counter[str] = comparison["fn"]  # type: ignore[assignment]
    rows = []
    for rule in sorted(set(tp) | set(fp) | set(fn)):
        t, f, n = tp[rule], fp[rule], fn[rule]
        precision = t / (t + f) if t + f else 1.0
        recall = t / (t + n) if t + n else 1.0
        rows.append((rule, t, f, n, precision, recall))
    with capsys.disabled():
        print(f"\nBuildKit oracle: {comparison['files']} files")
        print(f"{'check':32} {'tp':>5} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}")
        for rule, t, f, n, p, r in rows:
            print(f"{rule:32} {t:5} {f:4} {n:4} {p:9.1%} {r:7.1%}")
    # Every check BuildKit reports on this corpus is reproduced (it fires 15 of them).
    assert len(rows) >= 15
    mismatches: dict[str, list[str]] = comparison["mismatches"]  # type: ignore[assignment]
    for rule, _t, _f, _n, p, r in rows:
        if rule in IMAGE_DEPENDENT:
            continue
        assert (p, r) == (1.0, 1.0), f"{rule}: " + "; ".join(mismatches[rule][:5])


def test_undefined_var_matches_buildkit_stub_semantics(comparison: dict[str, object]) -> None:
    # UndefinedVar depends on the base image's environment; with the oracle's
    # stub (only PATH) forklift must agree exactly, including $HOME reports.
    tp: Counter[str] = comparison["tp"]  # type: ignore[assignment]
    assert tp["UndefinedVar"] == 64


def test_going_past_build_errors_only_adds_findings(comparison: dict[str, object]) -> None:
    # The default (non-stop) walk finds a superset, and only where BuildKit
    # stopped at an error.
    extra_files = 0
    for record, exp, got in comparison["beyond"]:  # type: ignore[attr-defined]
        assert exp <= got, record["file"]
        if got - exp:
            assert record.get("build_error"), (record["file"], got - exp)
            extra_files += 1
    assert extra_files > 0
