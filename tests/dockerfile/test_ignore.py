""".dockerignore reading and matching (moby/patternmatcher semantics)."""

from __future__ import annotations

import fnmatch
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import corpus_cases

from forklift.dockerfile.ignore import (
    IgnoreMatcher,
    IgnorePatternError,
    find_ignore_file,
    read_ignore_patterns,
)


def _case_rows(corpus: Path) -> list[list[str]]:
    rows = []
    for line in (corpus / "dockerignore-cases.tsv").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("id\t") or not line.strip():
            continue
        rows.append(line.split("\t"))
    return rows


def _readall_rows(corpus: Path) -> list[list[str]]:
    rows = []
    for line in (
        (corpus / "dockerignore-readall-cases.tsv").read_text(encoding="utf-8").splitlines()
    ):
        if line.startswith("#") or line.startswith("input_line_json") or not line.strip():
            continue
        rows.append(line.split("\t"))
    return rows


def _params(rows: list[list[str]]) -> list[Any]:
    return [pytest.param(row, id=row[0]) for row in rows]


def test_tables_are_complete(corpus: Path) -> None:
    cases = _case_rows(corpus)
    assert len(cases) == 142
    assert {r[1] for r in cases} == {"match_or_parent", "legacy_matches"}
    assert len(_readall_rows(corpus)) == 9


@pytest.mark.parametrize("row", corpus_cases(lambda c: _params(_case_rows(c))))
def test_pattern_cases(row: list[str], corpus: Path) -> None:
    _id, semantics, patterns, path, expected = row[:5]
    try:
        matcher = IgnoreMatcher(json.loads(patterns))
        if semantics == "match_or_parent":
            got = "match" if matcher.excludes(path) else "no-match"
        else:
            got = "match" if matcher.matches_legacy(path) else "no-match"
    except IgnorePatternError:
        got = "error"
    assert got == expected


def test_bad_pattern_fails_every_time() -> None:
    matcher = IgnoreMatcher(["[Local-Only]/"])  # accepted, unusable
    for _ in range(2):
        with pytest.raises(IgnorePatternError):
            matcher.excludes("x")


@pytest.mark.parametrize("row", corpus_cases(lambda c: _params(_readall_rows(c))))
def test_readall_normalisation(row: list[str], corpus: Path) -> None:
    line, expected = json.loads(row[0]), json.loads(row[1])
    got = read_ignore_patterns(line + "\n")
    assert got == ([] if expected is None else [expected])


def test_readall_real_files(corpus: Path) -> None:
    rows = [
        json.loads(x)
        for x in (corpus / "dockerignore" / "readall-expected.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 65
    for row in rows:
        data = (corpus / "dockerignore" / row["file"]).read_bytes()
        assert read_ignore_patterns(data) == (row["patterns"] or []), row["file"]


def test_bom_crlf_and_comments() -> None:
    text = "\ufeff# comment\r\n  spaced  \r\n #not a comment\r\n!  /abs/./x/../y\r\n"
    assert read_ignore_patterns(text.encode()) == ["spaced", "#not a comment", "!abs/y"]


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / ".dockerignore").write_text("a\n")
    df = tmp_path / "build" / "app.Dockerfile"
    df.parent.mkdir()
    df.write_text("FROM scratch\n")
    assert find_ignore_file(tmp_path / "ctx", df) == tmp_path / "ctx" / ".dockerignore"
    (tmp_path / "build" / "app.Dockerfile.dockerignore").write_text("b\n")
    assert (
        find_ignore_file(tmp_path / "ctx", df) == tmp_path / "build" / "app.Dockerfile.dockerignore"
    )
    assert find_ignore_file(tmp_path / "build") is None


# -- property: the matcher against a brute-force reference --------------------

COMPONENTS = ["a", "b", "ab", "c.txt", "d.log"]
PATTERN_PARTS = ["a", "b", "ab", "*", "?", "a*", "*.txt", "*.log", "c.txt", "**"]


def _ref_component(pat: str, name: str) -> bool:
    # filepath.Match on one component: no brackets are generated, so fnmatch agrees.
    return fnmatch.fnmatchcase(name, pat)


def _ref_match(pat: list[str], path: list[str]) -> bool:
    """Reference semantics: ``**`` spans zero or more directories, except at the end
    of a pattern (``dir/**``) where it needs at least one."""
    if not pat:
        return not path
    head, rest = pat[0], pat[1:]
    if head == "**":
        if not rest:
            return len(path) >= 1
        return any(_ref_match(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and _ref_component(head, path[0]) and _ref_match(rest, path[1:])


def _ref_excludes(patterns: list[str], path: str) -> bool:
    parts = path.split("/")
    decision = False
    for raw in patterns:
        exclusion = raw.startswith("!")
        pat = (raw[1:] if exclusion else raw).split("/")
        if any(_ref_match(pat, parts[:n]) for n in range(1, len(parts) + 1)):
            decision = not exclusion
    return decision


PATTERNS = st.lists(
    st.builds(
        lambda neg, parts: ("!" if neg else "") + "/".join(parts),
        st.booleans(),
        st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=3).filter(
            # "**" glued to nothing else on both sides is the whole component
            lambda ps: all(not (a == "**" and b == "**") for a, b in itertools.pairwise(ps))
        ),
    ),
    max_size=5,
)
PATHS = st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4).map("/".join)


@settings(max_examples=500, deadline=None)
@given(PATTERNS, st.lists(PATHS, min_size=1, max_size=10))
def test_matcher_against_reference(patterns: list[str], paths: list[str]) -> None:
    matcher = IgnoreMatcher(patterns)
    for path in paths:
        assert matcher.excludes(path) == _ref_excludes(patterns, path), (patterns, path)
