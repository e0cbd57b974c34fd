"""dpkg: ``/var/lib/dpkg/status`` (and distroless ``status.d/``), the files each package owns, licences.

Each installed package is reported with its source package and source version
(the ``Source:`` field, ``name`` or ``name (version)``; dpkg's own
``${source:Package}``/``${source:Version}``), the files its ``info/*.list``
(or distroless ``status.d/*.md5sums``) names, and the licences its DEP-5
``/usr/share/doc/<package>/copyright`` declares.

A package is attributed to the layer that installed the version the final
image has: the status file is rewritten by every ``apt-get``, so its earlier
versions are kept (as ``{(name, arch): version}``) and a package's layer is the
oldest one from which on every version of the file lists it unchanged.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, distro_qualifier, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info"
DOC = "usr/share/doc"

# Status words (the third one of "want flag status") for which the package's files are
# on disk; "not-installed" and "config-files" packages are not part of the image.
_PRESENT = frozenset(
    {"installed", "unpacked", "half-configured", "half-installed", "triggers-awaited",
     "triggers-pending"}
)  # fmt: skip
# Multi-line fields not worth keeping in memory.
_SKIP_FIELDS = frozenset({"description", "conffiles"})


@dataclass(frozen=True, slots=True)
class DpkgRecord:
    """One stanza of a dpkg database, as dpkg-query sees it."""

    package: str
    version: str
    architecture: str = ""
    status: str = ""
    source: str = ""  # the Source: field as written: "name" or "name (version)"
    maintainer: str = ""
    homepage: str = ""
    installed_size: str = ""
    multi_arch: str = ""

    @property
    def source_name(self) -> str:
        """dpkg's ``${source:Package}``: the Source name, or the package name."""
        return self.source.split("(", 1)[0].strip() or self.package

    @property
    def source_version(self) -> str:
        """dpkg's ``${source:Version}``: the version in the Source field, or the package's."""
        if "(" in self.source:
            inner = self.source.split("(", 1)[1]
            return inner.split(")", 1)[0].strip()
        return self.version

    @property
    def state(self) -> str:
        """The status word (``installed``, ``config-files``, ...)."""
        words = self.status.split()
        return words[2] if len(words) >= 3 else ""

    @property
    def present(self) -> bool:
        """Whether the package's files are in the filesystem (distroless has no Status)."""
        return not self.status or self.state in _PRESENT


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Stanzas of a Debian control file: field names lower-cased, continuation lines joined."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.split("\n"):
        if not line.strip():
            if current:
                stanzas.append(current)
                current = {}
            key = ""
            continue
        if line[0] in " \t":
            if key and key not in _SKIP_FIELDS:
                current[key] += "\n" + line.strip()
            continue
        if line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"line without a field name: {line[:60]!r}")
        key = name.strip().lower()
        current[key] = "" if key in _SKIP_FIELDS else value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def parse_status(text: str) -> list[DpkgRecord]:
    """Every stanza of a dpkg status file (also distroless ``status.d`` files), in order."""
    out = []
    for s in parse_deb822(text):
        if "package" not in s:
            raise ValueError("stanza without a Package field")
        rec = DpkgRecord(
            package=s["package"],
            version=s.get("version", ""),
            architecture=s.get("architecture", ""),
            status=s.get("status", ""),
            source=s.get("source", ""),
            maintainer=s.get("maintainer", ""),
            homepage=s.get("homepage", ""),
            installed_size=s.get("installed-size", ""),
            multi_arch=s.get("multi-arch", ""),
        )
        if rec.present and not rec.version:
            # dpkg itself refuses such a database (vcpkg writes look-alike files).
            raise ValueError(f"package {rec.package!r} has no Version field")
        out.append(rec)
    return out


_DEP5_LICENSE = re.compile(r"^License:[ \t]*(\S.*?)\s*$", re.MULTILINE)


def copyright_licenses(text: str) -> list[str]:
    """The licence short names of a machine-readable (DEP-5) copyright file, first seen first."""
    if not text.startswith(("Format:", "Format-Specification:")):
        return []  # free-form copyright files name no licence reliably
    out: list[str] = []
    for m in _DEP5_LICENSE.finditer(text):
        name = m.group(1)
        if name not in out:
            out.append(name)
    return out


