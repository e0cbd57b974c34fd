"""Severities: CVSS vectors scored, distribution ratings mapped, one scale.

CVSS base scores map to Trivy's (and NVD's) bands: 0.1-3.9 LOW, 4.0-6.9
MEDIUM, 7.0-8.9 HIGH, 9.0-10 CRITICAL. Debian urgencies map as Trivy maps them:
``unimportant``/``low`` -> LOW, ``medium`` -> MEDIUM, ``high`` -> HIGH (a
trailing ``*`` or ``**`` only marks how sure the tracker is), ``not yet
assigned`` and ``end-of-life`` -> UNKNOWN. GitHub's ``MODERATE`` is MEDIUM.
"""

from __future__ import annotations

from forklift.scan.db.model import CVSS, Severity

_URGENCY = {
    "unimportant": Severity.LOW,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
}

_WORDS = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "negligible": Severity.LOW,
    "unimportant": Severity.LOW,
}


def from_score(score: float) -> Severity:
    """The rating band of a CVSS base score."""
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.UNKNOWN


def from_urgency(urgency: str) -> Severity:
    """A Debian tracker urgency as a severity."""
    return _URGENCY.get(urgency.strip().lower().rstrip("*"), Severity.UNKNOWN)


def from_word(word: str) -> Severity:
    """A textual rating (GitHub's, a vendor's) as a severity."""
    return _WORDS.get(word.strip().lower(), Severity.UNKNOWN)


def parse_cvss(vector: str) -> CVSS | None:
    """Score a CVSS v2, v3.x or v4.0 vector; None if it does not parse."""
    from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]
    from cvss.exceptions import CVSSError  # type: ignore[import-untyped]

    v = vector.strip().rstrip("/")
    try:
        if v.startswith("CVSS:4.0/"):
            c4 = CVSS4(v)
            return CVSS("4.0", v, float(c4.base_score))
        if v.startswith("CVSS:3."):
            c3 = CVSS3(v)
            return CVSS(v[5:8], v, float(c3.scores()[0]))
        c2 = CVSS2(v)
        return CVSS("2.0", v, float(c2.scores()[0]))
    except (CVSSError, ValueError, KeyError, IndexError, TypeError):
        return None
