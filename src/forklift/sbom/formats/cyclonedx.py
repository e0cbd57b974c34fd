"""CycloneDX 1.6 JSON.

* ``metadata.component`` is the image: type ``container``, its name, the
  manifest digest as version and hash, a ``pkg:oci`` purl, the platform and
  layers as properties.
* The distribution is an ``operating-system`` component; every package is a
  ``library`` with its purl, licences (one SPDX ``expression`` when every
  declared licence parses as SPDX, else each one by ``name``), the file it was
  found in as ``evidence.occurrences``, and ``forklift:*`` properties: the
  package type, source package, and the layer (index, digest, diff ID,
  ``created_by``, Dockerfile line).
* ``dependencies``: the image depends on the OS and on every package it
  contains directly; the OS on its packages.

bom-refs are derived from each package's identity, the serial number from
the image digest and the findings, the timestamp from ``SOURCE_DATE_EPOCH``
when set: the same image gives the same document.
"""

from __future__ import annotations

import json
from typing import Any

from forklift.sbom import licenses
from forklift.sbom.formats.common import (
    TOOL,
    document_uuid,
    image_purl,
    layer_props,
    package_id,
    timestamp,
    tool_version,
)
from forklift.sbom.model import Inventory, Package

SCHEMA = "http://cyclonedx.org/schema/bom-1.6.schema.json"
IMAGE_REF = "image"
OS_REF = "os"


def _props(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs if v]


def _licenses(declared: tuple[str, ...]) -> list[dict[str, Any]]:
    if not declared:
        return []
    if all(licenses.is_spdx(x) for x in declared):
        if len(declared) == 1:
            expression = declared[0]
        else:
            expression = " AND ".join(f"({x})" if " " in x else x for x in declared)
        return [{"expression": expression}]
    return [{"license": {"name": x}} for x in declared]


def _component(p: Package, files: bool) -> dict[str, Any]:
    c: dict[str, Any] = {
        "bom-ref": f"pkg:{package_id(p)}",
        "type": "library",
        "name": p.name,
    }
    if p.version:
        c["version"] = p.version
    lic = _licenses(p.licenses)
    if lic:
        c["licenses"] = lic
    if p.purl:
        c["purl"] = p.purl
    if p.cpes:
        c["cpe"] = p.cpes[0]
    props = [("forklift:package:type", p.ecosystem.value)]
    if p.source_name and (p.source_name != p.name or p.source_version != p.version):
        props.append(("forklift:package:sourceName", p.source_name))
        props.append(("forklift:package:sourceVersion", p.source_version))
    if p.arch:
        props.append(("forklift:package:arch", p.arch))
    props.extend(layer_props(p))
    props.extend((f"forklift:package:{k}", v) for k, v in p.extra)
    c["properties"] = _props(props)
    if p.location:
        c["evidence"] = {"occurrences": [{"location": p.location}]}
    if files and p.files:
        c["components"] = [
            {"bom-ref": f"file:{package_id(p)}:{i}", "type": "file", "name": path}
            for i, path in enumerate(p.files)
        ]
    return c


def to_dict(inv: Inventory, *, files: bool = False) -> dict[str, Any]:
    """The CycloneDX document as plain JSON values."""
    image: dict[str, Any] = {
        "bom-ref": IMAGE_REF,
        "type": "container",
        "name": inv.target,
    }
    if inv.digest:
        image["version"] = inv.digest
        algo, _, hexdigest = inv.digest.partition(":")
        if algo in ("sha256", "sha512"):
            image["hashes"] = [{"alg": algo.upper().replace("SHA", "SHA-"), "content": hexdigest}]
        purl = image_purl(inv)
        if purl:
            image["purl"] = purl
    props = [("forklift:image:platform", inv.platform), ("forklift:image:id", inv.config_digest)]
    for layer in inv.layers:
        props.append((f"forklift:image:layer:{layer.index}", layer.digest))
    image["properties"] = _props(props)

    components: list[dict[str, Any]] = []
    os_refs: list[str] = []
    other_refs: list[str] = []
    if inv.os is not None:
        osc: dict[str, Any] = {"bom-ref": OS_REF, "type": "operating-system", "name": inv.os.id}
        if inv.os.version_id:
            osc["version"] = inv.os.version_id
        if inv.os.pretty_name:
            osc["description"] = inv.os.pretty_name
        if inv.os.codename:
            osc["properties"] = _props([("forklift:os:codename", inv.os.codename)])
        components.append(osc)
    for p in inv.packages:
        c = _component(p, files)
        components.append(c)
        (os_refs if p.ecosystem.is_os and inv.os is not None else other_refs).append(c["bom-ref"])
    dependencies: list[dict[str, Any]] = [
        {"ref": IMAGE_REF, "dependsOn": ([OS_REF] if inv.os is not None else []) + other_refs}
    ]
    if inv.os is not None:
        dependencies.append({"ref": OS_REF, "dependsOn": os_refs})
    dependencies.extend({"ref": ref} for ref in [*os_refs, *other_refs])
    return {
        "$schema": SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{document_uuid(inv)}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp(),
            "tools": {
                "components": [{"type": "application", "name": TOOL, "version": tool_version()}]
            },
            "component": image,
        },
        "components": components,
        "dependencies": dependencies,
    }


def render_cyclonedx(inv: Inventory, *, files: bool = False) -> str:
    """The CycloneDX 1.6 JSON document as text."""
    return json.dumps(to_dict(inv, files=files), ensure_ascii=False, separators=(",", ":")) + "\n"
