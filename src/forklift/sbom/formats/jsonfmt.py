"""forklift's own JSON: the :class:`~forklift.sbom.model.Inventory` field for field, and back.

Sorted keys, packages in inventory order, layers by index: the same image
gives the same bytes. ``load`` turns a document back into an ``Inventory``
(what ``forklift scan`` can read instead of the image).
"""

from __future__ import annotations

import json
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.sbom.model import Ecosystem, Inventory, LayerRef, OSInfo, Package

SCHEMA = "https://forklift.invalid/schemas/sbom-inventory/v1"


def _layer(layer: LayerRef) -> dict[str, Any]:
    out: dict[str, Any] = {"index": layer.index, "digest": layer.digest}
    if layer.diff_id:
        out["diffID"] = layer.diff_id
    if layer.created_by:
        out["createdBy"] = layer.created_by
    if layer.line is not None:
        out["dockerfile"] = layer.dockerfile or "Dockerfile"
        out["line"] = layer.line
    return out


def _package(p: Package, files: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": p.name,
        "version": p.version,
        "type": p.ecosystem.value,
        "purl": p.purl,
        "layer": p.layer.index if p.layer is not None else None,
    }
    for key, value in (("sourceName", p.source_name), ("sourceVersion", p.source_version),
                       ("arch", p.arch), ("location", p.location)):  # fmt: skip
        if value:
            out[key] = value
    if p.licenses:
        out["licenses"] = list(p.licenses)
    if p.cpes:
        out["cpes"] = list(p.cpes)
    if p.extra:
        out["extra"] = [[k, v] for k, v in p.extra]
    if files and p.files:
        out["files"] = list(p.files)
    return out


def to_dict(inv: Inventory, *, files: bool = False) -> dict[str, Any]:
    """The inventory as plain JSON values."""
    doc: dict[str, Any] = {"schema": SCHEMA, "target": inv.target}
    if inv.digest:
        doc["digest"] = inv.digest
    if inv.config_digest:
        doc["configDigest"] = inv.config_digest
    if inv.platform:
        doc["platform"] = inv.platform
    if inv.os is not None:
        doc["os"] = {k: v for k, v in (("id", inv.os.id), ("versionID", inv.os.version_id),
                     ("codename", inv.os.codename), ("prettyName", inv.os.pretty_name)) if v}  # fmt: skip
    doc["layers"] = [_layer(layer) for layer in inv.layers]
    doc["packages"] = [_package(p, files) for p in inv.packages]
    doc["warnings"] = list(inv.warnings)
    return doc


def dump(inv: Inventory, *, files: bool = False) -> str:
    """The JSON document (compact, keys sorted, newline-terminated)."""
    return (
        json.dumps(
            to_dict(inv, files=files), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        + "\n"
    )


def _str(d: dict[str, Any], key: str, where: str) -> str:
    value = d.get(key, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: {key} is not a string")
    return value


def load(text: str | bytes) -> Inventory:
    """An :class:`Inventory` from a document :func:`dump` wrote."""
    doc = canonical.loads(text, "forklift SBOM")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise InvalidInput("not a forklift JSON SBOM (its 'schema' field is missing or different)")
    layers = []
    for i, raw in enumerate(doc.get("layers") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("index"), int):
            raise InvalidInput(f"forklift SBOM: layers[{i}] is not a layer")
        line = raw.get("line")
        layers.append(LayerRef(raw["index"], _str(raw, "digest", f"layers[{i}]"),
                               _str(raw, "diffID", f"layers[{i}]"),
                               _str(raw, "createdBy", f"layers[{i}]"),
                               _str(raw, "dockerfile", f"layers[{i}]") if line is not None else "",
                               line if isinstance(line, int) else None))  # fmt: skip
    by_index = {layer.index: layer for layer in layers}
    packages = []
    for i, raw in enumerate(doc.get("packages") or []):
        where = f"packages[{i}]"
        if not isinstance(raw, dict):
            raise InvalidInput(f"forklift SBOM: {where} is not an object")
        try:
            eco = Ecosystem(_str(raw, "type", where))
        except ValueError:
            raise InvalidInput(
                f"forklift SBOM: {where}: unknown type {raw.get('type')!r}"
            ) from None
        layer = raw.get("layer")
        packages.append(
            Package(
                name=_str(raw, "name", where),
                version=_str(raw, "version", where),
                ecosystem=eco,
                purl=_str(raw, "purl", where),
                layer=by_index.get(layer) if isinstance(layer, int) else None,
                source_name=_str(raw, "sourceName", where),
                source_version=_str(raw, "sourceVersion", where),
                arch=_str(raw, "arch", where),
                licenses=tuple(str(x) for x in raw.get("licenses") or []),
                location=_str(raw, "location", where),
                files=tuple(str(x) for x in raw.get("files") or []),
                cpes=tuple(str(x) for x in raw.get("cpes") or []),
                extra=tuple((str(k), str(v)) for k, v in raw.get("extra") or []),
            )
        )
    os_doc = doc.get("os")
    os_info = None
    if isinstance(os_doc, dict):
        os_info = OSInfo(_str(os_doc, "id", "os"), _str(os_doc, "versionID", "os"),
                         _str(os_doc, "codename", "os"), _str(os_doc, "prettyName", "os"))  # fmt: skip
    return Inventory(
        target=_str(doc, "target", "document"),
        digest=_str(doc, "digest", "document"),
        config_digest=_str(doc, "configDigest", "document"),
        platform=_str(doc, "platform", "document"),
        os=os_info,
        layers=tuple(layers),
        packages=tuple(packages),
        warnings=tuple(str(w) for w in doc.get("warnings") or []),
    )
