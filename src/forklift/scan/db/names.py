"""Normalised names: ecosystems, distribution namespaces, package names.

Records and inventory packages are both normalised here, so they meet on equal
strings and a lookup is an exact, indexed match.
"""

from __future__ import annotations

import re

from forklift.sbom.model import Ecosystem, OSInfo

#: OSV ecosystem name -> forklift's key (lower case, as the lookup index stores it)
OSV_LANGUAGE = {
    "pypi": "pypi",
    "npm": "npm",
    "go": "go",
    "crates.io": "crates.io",
    "maven": "maven",
    "rubygems": "rubygems",
    "packagist": "packagist",
    "nuget": "nuget",
}

#: inventory ecosystem (package-URL type) -> database ecosystem key
INVENTORY = {
    Ecosystem.PYPI: "pypi",
    Ecosystem.NPM: "npm",
    Ecosystem.GOLANG: "go",
    Ecosystem.CARGO: "crates.io",
    Ecosystem.MAVEN: "maven",
    Ecosystem.GEM: "rubygems",
    Ecosystem.COMPOSER: "packagist",
    Ecosystem.NUGET: "nuget",
}

#: Debian codenames and their release numbers (the tracker keys releases by codename)
DEBIAN_CODENAMES = {
    "buzz": "1.1",
    "rex": "1.2",
    "bo": "1.3",
    "hamm": "2.0",
    "slink": "2.1",
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
    "sid": "sid",
}
DEBIAN_RELEASES = {v: k for k, v in DEBIAN_CODENAMES.items()}

_PEP503 = re.compile(r"[-_.]+")


def osv_ecosystem(name: str) -> str | None:
    """The database key of an OSV ecosystem string, or None if forklift does not match it.

    ``PyPI`` -> ``pypi``; ``Debian:12`` -> ``debian:12``; ``Alpine:v3.19`` ->
    ``alpine:3.19``; ``Rocky Linux:9`` -> ``rocky linux:9``.
    """
    base, _, release = name.partition(":")
    key = base.strip().lower()
    if key in OSV_LANGUAGE and not release:
        return OSV_LANGUAGE[key]
    if not release:
        return None
    if key == "debian":
        return debian_namespace(release)
    if key == "alpine":
        return alpine_namespace(release)
    return f"{key}:{release.strip().lower()}"


def debian_namespace(release: str) -> str:
    """``debian:12`` for ``12``, ``12.5`` or ``bookworm``; ``debian:sid`` for sid."""
    r = release.strip().lower()
    if r in DEBIAN_CODENAMES:
        return f"debian:{DEBIAN_CODENAMES[r]}"
    major = r.split(".", 1)[0]
    return f"debian:{major}"


def alpine_namespace(release: str) -> str:
    """``alpine:3.19`` for ``v3.19``, ``3.19`` or ``3.19.1``; ``alpine:edge`` for edge."""
    r = release.strip().lower().removeprefix("v")
    parts = r.split(".")
    return f"alpine:{'.'.join(parts[:2])}" if len(parts) >= 2 else f"alpine:{r}"


def os_namespace(os: OSInfo | None) -> str | None:
    """The database namespace an image's distribution is matched in (None if unsupported)."""
    if os is None:
        return None
    ident = os.id.lower()
    if ident == "debian":
        if os.version_id:
            return debian_namespace(os.version_id)
        if os.codename:
            return debian_namespace(os.codename)
        return "debian:sid"
    if ident == "alpine":
        return alpine_namespace(os.version_id) if os.version_id else None
    if os.version_id:
        return f"{ident}:{os.version_id.lower()}"
    return None


def package_name(ecosystem: str, name: str) -> str:
    """A package name as the index stores it for ``ecosystem`` (a database key)."""
    if ecosystem == "pypi":
        return _PEP503.sub("-", name).lower()
    if ecosystem in ("packagist", "nuget", "crates.io"):
        return name.lower()
    return name
