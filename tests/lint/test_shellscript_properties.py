"""The shell splitter never fails and keeps every simple command's words."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.lint.shellscript import parse_script

word = st.text(alphabet="abcdefgxyz-_./=", min_size=1, max_size=8).filter(
    lambda w: not w.startswith("#") and w not in ("if", "then", "fi", "do", "done", "for", "case")
)
command = st.lists(word, min_size=1, max_size=5)
op = st.sampled_from([" && ", " || ", "; ", " | ", "\n", " &\n"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(command, op), min_size=1, max_size=6))
def test_commands_and_operators_round_trip(parts) -> None:  # type: ignore[no-untyped-def]
    text = "".join(" ".join(words) + sep for words, sep in parts)
    script = parse_script(text)
    # words that look like VAR=value at the start are assignments, not argv
    got = [list(c.assignments) + list(c.argv) for c in script.commands]
    assert got == [words for words, _ in parts]
    connectors = [c.connector for c in script.commands[1:]]
    assert connectors == [
        sep.strip() or "\n" if sep.strip() != "&" else "&" for _, sep in parts[:-1]
    ]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_never_raises(text: str) -> None:
    parse_script(text)
