"""SPDX 2.3 JSON.

Packages: the image (purpose ``CONTAINER``, the manifest digest as version
and SHA256 checksum, a ``pkg:oci`` purl), the distribution
(``OPERATING_SYSTEM``), each layer (``ARCHIVE``, its digest as checksum, its
``created_by`` as comment) and every package found (``LIBRARY``, purl as a
``PACKAGE-MANAGER`` external reference, declared licence, where it was
found as ``sourceInfo``, layer and source package as annotations).

Relationships: the document ``DESCRIBES`` the image; the image ``CONTAINS``
the OS, every layer and every package; each layer ``CONTAINS`` the packages it
added; the OS ``CONTAINS`` its packages. Licences that are not SPDX
expressions become ``LicenseRef-`` identifiers with their text in
``hasExtractedLicensingInfos``. SPDX 2.3 requires a checksum for every file,
and the inventory does not read package files, so files are not listed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from forklift.sbom import licenses
from forklift.sbom.formats.common import (
    TOOL,
    document_uuid,
    image_purl,
    package_id,
    timestamp,
    tool_version,
)
from forklift.sbom.model import Inventory, Package

NOASSERTION = "NOASSERTION"
_IDCHARS = re.compile(r"[^A-Za-z0-9.-]+")
_LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")


def _spdx_id(*parts: str) -> str:
    return "SPDXRef-" + "-".join(_IDCHARS.sub("-", p).strip("-") or "x" for p in parts)


class _Licenses:
    """Declared licences as SPDX expressions, with LicenseRef- entries for the rest."""

    def __init__(self) -> None:
        self.extracted: dict[str, str] = {}

    def ref(self, text: str) -> str:
        slug = _IDCHARS.sub("-", text).strip("-")[:40] or "unnamed"
        digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        ref = f"LicenseRef-{slug}-{digest}"
        self.extracted[ref] = text
        return ref

    def expression(self, declared: tuple[str, ...]) -> str:
        if not declared:
            return NOASSERTION
        parts = []
        for x in declared:
            if licenses.is_spdx(x):
                for ref in _LICENSE_REF.findall(x):
                    self.extracted.setdefault(ref, ref[len("LicenseRef-") :].replace("-", " "))
                parts.append(f"({x})" if " " in x and len(declared) > 1 else x)
            else:
                parts.append(self.ref(x))
        return " AND ".join(parts)


def _annotation(comment: str, when: str) -> dict[str, str]:
    return {
        "annotationType": "OTHER",
        "annotator": f"Tool: {TOOL}-{tool_version()}",
        "annotationDate": when,
        "comment": comment,
    }


def _package(p: Package, lic: _Licenses, when: str) -> dict[str, Any]:
    pid = package_id(p)
    out: dict[str, Any] = {
        "SPDXID": _spdx_id("Package", p.ecosystem.value, p.name, pid),
        "name": p.name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": lic.expression(p.licenses),
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
    }
    if p.version:
        out["versionInfo"] = p.version
    if p.location:
        out["sourceInfo"] = f"{p.ecosystem.value} package found in {p.location}"
    if p.purl:
        out["externalRefs"] = [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
             "referenceLocator": p.purl}
        ]  # fmt: skip
    notes = [f"forklift:package:type={p.ecosystem.value}"]
    if p.source_name and (p.source_name != p.name or p.source_version != p.version):
        notes.append(f"forklift:package:sourceName={p.source_name}")
        notes.append(f"forklift:package:sourceVersion={p.source_version}")
    if p.layer is not None:
        notes.append(f"forklift:layer:digest={p.layer.digest}")
        if p.layer.diff_id:
            notes.append(f"forklift:layer:diffID={p.layer.diff_id}")
        if p.layer.line is not None:
            notes.append(
                f"forklift:layer:dockerfile={p.layer.dockerfile or 'Dockerfile'}:{p.layer.line}"
            )
    out["annotations"] = [_annotation(n, when) for n in notes]
    return out


def to_dict(inv: Inventory) -> dict[str, Any]:
    """The SPDX document as plain JSON values."""
    when = timestamp()
    lic = _Licenses()
    image_id = "SPDXRef-Image"
    image: dict[str, Any] = {
        "SPDXID": image_id,
        "name": inv.target,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
    }
    if inv.digest:
        image["versionInfo"] = inv.digest
        algo, _, hexdigest = inv.digest.partition(":")
        if algo in ("sha256", "sha512"):
            image["checksums"] = [{"algorithm": algo.upper(), "checksumValue": hexdigest}]
        purl = image_purl(inv)
        if purl:
            image["externalRefs"] = [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": purl}
            ]  # fmt: skip
    if inv.platform:
        image["comment"] = f"platform {inv.platform}" + (
            f", image ID {inv.config_digest}" if inv.config_digest else ""
        )
    packages = [image]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
         "relatedSpdxElement": image_id}
    ]  # fmt: skip

    def rel(a: str, kind: str, b: str) -> None:
        relationships.append(
            {"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b}
        )

    os_id = ""
    if inv.os is not None:
        os_id = "SPDXRef-OperatingSystem"
        osp: dict[str, Any] = {
            "SPDXID": os_id,
            "name": inv.os.id,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "primaryPackagePurpose": "OPERATING_SYSTEM",
        }
        if inv.os.version_id:
            osp["versionInfo"] = inv.os.version_id
        if inv.os.pretty_name:
            osp["description"] = inv.os.pretty_name
        packages.append(osp)
        rel(image_id, "CONTAINS", os_id)
    layer_ids = {}
    for layer in inv.layers:
        lid = f"SPDXRef-Layer-{layer.index}"
        layer_ids[layer.index] = lid
        lp: dict[str, Any] = {
            "SPDXID": lid,
            "name": f"layer {layer.index}",
            "versionInfo": layer.digest,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "primaryPackagePurpose": "ARCHIVE",
        }
        algo, _, hexdigest = layer.digest.partition(":")
        if algo in ("sha256", "sha512"):
            lp["checksums"] = [{"algorithm": algo.upper(), "checksumValue": hexdigest}]
        comment = layer.created_by
        if layer.line is not None:
            comment += f" ({layer.dockerfile or 'Dockerfile'}:{layer.line})"
        if comment:
            lp["comment"] = comment.strip()
        packages.append(lp)
        rel(image_id, "CONTAINS", lid)
    for p in inv.packages:
        sp = _package(p, lic, when)
        packages.append(sp)
        rel(image_id, "CONTAINS", sp["SPDXID"])
        if p.layer is not None and p.layer.index in layer_ids:
            rel(layer_ids[p.layer.index], "CONTAINS", sp["SPDXID"])
        if os_id and p.ecosystem.is_os:
            rel(os_id, "CONTAINS", sp["SPDXID"])
    uid = document_uuid(inv)
    slug = _IDCHARS.sub("-", inv.target).strip("-")[:80] or "image"
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": inv.target,
        "documentNamespace": f"https://spdx.forklift.invalid/{slug}-{uid}",
        "creationInfo": {"created": when, "creators": [f"Tool: {TOOL}-{tool_version()}"]},
        "packages": packages,
        "relationships": relationships,
    }
    if lic.extracted:
        doc["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text, "name": text}
            for ref, text in sorted(lic.extracted.items())
        ]
    return doc


def render_spdx(inv: Inventory) -> str:
    """The SPDX 2.3 JSON document as text."""
    return json.dumps(to_dict(inv), ensure_ascii=False, separators=(",", ":")) + "\n"
