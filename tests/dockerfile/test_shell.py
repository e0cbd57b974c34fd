"""Variable expansion and word splitting (BuildKit's shell lexer)."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import corpus_cases

from forklift.dockerfile.shell import ExpansionError, Lexer, expand, split_words

SHELL_DIR = Path("parser-testfiles") / "_shell"
ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases(corpus: Path) -> list[tuple[str, str]]:
    cases = []
    for line in (corpus / SHELL_DIR / "envVarTest").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        platform, word, expected = (part.strip() for part in line.split("|", 2))
        if platform in ("A", "U"):  # "W" rows are for Windows (case-insensitive names)
            cases.append((word, expected))
    return cases


def _words_cases(corpus: Path) -> list[tuple[dict[str, str], str, str]]:
    env: dict[str, str] = {}
    cases = []
    for line in (corpus / SHELL_DIR / "wordsTest").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("ENV "):
            key, value = line[4:].split("=", 1)
            env[key] = value
            continue
        word, expected = line.split("|", 1)
        cases.append((dict(env), word.strip(), expected.lstrip(" ")))
    return cases


def test_tables_are_complete(corpus: Path) -> None:
    assert len(_env_var_cases(corpus)) == 228
    assert len(_words_cases(corpus)) == 24


@pytest.mark.parametrize(("word", "expected"), corpus_cases(_env_var_cases, width=2))
def test_env_var_table(word: str, expected: str, corpus: Path) -> None:
    if expected == "error":
        with pytest.raises(ExpansionError):
            expand(word, ENV)
    else:
        assert expand(word, ENV) == expected


@pytest.mark.parametrize(("env", "word", "expected"), corpus_cases(_words_cases, width=3))
def test_words_table(env: dict[str, str], word: str, expected: str, corpus: Path) -> None:
    if expected == "error":
        with pytest.raises(ExpansionError):
            split_words(word, env)
    else:
        assert split_words(word, env) == expected.split(",")


def test_error_message_names_the_word() -> None:
    with pytest.raises(ExpansionError) as info:
        expand("${FOO:?}", {})
    assert str(info.value) == 'failed to process "${FOO:?}": FOO: is not allowed to be unset'
    with pytest.raises(ExpansionError, match="must be set here"):
        expand("${FOO?must be set here}", {})


@pytest.mark.parametrize(
    ("word", "env", "expected"),
    [
        ("${V#*/}", {"V": "a/b/c"}, "b/c"),
        ("${V##*/}", {"V": "a/b/c"}, "c"),
        ("${V%/*}", {"V": "a/b/c"}, "a/b"),
        ("${V%%/*}", {"V": "a/b/c"}, "a"),
        ("${V/b/X}", {"V": "abab"}, "aXab"),
        ("${V//b/X}", {"V": "abab"}, "aXaX"),
        ("${V//?/X}", {"V": "abc"}, "XXX"),
        # Go's ReplaceAll does not replace an empty match right after a match.
        ("${V//*/X}", {"V": "abc"}, "X"),
        ("${V#\\*}", {"V": "*x"}, "x"),
        ("${V:-a b}", {}, "a b"),
        ("${V-x}", {"V": ""}, ""),
        ("${V:-x}", {"V": ""}, "x"),
        ("${V+set}", {"V": ""}, "set"),
        ("${V:+set}", {"V": ""}, ""),
    ],
)
def test_modifiers(word: str, env: dict[str, str], expected: str) -> None:
    assert expand(word, env) == expected


def test_backtick_escape() -> None:
    assert expand("a`$b", {"b": "x"}, escape="`") == "a$b"
    assert expand("C:\\dir", {}, escape="`") == "C:\\dir"


def test_skip_unset_keeps_references() -> None:
    assert expand("$A ${B:-x} ${C/y/z}", {}, skip_unset=True) == "$A ${B:-x} ${C/y/z}"


def test_matched_and_unmatched_are_reported() -> None:
    res = Lexer().process("$A ${B} ${C:-$D}", {"A": "1", "C": "3"})
    assert res.matched == {"A", "C"}
    assert res.unmatched == {"B", "D"}


def test_heredoc_word_keeps_blanks() -> None:
    lex = Lexer(raw_quotes=True, raw_escapes=True, skip_unset=True)
    assert list(lex.process("RUN <<  EOF > out", {}).words) == ["RUN", "<<  EOF", ">", "out"]


# -- properties ---------------------------------------------------------------

NAMES = st.sampled_from(["A", "B", "LONG_NAME", "x1", "_u"])
SAFE = st.text(alphabet=string.ascii_letters + string.digits + "./-_,:@", min_size=0, max_size=6)
VALUES = st.text(alphabet=string.ascii_letters + string.digits + " ./-", max_size=8)


@st.composite
def word_and_expected(draw: st.DrawFn) -> tuple[str, dict[str, str], str]:
    env = draw(st.dictionaries(NAMES, VALUES, max_size=4))
    parts: list[str] = []
    expected: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["lit", "plain", "brace", ":-", "-", ":+", "+"]))
        if kind == "lit":
            lit = draw(SAFE)
            parts.append(lit)
            expected.append(lit)
            continue
        name = draw(NAMES)
        value = env.get(name)
        if kind == "plain":
            # A following name character would extend the name: use braces then.
            parts.append("${" + name + "}")
            expected.append(value or "")
            continue
        if kind == "brace":
            parts.append("${" + name + "}")
            expected.append(value or "")
            continue
        word = draw(SAFE)
        parts.append("${" + name + kind + word + "}")
        unset = value is None
        empty = value == ""
        if kind == ":-":
            expected.append(word if unset or empty else value)  # type: ignore[arg-type]
        elif kind == "-":
            expected.append(word if unset else value)  # type: ignore[arg-type]
        elif kind == ":+":
            expected.append("" if unset or empty else word)
        else:
            expected.append("" if unset else word)
    return "".join(parts), env, "".join(expected)


@settings(max_examples=300, deadline=None)
@given(word_and_expected())
def test_expansion_matches_shell_semantics(case: tuple[str, dict[str, str], str]) -> None:
    word, env, expected = case
    assert expand(word, env) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20))
def test_escaping_round_trips(text: str) -> None:
    # Escaping every character yields the text back, unchanged, whatever it is.
    escaped = "".join("\\" + c for c in text)
    assert expand(escaped, {"A": "x"}) == text


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="'"), max_size=20
    )
)
def test_single_quotes_are_literal(text: str) -> None:
    assert expand("'" + text + "'", {"X": "y"}) == text


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet=string.ascii_letters + "./-_", min_size=1, max_size=6), max_size=6)
)
def test_split_words_round_trips(words: list[str]) -> None:
    assert split_words("  ".join(words), {}) == words


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="ab/.", max_size=10),
    st.text(alphabet="ab/.", min_size=1, max_size=3),
)
def test_literal_prefix_suffix_and_replace(value: str, pat: str) -> None:
    env = {"V": value}
    assert expand("${V#" + pat + "}", env) == (
        value[len(pat) :] if value.startswith(pat) else value
    )
    assert expand("${V%" + pat + "}", env) == (value[: -len(pat)] if value.endswith(pat) else value)
    assert expand("${V//" + pat.replace("/", "\\/") + "/X}", env) == value.replace(pat, "X")
    assert expand("${V##*/}", env) == value.rsplit("/", 1)[-1]
