"""What the vulnerability database holds: advisories and the packages they affect.

Pure data. Importers (``osv``, ``debian``, ``alpine``) turn each upstream format
into :class:`Advisory` values; ``index`` stores them in SQLite; matchers read
them back. Ecosystem, namespace and package names are normalised on the way
in (``names``), so a lookup is one indexed query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    """Whether (and how) a vulnerable package can be fixed; Trivy's vocabulary."""

    FIXED = "fixed"  # a fixed version exists
    AFFECTED = "affected"  # no fix yet (Debian: open, <no-dsa>)
    WILL_NOT_FIX = "will_not_fix"  # Debian <ignored>
    FIX_DEFERRED = "fix_deferred"  # Debian <postponed>
    END_OF_LIFE = "end_of_life"  # Debian: the package is no longer supported
    UNDETERMINED = "undetermined"  # Debian: not yet triaged

    @property
    def unfixed(self) -> bool:
        return self is not Status.FIXED


class Severity(StrEnum):
    """Severity levels, lowest first (Trivy's names)."""

    UNKNOWN = "UNKNOWN"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


@dataclass(frozen=True)
class Range:
    """An OSV range: ``events`` in order, each ``(kind, version)`` with kind one of
    ``introduced``, ``fixed``, ``last_affected``, ``limit``."""

    type: str  # "ECOSYSTEM" or "SEMVER" (GIT ranges are dropped on import)
    events: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Affected:
    """One package an advisory affects, in one ecosystem (or distribution release).

    Language and OSV records use ``ranges``/``versions``. Distribution records
    (Debian tracker, DSA/DLA lists, Alpine secdb) carry a ``status`` and, when
    fixed, the single ``fixed`` version; ``severity`` is then the distribution's
    own rating for this release (Debian urgency).
    """

    ecosystem: str  # normalised: "pypi", "npm", "go", "debian:12", "alpine:3.19", ...
    package: str  # normalised name (distributions: the source package)
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    status: Status | None = None  # distribution records only
    fixed: str = ""  # distribution records only
    severity: str = ""  # the distribution's rating, already mapped to a Severity name
    note: str = ""  # why (Debian: the tracker's no-dsa reason)


@dataclass(frozen=True)
class CVSS:
    """A CVSS vector and the base score computed from it."""

    version: str  # "2.0", "3.0", "3.1", "4.0"
    vector: str
    score: float


@dataclass(frozen=True)
class Advisory:
    """One record of one source."""

    id: str
    source: str  # the source name it was imported from ("PyPI", "debian", "alpine-secdb", ...)
    aliases: tuple[str, ...] = ()
    summary: str = ""
    severity: Severity = Severity.UNKNOWN
    severity_source: str = ""  # where the rating came from ("cvss:3.1", "ghsa", "debian")
    cvss: tuple[CVSS, ...] = ()
    published: str = ""
    modified: str = ""
    withdrawn: str = ""
    references: tuple[str, ...] = ()
    affected: tuple[Affected, ...] = field(default=())

    @property
    def url(self) -> str:
        """A page about the advisory (the first reference, or the source's page)."""
        if self.references:
            return self.references[0]
        return ""
