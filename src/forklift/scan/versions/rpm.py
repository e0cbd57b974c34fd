"""RPM versions: ``[epoch:]version[-release]``, compared with rpmvercmp.

rpmvercmp splits each string into runs of digits and runs of letters (other
characters only separate). ``~`` sorts before everything, even the end of the
string (pre-releases); ``^`` sorts after the end of the string but before
anything else (post-release snapshots). Digit runs compare numerically and
beat letter runs; when one string is exhausted, the other is newer.
"""

from __future__ import annotations

from functools import lru_cache

from forklift.scan.versions.base import InvalidVersion

_DIGITS = frozenset("0123456789")


def _alpha(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def _alnum(c: str) -> bool:
    return c in _DIGITS or _alpha(c)


def vercmp(a: str, b: str) -> int:
    """rpmvercmp: -1, 0 or 1."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < lb and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        if ca in _DIGITS:
            while i < la and a[i] in _DIGITS:
                i += 1
            while j < lb and b[j] in _DIGITS:
                j += 1
            isnum = True
        else:
            while i < la and _alpha(a[i]):
                i += 1
            while j < lb and _alpha(b[j]):
                j += 1
            isnum = False
        if sj == j:  # the segments are of different kinds
            return 1 if isnum else -1
        x, y = a[si:i], b[sj:j]
        if isnum:
            x, y = x.lstrip("0"), y.lstrip("0")
            if len(x) != len(y):
                return 1 if len(x) > len(y) else -1
        if x != y:
            return 1 if x > y else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


@lru_cache(maxsize=65536)
def parse(evr: str) -> tuple[int, str, str]:
    """``(epoch, version, release)``; a missing epoch is 0, a missing release ``""``."""
    s = evr.strip()
    if not s:
        raise InvalidVersion("empty rpm version")
    epoch = 0
    if ":" in s:
        head, s = s.split(":", 1)
        if head:
            if not set(head) <= _DIGITS:
                raise InvalidVersion(f"rpm version {evr!r}: epoch is not a number")
            epoch = int(head)
    version, release = s.rsplit("-", 1) if "-" in s else (s, "")
    if not version:
        raise InvalidVersion(f"rpm version {evr!r}: the version is empty")
    return epoch, version, release


def compare(a: str, b: str) -> int:
    """Compare two EVR strings as rpm's ``rpmverCmp`` does (a missing release is empty)."""
    ea, va, ra = parse(a)
    eb, vb, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return vercmp(va, vb) or vercmp(ra, rb)


def valid(version: str) -> bool:
    try:
        parse(version)
    except InvalidVersion:
        return False
    return True
