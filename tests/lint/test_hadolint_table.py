"""The README's table of hadolint's rules agrees with the catalog, and lists every rule."""

from __future__ import annotations

import re
from pathlib import Path

from forklift.lint import lint_dockerfile
from forklift.lint.catalog import lookup

README = Path(__file__).resolve().parents[2] / "README.md"
#: every DL rule in hadolint's README (commit 8f936c5) and the ShellCheck codes it lists
HADOLINT_DL = [
    "DL1001",
    "DL3000",
    "DL3001",
    "DL3002",
    "DL3003",
    "DL3004",
    "DL3006",
    "DL3007",
    "DL3008",
    "DL3009",
    "DL3010",
    "DL3011",
    "DL3012",
    "DL3013",
    "DL3014",
    "DL3015",
    "DL3016",
    "DL3018",
    "DL3019",
    "DL3020",
    "DL3021",
    "DL3022",
    "DL3023",
    "DL3024",
    "DL3025",
    "DL3026",
    "DL3027",
    "DL3028",
    "DL3029",
    "DL3030",
    "DL3032",
    "DL3033",
    "DL3034",
    "DL3035",
    "DL3036",
    "DL3037",
    "DL3038",
    "DL3040",
    "DL3041",
    "DL3042",
    "DL3043",
    "DL3044",
    "DL3045",
    "DL3046",
    "DL3047",
    "DL3048",
    "DL3049",
    "DL3050",
    "DL3051",
    "DL3052",
    "DL3053",
    "DL3054",
    "DL3055",
    "DL3056",
    "DL3057",
    "DL3058",
    "DL3059",
    "DL3060",
    "DL3061",
    "DL3062",
    "DL3063",
    "DL3064",
    "DL3065",
    "DL3066",
    "DL3067",
    "DL4000",
    "DL4001",
    "DL4003",
    "DL4004",
    "DL4005",
    "DL4006",
]
HADOLINT_SC = [
    "SC1000",
    "SC1001",
    "SC1007",
    "SC1010",
    "SC1018",
    "SC1035",
    "SC1045",
    "SC1065",
    "SC1066",
    "SC1068",
    "SC1077",
    "SC1078",
    "SC1079",
    "SC1081",
    "SC1083",
    "SC1086",
    "SC1087",
    "SC1091",
    "SC1095",
    "SC1097",
    "SC1098",
    "SC1099",
    "SC2002",
    "SC2015",
    "SC2026",
    "SC2028",
    "SC2035",
    "SC2039",
    "SC2046",
    "SC2086",
    "SC2140",
    "SC2154",
    "SC2155",
    "SC2164",
]


def _table() -> dict[str, str]:
    text = README.read_text()
    section = text[text.index("#### hadolint's rules, one by one") :]
    section = section[: section.index("\n#### ", 10)]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and re.match(r"(DL|SC)\d{4}", cells[0]):
            for ident in cells[0].split(", "):
                assert ident not in rows, f"{ident} listed twice"
                rows[ident] = cells[1]
    return rows


def test_every_hadolint_rule_has_a_row() -> None:
    assert sorted(_table()) == sorted(HADOLINT_DL + HADOLINT_SC)


def test_rows_agree_with_the_catalog() -> None:
    for ident, covered_by in _table().items():
        mapped = sorted(r.id for r in lookup(ident))
        if covered_by in ("none", "(config)", "FL000") or covered_by.endswith("(partly)"):
            assert mapped == [], (ident, mapped)  # not an alias: pragmas must not reach it
        else:
            assert mapped == covered_by.split(", "), (ident, covered_by, mapped)


def test_rules_the_parser_covers_give_fl000() -> None:
    for text in ("RUN echo\nFROM alpine:3.20\n", "FROM alpine:3.20\nONBUILD ONBUILD RUN x\n"):
        assert [f.rule for f in lint_dockerfile(text).findings] == ["FL000"]
