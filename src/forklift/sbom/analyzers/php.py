"""PHP: Composer's ``vendor/composer/installed.json`` (what is installed), else ``composer.lock``.

``installed.json`` is a list (Composer 1) or ``{"packages": [...]}`` (Composer
2, with ``dev-package-names``); ``composer.lock`` has ``packages`` and
``packages-dev``. A lock file is used only when its project has no
``vendor/composer/installed.json``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, BinaryIO

from forklift.oci import canonical
from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

INSTALLED = "vendor/composer/installed.json"


@dataclass(frozen=True, slots=True)
class ComposerPackage:
    name: str
    version: str
    licenses: tuple[str, ...] = ()
    dev: bool = False


def _package(p: Any, dev: bool) -> ComposerPackage | None:
    if not isinstance(p, dict):
        return None
    name, version = p.get("name"), p.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return None
    declared = p.get("license")
    lic = [x for x in declared if isinstance(x, str)] if isinstance(declared, list) else []
    if isinstance(declared, str):
        lic = [declared]
    return ComposerPackage(name, version, licenses.unique(lic), dev)


def parse_composer(data: bytes, lock: bool) -> list[ComposerPackage]:
    """Packages of a ``composer.lock`` (``lock``) or an ``installed.json``."""
    doc = canonical.loads(data, "composer file")
    out: list[ComposerPackage] = []
    if lock:
        if not isinstance(doc, dict):
            raise ValueError("composer.lock is not a JSON object")
        groups = [(doc.get("packages"), False), (doc.get("packages-dev"), True)]
    elif isinstance(doc, list):
        groups = [(doc, False)]
    elif isinstance(doc, dict):
        dev_names = set(doc.get("dev-package-names") or [])
        out = [
            p
            for raw in doc.get("packages") or []
            if (p := _package(raw, isinstance(raw, dict) and raw.get("name") in dev_names))
        ]
        return out
    else:
        raise ValueError("installed.json is neither a list nor an object")
    for items, dev in groups:
        for raw in items if isinstance(items, list) else []:
            p = _package(raw, dev)
            if p is not None:
                out.append(p)
    return out


class PhpAnalyzer(PackageAnalyzer):
    name = "php"
    names = frozenset({"composer.lock", "installed.json"})
    max_size = 64 << 20

    def accepts(self, path: str) -> bool:
        if path.endswith("installed.json"):
            return path == INSTALLED or path.endswith("/" + INSTALLED)
        return "/vendor/" not in f"/{path}"

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        return parse_composer(stream.read(), info.path.endswith("composer.lock"))

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        installed_projects = {
            posixpath.dirname(posixpath.dirname(posixpath.dirname(f.info.path)))
            for f in found
            if f.info.path.endswith("installed.json")
        }
        out = []
        for f in found:
            lock = f.info.path.endswith("composer.lock")
            if lock and posixpath.dirname(f.info.path) in installed_projects:
                continue
            for p in f.value:  # type: ignore[attr-defined]
                vendor, _, bare = p.name.rpartition("/")
                version = p.version  # as declared ("v5.4.0" stays): the scanner normalises
                out.append(
                    Package(
                        name=p.name,
                        version=version,
                        ecosystem=Ecosystem.COMPOSER,
                        purl=purl("composer", bare, version, vendor or None),
                        layer=ctx.layer(f.info.layer),
                        licenses=p.licenses,
                        location=f.info.abspath,
                        extra=(("dev", "true"),) if p.dev else (),
                    )
                )
        return out
