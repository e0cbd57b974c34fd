"""Debian's security tracker: its JSON export and the DSA/DLA lists.

The JSON export (``security-tracker.debian.org/tracker/data/json``) is
``{source package: {CVE: {description, releases: {codename: {status,
fixed_version, urgency, nodsa, nodsa_reason}}}}}``. Per release:

* ``resolved`` with a ``fixed_version``: fixed in that version; ``"0"`` means the
  release never had the vulnerable code (not affected, not stored);
* ``open``: no fix; ``nodsa_reason`` ``ignored`` is *will not fix*,
  ``postponed`` is *fix deferred*, urgency ``end-of-life`` is *end of life*;
* ``undetermined``: not yet triaged.

The DSA and DLA lists (``data/DSA/list``, ``data/DLA/list``) name, per advisory,
the CVEs and the fixed version per release::

    [01 Apr 2023] DLA-3378-1 duktape - security update
        {CVE-2021-46322}
        [buster] - duktape 2.3.0-1+deb10u1

Each becomes one advisory per CVE (the DSA/DLA id kept as an alias), so a CVE
seen in both the tracker and a list is one finding; the tracker's status wins.
Everything is keyed by *source* package and release: binary packages are
matched through their ``Source:``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.scan import severity as sev
from forklift.scan.db.model import Advisory, Affected, Severity, Status
from forklift.scan.db.names import DEBIAN_CODENAMES, debian_namespace

TRACKER_URL = "https://security-tracker.debian.org/tracker/"


def _status(entry: dict[str, Any]) -> tuple[Status | None, str]:
    status = str(entry.get("status", ""))
    fixed = str(entry.get("fixed_version") or "")
    if status == "resolved":
        if not fixed or fixed == "0":
            return None, ""  # never affected in this release
        return Status.FIXED, fixed
    if status == "open":
        reason = str(entry.get("nodsa_reason") or "")
        if str(entry.get("urgency", "")) == "end-of-life":
            return Status.END_OF_LIFE, ""
        if reason == "ignored":
            return Status.WILL_NOT_FIX, ""
        if reason == "postponed":
            return Status.FIX_DEFERRED, ""
        return Status.AFFECTED, ""
    if status == "undetermined":
        return Status.UNDETERMINED, ""
    return None, ""


def parse_tracker(doc: Any, source: str = "debian") -> Iterator[Advisory]:
    """Advisories from the tracker's JSON export (one per source package and CVE)."""
    if not isinstance(doc, dict):
        raise InvalidInput("Debian tracker JSON: expected an object of source packages")
    for package, cves in doc.items():
        if not isinstance(cves, dict):
            continue
        for cve, info in cves.items():
            if not isinstance(info, dict) or not isinstance(info.get("releases"), dict):
                continue
            affected: list[Affected] = []
            worst = Severity.UNKNOWN
            for codename, entry in info["releases"].items():
                if not isinstance(entry, dict) or codename not in DEBIAN_CODENAMES:
                    continue
                status, fixed = _status(entry)
                if status is None:
                    continue
                rating = sev.from_urgency(str(entry.get("urgency", "")))
                worst = max(worst, rating, key=lambda s: s.rank)
                note = str(entry.get("nodsa") or "")
                affected.append(
                    Affected(
                        ecosystem=debian_namespace(codename),
                        package=package,
                        status=status,
                        fixed=fixed,
                        severity=rating.value,
                        note=note,
                    )
                )
            if not affected:
                continue
            description = str(info.get("description") or "")
            yield Advisory(
                id=cve,
                source=source,
                summary=description[:300],
                severity=worst,
                severity_source="debian" if worst is not Severity.UNKNOWN else "",
                references=(TRACKER_URL + cve,),
                affected=tuple(affected),
            )


# -- DSA / DLA lists ---------------------------------------------------------------------

_HEADER = re.compile(
    r"^\[(?P<date>\d{1,2} \w{3} \d{4})\]\s+(?P<id>D[SL]A-\d+(?:-\d+)?)\s+(?P<rest>.*)$"
)
_TITLE = re.compile(r"^(\S.*?)\s+--?\s+(.*)$")
_FIXED = re.compile(r"^\[(?P<release>[a-z-]+)\]\s+-\s+(?P<package>\S+)\s+(?P<version>.*?)\s*$")


@dataclass
class ListAdvisory:
    """One entry of a DSA/DLA list, as written."""

    id: str
    date: str
    packages: list[str]
    title: str
    cves: list[str] = field(default_factory=list)
    fixed: list[dict[str, str | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_list(text: str, what: str = "DSA list") -> list[ListAdvisory]:
    """Parse the tracker's ``data/DSA/list`` or ``data/DLA/list`` text format."""
    out: list[ListAdvisory] = []
    current: ListAdvisory | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            m = _HEADER.match(line)
            if m is None:
                raise InvalidInput(f"{what}:{n}: not an advisory header: {line[:80]!r}")
            rest = m.group("rest")
            split = _TITLE.match(rest)
            # a notice without packages ("jessie end-of-life") is all title
            names, title = (split.group(1), split.group(2)) if split else ("", rest)
            current = ListAdvisory(m.group("id"), m.group("date"), names.split(), title.strip())
            out.append(current)
            continue
        if current is None:
            raise InvalidInput(f"{what}:{n}: an indented line before the first advisory")
        body = line.strip()
        if body.startswith("{") and body.endswith("}"):
            current.cves.extend(body[1:-1].split())
        elif body.startswith("NOTE:"):
            current.notes.append(body[5:].strip())
        elif body.startswith("["):
            m = _FIXED.match(body)
            if m is None:
                raise InvalidInput(f"{what}:{n}: cannot read {body[:80]!r}")
            version, extra = m.group("version"), None
            if " " in version:
                version, extra = version.split(" ", 1)
            current.fixed.append(
                {
                    "release": m.group("release"),
                    "package": m.group("package"),
                    "version": version,
                    "extra": extra,
                }
            )
    return out


def list_advisories(entries: list[ListAdvisory], source: str) -> Iterator[Advisory]:
    """Advisories from parsed DSA/DLA entries: one per (entry, CVE), fixed per release."""
    for entry in entries:
        affected: list[Affected] = []
        for f in entry.fixed:
            version = str(f["version"] or "")
            release = str(f["release"])
            if version.startswith("<") or release not in DEBIAN_CODENAMES:
                continue  # <not-affected>, <no-dsa>, ...: the tracker says more
            affected.append(
                Affected(
                    ecosystem=debian_namespace(release),
                    package=str(f["package"]),
                    status=Status.FIXED,
                    fixed=version,
                )
            )
        if not affected:
            continue
        for vid in entry.cves or [entry.id]:
            aliases = (entry.id,) if vid != entry.id else ()
            yield Advisory(
                id=vid,
                source=source,
                aliases=aliases,
                summary=f"{entry.id}: {' '.join(entry.packages)} - {entry.title}",
                published=entry.date,
                references=(TRACKER_URL + entry.id,),
                affected=tuple(affected),
            )


def read_tracker(path: Path, source: str = "debian") -> Iterator[Advisory]:
    """Advisories from a tracker JSON file."""
    yield from parse_tracker(canonical.loads(path.read_bytes(), str(path)), source)


def read_list(path: Path, source: str) -> Iterator[Advisory]:
    """Advisories from a DSA/DLA list file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    yield from list_advisories(parse_list(text, str(path)), source)
