"""Lint output formats: terminal, JSON, SARIF 2.1.0, Checkstyle XML, GitLab Code Quality.

Every renderer takes the results of one run (one :class:`LintResult` per
file) and returns text; the terminal renderer writes to a rich console.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from forklift.lint.catalog import RULES, RuleInfo
from forklift.lint.findings import Finding, LintResult, Severity
from forklift.textutil import plural

FORMATS = ("terminal", "json", "sarif", "checkstyle", "gitlab")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
JSON_VERSION = 1

_SARIF_LEVEL = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
    Severity.STYLE: "note",
}
_GITLAB_SEVERITY = {
    Severity.ERROR: "critical",
    Severity.WARNING: "major",
    Severity.INFO: "minor",
    Severity.STYLE: "info",
}
_CHECKSTYLE_SEVERITY = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
    Severity.STYLE: "info",
}


def _version() -> str:
    from forklift import __version__

    return __version__


def finding_json(f: Finding) -> dict[str, Any]:
    """One finding as the JSON format writes it."""
    info = RULES[f.rule]
    return {
        "file": f.file,
        "line": f.line,
        "column": f.column,
        "end_line": f.end_line or f.line,
        "rule": f.rule,
        "name": f.name,
        "severity": f.severity.label,
        "message": f.message,
        "fix": f.fix,
        "buildkit": info.buildkit or None,
        "hadolint": list(info.hadolint),
    }


def summary(results: Sequence[LintResult]) -> dict[str, Any]:
    """Counts per severity and in total."""
    counts = Counter(f.severity.label for r in results for f in r.findings)
    return {
        "files": len(results),
        "findings": sum(counts.values()),
        **{s.label: counts.get(s.label, 0) for s in sorted(Severity, reverse=True)},
    }


def render_json(results: Sequence[LintResult], threshold: Severity | None = None) -> str:
    """``{"version": 1, "findings": [...], "summary": {...}, "failed": bool}``."""
    doc = {
        "version": JSON_VERSION,
        "findings": [finding_json(f) for r in results for f in r.findings],
        "summary": summary(results),
        "failed": any(r.fails(threshold) for r in results),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _uri(path: str) -> str:
    if path == "-":
        return "stdin"
    p = PurePath(path)
    if p.is_absolute():
        return p.as_uri()
    return p.as_posix()


def _rule_sarif(info: RuleInfo) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": info.summary},
        "help": {"text": f"Fix: {info.fix}"},
        "defaultConfiguration": {"level": _SARIF_LEVEL[info.severity]},
        "properties": {
            "tags": [info.category],
            "hadolint": list(info.hadolint),
        },
    }
    if info.buildkit:
        rule["properties"]["buildkit"] = info.buildkit
    if info.help_uri:
        rule["helpUri"] = info.help_uri
    return rule


def render_sarif(results: Sequence[LintResult]) -> str:
    """A SARIF 2.1.0 log with one run (what GitHub code scanning uploads)."""
    rule_ids = list(RULES)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    sarif_results = []
    artifacts: dict[str, int] = {}
    for r in results:
        for f in r.findings:
            uri = _uri(f.file)
            artifacts.setdefault(uri, len(artifacts))
            region: dict[str, Any] = {"startLine": f.line, "endLine": max(f.end_line, f.line)}
            if f.column:
                region["startColumn"] = f.column
            text = f.message if not f.fix else f"{f.message}. Fix: {f.fix}"
            sarif_results.append(
                {
                    "ruleId": f.rule,
                    "ruleIndex": index[f.rule],
                    "level": _SARIF_LEVEL[f.severity],
                    "message": {"text": text},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": uri, "index": artifacts[uri]},
                                "region": region,
                            }
                        }
                    ],
                    "partialFingerprints": {
                        "forkliftLint/v1": hashlib.sha256(
                            f"{f.rule}\0{uri}\0{f.message}".encode("utf-8", "surrogateescape")
                        ).hexdigest()
                    },
                }
            )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "forklift-lint",
                        "version": _version(),
                        "semanticVersion": _version(),
                        "rules": [_rule_sarif(RULES[rid]) for rid in rule_ids],
                    }
                },
                "artifacts": [{"location": {"uri": u}} for u in artifacts],
                "results": sarif_results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _with_fix(message: str, fix: str | None) -> str:
    """``message. Fix: fix`` as one sentence pair, without doubling a final full stop."""
    if not fix:
        return message
    sep = " " if message.endswith((".", "!", "?")) else ". "
    return f"{message}{sep}Fix: {fix}"


def render_checkstyle(results: Sequence[LintResult]) -> str:
    """Checkstyle 4.3 XML, one ``<file>`` per Dockerfile."""
    root = ET.Element("checkstyle", version="4.3")
    for r in results:
        fe = ET.SubElement(root, "file", name=r.file)
        for f in r.findings:
            attrs = {
                "line": str(f.line),
                "severity": _CHECKSTYLE_SEVERITY[f.severity],
                "message": _with_fix(f.message, f.fix),
                "source": f"forklift.lint.{f.rule}",
            }
            if f.column:
                attrs["column"] = str(f.column)
            ET.SubElement(fe, "error", attrs)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def render_gitlab(results: Sequence[LintResult]) -> str:
    """GitLab Code Quality report (a JSON array of issues)."""
    issues = []
    for r in results:
        for f in r.findings:
            fp = hashlib.md5(
                f"{f.rule}\0{f.file}\0{f.line}\0{f.message}".encode("utf-8", "surrogateescape"),
                usedforsecurity=False,
            ).hexdigest()
            issues.append(
                {
                    "description": f"{f.rule} {f.message}",
                    "check_name": f.rule,
                    "fingerprint": fp,
                    "severity": _GITLAB_SEVERITY[f.severity],
                    "location": {"path": f.file, "lines": {"begin": f.line}},
                    "categories": ["Style" if f.severity is Severity.STYLE else "Bug Risk"],
                }
            )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


_STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
    Severity.STYLE: "magenta",
}


def render_terminal(results: Sequence[LintResult], console: Any) -> None:
    """Findings grouped by file, coloured by severity, with the fix under each."""
    from rich.text import Text

    for r in results:
        if not r.findings:
            continue
        console.print(Text(r.file, style="bold underline"))
        for f in r.findings:
            pos = f"{f.line}:{f.column}" if f.column else f"{f.line}"
            line = Text("  ")
            line.append(f"{pos:>7}  ", style="dim")
            line.append(f"{f.severity.label:<7}", style=_STYLE[f.severity])
            line.append(f"  {f.rule}  ", style="bold")
            line.append(f.message)
            line.append(f"  [{f.name}]", style="dim")
            console.print(line)
            if f.fix:
                console.print(Text(f"{'':11}fix: {f.fix}", style="green"))
        console.print()
    s = summary(results)
    if s["findings"] == 0:
        console.print(Text(f"No problems in {plural(s['files'], 'file')}.", style="green"))
        return
    parts = [
        f"{s[sev.label]} {sev.label}" for sev in sorted(Severity, reverse=True) if s[sev.label]
    ]
    console.print(
        Text(
            f"{plural(s['findings'], 'problem')} in {plural(s['files'], 'file')}: "
            + ", ".join(parts)
        )
    )