def files_only(paths: list[str]) -> tuple[str, ...]:
    """Drop the directories of a dpkg file list (the entries that are parents of another)."""
    ordered = sorted(p for p in paths if p and p != "/.")
    out = []
    for i, p in enumerate(ordered):
        if i + 1 < len(ordered) and ordered[i + 1].startswith(p + "/"):
            continue
        out.append(p)
    return tuple(out)


class DpkgAnalyzer(PackageAnalyzer):
    name = "dpkg"
    os_level = True
    paths = frozenset({STATUS})
    names = frozenset({"copyright"})
    suffixes = (".list",)
    prefixes = (STATUS_D,)
    keep_history = True

    def accepts(self, path: str) -> bool:
        if path == STATUS or path.startswith(STATUS_D):
            return True
        parent = posixpath.dirname(path)
        if path.endswith(".list"):
            return parent == INFO
        return posixpath.dirname(parent) == DOC  # usr/share/doc/<pkg>/copyright

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        text = stream.read().decode("utf-8", "replace")
        path = info.path
        if path == STATUS:
            return ("status", parse_status(text))
        if path.startswith(STATUS_D):
            if path.endswith(".md5sums"):
                return ("md5sums", ["/" + line.split(None, 1)[1].strip()
                                    for line in text.splitlines() if len(line.split(None, 1)) == 2])  # fmt: skip
            return ("status", parse_status(text))
        if path.endswith(".list"):
            return ("list", [line for line in text.split("\n") if line])
        return ("copyright", copyright_licenses(text))

    def summarize(self, value: object) -> object:
        kind, data = cast(tuple[str, Any], value)
        if kind != "status":
            return None
        return {(r.package, r.architecture): r.version for r in data if r.present}

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        lists: dict[str, list[str]] = {}
        copyrights: dict[str, list[str]] = {}
        statuses: list[tuple[Found, list[DpkgRecord]]] = []
        for f in found:
            kind, data = cast(tuple[str, Any], f.value)
            path = f.info.path
            if kind == "status":
                statuses.append((f, data))
            elif kind == "list":
                lists[posixpath.basename(path)[: -len(".list")]] = data
            elif kind == "md5sums":
                lists[posixpath.basename(path)[: -len(".md5sums")]] = data
            else:
                copyrights[posixpath.basename(posixpath.dirname(path))] = data
        distro = distro_qualifier(ctx.os)
        namespace = ctx.os.id if ctx.os is not None else "debian"
        out: list[Package] = []
        for f, records in statuses:
            for rec in records:
                if not rec.present:
                    continue
                layer = _introduced(f, rec)
                key = f"{rec.package}:{rec.architecture}"
                files = lists.get(key) or lists.get(rec.package) or []
                src, srcver = rec.source_name, rec.source_version
                upstream = ""
                if src != rec.package or srcver != rec.version:
                    upstream = src if srcver == rec.version else f"{src}@{srcver}"
                extra = [("status", rec.status)] if rec.status else []
                if rec.maintainer:
                    extra.append(("maintainer", rec.maintainer))
                out.append(
                    Package(
                        name=rec.package,
                        version=rec.version,
                        ecosystem=Ecosystem.DEB,
                        purl=purl(
                            "deb",
                            rec.package,
                            rec.version,
                            namespace,
                            {"arch": rec.architecture, "distro": distro, "upstream": upstream},
                        ),
                        layer=ctx.layer(layer),
                        source_name=src,
                        source_version=srcver,
                        arch=rec.architecture,
                        licenses=licenses.unique(copyrights.get(rec.package, [])),
                        location=f.info.abspath,
                        files=files_only(files),
                        extra=tuple(extra),
                    )
                )
        return out


def _introduced(f: Found, rec: DpkgRecord) -> int:
    """The oldest layer from which on every version of the status file has ``rec`` unchanged."""
    layer = f.info.layer
    key = (rec.package, rec.architecture)
    for older_layer, summary in reversed(f.history):
        if not isinstance(summary, dict) or summary.get(key) != rec.version:
            break
        layer = older_layer
    return layer
