"""RubyGems versions, ordered as ``Gem::Version#<=>`` orders them.

A version is split into numbers and letter runs (``1.0.b1`` -> 1, 0, "b", 1;
``-`` means ``.pre.``). Any letter makes it a pre-release: strings sort before
numbers, so ``1.0.a < 1.0``. Trailing zeros are dropped from the numeric part
and from the part after the first string (``1.0 == 1``), and missing segments
count as 0.
"""

from __future__ import annotations

import re
from functools import lru_cache

from forklift.scan.versions.base import InvalidVersion

_VALID = re.compile(r"^\s*[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\s*$")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")

Segment = int | str


@lru_cache(maxsize=65536)
def segments(version: str) -> tuple[Segment, ...]:
    """The canonical segments that comparison uses."""
    v = version.strip()
    if not _VALID.match(v):
        raise InvalidVersion(f"invalid RubyGems version {version!r}")
    v = v.replace("-", ".pre.")
    segs: list[Segment] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(v)]
    cut = next((i for i, s in enumerate(segs) if isinstance(s, str)), len(segs))
    out: list[Segment] = []
    for part in (segs[:cut], segs[cut:]):
        while part and part[-1] == 0:
            part = part[:-1]
        out.extend(part)
    return tuple(out)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1."""
    sa, sb = segments(a), segments(b)
    for i in range(max(len(sa), len(sb))):
        x: Segment = sa[i] if i < len(sa) else 0
        y: Segment = sb[i] if i < len(sb) else 0
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, int):
            return -1
        if isinstance(x, int) and isinstance(y, str):
            return 1
        return -1 if x < y else 1  # type: ignore[operator]
    return 0


def valid(version: str) -> bool:
    return bool(_VALID.match(version))
