"""Inline ignores, the config file, output formats (SARIF validated against its schema)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from forklift.errors import ParseError
from forklift.lint import LintConfig, Severity, lint_dockerfile
from forklift.lint.report import render_checkstyle, render_gitlab, render_json, render_sarif

SCHEMA = Path(__file__).parent / "sarif-schema-2.1.0.json"
SAMPLE = "FROM ubuntu\nRUN apt-get update && apt-get install curl\nCMD echo hi\n"


def rules(result) -> set[tuple[str, int]]:  # type: ignore[no-untyped-def]
    return {(f.rule, f.line) for f in result.findings}


def test_forklift_pragma_ignores_the_next_instruction_only() -> None:
    text = (
        "FROM alpine:3.20\n"
        "# forklift-lint ignore=FL206,consecutive-run\n"
        "RUN apk add curl\n"
        "RUN apk add git\n"
    )
    found = rules(lint_dockerfile(text))
    assert ("FL206", 3) not in found
    assert ("FL206", 4) in found
    assert ("FL209", 4) in found  # the pragma was on line 3's RUN, not line 4's


def test_hadolint_pragmas_are_mapped() -> None:
    text = "# hadolint ignore=DL3006\nFROM ubuntu\n# hadolint ignore=DL3015,SC2086\nRUN apt-get install -y x\n"
    found = rules(lint_dockerfile(text))
    assert ("FL101", 2) not in found
    assert ("FL204", 4) not in found
    assert ("FL203", 4) not in found  # it has -y
    assert ("FL205", 4) in found  # DL3009 was not ignored


def test_global_pragma() -> None:
    text = "FROM alpine:3.20\nRUN apk add a\n# hadolint global ignore=DL3019\nRUN apk add b\n"
    assert not [f for f in lint_dockerfile(text).findings if f.rule == "FL206"]


def test_buildkit_check_directive() -> None:
    text = "# check=skip=JSONArgsRecommended;error=true\nFROM alpine:3.20\nCMD echo\nENV A 1\n"
    result = lint_dockerfile(text)
    assert not [f for f in result.findings if f.rule == "FL504"]
    (legacy,) = [f for f in result.findings if f.rule == "FL517"]
    assert legacy.severity is Severity.ERROR
    skip_all = lint_dockerfile("# check=skip=all\nFROM alpine:3.20\nCMD echo\n")
    assert not [f for f in skip_all.findings if f.rule == "FL504"]


def test_config_file(tmp_path: Path) -> None:
    cfg_file = tmp_path / ".forklift-lint.yaml"
    cfg_file.write_text(
        "ignored: [DL3006]\n"
        "override:\n  error: [apt-install-no-yes]\n  style: [FL504]\n"
        "trusted-registries: [docker.io]\n"
        "failure-threshold: error\n"
    )
    cfg = LintConfig.load(cfg_file)
    assert cfg.failure_threshold is Severity.ERROR
    result = lint_dockerfile(SAMPLE + "FROM quay.io/x/y:1\n", config=cfg)
    by_rule = {f.rule: f for f in result.findings}
    assert "FL101" not in by_rule
    assert by_rule["FL203"].severity is Severity.ERROR
    assert by_rule["FL504"].severity is Severity.STYLE
    assert "FL106" in by_rule
    assert result.fails(cfg.failure_threshold)
    assert not result.fails(None)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("ignored: [NOPE123]\n", "unknown rule"),
        ("bogus: 1\n", "unknown key"),
        ("failure-threshold: loud\n", "failure-threshold"),
        ("ignored: [a\n", "invalid YAML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, content: str, needle: str) -> None:
    p = tmp_path / ".forklift-lint.yaml"
    p.write_text(content)
    with pytest.raises(ParseError) as exc:
        LintConfig.load(p)
    assert needle in str(exc.value)
    assert str(p) in str(exc.value)


def test_sarif_is_valid_sarif_2_1_0() -> None:
    schema = json.loads(SCHEMA.read_text())
    results = [
        lint_dockerfile(SAMPLE, filename="app/Dockerfile"),
        lint_dockerfile("FROM alpine:3.20\n", filename="/abs/Dockerfile"),
    ]
    log = json.loads(render_sarif(results))
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    first = run["results"][0]
    assert rule_ids[first["ruleIndex"]] == first["ruleId"]
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert "app/Dockerfile" in uris
    assert "file:///abs/Dockerfile" in uris
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["FL203"] == "warning" and levels["FL204"] == "note"
    bk = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "FL504")
    assert bk["helpUri"].endswith("/json-args-recommended/")


def test_sarif_schema_rejects_broken_logs() -> None:
    # The schema is strict enough that the validation above means something.
    schema = json.loads(SCHEMA.read_text())
    log = json.loads(render_sarif([lint_dockerfile(SAMPLE)]))
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, schema)


def test_json_checkstyle_gitlab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = [lint_dockerfile(SAMPLE, filename="Dockerfile")]
    doc = json.loads(render_json(results, Severity.WARNING))
    assert doc["failed"] is True
    assert doc["summary"]["findings"] == len(doc["findings"])
    f203 = next(f for f in doc["findings"] if f["rule"] == "FL203")
    assert f203["hadolint"] == ["DL3014"] and f203["line"] == 2 and f203["fix"]
    root = ET.fromstring(render_checkstyle(results))
    errors = root.findall("./file/error")
    assert root.find("file").get("name") == "Dockerfile"
    assert {e.get("source") for e in errors} >= {"forklift.lint.FL203", "forklift.lint.FL504"}
    # message and fix read as two sentences: never "..", never a missing stop (the context
    # "." once ended FL301's message with a dot)
    monkeypatch.chdir(tmp_path)
    results = [lint_dockerfile(SAMPLE, filename="Dockerfile", context=".")]
    root = ET.fromstring(render_checkstyle(results))
    errors = root.findall("./file/error")
    assert "forklift.lint.FL301" in {e.get("source") for e in errors}
    for e in errors:
        message = e.get("message")
        assert ". Fix: " in message and ".. Fix" not in message, message
    issues = json.loads(render_gitlab(results))
    assert {i["severity"] for i in issues} <= {"info", "minor", "major", "critical", "blocker"}
    assert all(i["location"]["path"] == "Dockerfile" and i["fingerprint"] for i in issues)
    assert len({i["fingerprint"] for i in issues}) == len(issues)
