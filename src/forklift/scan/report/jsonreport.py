"""The JSON report: Trivy's field names where Trivy has the field, so CI scripts carry over.

Top level: ``SchemaVersion``, ``CreatedAt``, ``ArtifactName``, ``ArtifactType``,
``Metadata`` (``OS``, ``ImageID``, ``Digest``, ``DiffIDs``, ``Platform``,
``BaseImageLayers``, ``DatabaseBuiltAt``), ``Results`` (one per target: ``Target``,
``Class``, ``Type``, ``Packages``, ``Vulnerabilities``, ``Secrets``),
``Suppressed`` and ``Warnings``. forklift's additions per vulnerability:
``Aliases``, ``Layer.Dockerfile``/``Line``/``InBaseImage``, ``Fix``; per secret:
``DeletedBy`` (the later layer that removed the file; its bytes remain).
"""

from __future__ import annotations

import json
from typing import Any

from forklift.sbom.model import LayerRef
from forklift.scan.attribution import base_layer_count, in_base_image, step, vulnerability_fix
from forklift.scan.findings import ScanResult, Secret, Vulnerability

SCHEMA_VERSION = 2


def layer_json(layer: LayerRef | None, layers: tuple[LayerRef, ...]) -> dict[str, Any] | None:
    if layer is None:
        return None
    out: dict[str, Any] = {
        "Index": layer.index,
        "Digest": layer.digest,
        "DiffID": layer.diff_id,
        "CreatedBy": layer.created_by,
    }
    if layer.line is not None:
        out["Dockerfile"] = layer.dockerfile or "Dockerfile"
        out["Line"] = layer.line
    base = in_base_image(layer, layers)
    if base is not None:
        out["InBaseImage"] = base
    out["Step"] = step(layer)
    return out


def vulnerability_json(v: Vulnerability, layers: tuple[LayerRef, ...]) -> dict[str, Any]:
    p = v.package
    out: dict[str, Any] = {
        "VulnerabilityID": v.id,
        "Aliases": list(v.aliases),
        "PkgID": f"{p.name}@{p.version}",
        "PkgName": p.name,
        "PkgPath": p.location.lstrip("/"),
        "PkgIdentifier": {"PURL": p.purl},
        "InstalledVersion": p.version,
        "FixedVersion": v.fixed,
        "Status": v.status.value,
        "Layer": layer_json(p.layer, layers),
        "SeveritySource": v.severity_source,
        "PrimaryURL": v.url,
        "DataSource": list(v.sources),
        "Title": v.title,
        "Severity": v.severity.value,
        "CVSS": {f"v{c.version}": {"Vector": c.vector, "Score": c.score} for c in v.cvss},
        "References": list(v.references),
        "PublishedDate": v.published,
        "Fix": vulnerability_fix(v, layers),
    }
    if p.ecosystem.is_os:
        out["SrcName"] = p.source_name or p.name
        out["SrcVersion"] = v.installed
    if v.note:
        out["Note"] = v.note
    return out


def secret_json(s: Secret, layers: tuple[LayerRef, ...]) -> dict[str, Any]:
    return {
        "RuleID": s.rule,
        "Category": s.category,
        "Severity": s.severity.value,
        "Title": s.title,
        "Target": s.target,
        "StartLine": s.line,
        "EndLine": s.line,
        "Match": s.match,
        "Layer": layer_json(s.layer, layers),
        "DeletedBy": layer_json(s.deleted_by, layers),
        "Fix": s.fix,
    }


def result_dict(result: ScanResult) -> dict[str, Any]:
    inv = result.inventory
    layers = inv.layers
    meta: dict[str, Any] = {}
    if inv.os is not None:
        meta["OS"] = {"Family": inv.os.id, "Name": inv.os.version_id, "Codename": inv.os.codename}
    if inv.config_digest:
        meta["ImageID"] = inv.config_digest
    if inv.digest:
        meta["Digest"] = inv.digest
    if inv.platform:
        meta["Platform"] = inv.platform
    if layers:
        meta["DiffIDs"] = [layer.diff_id for layer in layers]
        base = base_layer_count(layers)
        if base is not None:
            meta["BaseImageLayers"] = base
    meta["DatabaseBuiltAt"] = result.db_built_at
    results = []
    for t in result.targets:
        entry: dict[str, Any] = {"Target": t.name, "Class": t.cls}
        if t.type:
            entry["Type"] = t.type
        if t.cls != "secret":
            entry["Packages"] = t.packages
            entry["Vulnerabilities"] = [vulnerability_json(v, layers) for v in t.vulnerabilities]
        else:
            entry["Secrets"] = [secret_json(s, layers) for s in t.secrets]
        results.append(entry)
    suppressed = []
    for s in result.suppressed:
        f = s.finding
        item: dict[str, Any]
        if isinstance(f, Vulnerability):
            item = {"Type": "vulnerability", **vulnerability_json(f, layers)}
        else:
            item = {"Type": "secret", **secret_json(f, layers)}
        item["Reason"] = s.reason
        if s.statement:
            item["Statement"] = s.statement
        suppressed.append(item)
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "CreatedAt": result.created_at,
        "ArtifactName": result.artifact,
        "ArtifactType": result.artifact_type,
        "Metadata": meta,
        "Results": results,
        "Suppressed": suppressed,
        "Warnings": list(result.warnings),
    }


def render_json(result: ScanResult) -> str:
    return json.dumps(result_dict(result), indent=2, ensure_ascii=False) + "\n"
