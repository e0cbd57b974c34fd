"""Alpine package versions, compared as apk-tools compares them.

Grammar: ``digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-r#}``. The
version is read as a sequence of tokens; two versions are compared token by
token while both have a token of the same kind. Numbers compare as numbers,
except that a component after the first with a leading zero compares as a
string (Gentoo's rule). Suffixes rank ``alpha < beta < pre < rc < (none) <
cvs < svn < git < hg < p``. When one version runs out (or the kinds differ),
the longer one is newer unless what follows is a pre-release suffix. An
invalid tail simply stops the comparison, as apk does.
"""

from __future__ import annotations

from functools import lru_cache

from forklift.scan.versions.base import InvalidVersion

# token kinds, in apk's order (the order matters when kinds differ)
INITIAL_DIGIT, DIGIT, LETTER, SUFFIX, SUFFIX_NO, COMMIT_HASH, REVISION_NO, END, INVALID = range(9)

_SUFFIXES = {
    "alpha": 0,
    "beta": 1,
    "pre": 2,
    "rc": 3,
    "cvs": 5,
    "svn": 6,
    "git": 7,
    "hg": 8,
    "p": 9,
}
_NONE = 4
_DIGITS = "0123456789"
_HEX = "0123456789abcdef"

Token = tuple[int, int, str]  # (kind, number or suffix rank, text)


def _digits(s: str, i: int) -> int:
    j = i
    while j < len(s) and s[j] in _DIGITS:
        j += 1
    return j


@lru_cache(maxsize=65536)
def tokens(version: str) -> tuple[Token, ...]:
    """The version's tokens, ending with an ``END`` or ``INVALID`` token."""
    out: list[Token] = []
    s = version
    j = _digits(s, 0)
    if j == 0:
        return ((INVALID, 0, ""),)
    out.append((INITIAL_DIGIT, int(s[:j]), s[:j]))
    kind = INITIAL_DIGIT
    i = j
    while True:
        if i >= len(s):
            out.append((END, 0, ""))
            return tuple(out)
        c = s[i]
        if "a" <= c <= "z":
            if kind > DIGIT:
                break
            kind = LETTER
            out.append((LETTER, ord(c), c))
            i += 1
        elif c == "." or c in _DIGITS:
            if c == ".":
                if kind > DIGIT:
                    break
                i += 1
            if kind in (INITIAL_DIGIT, DIGIT):
                kind = DIGIT
            elif kind == SUFFIX:
                kind = SUFFIX_NO
            else:
                break
            j = _digits(s, i)
            if j == i:
                break
            out.append((kind, int(s[i:j]), s[i:j]))
            i = j
        elif c == "_":
            if kind > SUFFIX_NO:
                break
            j = i + 1
            while j < len(s) and "a" <= s[j] <= "z":
                j += 1
            rank = _SUFFIXES.get(s[i + 1 : j])
            if rank is None:
                break
            kind = SUFFIX
            out.append((SUFFIX, rank, s[i + 1 : j]))
            i = j
        elif c == "~":
            if kind >= COMMIT_HASH:
                break
            j = i + 1
            while j < len(s) and s[j] in _HEX:
                j += 1
            if j == i + 1:
                break
            kind = COMMIT_HASH
            out.append((COMMIT_HASH, 0, s[i + 1 : j]))
            i = j
        elif c == "-":
            if kind >= REVISION_NO or not s.startswith("-r", i):
                break
            j = _digits(s, i + 2)
            if j == i + 2:
                break
            kind = REVISION_NO
            out.append((REVISION_NO, int(s[i + 2 : j]), s[i + 2 : j]))
            i = j
        else:
            break
    out.append((INVALID, 0, ""))
    return tuple(out)


def _cmp_token(a: Token, b: Token) -> int:
    kind = a[0]
    if kind == DIGIT and (a[2][0] == "0" or b[2][0] == "0"):
        x, y = a[2], b[2]  # leading zero: string order
    elif kind in (INITIAL_DIGIT, DIGIT, SUFFIX_NO, REVISION_NO, LETTER, SUFFIX):
        return (a[1] > b[1]) - (a[1] < b[1])
    else:
        x, y = a[2], b[2]
    return (x > y) - (x < y)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``."""
    ta, tb = tokens(a), tokens(b)
    n = 0
    while True:
        x, y = ta[n], tb[n]
        if x[0] != y[0] or x[0] >= END:
            break
        r = _cmp_token(x, y)
        if r:
            return r
        n += 1
    if x[0] == y[0]:
        return 0
    if x[0] == SUFFIX and x[1] < _NONE:
        return -1
    if y[0] == SUFFIX and y[1] < _NONE:
        return 1
    return -1 if x[0] > y[0] else 1


def valid(version: str) -> bool:
    """True if apk accepts ``version`` as a well-formed version."""
    return tokens(version)[-1][0] == END


def check(version: str) -> str:
    """``version`` if valid, else :class:`InvalidVersion`."""
    if not valid(version):
        raise InvalidVersion(f"invalid apk version {version!r}")
    return version
