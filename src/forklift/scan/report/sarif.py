"""SARIF 2.1.0 for GitHub code scanning: a rule per vulnerability (or secret rule),
a result per affected package, located in the Dockerfile line that installed it
when forklift built the image, else at the package's file in the image.

GitHub reads ``properties.security-severity`` (a CVSS-like number) to rank
security results and ``partialFingerprints`` to track them across runs;
suppressed findings are kept with a ``suppressions`` entry (shown as dismissed).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from forklift.scan.attribution import step, vulnerability_fix
from forklift.scan.db.model import Severity
from forklift.scan.findings import ScanResult, Secret, Vulnerability

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}
_SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.UNKNOWN: "0.0",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("forklift")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _location(uri: str, line: int) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": uri, "uriBaseId": "ROOTPATH"},
            "region": {
                "startLine": max(line, 1),
                "startColumn": 1,
                "endLine": max(line, 1),
                "endColumn": 1,
            },
        }
    }


def _where(layer: Any, fallback: str, line: int = 1) -> tuple[str, int]:
    if layer is not None and layer.line is not None:
        return layer.dockerfile or "Dockerfile", layer.line
    return fallback.lstrip("/") or "image", line


def _vuln_rule(v: Vulnerability) -> dict[str, Any]:
    score = max((c.score for c in v.cvss), default=None)
    text = v.title or v.id
    return {
        "id": v.id,
        "name": "OsPackageVulnerability"
        if v.package.ecosystem.is_os
        else "LanguageSpecificPackageVulnerability",
        "shortDescription": {"text": text[:200]},
        "fullDescription": {"text": text},
        "helpUri": v.url,
        "help": {
            "text": f"Vulnerability {v.id}\nSeverity: {v.severity.value}\nPackage: {v.package.name}\n"
            f"Fixed version: {v.fixed or 'none'}\nLink: {v.url}",
            "markdown": f"**Vulnerability {v.id}**\n| Severity | Package | Fixed version | Link |\n"
            f"| --- | --- | --- | --- |\n|{v.severity.value}|{v.package.name}|{v.fixed or 'none'}|"
            f"[{v.id}]({v.url})|\n\n{text}",
        },
        "defaultConfiguration": {"level": _LEVEL[v.severity]},
        "properties": {
            "precision": "very-high",
            "security-severity": f"{score:.1f}" if score is not None else _SCORE[v.severity],
            "tags": ["vulnerability", "security", v.severity.value],
        },
    }


def _secret_rule(s: Secret) -> dict[str, Any]:
    return {
        "id": s.rule,
        "name": s.category,
        "shortDescription": {"text": s.title},
        "fullDescription": {"text": f"{s.title} ({s.category})"},
        "help": {"text": s.fix, "markdown": s.fix},
        "defaultConfiguration": {"level": _LEVEL[s.severity]},
        "properties": {
            "precision": "very-high",
            "security-severity": _SCORE[s.severity],
            "tags": ["secret", "security", s.severity.value],
        },
    }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def _vuln_result(v: Vulnerability, result: ScanResult, rule_index: int) -> dict[str, Any]:
    layers = result.inventory.layers
    uri, line = _where(v.package.layer, v.package.location or result.artifact)
    where = step(v.package.layer)
    msg = (
        f"Package: {v.package.name}\nInstalled Version: {v.package.version}\n"
        f"Vulnerability {v.id}\nSeverity: {v.severity.value}\nFixed Version: {v.fixed or 'none'}\n"
        f"Link: [{v.id}]({v.url})"
        + (f"\nLayer: {where}" if where else "")
        + f"\nFix: {vulnerability_fix(v, layers)}"
    )
    return {
        "ruleId": v.id,
        "ruleIndex": rule_index,
        "level": _LEVEL[v.severity],
        "message": {"text": msg},
        "locations": [_location(uri, line)],
        "partialFingerprints": {
            "forkliftScan/v1": _fingerprint(
                v.id, v.package.name, v.package.version, result.artifact
            )
        },
    }


def _secret_result(s: Secret, result: ScanResult, rule_index: int) -> dict[str, Any]:
    uri, line = _where(
        s.layer, s.target if not s.target.startswith("config:") else result.artifact, s.line
    )
    msg = f"{s.title} in {s.target}" + (f":{s.line}" if s.line else "") + f": {s.match}"
    if s.deleted_by is not None:
        msg += f" (deleted by {step(s.deleted_by)}, still in the image)"
    msg += f"\nFix: {s.fix}"
    return {
        "ruleId": s.rule,
        "ruleIndex": rule_index,
        "level": _LEVEL[s.severity],
        "message": {"text": msg},
        "locations": [_location(uri, line)],
        "partialFingerprints": {
            "forkliftScan/v1": _fingerprint(s.rule, s.target, str(s.line), result.artifact)
        },
    }


def render_sarif(result: ScanResult) -> str:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []

    def rule_for(f: Vulnerability | Secret) -> int:
        rid = f.id if isinstance(f, Vulnerability) else f.rule
        if rid not in index:
            index[rid] = len(rules)
            rules.append(_vuln_rule(f) if isinstance(f, Vulnerability) else _secret_rule(f))
        return index[rid]

    findings: list[Vulnerability | Secret] = [*result.vulnerabilities, *result.secrets]
    for f in findings:
        i = rule_for(f)
        results.append(
            _vuln_result(f, result, i)
            if isinstance(f, Vulnerability)
            else _secret_result(f, result, i)
        )
    for s in result.suppressed:
        i = rule_for(s.finding)
        f = s.finding
        r = (
            _vuln_result(f, result, i)
            if isinstance(f, Vulnerability)
            else _secret_result(f, result, i)
        )
        r["suppressions"] = [
            {"kind": "external", "justification": f"{s.reason}: {s.statement}".rstrip(": ")}
        ]
        results.append(r)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "forklift-scan",
                        "informationUri": "https://github.com/forklift",
                        "version": _version(),
                        "semanticVersion": _version(),
                        "rules": rules,
                    }
                },
                "results": results,
                "columnKind": "utf16CodeUnits",
                "originalUriBaseIds": {"ROOTPATH": {"uri": "file:///"}},
                "properties": {
                    "imageName": result.artifact,
                    "imageID": result.inventory.config_digest,
                    "repoDigests": [result.inventory.digest] if result.inventory.digest else [],
                },
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
