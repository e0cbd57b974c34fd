"""``forklift lint`` as users run it: exit codes, thresholds, stdin, formats, context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GOOD = (
    "FROM alpine:3.20@sha256:"
    + "c" * 64
    + '\nRUN apk add --no-cache curl=8.9.1-r0\nUSER app\nCMD ["sh"]\n'
)
WARN = "FROM alpine:3.20\nUSER app\nCMD echo hi\n"  # FL504 warning


def run(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "forklift", "lint", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, "FORKLIFT_HOME": str(cwd / "home")},
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def test_exit_codes_follow_the_threshold(tmp_path: Path) -> None:
    (tmp_path / "ok.Dockerfile").write_text(GOOD)
    (tmp_path / "warn.Dockerfile").write_text(WARN)
    assert run("ok.Dockerfile", cwd=tmp_path).returncode == 0
    r = run("warn.Dockerfile", cwd=tmp_path)
    assert r.returncode == 1
    assert "FL504" in r.stdout and "warn.Dockerfile" in r.stdout
    assert run("warn.Dockerfile", "--failure-threshold", "error", cwd=tmp_path).returncode == 0
    assert run("warn.Dockerfile", "-t", "none", cwd=tmp_path).returncode == 0
    assert run("ok.Dockerfile", "-t", "info", cwd=tmp_path).returncode == 0


def test_config_threshold_and_ignore_flag(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(WARN)
    (tmp_path / ".forklift-lint.yaml").write_text("failure-threshold: error\n")
    (tmp_path / ".dockerignore").write_text(".git\n")
    assert run(cwd=tmp_path).returncode == 0  # ./Dockerfile by default, config found in .
    r = run("Dockerfile", "--ignore", "DL3025", "-t", "warning", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout
    assert not [f for f in json.loads(r.stdout)["findings"] if f["rule"] == "FL504"]
    bad = run("Dockerfile", "--ignore", "NOPE", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("Error: --ignore: unknown rule")


def test_stdin_and_formats(tmp_path: Path) -> None:
    r = run("-", "--format", "sarif", cwd=tmp_path, stdin=WARN.encode())
    log = json.loads(r.stdout)
    assert log["version"] == "2.1.0"
    assert (
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "stdin"
    )
    r = run("-", "--format", "checkstyle", cwd=tmp_path, stdin=WARN.encode())
    assert r.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    r = run("-", "--format", "gitlab", cwd=tmp_path, stdin=WARN.encode())
    assert json.loads(r.stdout)[0]["check_name"]


def test_missing_file_and_syntax_error_are_one_line(tmp_path: Path) -> None:
    r = run("nope.Dockerfile", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: nope.Dockerfile: no such Dockerfile"
    (tmp_path / "bad").write_text("FROM alpine:3.20\nRUN <<EOF\n")
    r = run("bad", "--format", "json", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (f,) = json.loads(r.stdout)["findings"]
    assert f["rule"] == "FL000" and f["line"] == 2


def test_context_rules_from_the_cli(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / ".git").mkdir(parents=True)
    (tmp_path / "Dockerfile").write_text(GOOD)
    r = run("Dockerfile", "--context", str(ctx), "--format", "json", cwd=tmp_path)
    assert [f["rule"] for f in json.loads(r.stdout)["findings"]] == ["FL301"]
    assert r.returncode == 1


def test_list_rules(tmp_path: Path) -> None:
    r = run("--list-rules", cwd=tmp_path)
    assert r.returncode == 0
    assert "FL512  warning  undefined-var" in r.stdout and "UndefinedVar" in r.stdout
