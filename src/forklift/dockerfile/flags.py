"""Builder flags (``--from=x``, ``--link``): BuildKit's ``BFlags`` with typed results.

Each instruction declares which flags it accepts and their kind; :func:`parse_flags`
checks the flags written in the file against that and returns their values.
Error messages are BuildKit's (``unknown flag: --user``, ``missing a value on
flag: --chmod``, ``expecting boolean value for flag --link, not: maybe``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from forklift.dockerfile.ast import Flag
from forklift.dockerfile.gocompat import with_suggestion


class FlagKind(Enum):
    """How a flag's value is read."""

    BOOL = "bool"  # --link, --link=true, --link=false
    STRING = "string"  # --from=x (value required, last one wins is an error: duplicate)
    STRINGS = "strings"  # --exclude=a --exclude=b (may repeat)


class FlagError(ValueError):
    """A flag is unknown, repeated, or has a bad or missing value; ``flag`` is the culprit."""

    def __init__(self, message: str, flag: Flag | None = None) -> None:
        super().__init__(message)
        self.flag = flag


@dataclass(frozen=True)
class ParsedFlags:
    """Values of the flags an instruction accepts, defaults filled in."""

    values: Mapping[str, object] = field(default_factory=dict)
    used: frozenset[str] = frozenset()
    by_name: Mapping[str, Flag] = field(default_factory=dict)

    def string(self, name: str) -> str:
        """A STRING flag's value ("" when not given)."""
        value = self.values.get(name, "")
        assert isinstance(value, str)
        return value

    def boolean(self, name: str) -> bool:
        """A BOOL flag's value."""
        return bool(self.values.get(name, False))

    def strings(self, name: str) -> tuple[str, ...]:
        """A STRINGS flag's values in order."""
        value = self.values.get(name, ())
        assert isinstance(value, tuple)
        return value


def parse_flags(
    flags: tuple[Flag, ...],
    spec: Mapping[str, FlagKind],
    defaults: Mapping[str, object] | None = None,
) -> ParsedFlags:
    """Check ``flags`` against ``spec`` (name -> kind) and return their values."""
    values: dict[str, object] = {}
    for name, kind in spec.items():
        if kind is FlagKind.BOOL:
            values[name] = False
        elif kind is FlagKind.STRING:
            values[name] = ""
        else:
            values[name] = ()
    if defaults:
        values.update(defaults)
    used: set[str] = set()
    by_name: dict[str, Flag] = {}
    for flag in flags:
        text = flag.text
        if text == "--":
            break
        if not text.startswith("--"):
            raise FlagError(f"arg should start with -- : {text}", flag)
        flag_name, eq, value = text.partition("=")
        name = flag_name[2:]
        flag_kind = spec.get(name)
        if flag_kind is None:
            raise FlagError(
                with_suggestion(
                    f"unknown flag: {flag_name}", name, spec.keys(), case_sensitive=True
                ),
                flag,
            )
        if name in used and flag_kind is not FlagKind.STRINGS:
            raise FlagError(f"duplicate flag specified: {flag_name}", flag)
        used.add(name)
        by_name.setdefault(name, flag)
        if flag_kind is FlagKind.BOOL:
            if eq and value == "":
                raise FlagError(f"missing a value on flag: {flag_name}", flag)
            lowered = value.lower()
            if lowered in ("true", ""):
                values[name] = True
            elif lowered == "false":
                values[name] = False
            else:
                raise FlagError(f"expecting boolean value for flag {flag_name}, not: {value}", flag)
        elif flag_kind is FlagKind.STRING:
            if not eq:
                raise FlagError(f"missing a value on flag: {flag_name}", flag)
            values[name] = value
        else:
            if not eq:
                raise FlagError(f"missing a value on flag: {flag_name}", flag)
            current = values[name]
            assert isinstance(current, tuple)
            values[name] = (*current, value)
    return ParsedFlags(values, frozenset(used), by_name)
