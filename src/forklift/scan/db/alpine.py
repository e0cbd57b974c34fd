"""Alpine's secdb (``secdb.alpinelinux.org/v3.19/main.json``) as advisories.

A file lists, for one release (``distroversion``), each *origin* package's
``secfixes``: ``{fixed apk version: [CVE ids]}``. A package older than the
listed version is vulnerable to those CVEs; ``0`` means the release never
shipped the vulnerable code. secdb says nothing about unfixed issues.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.scan.db.model import Advisory, Affected, Status
from forklift.scan.db.names import alpine_namespace

_ID = re.compile(r"\b(?:CVE-\d{4}-\d{4,}|XSA-\d+|GHSA(?:-[0-9a-z]{4}){3}|ZBX-\d+|ALPINE-\d+)\b")


def parse_secdb(doc: Any, source: str = "alpine-secdb", what: str = "secdb") -> Iterator[Advisory]:
    """One advisory per (release, origin package, id)."""
    if not isinstance(doc, dict) or "packages" not in doc:
        raise InvalidInput(f"{what}: not an Alpine secdb document (no packages list)")
    if not isinstance(doc["packages"], list):
        return  # an empty repository is written as "packages": ""
    release = str(doc.get("distroversion") or "")
    if not release:
        raise InvalidInput(f"{what}: no distroversion")
    namespace = alpine_namespace(release)
    for item in doc["packages"]:
        pkg = item.get("pkg") if isinstance(item, dict) else None
        if not isinstance(pkg, dict) or not isinstance(pkg.get("secfixes"), dict):
            continue
        name = str(pkg.get("name") or "")
        for fixed, ids in pkg["secfixes"].items():
            fixed = str(fixed)
            if fixed == "0" or not isinstance(ids, list):
                continue
            for text in ids:
                for vid in _ID.findall(str(text)):
                    yield Advisory(
                        id=vid,
                        source=source,
                        references=(f"https://security.alpinelinux.org/vuln/{vid}",),
                        affected=(
                            Affected(
                                ecosystem=namespace,
                                package=name,
                                status=Status.FIXED,
                                fixed=fixed,
                            ),
                        ),
                    )


def read_secdb(path: Path, source: str = "alpine-secdb") -> Iterator[Advisory]:
    """Advisories from a secdb JSON (or YAML) file, or every such file under a directory."""
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.suffix not in (".json", ".yaml", ".yml") or not p.is_file():
                continue
            if p.suffix != ".json" and p.with_suffix(".json").is_file():
                continue  # the same data in both formats: read it once
            yield from read_secdb(p, source)
        return
    data = path.read_bytes()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            doc = yaml.load(data, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    else:
        doc = canonical.loads(data, str(path))
    yield from parse_secdb(doc, source, str(path))
