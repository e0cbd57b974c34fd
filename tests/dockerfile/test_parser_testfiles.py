"""BuildKit's own parser test cases (corpus/parser-testfiles), all of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import CORPUS, corpus_cases

from forklift.dockerfile.directives import detect_directive, detect_syntax, parse_directives
from forklift.dockerfile.dump import dump
from forklift.dockerfile.parser import parse
from forklift.errors import ParseError

PARSER_DIR = CORPUS / "parser-testfiles"


def _positive(corpus: Path) -> list[str]:
    return sorted(
        p.name for p in (corpus / "parser-testfiles").iterdir() if (p / "result").is_file()
    )


def _negative(corpus: Path) -> list[str]:
    negative = corpus / "parser-testfiles" / "negative"
    return sorted(p.name for p in negative.iterdir() if p.is_dir())


@pytest.fixture(autouse=True)
def _corpus(corpus: Path) -> None:
    """Every test here reads BuildKit's cases from the corpus."""


def test_corpus_has_all_cases(corpus: Path) -> None:
    assert len(_positive(corpus)) == 33
    assert len(_negative(corpus)) == 4


@pytest.mark.parametrize("name", corpus_cases(_positive))
def test_positive_dump_matches_buildkit(name: str) -> None:
    data = (PARSER_DIR / name / "Dockerfile").read_bytes()
    expected = (PARSER_DIR / name / "result").read_bytes().decode("utf-8", "surrogateescape")
    assert dump(parse(data, name)) == expected.strip()


@pytest.mark.parametrize("name", corpus_cases(_negative))
def test_negative_cases_fail(name: str) -> None:
    data = (PARSER_DIR / "negative" / name / "Dockerfile").read_bytes()
    with pytest.raises(ParseError) as info:
        parse(data, "Dockerfile")
    # Every failure points into the file.
    assert info.value.location is not None
    assert info.value.location.file == "Dockerfile"


def test_line_info() -> None:
    expected = json.loads((PARSER_DIR / "_line-info" / "expected.json").read_text())
    df = parse((PARSER_DIR / "_line-info" / "Dockerfile").read_bytes())
    spans = [[i.start_line, i.end_line] for i in df.instructions]
    assert spans == expected["children"]
    assert [spans[0][0], spans[-1][1]] == expected["root"]


def test_heredoc_extraction() -> None:
    expected = json.loads((PARSER_DIR / "_heredoc" / "expected-heredocs.json").read_text())
    df = parse((PARSER_DIR / "_heredoc" / "Dockerfile").read_bytes())
    got = [
        [
            {"name": h.name, "content": h.content, "expand": h.expand, "chomp": h.chomp, "fd": h.fd}
            for h in ins.heredocs
        ]
        for ins in df.instructions[1:]  # the cases start after FROM
    ]
    want = [case["heredocs"] for case in expected["instructions"]]
    assert got == want


def test_heredoc_chomp_body() -> None:
    df = parse((PARSER_DIR / "_heredoc" / "Dockerfile").read_bytes())
    unindent = next(i for i in df.instructions if "<<-UNINDENT" in i.original)
    assert unindent.heredocs[0].content == "\tbaz\n\tquux\n"
    assert unindent.heredocs[0].body() == "baz\nquux\n"


def _directive_cases(corpus: Path) -> list[Any]:
    path = corpus / "parser-testfiles" / "_directives" / "directive-cases.json"
    cases = json.loads(path.read_text())["cases"]
    return [pytest.param(c, id=repr(c["input"])[:40]) for c in cases]


@pytest.mark.parametrize("case", corpus_cases(_directive_cases))
def test_directives(case: dict[str, object]) -> None:
    text = str(case["input"])
    api = case["api"]
    if api == "all_directives":
        got = [{"name": d.name, "value": d.value} for d in parse_directives(text)]
        assert got == case["expected"]
        return
    found = detect_syntax(text) if api == "syntax" else detect_directive(str(api), text)
    assert (found is not None) == case["found"]
    if found is None:
        return
    if "value" in case:
        assert found.value == case["value"]
    if "cmdline" in case:
        assert found.cmdline == case["cmdline"]
    if "line" in case:
        assert found.line == case["line"]


def test_empty_continuation_warnings() -> None:
    case = json.loads((PARSER_DIR / "_empty-continuation.json").read_text())
    df = parse(case["dockerfile"])
    messages = [w.message for w in df.warnings]
    assert len(messages) == case["expected_warning_count"]
    for want in case["expected_warnings_contain"]:
        assert any(want in m for m in messages)
    assert all(case["expected_warning_detail_contains"] in w.detail for w in df.warnings)
