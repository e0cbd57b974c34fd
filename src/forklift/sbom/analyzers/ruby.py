"""Ruby: installed gems, from the ``specifications/*.gemspec`` files RubyGems writes.

RubyGems writes each installed gem's specification as Ruby source
(``Gem::Specification#to_ruby``): ``s.name = "rake".freeze``, ``s.version =
"13.0.6"``, ``s.licenses = ["MIT".freeze]``. Those assignments are read with
regular expressions; the file is never evaluated.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import BinaryIO

from forklift.sbom import licenses
from forklift.sbom.analyzers.base import Context, PackageAnalyzer, purl
from forklift.sbom.fsview import FileInfo, Found
from forklift.sbom.model import Ecosystem, Package

_STRING = r"""["']([^"']*)["'](?:\.freeze)?"""
_NAME = re.compile(r"^\s*\w+\.name\s*=\s*" + _STRING, re.MULTILINE)
_VERSION = re.compile(r"^\s*\w+\.version\s*=\s*" + _STRING, re.MULTILINE)
_LICENSES = re.compile(r"^\s*\w+\.licenses?\s*=\s*\[?([^\]\n]*)\]?", re.MULTILINE)
_HOMEPAGE = re.compile(r"^\s*\w+\.homepage\s*=\s*" + _STRING, re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


@dataclass(frozen=True, slots=True)
class Gem:
    name: str
    version: str
    licenses: tuple[str, ...] = ()
    homepage: str = ""


def parse_gemspec(text: str) -> Gem | None:
    """Name, version, licences and homepage of an installed gem's specification."""
    name = _NAME.search(text)
    version = _VERSION.search(text)
    if not name or not version:
        return None
    declared = [q for m in _LICENSES.finditer(text) for q in _QUOTED.findall(m.group(1))]
    home = _HOMEPAGE.search(text)
    return Gem(name.group(1), version.group(1), licenses.unique(declared),
               home.group(1) if home else "")  # fmt: skip


class RubyAnalyzer(PackageAnalyzer):
    name = "ruby"
    suffixes = (".gemspec",)
    max_size = 4 << 20

    def accepts(self, path: str) -> bool:
        parent = posixpath.dirname(path)
        if posixpath.basename(parent) == "default":  # default gems of the interpreter
            parent = posixpath.dirname(parent)
        return posixpath.basename(parent) == "specifications"

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        return parse_gemspec(stream.read().decode("utf-8", "replace"))

    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        out = []
        for f in found:
            gem: Gem = f.value  # type: ignore[assignment]
            out.append(
                Package(
                    name=gem.name,
                    version=gem.version,
                    ecosystem=Ecosystem.GEM,
                    purl=purl("gem", gem.name, gem.version),
                    layer=ctx.layer(f.info.layer),
                    licenses=gem.licenses,
                    location=f.info.abspath,
                    extra=(("homepage", gem.homepage),) if gem.homepage else (),
                )
            )
        return out
