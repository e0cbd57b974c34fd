"""Maven versions, ordered as Maven's ``ComparableVersion`` orders them.

A version is parsed into a tree: ``.`` separates items of one list, ``-`` (and
a switch between digits and letters) starts a nested list. Items are numbers,
qualifiers (``alpha < beta < milestone < rc = cr < snapshot < "" = ga = final
= release < sp``, then any other string in lexical order, case-insensitive;
``a1``/``b1``/``m1`` mean alpha/beta/milestone 1) and *combinations* of a
qualifier and a number (``sp1``). Trailing null items (0, "") are dropped, so
``1 == 1.0 == 1-0``. Between kinds: number > list > combination > string.
"""

from __future__ import annotations

import abc
from functools import lru_cache

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RELEASE_INDEX = str(_QUALIFIERS.index(""))
_RELEASE_WORDS = ("ga", "final", "release")

INT, STRING, LIST, COMBINATION = "int", "string", "list", "combination"


def _qualifier_key(q: str) -> str:
    if q in _RELEASE_WORDS:
        return _RELEASE_INDEX
    if q in _QUALIFIERS:
        return str(_QUALIFIERS.index(q))
    return f"{len(_QUALIFIERS)}-{q}"


def _cmp(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


class _Item(abc.ABC):
    kind = ""

    @abc.abstractmethod
    def is_null(self) -> bool:
        """Whether the item counts as absent (Maven trims such items from the end)."""

    @abc.abstractmethod
    def compare(self, other: _Item | None) -> int:
        """-1, 0 or 1 against ``other`` (None: nothing in that place)."""


class _Int(_Item):
    kind = INT

    def __init__(self, value: int) -> None:
        self.value = value

    def is_null(self) -> bool:
        return self.value == 0

    def compare(self, other: _Item | None) -> int:
        if other is None:
            return 0 if self.value == 0 else 1
        if isinstance(other, _Int):
            return _cmp(self.value, other.value)
        return 1  # a number beats strings, combinations and lists


class _String(_Item):
    kind = STRING

    def __init__(self, value: str, followed_by_digit: bool) -> None:
        if followed_by_digit and len(value) == 1:
            value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
        self.value = "rc" if value == "cr" else value

    def is_null(self) -> bool:
        return self.value == ""

    def compare(self, other: _Item | None) -> int:
        if other is None:
            return _cmp(_qualifier_key(self.value), _RELEASE_INDEX)
        if isinstance(other, _String):
            return _cmp(_qualifier_key(self.value), _qualifier_key(other.value))
        if isinstance(other, _Combination):
            r = self.compare(other.string)
            return -1 if r == 0 else r
        return -1  # numbers and lists beat strings


class _Combination(_Item):
    kind = COMBINATION

    def __init__(self, value: str) -> None:
        index = next((i for i, c in enumerate(value) if "0" <= c <= "9"), 0)
        self.string = _String(value[:index], True)
        self.digits = _parse_item(False, True, value[index:])

    def is_null(self) -> bool:
        return False

    def compare(self, other: _Item | None) -> int:
        if other is None:
            return self.string.compare(None)
        if isinstance(other, _String):
            r = self.string.compare(other)
            return 1 if r == 0 else r
        if isinstance(other, _Combination):
            r = self.string.compare(other.string)
            return self.digits.compare(other.digits) if r == 0 else r
        return -1  # numbers and lists beat combinations


class _List(_Item):
    kind = LIST

    def __init__(self) -> None:
        self.items: list[_Item] = []

    def is_null(self) -> bool:
        return not self.items

    def normalize(self) -> None:
        items = self.items
        for i in range(len(items) - 1, -1, -1):
            if not items[i].is_null():
                continue
            if i == len(items) - 1 or items[i + 1].kind == STRING:
                del items[i]
            elif isinstance(items[i + 1], _List):
                nxt = items[i + 1].items  # type: ignore[attr-defined]
                if nxt and nxt[0].kind in (COMBINATION, STRING):
                    del items[i]

    def compare(self, other: _Item | None) -> int:
        if other is None:
            for item in self.items:
                r = item.compare(None)
                if r:
                    return r
            return 0
        if isinstance(other, _Int):
            return -1
        if isinstance(other, _String | _Combination):
            return 1
        assert isinstance(other, _List)
        left, right = self.items, other.items
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else None
            b = right[i] if i < len(right) else None
            r = (0 if b is None else -b.compare(None)) if a is None else a.compare(b)
            if r:
                return r
        return 0


def _parse_item(combination: bool, digit: bool, buf: str) -> _Item:
    if combination:
        return _Combination(buf.replace("-", ""))
    if digit:
        return _Int(int(buf.lstrip("0") or "0"))
    return _String(buf, False)


@lru_cache(maxsize=65536)
def parse(version: str) -> _List:
    """The item tree of ``version`` (any string is a Maven version)."""
    v = version.lower()
    root = _List()
    current = root
    stack = [root]
    is_digit = False
    combination = False
    start = 0
    i = 0
    n = len(v)

    def nested() -> None:
        nonlocal current
        child = _List()
        current.items.append(child)
        current = child
        stack.append(child)

    while i < n:
        c = v[i]
        if c == ".":
            if i == start:
                current.items.append(_Int(0))
            else:
                current.items.append(_parse_item(combination, is_digit, v[start:i]))
            combination = False
            start = i + 1
        elif c == "-":
            if i == start:
                current.items.append(_Int(0))
            else:
                if not is_digit and i != n - 1 and "0" <= v[i + 1] <= "9":
                    combination = True  # X-1 reads as X1
                    i += 1
                    continue
                current.items.append(_parse_item(combination, is_digit, v[start:i]))
            start = i + 1
            if current.items:
                nested()
            combination = False
        elif "0" <= c <= "9":
            if not is_digit and i > start:
                combination = True  # X1
                if current.items:
                    nested()
            is_digit = True
        else:
            if is_digit and i > start:
                current.items.append(_parse_item(combination, True, v[start:i]))
                start = i
                nested()
                combination = False
            is_digit = False
        i += 1
    if n > start:
        if not is_digit and current.items:
            nested()  # 1.0.0.X1 < 1.0.0-X2: ".X" is read as "-X"
        current.items.append(_parse_item(combination, is_digit, v[start:]))
    while stack:
        stack.pop().normalize()
    return root


def compare(a: str, b: str) -> int:
    """-1, 0 or 1."""
    return parse(a).compare(parse(b))


def valid(version: str) -> bool:
    return bool(version.strip())
