"""Java archives: ``META-INF/maven/**/pom.properties`` and ``META-INF/MANIFEST.MF``, nested jars too.

Every ``pom.properties`` in an archive is one Maven package (``groupId``,
``artifactId``, ``version``): the archive's own and those shaded into it. An
archive without one is named by its manifest (``Implementation-Title`` /
``Bundle-SymbolicName`` and their versions) or, failing that, by its file name
(``name-1.2.3.jar``). Jars inside jars and wars (``BOOT-INF/lib/``,
``WEB-INF/lib/``) are opened in memory, four levels deep at most.

A zip needs random access (its directory is at the end), so an archive up to
:data:`IN_MEMORY` bytes is read into memory; a larger one is spooled to a
temporary file that is removed as soon as it has been read.
"""

from __future__ import annotations

import io
import posixpath
import re
import tempfile
import zipfile
from dataclasses import dataclass
from typing import IO, BinaryIO

from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

ARCHIVES = (".jar", ".war", ".ear", ".jpi", ".hpi", ".par", ".sar", ".nar")
IN_MEMORY = 64 << 20
_NESTED_MAX = 64 << 20
_DEPTH = 4
_NAME_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.+-]*)$")


@dataclass(frozen=True, slots=True)
class JavaPackage:
    group: str
    artifact: str
    version: str
    archive: str  # path inside the top-level archive ("" for the archive itself)
    licenses: tuple[str, ...] = ()
    source: str = "pom.properties"  # or "manifest", "filename"


def parse_properties(text: str) -> dict[str, str]:
    """A Java ``.properties`` file (the subset Maven writes: ``key=value`` lines)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a ``MANIFEST.MF`` (72-byte lines continued by a leading space)."""
    out: dict[str, str] = {}
    key = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line:
            break  # end of the main section
        if line.startswith(" ") and key:
            out[key] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
        else:
            key = ""
    return out


def _archive_packages(zf: zipfile.ZipFile, where: str, base: str, depth: int) -> list[JavaPackage]:
    out: list[JavaPackage] = []
    manifest: dict[str, str] = {}
    nested: list[zipfile.ZipInfo] = []
    for item in zf.infolist():
        name = item.filename
        if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
            if item.file_size > 1 << 20:
                continue
            props = parse_properties(zf.read(item).decode("utf-8", "replace"))
            if props.get("artifactId") and props.get("version"):
                out.append(JavaPackage(props.get("groupId", ""), props["artifactId"],
                                       props["version"], where))  # fmt: skip
        elif name == "META-INF/MANIFEST.MF" and item.file_size <= 1 << 20:
            manifest = parse_manifest(zf.read(item).decode("utf-8", "replace"))
        elif name.lower().endswith(ARCHIVES) and not item.is_dir():
            nested.append(item)
    declared = licenses.unique([manifest["Bundle-License"]]) if "Bundle-License" in manifest else ()
    if declared and out:
        out = [JavaPackage(p.group, p.artifact, p.version, p.archive, declared) for p in out]
    if not out:
        name = manifest.get("Implementation-Title") or manifest.get("Bundle-SymbolicName", "")
        version = manifest.get("Implementation-Version") or manifest.get("Bundle-Version", "")
        name = name.split(";")[0].strip()
        source = "manifest"
        stem = posixpath.splitext(posixpath.basename(base))[0]
        m = _NAME_VERSION.match(stem)
        if not name and m:
            name, source = m.group("name"), "filename"
        if not version and m:
            version = m.group("version")
        if name and version:
            group = manifest.get("Implementation-Vendor-Id", "")
            out.append(JavaPackage(group, name, version, where, declared, source))
    if depth < _DEPTH:
        for item in nested:
            if item.file_size > _NESTED_MAX:
                continue
            inner = f"{where}/{item.filename}" if where else item.filename
            try:
                with zipfile.ZipFile(io.BytesIO(zf.read(item))) as child:
                    out.extend(_archive_packages(child, inner, item.filename, depth + 1))
            except zipfile.BadZipFile:
                continue  # a nested file named .jar that is not one: nothing to report
    return out


class JavaAnalyzer(PackageAnalyzer):
    name = "java"
    suffixes = ARCHIVES
    max_size = 0  # any size: big archives are spooled

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        spool: IO[bytes]
        if info.size <= IN_MEMORY:
            spool = io.BytesIO(stream.read())
        else:
            spool = tempfile.TemporaryFile(prefix="forklift-sbom-")  # noqa: SIM115 (closed below)
            while chunk := stream.read(1 << 20):
                spool.write(chunk)
            spool.seek(0)
        with spool:
            if not zipfile.is_zipfile(spool):
                return None
            spool.seek(0)
            with zipfile.ZipFile(spool) as zf:
                return tuple(_archive_packages(zf, "", info.path, 0)) or None

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        out = []
        for f in found:
            for p in f.value:  # type: ignore[attr-defined]
                name = p.artifact
                extra = [("found-in", p.source)]
                if p.archive:
                    extra.append(("archive-path", p.archive))
                out.append(
                    Package(
                        name=f"{p.group}:{p.artifact}" if p.group else name,
                        version=p.version,
                        ecosystem=Ecosystem.MAVEN,
                        purl=purl("maven", p.artifact, p.version, p.group or None),
                        layer=ctx.layer(f.info.layer),
                        licenses=p.licenses,
                        location=f.info.abspath + (f"!/{p.archive}" if p.archive else ""),
                        extra=tuple(extra),
                    )
                )
        return out
