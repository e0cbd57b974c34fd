"""Reading an SBOM (CycloneDX or SPDX JSON) back into an inventory, for ``scan --sbom``.

Packages come from their package URLs: CycloneDX ``components[].purl`` (nested
components too), SPDX ``packages[].externalRefs`` of type ``purl``. The
distribution comes from an ``operating-system`` component (CycloneDX), a
package with ``primaryPackagePurpose: OPERATING-SYSTEM`` (SPDX), or the
``distro`` qualifier of the OS packages' URLs (``debian-12``). A distribution
package's source package is its ``upstream`` qualifier (``openssl`` or
``openssl@3.0.11-1``), as syft, Trivy and forklift write it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.sbom.model import Ecosystem, Inventory, OSInfo, Package

_TYPES = {e.value: e for e in Ecosystem}
_OS_IDS = {"debian", "alpine", "ubuntu", "rhel", "rocky", "almalinux", "fedora", "wolfi"}


def _parse_purl(purl: str) -> tuple[str, str, str, str, dict[str, str]] | None:
    """``(type, namespace, name, version, qualifiers)`` or None."""
    if not purl.startswith("pkg:"):
        return None
    body = purl[4:].split("#", 1)[0]
    body, _, query = body.partition("?")
    body, _, version = body.partition("@")
    parts = [unquote(p) for p in body.strip("/").split("/")]
    if len(parts) < 2:
        return None
    qualifiers = dict(parse_qsl(query))
    return parts[0].lower(), "/".join(parts[1:-1]), parts[-1], unquote(version), qualifiers


def package_from_purl(purl: str, location: str = "") -> Package | None:
    """A :class:`Package` for one package URL (None for types forklift does not match)."""
    parsed = _parse_purl(purl)
    if parsed is None:
        return None
    ptype, namespace, name, version, q = parsed
    eco = _TYPES.get(ptype)
    if eco is None or not version:
        return None
    source_name = source_version = ""
    if eco.is_os:
        upstream = q.get("upstream", "")
        if upstream:
            source_name, _, source_version = upstream.partition("@")
        if eco is Ecosystem.APK and not source_name:
            source_name = q.get("origin", "")
    full = name
    if eco is Ecosystem.MAVEN and namespace:
        full = f"{namespace}:{name}"
    elif namespace and eco in (Ecosystem.NPM, Ecosystem.GOLANG, Ecosystem.COMPOSER):
        full = f"{namespace}/{name}"
    return Package(
        name=full,
        version=version,
        ecosystem=eco,
        purl=purl,
        source_name=source_name,
        source_version=source_version,
        arch=q.get("arch", ""),
        location=location,
    )


def _os_from_distro(q: str) -> OSInfo | None:
    ident, _, version = q.partition("-")
    return OSInfo(ident, version) if ident else None


def _cyclonedx(doc: dict[str, Any]) -> tuple[list[Package], OSInfo | None, str]:
    packages: list[Package] = []
    os: OSInfo | None = None

    def walk(components: Any) -> Iterator[dict[str, Any]]:
        for c in components or []:
            if isinstance(c, dict):
                yield c
                yield from walk(c.get("components"))

    for c in walk(doc.get("components")):
        if c.get("type") == "operating-system":
            os = OSInfo(str(c.get("name") or "").lower(), str(c.get("version") or ""))
            continue
        if isinstance(c.get("purl"), str):
            p = package_from_purl(c["purl"])
            if p is not None:
                packages.append(p)
    meta = doc.get("metadata") or {}
    target = str((meta.get("component") or {}).get("name") or "") if isinstance(meta, dict) else ""
    return packages, os, target


def _spdx(doc: dict[str, Any]) -> tuple[list[Package], OSInfo | None, str]:
    packages: list[Package] = []
    os: OSInfo | None = None
    for p in doc.get("packages") or []:
        if not isinstance(p, dict):
            continue
        if p.get("primaryPackagePurpose") == "OPERATING-SYSTEM":
            os = OSInfo(str(p.get("name") or "").lower(), str(p.get("versionInfo") or ""))
            continue
        for ref in p.get("externalRefs") or []:
            if isinstance(ref, dict) and ref.get("referenceType") == "purl":
                pkg = package_from_purl(str(ref.get("referenceLocator") or ""))
                if pkg is not None:
                    packages.append(pkg)
    return packages, os, str(doc.get("name") or "")


def read_sbom(path: Path) -> Inventory:
    """The inventory an SBOM file describes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: SBOM file not found") from None
    doc = canonical.loads(data, str(path))
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path}: not an SBOM (expected a JSON object)")
    if doc.get("bomFormat") == "CycloneDX":
        packages, os, target = _cyclonedx(doc)
    elif str(doc.get("spdxVersion", "")).startswith("SPDX-"):
        packages, os, target = _spdx(doc)
    else:
        raise InvalidInput(f"{path}: neither a CycloneDX nor an SPDX JSON document")
    if os is None or os.id not in _OS_IDS:
        for p in packages:
            parsed = _parse_purl(p.purl)
            if p.ecosystem.is_os and parsed and parsed[4].get("distro"):
                os = _os_from_distro(parsed[4]["distro"]) or os
                break
    if os is not None and os.id == "debian" and os.version_id and "." in os.version_id:
        os = OSInfo(os.id, os.version_id, os.codename, os.pretty_name)
    return Inventory(target=target or str(path), os=os, packages=tuple(packages))
