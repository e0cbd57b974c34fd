"""Version pinning (FL216-FL224, FL102): hadolint's own cases decide what counts as pinned."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from forklift.lint import lint_dockerfile
from forklift.lint.catalog import lookup

CASES = json.loads((Path(__file__).parent / "hadolint_pinning_cases.json").read_text())["cases"]


def _rule(hadolint_id: str) -> str:
    (info,) = lookup(hadolint_id)
    return info.id


@pytest.mark.parametrize("case", CASES, ids=[f"{c['rule']}-{i}" for i, c in enumerate(CASES)])
def test_hadolint_cases(case: dict) -> None:
    text = case["dockerfile"]
    if not any(line.upper().startswith("FROM ") for line in text.splitlines()):
        text = "FROM scratch\n" + text  # hadolint's fragments may omit FROM
    findings = lint_dockerfile(text).findings
    assert not [f for f in findings if f.rule == "FL000"], findings
    fired = [f for f in findings if f.rule == _rule(case["rule"])]
    assert bool(fired) == case["fires"], (text, fired)


def _messages(text: str, rule: str) -> list[tuple[int, str]]:
    result = lint_dockerfile(textwrap.dedent(text).lstrip("\n"))
    return [(f.line, f.message) for f in result.findings if f.rule == rule]


def test_messages_name_the_unpinned_packages_at_their_line() -> None:
    text = """
        FROM debian:12
        RUN apt-get update && \\
            apt-get install -y --no-install-recommends curl=8.5.0-2 git wget && \\
            pip install flask==3.0 requests
        """
    assert _messages(text, "FL216") == [
        (
            3,
            "apt-get install git, wget: no versions given, so each build installs whatever is "
            "newest then",
        )
    ]
    assert _messages(text, "FL217") == [
        (
            4,
            "pip install requests: no versions given, so each build installs whatever is newest "
            "then",
        )
    ]


def test_nested_shells_heredocs_and_onbuild_are_read() -> None:
    assert [ln for ln, _ in _messages("FROM alpine:3.20\nRUN sh -c 'apk add curl'\n", "FL219")] == [
        2
    ]
    heredoc = "FROM alpine:3.20\nRUN <<EOF\nset -e\napk add --no-cache curl\nEOF\n"
    assert [ln for ln, _ in _messages(heredoc, "FL219")] == [4]
    assert [
        ln for ln, _ in _messages("FROM node:22\nONBUILD RUN npm install express\n", "FL218")
    ] == [2]


def test_module_streams_and_rpm_variables() -> None:
    (msg,) = _messages("FROM fedora:40\nRUN dnf module install -y nodejs\n", "FL222")
    assert "dnf module install nodejs: no module streams given" in msg[1]
    # $v and ${v} both count when an ARG or ENV declares v; an undeclared one does not
    assert _messages("FROM fedora:40\nARG v=1.2\nRUN dnf install -y git-$v\n", "FL222") == []
    assert _messages("FROM fedora:40\nRUN dnf install -y git-$nope\n", "FL222") != []


def test_gem_flags_without_a_value_do_not_hide_the_gem() -> None:
    # hadolint assumes every gem flag takes a value and misses this one
    assert _messages("FROM ruby:3.3\nRUN gem install --no-document rails\n", "FL220") != []
    assert _messages("FROM ruby:3.3\nRUN gem install --no-document rails:7.1\n", "FL220") == []


def test_hadolint_pragmas_and_ids_reach_the_new_rules() -> None:
    text = "FROM debian:12\n# hadolint ignore=DL3008\nRUN apt-get install -y curl\n"
    assert _messages(text, "FL216") == []
    assert {_rule(h) for h in ("DL3008", "DL3013", "DL3016", "DL3018", "DL3028", "DL3033",
                               "DL3037", "DL3041", "DL3062", "DL3007")} == {
        "FL216", "FL217", "FL218", "FL219", "FL220", "FL221", "FL223", "FL222", "FL224", "FL102"
    }  # fmt: skip
    assert _messages("FROM golang:1.23\nRUN go run main.go\n", "FL224") == []  # a file
