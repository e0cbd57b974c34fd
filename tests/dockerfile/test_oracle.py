"""Agreement with BuildKit itself on every Dockerfile of the corpus (1,597 files).

``corpus/oracle/buildkit-parse-lint.jsonl`` holds what BuildKit's parser,
``instructions.Parse``/``ListTargets`` and its conversion step said about each
file. forklift must agree: the same files fail to parse, and for the others the
same AST dump, line spans, flags, heredocs, warnings, escape token, stages and
stage errors, and the same files fail at build-planning time. The test prints
the agreement rate per aspect (see it with ``pytest -rA``) and requires 100%.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from forklift.dockerfile.dispatch import plan
from forklift.dockerfile.dump import dump
from forklift.dockerfile.instructions import InstructionError, parse_stages
from forklift.dockerfile.parser import parse
from forklift.errors import ForkliftError, ParseError


def _instructions(df: Any) -> list[dict[str, Any]]:
    out = []
    for ins in df.instructions:
        item: dict[str, Any] = {
            "lines": [ins.start_line, ins.end_line],
            "instruction": ins.raw_keyword,
        }
        if ins.flags:
            item["flags"] = list(ins.flag_texts)
        if ins.heredocs:
            item["heredocs"] = [
                {
                    "name": h.name,
                    "content": h.content,
                    "expand": h.expand,
                    "chomp": h.chomp,
                    "fd": h.fd,
                }
                for h in ins.heredocs
            ]
        out.append(item)
    return out


def _stages(parsed: Any) -> list[dict[str, Any]]:
    out = []
    last = len(parsed.stages) - 1
    for st in parsed.stages:
        item: dict[str, Any] = {}
        if st.name:
            item["name"] = st.name
        item["base"] = st.base_name
        if st.platform:
            item["platform"] = st.platform
        if st.index == last:
            item["default"] = True
        if st.comment:
            item["description"] = st.comment
        item["line"] = st.line
        out.append(item)
    return out


def _compare(row: dict[str, Any], corpus: Path) -> dict[str, bool]:
    """Per-aspect agreement for one oracle row."""
    data = (corpus / row["file"]).read_bytes()
    result: dict[str, bool] = {}
    try:
        df = parse(data, row["file"])
    except ParseError as exc:
        result["parse_failure"] = "parse_error" in row and exc.message == row["parse_error"]
        return result
    if "parse_error" in row:
        result["parse_failure"] = False
        return result
    result["parse_failure"] = True
    result["ast_dump"] = dump(df) == row["ast_dump"]
    result["escape_token"] = df.escape == row["escape_token"]
    expected = row["instructions"]
    got = _instructions(df)
    result["line_spans"] = [g["lines"] for g in got] == [e["lines"] for e in expected]
    result["keywords"] = [g["instruction"] for g in got] == [e["instruction"] for e in expected]
    result["flags"] = [g.get("flags") for g in got] == [e.get("flags") for e in expected]
    result["heredocs"] = [g.get("heredocs") for g in got] == [e.get("heredocs") for e in expected]
    result["warnings"] = [w.message for w in df.warnings] == row.get("parse_warnings", [])
    try:
        parsed = parse_stages(df)
    except InstructionError as exc:
        result["stages"] = exc.buildkit_message == row.get("stages_error")
        return result
    result["stages"] = "stages_error" not in row and _stages(parsed) == row["stages"]
    # BuildKit's conversion (lint mode: every stage, no target, no build args).
    build_error = row.get("build_error")
    try:
        plan(parsed, all_stages=True)
    except ForkliftError as exc:
        want_lines = [r[0] for r in build_error["lines"]] if build_error else []
        got_line = exc.location.line if exc.location else None
        result["build_failure"] = build_error is not None and (
            not want_lines or got_line in want_lines
        )
    else:
        result["build_failure"] = build_error is None
    return result


def test_agreement_with_buildkit(corpus: Path, oracle: list[dict[str, Any]]) -> None:
    assert len(oracle) == 1597
    agree: Counter[str] = Counter()
    total: Counter[str] = Counter()
    failures: list[str] = []
    for row in oracle:
        for aspect, ok in _compare(row, corpus).items():
            total[aspect] += 1
            agree[aspect] += ok
            if not ok:
                failures.append(f"{row['file']}: {aspect}")
    print("\nagreement with BuildKit (files agreeing / files compared):")
    for aspect in total:
        print(
            f"  {aspect:14s} {agree[aspect]:5d}/{total[aspect]:<5d} {100 * agree[aspect] / total[aspect]:6.2f}%"
        )
    overall = sum(agree.values()) / sum(total.values())
    print(f"  overall        {100 * overall:.2f}%")
    assert failures == []
    # The interesting cases are really there (so 100% is not vacuous).
    assert total["parse_failure"] == 1597
    assert total["ast_dump"] == 1597 - 11
    assert total["build_failure"] >= 1500
