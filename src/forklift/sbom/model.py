"""The inventory of an image: what ``forklift sbom`` reports and ``forklift scan`` matches.

Pure data, no I/O. Analyzers (``forklift.sbom.analyzers``) produce it from the
final filesystem view of an image; writers (SPDX, CycloneDX, table, JSON) and the
vulnerability scanner consume it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Ecosystem(StrEnum):
    """Where a package comes from; the value is the package-URL type (purl spec)."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    GOLANG = "golang"
    MAVEN = "maven"
    CARGO = "cargo"
    GEM = "gem"
    COMPOSER = "composer"
    NUGET = "nuget"

    @property
    def is_os(self) -> bool:
        """Installed by the distribution's package manager (matched against distro advisories)."""
        return self in (Ecosystem.DEB, Ecosystem.APK, Ecosystem.RPM)


@dataclass(frozen=True)
class OSInfo:
    """The distribution of the image, from ``/etc/os-release`` (or its fallbacks)."""

    id: str  # "debian", "alpine", "rhel", ... (os-release ID)
    version_id: str = ""  # "12", "3.19.1"
    codename: str = ""  # "bookworm" (VERSION_CODENAME), empty where the distro has none
    pretty_name: str = ""


@dataclass(frozen=True)
class LayerRef:
    """A layer of the image and the build step that made it."""

    index: int  # 0 = the bottom layer
    digest: str  # the layer blob's digest (compressed), as in the manifest
    diff_id: str = ""  # the uncompressed digest, as in the config's rootfs
    created_by: str = ""  # the history entry's instruction
    dockerfile: str = ""  # when forklift built the image: the Dockerfile ...
    line: int | None = None  # ... and the line of the instruction


@dataclass(frozen=True)
class Package:
    """One installed package.

    ``source_name``/``source_version`` are the distribution's source package (dpkg
    ``Source:``, apk ``o:`` origin, rpm source RPM); advisories for distribution
    packages are keyed by them. ``epoch``-bearing versions keep the epoch in
    ``version`` exactly as the package manager prints it.
    """

    name: str
    version: str
    ecosystem: Ecosystem
    purl: str
    layer: LayerRef | None = None  # the layer that last wrote the package's record
    source_name: str = ""
    source_version: str = ""
    arch: str = ""
    licenses: tuple[str, ...] = ()  # as declared; an SPDX expression where one parses
    location: str = ""  # the file the package was found in (database, METADATA, binary)
    files: tuple[str, ...] = ()  # files the package owns, when the analyzer knows them
    cpes: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()  # analyzer-specific facts (e.g. Go toolchain)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity for de-duplication and sorting."""
        return (self.ecosystem.value, self.name, self.version, self.location)


@dataclass(frozen=True)
class Inventory:
    """Everything found in one image (or one root filesystem)."""

    target: str  # what was inventoried: an image name or a directory
    digest: str = ""  # the manifest digest, when the target is an image
    config_digest: str = ""  # the image ID
    platform: str = ""  # "linux/amd64"
    os: OSInfo | None = None
    layers: tuple[LayerRef, ...] = ()
    packages: tuple[Package, ...] = ()
    #: problems that did not stop the inventory (an unreadable rpmdb, a broken METADATA)
    warnings: tuple[str, ...] = field(default=())

    def by_ecosystem(self, ecosystem: Ecosystem) -> tuple[Package, ...]:
        """The packages of one ecosystem, in inventory order."""
        return tuple(p for p in self.packages if p.ecosystem is ecosystem)
