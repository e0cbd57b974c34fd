"""Version comparison, exactly per ecosystem.

Each scheme module has ``compare(a, b) -> -1 | 0 | 1`` (raising
:class:`InvalidVersion` for strings the scheme cannot order) and
``valid(version)``. :func:`scheme` picks the module for an ecosystem name as
OSV spells it (``PyPI``, ``npm``, ``Debian:12``, ``Alpine:v3.19``, ...) or as
forklift's inventory does (``deb``, ``apk``, ``pypi``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from forklift.scan.versions import apk, dpkg, maven, pep440, rpm, rubygems, semver
from forklift.scan.versions.base import InvalidVersion

__all__ = ["InvalidVersion", "Scheme", "scheme"]


@dataclass(frozen=True)
class Scheme:
    """A named version ordering."""

    name: str
    compare: Callable[[str, str], int]
    valid: Callable[[str], bool]


DPKG = Scheme("dpkg", dpkg.compare, dpkg.valid)
APK = Scheme("apk", apk.compare, apk.valid)
RPM = Scheme("rpm", rpm.compare, rpm.valid)
PEP440 = Scheme("pep440", pep440.compare, pep440.valid)
SEMVER = Scheme("semver", semver.compare, semver.valid)
NUGET = Scheme("nuget", semver.compare_nocase, semver.valid)
MAVEN = Scheme("maven", maven.compare, maven.valid)
RUBYGEMS = Scheme("rubygems", rubygems.compare, rubygems.valid)

_BY_ECOSYSTEM: dict[str, Scheme] = {
    # OSV ecosystem names (case-insensitive here)
    "pypi": PEP440,
    "npm": SEMVER,
    "go": SEMVER,
    "crates.io": SEMVER,
    "packagist": SEMVER,
    "nuget": NUGET,
    "maven": MAVEN,
    "rubygems": RUBYGEMS,
    "debian": DPKG,
    "ubuntu": DPKG,
    "alpine": APK,
    "wolfi": APK,
    "chainguard": APK,
    "almalinux": RPM,
    "rocky linux": RPM,
    "red hat": RPM,
    "opensuse": RPM,
    "suse": RPM,
    "mageia": RPM,
    # forklift inventory ecosystems (package-URL types)
    "deb": DPKG,
    "apk": APK,
    "rpm": RPM,
    "golang": SEMVER,
    "cargo": SEMVER,
    "composer": SEMVER,
    "gem": RUBYGEMS,
}


def scheme(ecosystem: str) -> Scheme:
    """The version scheme of ``ecosystem``; raises KeyError for unknown ones."""
    base = ecosystem.split(":", 1)[0].strip().lower()
    return _BY_ECOSYSTEM[base]
