"""Python: installed distributions (``*.dist-info/METADATA`` + ``RECORD``, ``*.egg-info``).

What pip, uv, poetry and Debian's packaging leave in site-packages: wheel-style
``NAME-VER.dist-info/`` directories (core metadata in ``METADATA``, installed
files in ``RECORD``) and setuptools' ``NAME-VER.egg-info`` (a directory with
``PKG-INFO`` and ``installed-files.txt``, or a single PKG-INFO-format file).

The licence is PEP 639's ``License-Expression`` when there is one, else a
one-line ``License`` field, else the ``License ::`` trove classifiers.
"""

from __future__ import annotations

import csv
import io
import posixpath
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

_META_NAMES = ("METADATA", "PKG-INFO")


@dataclass(frozen=True, slots=True)
class CoreMetadata:
    """The fields of a METADATA / PKG-INFO file an inventory needs."""

    name: str
    version: str
    license: str = ""
    license_expression: str = ""
    classifiers: tuple[str, ...] = ()
    home_page: str = ""
    author: str = ""

    def declared_licenses(self) -> tuple[str, ...]:
        """PEP 639 expression, else a short License field, else the licence classifiers."""
        if self.license_expression:
            return licenses.unique([self.license_expression])
        text = self.license.strip()
        if text and "\n" not in text and len(text) <= 100 and text.upper() != "UNKNOWN":
            return licenses.unique([text])
        found = [
            spdx
            for c in self.classifiers
            if c.startswith("License ::") and (spdx := licenses.from_classifier(c))
        ]
        return licenses.unique(found)


def parse_core_metadata(text: str) -> CoreMetadata:
    """The header of a core-metadata file (RFC 822 style; the body is the description)."""
    fields: dict[str, str] = {}
    classifiers: list[str] = []
    key = ""
    for line in text.split("\n"):
        if not line.strip():
            break  # end of the headers
        if line[0] in " \t":
            if key and key in fields:
                fields[key] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"header line without a colon: {line[:60]!r}")
        key = name.strip().lower()
        value = value.strip()
        if key == "classifier":
            classifiers.append(value)
        elif key not in fields:
            fields[key] = value
    name = fields.get("name", "")
    version = fields.get("version", "")
    if not name or not version:
        raise ValueError("no Name or Version field")
    return CoreMetadata(
        name=name,
        version=version,
        license=fields.get("license", ""),
        license_expression=fields.get("license-expression", ""),
        classifiers=tuple(classifiers),
        home_page=fields.get("home-page", ""),
        author=fields.get("author", ""),
    )


def parse_record(text: str) -> list[str]:
    """The paths a RECORD file lists (relative to the site directory)."""
    return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]


class PythonAnalyzer(PackageAnalyzer):
    name = "python"
    names = frozenset({"METADATA", "RECORD", "PKG-INFO", "installed-files.txt"})
    suffixes = (".egg-info",)
    max_size = 16 << 20

    def accepts(self, path: str) -> bool:
        parent, _, base = path.rpartition("/")
        if base in ("METADATA", "RECORD"):
            return parent.endswith(".dist-info")
        if base in ("PKG-INFO", "installed-files.txt"):
            return parent.endswith(".egg-info")
        return base.endswith(".egg-info")  # the single-file form

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        text = stream.read().decode("utf-8", "replace")
        base = posixpath.basename(info.path)
        if base == "RECORD":
            return ("files", parse_record(text))
        if base == "installed-files.txt":
            return ("files", [line.strip() for line in text.splitlines() if line.strip()])
        return ("meta", parse_core_metadata(text))

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        files: dict[str, list[str]] = {}
        metas: list[tuple[Found, CoreMetadata]] = []
        for f in found:
            kind, data = cast(tuple[str, Any], f.value)
            if kind == "files":
                files[posixpath.dirname(f.info.path)] = data
            else:
                metas.append((f, data))
        out = []
        for f, meta in metas:
            base = posixpath.basename(f.info.path)
            info_dir = f.info.path if base.endswith(".egg-info") else posixpath.dirname(f.info.path)
            # RECORD paths are relative to site-packages; installed-files.txt to the egg-info
            anchor = posixpath.dirname(info_dir) if info_dir.endswith(".dist-info") else info_dir
            owned = tuple(
                sorted(
                    {
                        "/" + posixpath.normpath(posixpath.join(anchor, p)).lstrip("/")
                        for p in files.get(info_dir, ())
                    }
                )
            )
            extra = [(k, v) for k, v in (("home-page", meta.home_page),) if v]
            out.append(
                Package(
                    name=meta.name,
                    version=meta.version,
                    ecosystem=Ecosystem.PYPI,
                    purl=purl("pypi", meta.name, meta.version),
                    layer=ctx.layer(f.info.layer),
                    licenses=meta.declared_licenses(),
                    location=f.info.abspath,
                    files=owned,
                    extra=tuple(extra),
                )
            )
        return out
