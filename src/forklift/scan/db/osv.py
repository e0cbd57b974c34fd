"""OSV records (https://ossf.github.io/osv-schema/) as advisories.

Read from an ecosystem's ``all.zip`` (one JSON record per member), a directory
of ``*.json``/``*.yaml`` records (the layout of advisory-database repositories),
a JSON Lines file, or a single JSON record or array. ``GIT`` ranges are dropped
(they name commits, not releases); ``ECOSYSTEM`` and ``SEMVER`` ranges and the
explicit ``versions`` lists are kept. Withdrawn records are stored with their
date and never matched.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.scan import severity as sev
from forklift.scan.db.model import CVSS, Advisory, Affected, Range, Severity
from forklift.scan.db.names import osv_ecosystem, package_name

#: the OSV ecosystems forklift imports (the NAME of ``db update --source NAME=...``)
ECOSYSTEMS = ("PyPI", "npm", "Go", "crates.io", "Maven", "RubyGems", "Packagist", "NuGet", "Alpine")

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(_str(v) for v in value if isinstance(v, str | int | float) and _str(v))


def _severity(record: dict[str, Any]) -> tuple[Severity, str, tuple[CVSS, ...]]:
    scored: list[CVSS] = []
    for item in record.get("severity") or []:
        if isinstance(item, dict) and str(item.get("type", "")).startswith("CVSS_"):
            c = sev.parse_cvss(_str(item.get("score")))
            if c is not None:
                scored.append(c)
    # GitHub's reviewed rating first (what Trivy shows for GHSA), then the newest CVSS
    specific = record.get("database_specific")
    if isinstance(specific, dict) and isinstance(specific.get("severity"), str):
        rating = sev.from_word(specific["severity"])
        if rating is not Severity.UNKNOWN:
            return (
                rating,
                "ghsa" if record.get("id", "").startswith("GHSA-") else "vendor",
                tuple(scored),
            )
    if scored:
        best = max(scored, key=lambda c: c.version)
        return sev.from_score(best.score), f"cvss:{best.version}", tuple(scored)
    return Severity.UNKNOWN, "", ()


def _ranges(raw: Any) -> tuple[Range, ...]:
    out: list[Range] = []
    for r in raw or []:
        if not isinstance(r, dict) or r.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        events: list[tuple[str, str]] = []
        for e in r.get("events") or []:
            if not isinstance(e, dict):
                continue
            for kind in _EVENT_KINDS:
                if kind in e and _str(e[kind]):
                    events.append((kind, _str(e[kind])))
        if events:
            out.append(Range(r["type"], tuple(events)))
    return tuple(out)


def parse_record(record: Any, source: str, what: str = "OSV record") -> Advisory:
    """One OSV record as an :class:`Advisory` (unsupported ecosystems are left out)."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise InvalidInput(f"{what}: not an OSV record (no id)")
    affected: list[Affected] = []
    for a in record.get("affected") or []:
        if not isinstance(a, dict) or not isinstance(a.get("package"), dict):
            continue
        eco = osv_ecosystem(_str(a["package"].get("ecosystem")))
        name = _str(a["package"].get("name"))
        if eco is None or not name:
            continue
        affected.append(
            Affected(
                ecosystem=eco,
                package=package_name(eco, name),
                ranges=_ranges(a.get("ranges")),
                versions=_strings(a.get("versions")),
            )
        )
    rating, rating_source, scored = _severity(record)
    refs = tuple(
        _str(r.get("url"))
        for r in record.get("references") or []
        if isinstance(r, dict) and r.get("url")
    )
    summary = _str(record.get("summary")) or _str(record.get("details")).strip().split("\n", 1)[0]
    return Advisory(
        id=record["id"],
        source=source,
        aliases=tuple(a for a in _strings(record.get("aliases")) if a != record["id"]),
        summary=summary[:300],
        severity=rating,
        severity_source=rating_source,
        cvss=scored,
        published=_str(record.get("published")),
        modified=_str(record.get("modified")),
        withdrawn=_str(record.get("withdrawn")),
        references=refs,
        affected=tuple(affected),
    )


def _load(data: bytes, name: str) -> Any:
    if name.endswith((".yaml", ".yml")):
        import yaml

        try:
            # BaseLoader keeps every scalar a string: "1.10" must not become 1.1
            return yaml.load(data, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{name}: invalid YAML: {str(exc).splitlines()[0]}") from None
    return canonical.loads(data, name)


def read_records(path: Path) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` for every OSV record in ``path`` (zip, directory, JSON Lines, JSON)."""
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                if f.endswith((".json", ".yaml", ".yml")):
                    p = Path(root, f)
                    yield str(p), _load(p.read_bytes(), str(p))
        return
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        yield from _zip_records(path)
        return
    data = path.read_bytes()
    if path.name.endswith(".jsonl"):
        for n, line in enumerate(data.splitlines(), 1):
            if line.strip():
                yield f"{path}:{n}", canonical.loads(line, f"{path}:{n}")
        return
    doc = _load(data, str(path))
    for i, rec in enumerate(doc if isinstance(doc, list) else [doc]):
        yield f"{path}[{i}]", rec


def _zip_records(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{path}: not a readable zip archive ({exc})") from None
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            try:
                data = zf.read(info)  # checks the member's CRC
            except (zipfile.BadZipFile, OSError, EOFError, zlib_error()) as exc:
                raise InvalidInput(f"{path}: member {info.filename}: {exc}") from None
            yield f"{path}:{info.filename}", canonical.loads(data, f"{path}:{info.filename}")


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def check_zip(path: Path) -> int:
    """Verify every member's CRC; the number of members. Raises InvalidInput if broken."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            count = len(zf.infolist())
    except (zipfile.BadZipFile, OSError, EOFError, zlib_error()) as exc:
        raise InvalidInput(f"{path}: corrupt zip archive ({exc})") from None
    if bad is not None:
        raise InvalidInput(f"{path}: corrupt zip archive (member {bad} fails its CRC)")
    return count


__all__ = ["ECOSYSTEMS", "check_zip", "parse_record", "read_records"]
