"""Python package versions (PEP 440), through ``packaging``."""

from __future__ import annotations

from functools import lru_cache

from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from forklift.scan.versions.base import InvalidVersion


@lru_cache(maxsize=65536)
def parse(version: str) -> Version:
    """The normalised version; raises :class:`InvalidVersion` for non-PEP 440 strings."""
    try:
        return Version(version)
    except _PackagingInvalid:
        raise InvalidVersion(f"invalid PEP 440 version {version!r}") from None


def compare(a: str, b: str) -> int:
    va, vb = parse(a), parse(b)
    return (va > vb) - (va < vb)


def valid(version: str) -> bool:
    try:
        parse(version)
    except InvalidVersion:
        return False
    return True
