"""A CycloneDX 1.6 vulnerability report: the image, its packages, and what affects them.

Each vulnerability lists its ratings (the chosen severity, and every CVSS
vector with its score and method), its aliases as references, and the package
it ``affects`` (by ``bom-ref``). Suppressed findings are included with an
``analysis`` (``not_affected`` for VEX statements, ``false_positive`` is never
claimed) so the report doubles as a VEX document.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from forklift.scan.findings import ScanResult, Vulnerability
from forklift.scan.report.sarif import _version

_METHOD = {"2.0": "CVSSv2", "3.0": "CVSSv3", "3.1": "CVSSv31", "4.0": "CVSSv4"}
_JUSTIFY = {
    "component_not_present": "code_not_present",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "protected_by_mitigating_control",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}


def _vuln(v: Vulnerability, ref: str, analysis: dict[str, Any] | None = None) -> dict[str, Any]:
    ratings: list[dict[str, Any]] = [
        {"source": {"name": v.severity_source or "forklift"}, "severity": v.severity.value.lower()}
    ]
    for c in v.cvss:
        ratings.append(
            {
                "source": {"name": ",".join(v.sources)},
                "score": c.score,
                "method": _METHOD.get(c.version, "other"),
                "vector": c.vector,
            }
        )
    out: dict[str, Any] = {
        "bom-ref": f"{v.id}:{ref}",
        "id": v.id,
        "source": {"name": ",".join(v.sources) or "forklift", "url": v.url},
        "references": [{"id": a, "source": {"name": a.split("-", 1)[0]}} for a in v.aliases],
        "ratings": ratings,
        "description": v.title,
        "advisories": [
            {"url": u} for u in v.references[:5] if u.startswith(("http://", "https://"))
        ],
        "affects": [
            {"ref": ref, "versions": [{"version": v.package.version, "status": "affected"}]}
        ],
    }
    if v.fixed:
        out["recommendation"] = f"Upgrade {v.package.name} to {v.fixed}"
    if analysis is not None:
        out["analysis"] = analysis
    return out


def render_cyclonedx(result: ScanResult) -> str:
    inv = result.inventory
    root_ref = "image"
    components: dict[str, dict[str, Any]] = {}

    def component(v: Vulnerability) -> str:
        p = v.package
        ref = p.purl or f"{p.ecosystem.value}:{p.name}@{p.version}"
        if ref not in components:
            components[ref] = {
                "bom-ref": ref,
                "type": "library",
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
            }
        return ref

    vulns = [_vuln(v, component(v)) for v in result.vulnerabilities]
    for s in result.suppressed:
        if not isinstance(s.finding, Vulnerability):
            continue
        analysis: dict[str, Any] = {"state": "not_affected" if "VEX" in s.reason else "exploitable"}
        if "VEX" in s.reason and s.statement in _JUSTIFY:
            analysis["justification"] = _JUSTIFY[s.statement]
        analysis["detail"] = f"{s.reason}" + (f": {s.statement}" if s.statement else "")
        if "VEX" not in s.reason:
            analysis = {"state": "not_affected", "detail": analysis["detail"]}
        vulns.append(_vuln(s.finding, component(s.finding), analysis))
    bom: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": result.created_at or None,
            "tools": {
                "components": [{"type": "application", "name": "forklift", "version": _version()}]
            },
            "component": {
                "bom-ref": root_ref,
                "type": "container" if result.artifact_type == "container_image" else "application",
                "name": result.artifact,
                **({"version": inv.digest} if inv.digest else {}),
            },
        },
        "components": sorted(components.values(), key=lambda c: c["bom-ref"]),
        "vulnerabilities": vulns,
    }
    if not bom["metadata"]["timestamp"]:
        del bom["metadata"]["timestamp"]
    return json.dumps(bom, indent=2, ensure_ascii=False) + "\n"
