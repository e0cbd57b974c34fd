"""Which sources the database is built from, and how each is read.

A source is a NAME and where its data is: ``NAME=URL`` (downloaded),
``NAME=FILE`` or ``NAME=DIR`` (imported as it is). Names:

==================  =====================================================  ================
NAME                data                                                   default URL
==================  =====================================================  ================
PyPI, npm, Go, ...  OSV records: the ecosystem's ``all.zip``, a directory  OSV's bucket
                    of ``.json``/``.yaml`` records, JSON Lines or JSON
debian              the security tracker's JSON export                     the tracker
debian-dsa/-dla     the tracker's ``data/DSA/list`` / ``data/DLA/list``    salsa.debian.org
alpine-secdb        secdb JSON/YAML files (or a directory of them)         none
ghsa, osv           OSV records of any ecosystem (GitHub's database, ...)  none
==================  =====================================================  ================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from forklift.errors import UsageError
from forklift.scan.db import alpine, debian, osv
from forklift.scan.db.model import Advisory

OSV_BUCKET = "https://osv-vulnerabilities.storage.googleapis.com/{name}/all.zip"
TRACKER_JSON = "https://security-tracker.debian.org/tracker/data/json"
TRACKER_LIST = (
    "https://salsa.debian.org/security-tracker-team/security-tracker/-/raw/master/data/{kind}/list"
)

_OSV = {e.lower(): e for e in osv.ECOSYSTEMS}
KINDS = {
    **{e.lower(): "osv" for e in osv.ECOSYSTEMS},
    "ghsa": "osv",
    "osv": "osv",
    "debian": "debian-tracker",
    "debian-dsa": "debian-list",
    "debian-dla": "debian-list",
    "alpine-secdb": "alpine-secdb",
}


def canonical_name(name: str) -> str:
    """``pypi`` -> ``PyPI``; other names lower case; UsageError for unknown ones."""
    key = name.strip().lower()
    if key not in KINDS:
        known = ", ".join(
            [*osv.ECOSYSTEMS, "debian", "debian-dsa", "debian-dla", "alpine-secdb", "ghsa", "osv"]
        )
        raise UsageError(f"unknown database source {name!r} (known: {known})")
    return _OSV.get(key, key)


def default_url(name: str) -> str | None:
    key = name.lower()
    if key in _OSV:
        return OSV_BUCKET.format(name=_OSV[key])
    if key == "debian":
        return TRACKER_JSON
    if key in ("debian-dsa", "debian-dla"):
        return TRACKER_LIST.format(kind=key[-3:].upper())
    return None


@dataclass(frozen=True)
class SourceSpec:
    """One source to import: its name and locations (URLs, files or directories)."""

    name: str
    locations: tuple[str, ...]

    @property
    def kind(self) -> str:
        return KINDS[self.name.lower()]


def parse_specs(values: list[str]) -> list[SourceSpec]:
    """``["PyPI=/x/all.zip", "debian=https://..."]`` -> specs; a NAME may repeat."""
    order: list[str] = []
    where: dict[str, list[str]] = {}
    for value in values:
        name, sep, loc = value.partition("=")
        if not sep:
            # a bare NAME means: its default location
            url = default_url(canonical_name(name))
            if url is None:
                raise UsageError(
                    f"--source {name}: this source has no default; give {name}=URL|FILE|DIR"
                )
            loc = url
        if not loc:
            raise UsageError(f"--source {value!r}: nothing after '='")
        cname = canonical_name(name)
        if cname not in where:
            order.append(cname)
            where[cname] = []
        where[cname].append(loc)
    return [SourceSpec(n, tuple(where[n])) for n in order]


def default_specs() -> list[SourceSpec]:
    """What ``forklift db update`` fetches when no ``--source`` is given."""
    names = [*osv.ECOSYSTEMS, "debian", "debian-dsa", "debian-dla"]
    return [SourceSpec(n, (url,)) for n in names if (url := default_url(n))]


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def read(kind: str, name: str, path: Path) -> Iterator[Advisory]:
    """The advisories in one local file or directory of a source."""
    if kind == "osv":
        for where, record in osv.read_records(path):
            yield osv.parse_record(record, name, where)
    elif kind == "debian-tracker":
        yield from debian.read_tracker(path, name)
    elif kind == "debian-list":
        if path.is_dir():
            for p in sorted(path.iterdir()):
                if p.is_file():
                    yield from debian.read_list(p, name)
        else:
            yield from debian.read_list(path, name)
    elif kind == "alpine-secdb":
        yield from alpine.read_secdb(path, name)
    else:  # pragma: no cover - KINDS lists every kind
        raise UsageError(f"unknown source kind {kind}")
