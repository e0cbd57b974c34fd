"""Debian package versions, compared exactly as ``dpkg --compare-versions`` does.

A version is ``[epoch:]upstream[-revision]``: the epoch is the digits before the
first colon, the revision whatever follows the last hyphen. Upstream and
revision are compared with dpkg's string algorithm: alternating runs of
non-digits (compared character by character, ``~`` sorting before everything,
even the end of the string, and letters before other characters) and runs of
digits (compared as numbers).
"""

from __future__ import annotations

from functools import lru_cache

from forklift.scan.versions.base import InvalidVersion

_DIGITS = frozenset("0123456789")


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c in _DIGITS:
        return 0
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        # the non-digit run; the end of a string orders as 0, like a digit
        while (i < la and a[i] not in _DIGITS) or (j < lb and b[j] not in _DIGITS):
            ac = _order(a[i]) if i < la and a[i] not in _DIGITS else 0
            bc = _order(b[j]) if j < lb and b[j] not in _DIGITS else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        first_diff = 0
        while i < la and a[i] in _DIGITS and j < lb and b[j] in _DIGITS:
            if not first_diff and a[i] != b[j]:
                first_diff = -1 if a[i] < b[j] else 1
            i += 1
            j += 1
        if i < la and a[i] in _DIGITS:
            return 1
        if j < lb and b[j] in _DIGITS:
            return -1
        if first_diff:
            return first_diff
    return 0


@lru_cache(maxsize=65536)
def parse(version: str) -> tuple[int, str, str]:
    """``(epoch, upstream, revision)``.

    Raises :class:`InvalidVersion` where dpkg refuses to compare (empty, a bad
    epoch, nothing after the colon, an empty revision); what dpkg only warns
    about (no leading digit, odd characters) is compared as dpkg compares it.
    """
    v = version.strip()
    if not v or any(ch.isspace() for ch in v):
        raise InvalidVersion(f"invalid dpkg version {version!r}")
    epoch = 0
    if ":" in v:
        head, v = v.split(":", 1)
        if not head or not set(head) <= _DIGITS or int(head) > 2**31 - 1:
            raise InvalidVersion(f"dpkg version {version!r}: epoch is not a number")
        if not v:
            raise InvalidVersion(f"dpkg version {version!r}: nothing after the colon")
        epoch = int(head)
    upstream, revision = v.rsplit("-", 1) if "-" in v else (v, "")
    if "-" in v and not revision:
        raise InvalidVersion(f"dpkg version {version!r}: the revision is empty")
    if not upstream:
        raise InvalidVersion(f"dpkg version {version!r}: the version is empty")
    return epoch, upstream, revision


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``."""
    ea, ua, ra = parse(a)
    eb, ub, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def valid(version: str) -> bool:
    """True if dpkg accepts ``version`` without a warning."""
    try:
        _, upstream, revision = parse(version)
    except InvalidVersion:
        return False
    return upstream[0] in _DIGITS and all(
        ch.isascii() and (ch.isalnum() or ch in ".+-~:") for ch in upstream + revision
    )
