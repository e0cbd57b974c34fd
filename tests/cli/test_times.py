"""``ps`` and ``images`` times read like docker's: go-units' HumanDuration, whose own test
cases (docker/go-units duration_test.go) are the expected values here."""

from __future__ import annotations

import datetime as dt

import pytest

from forklift.cli._common import human_duration, time_ago, time_since

S, M, H = 1, 60, 3600
D = 24 * H
W, MO, Y = 7 * D, 30 * D, 365 * D

GO_UNITS_CASES = [
    (0.45, "Less than a second"),
    (1, "1 second"),
    (45, "45 seconds"),
    (59, "59 seconds"),
    (60, "About a minute"),
    (3 * M, "3 minutes"),
    (35 * M + 40, "35 minutes"),
    (59 * M, "59 minutes"),
    (1 * H, "About an hour"),
    (1 * H + 29 * M, "About an hour"),
    (1 * H + 31 * M, "2 hours"),
    (3 * H + 29 * M, "3 hours"),
    (3 * H + 31 * M, "4 hours"),
    (24 * H, "24 hours"),
    (D + 12 * H, "36 hours"),
    (2 * D, "2 days"),
    (13 * D + 5 * H, "13 days"),
    (2 * W, "2 weeks"),
    (4 * W + 3 * D, "4 weeks"),
    (1 * MO, "4 weeks"),
    (MO + 2 * W, "6 weeks"),
    (2 * MO, "2 months"),
    (5 * MO + 2 * W, "5 months"),
    (24 * MO, "24 months"),
    (24 * MO + 2 * W, "2 years"),
    (3 * Y + 2 * MO, "3 years"),
]


@pytest.mark.parametrize(("seconds", "words"), GO_UNITS_CASES)
def test_human_duration_matches_docker(seconds: float, words: str) -> None:
    assert human_duration(seconds) == words


def test_ago_and_since() -> None:
    # 30 minutes and a few seconds: the words stay the same however slow the machine is
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30, seconds=5)).isoformat()
    assert time_ago(then) == "30 minutes ago"
    assert time_since(then) == "30 minutes"
    assert time_ago(None) == "N/A"
    assert time_ago("2020-01-01T00:00:00Z").endswith("years ago")
