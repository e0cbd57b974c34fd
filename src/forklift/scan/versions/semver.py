"""Semantic Versioning 2.0.0 precedence, for npm, crates.io, Go, NuGet and Packagist.

``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``: the numbers compare numerically, a
version with a pre-release is older than the same version without one,
pre-release identifiers compare numerically when both are numeric, else in
ASCII order, numeric before alphanumeric, and a shorter list is older when all
its identifiers are equal. Build metadata does not count.

Real ecosystems are looser than the spec, so :func:`parse` also accepts a
leading ``v``/``=`` (npm, Go), fewer than three numbers (``1.19`` is
``1.19.0``, as Go's toolchain versions are written) and a fourth number
(NuGet's legacy revision); ``loose=False`` insists on the strict grammar.
"""

from __future__ import annotations

import re
from functools import lru_cache

from forklift.scan.versions.base import InvalidVersion

_STRICT = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_LOOSE = re.compile(
    r"^[vV=]?\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?"
    r"(?:-?([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-.]+))?$"
)

Key = tuple[tuple[int, ...], tuple[tuple[int, int | str], ...] | None]


@lru_cache(maxsize=65536)
def parse(version: str, loose: bool = True) -> Key:
    """A key that sorts by SemVer precedence (pre-release ``None`` = a release)."""
    s = version.strip()
    if not loose:
        m = _STRICT.match(s)
        if not m:
            raise InvalidVersion(f"invalid semantic version {version!r}")
        numbers: tuple[int, ...] = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        pre = m.group(4)
    else:
        m = _LOOSE.match(s)
        if not m:
            raise InvalidVersion(f"invalid semantic version {version!r}")
        parts = [int(g) if g is not None else 0 for g in m.group(1, 2, 3, 4)]
        numbers = tuple(parts[:3]) if parts[3] == 0 else tuple(parts)
        pre = m.group(5)
    return numbers, _prerelease(pre)


def _prerelease(pre: str | None) -> tuple[tuple[int, int | str], ...] | None:
    if pre is None or pre == "":
        return None
    out: list[tuple[int, int | str]] = []
    for ident in pre.split("."):
        out.append((0, int(ident)) if ident.isdigit() and ident.isascii() else (1, ident))
    return tuple(out)


def _cmp_pre(
    a: tuple[tuple[int, int | str], ...] | None, b: tuple[tuple[int, int | str], ...] | None
) -> int:
    if a is None or b is None:
        if a is None and b is None:
            return 0
        return 1 if a is None else -1
    for x, y in zip(a, b, strict=False):
        if x != y:
            return -1 if x < y else 1
    return (len(a) > len(b)) - (len(a) < len(b))


def compare(a: str, b: str, *, loose: bool = True) -> int:
    """-1, 0 or 1 by SemVer precedence."""
    na, pa = parse(a, loose)
    nb, pb = parse(b, loose)
    width = max(len(na), len(nb))
    na = na + (0,) * (width - len(na))
    nb = nb + (0,) * (width - len(nb))
    if na != nb:
        return -1 if na < nb else 1
    return _cmp_pre(pa, pb)


def compare_nocase(a: str, b: str) -> int:
    """NuGet: SemVer with case-insensitive pre-release labels."""
    return compare(a.lower(), b.lower())


def valid(version: str) -> bool:
    """True for a strict SemVer 2.0.0 version."""
    return _STRICT.match(version.strip()) is not None
