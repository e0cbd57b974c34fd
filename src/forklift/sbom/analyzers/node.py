"""Node.js: installed packages (``node_modules/**/package.json``), else lock files.

Every ``node_modules/NAME/package.json`` and ``node_modules/@SCOPE/NAME/package.json``
is one installed package (npm, yarn and pnpm's ``.pnpm/`` store alike; nested
``package.json`` files inside a package are not packages). A lock file
(``package-lock.json``, ``yarn.lock``, ``pnpm-lock.yaml``) outside
``node_modules`` is used only when no package was found installed under its
directory's ``node_modules``: then it is the best record of what would run.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

import yaml

from forklift.oci import canonical
from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

LOCKS = ("package-lock.json", "yarn.lock", "pnpm-lock.yaml")


@dataclass(frozen=True, slots=True)
class NodePackage:
    name: str
    version: str
    licenses: tuple[str, ...] = ()
    dev: bool = False
    homepage: str = ""


def _json(data: bytes) -> Any:
    # canonical.loads refuses pathological nesting; package metadata never needs it.
    # Some editors leave a byte-order mark, which JSON does not allow.
    return canonical.loads(data.removeprefix(b"\xef\xbb\xbf"), "package metadata")


def declared_licenses(doc: dict[str, Any]) -> tuple[str, ...]:
    """``license`` (a string or ``{"type": ...}``) and the old ``licenses`` array."""
    out: list[str] = []
    for value in (
        doc.get("license"),
        *(doc.get("licenses") or [] if isinstance(doc.get("licenses"), list) else []),
    ):
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict) and isinstance(value.get("type"), str):
            out.append(value["type"])
    return licenses.unique(out)


def parse_package_json(data: bytes) -> NodePackage | None:
    """An installed package's name, version and licence; None if it names no package."""
    doc = _json(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    home = doc.get("homepage")
    return NodePackage(name, version, declared_licenses(doc),
                       homepage=home if isinstance(home, str) else "")  # fmt: skip


def _name_from_path(path: str) -> str:
    """``node_modules/@a/b`` -> ``@a/b``: the package name a lock-file path installs."""
    tail = path.rpartition("node_modules/")[2]
    return tail


def parse_package_lock(data: bytes) -> list[NodePackage]:
    """npm's package-lock.json (v1 ``dependencies`` tree; v2/v3 ``packages`` map)."""
    doc = _json(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    out: list[NodePackage] = []
    packages = doc.get("packages")
    if isinstance(packages, dict):
        for path, meta in packages.items():
            if not path or not isinstance(meta, dict) or "node_modules/" not in f"/{path}":
                continue  # "" is the project itself; workspaces are not installed packages
            if meta.get("link"):
                continue
            name = meta.get("name") or _name_from_path(path)
            version = meta.get("version")
            if isinstance(name, str) and isinstance(version, str) and version:
                out.append(
                    NodePackage(name, version, declared_licenses(meta), bool(meta.get("dev")))
                )
        return out

    def walk(deps: Any) -> None:
        if not isinstance(deps, dict):
            return
        for name, meta in deps.items():
            if isinstance(meta, dict) and isinstance(meta.get("version"), str):
                out.append(NodePackage(name, meta["version"], dev=bool(meta.get("dev"))))
                walk(meta.get("dependencies"))

    walk(doc.get("dependencies"))
    return out


_YARN_HEADER = re.compile(r'^("?)(?P<spec>[^\s"][^"]*?)\1(?:,|:\s*$)')


def _spec_name(spec: str) -> str:
    """``@babel/core@^7.0.0`` -> ``@babel/core``; ``lodash@npm:^4`` -> ``lodash``."""
    spec = spec.strip().strip('"')
    at = spec.find("@", 1)
    return spec if at < 0 else spec[:at]


def parse_yarn_lock(text: str) -> list[NodePackage]:
    """yarn.lock, classic (v1) and berry (v2+) forms: each entry's name and resolved version."""
    out: list[NodePackage] = []
    name = ""
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        if not line[0].isspace():
            name = ""
            if line.startswith("__metadata"):
                continue
            first = line.rstrip(":").split(",")[0]
            name = _spec_name(first)
            continue
        stripped = line.strip()
        if name and line.startswith("  ") and not line.startswith("   "):
            key, _, value = stripped.partition(" ")
            if key in ("version", "version:"):
                version = value.strip().strip('"')
                if (
                    version
                    and "@workspace:" not in line
                    and not version.startswith("0.0.0-use.local")
                ):
                    out.append(NodePackage(name, version))
                name = ""
    return out


_PNPM_PEERS = re.compile(r"(\(.*\)|_.*)$")


def parse_pnpm_lock(text: str) -> list[NodePackage]:
    """pnpm-lock.yaml: the ``packages`` keys (``/name/1.0.0``, ``/name@1.0.0``, ``name@1.0.0``)."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError("not a YAML mapping")
    packages = doc.get("packages") or {}
    if not isinstance(packages, dict):
        raise ValueError("'packages' is not a mapping")
    out = []
    for key, meta in packages.items():
        if not isinstance(key, str):
            continue
        spec = _PNPM_PEERS.sub("", key.lstrip("/"))
        at = spec.find("@", 1)
        if at > 0:
            name, version = spec[:at], spec[at + 1 :]
        else:  # lockfile v5: /name/version or /@scope/name/version
            name, _, version = spec.rpartition("/")
        if not name or not version:
            continue
        meta = meta if isinstance(meta, dict) else {}
        if isinstance(meta.get("version"), str):
            version = meta["version"]
        out.append(NodePackage(name, version, dev=bool(meta.get("dev"))))
    return out


def _installed_dir(path: str) -> bool:
    """Whether ``path`` (a package.json) is the manifest of an installed package directory."""
    parent = posixpath.dirname(path)
    up = posixpath.dirname(parent)
    if posixpath.basename(up) == "node_modules":
        return True
    return (
        posixpath.basename(up).startswith("@")
        and posixpath.basename(posixpath.dirname(up)) == "node_modules"
    )


class NodeAnalyzer(PackageAnalyzer):
    name = "node"
    names = frozenset({"package.json", *LOCKS})
    max_size = 64 << 20

    def accepts(self, path: str) -> bool:
        if path.endswith("/package.json") or path == "package.json":
            return _installed_dir(path)
        return "node_modules/" not in path  # a project's lock file, not a dependency's

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        data = stream.read()
        base = posixpath.basename(info.path)
        if base == "package.json":
            return parse_package_json(data)
        if base == "package-lock.json":
            return parse_package_lock(data)
        if base == "yarn.lock":
            return parse_yarn_lock(data.decode("utf-8", "replace"))
        try:
            return parse_pnpm_lock(data.decode("utf-8", "replace"))
        except yaml.YAMLError as e:
            raise ValueError(str(e).splitlines()[0]) from None

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        out: list[Package] = []
        installed_under: set[str] = set()
        locks: list[Found] = []
        for f in found:
            if isinstance(f.value, NodePackage):
                pkg = f.value
                out.append(self._package(pkg, f, ctx))
                # every directory above a node_modules holding installed packages
                path = f.info.path
                i = path.find("node_modules/")
                while i >= 0:
                    installed_under.add(path[:i].rstrip("/"))
                    i = path.find("node_modules/", i + 1)
            else:
                locks.append(f)
        for f in locks:
            project = posixpath.dirname(f.info.path)
            if project in installed_under:
                continue
            for pkg in f.value:  # type: ignore[attr-defined]
                out.append(self._package(pkg, f, ctx))
        return out

    @staticmethod
    def _package(pkg: NodePackage, f: Found, ctx: Context) -> Package:
        scope, _, bare = pkg.name.rpartition("/")
        extra = []
        if pkg.dev:
            extra.append(("dev", "true"))
        if pkg.homepage:
            extra.append(("homepage", pkg.homepage))
        return Package(
            name=pkg.name,
            version=pkg.version,
            ecosystem=Ecosystem.NPM,
            purl=purl("npm", bare, pkg.version, scope or None),
            layer=ctx.layer(f.info.layer),
            licenses=pkg.licenses,
            location=f.info.abspath,
            extra=tuple(extra),
        )
