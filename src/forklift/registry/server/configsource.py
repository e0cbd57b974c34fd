"""Reading a config file (YAML or TOML) together with where each key and value sits in it.

:func:`read` returns the parsed data and a map from a key path such as
``("auth", "access", 0, "actions")`` to its 1-based line and column, so that
validation errors can point into the file. YAML positions come from the
composed node tree; TOML has no position API in the standard library, so a
small scanner that understands TOML's lexical structure (comments, strings,
tables, arrays of tables, inline tables and arrays) records them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from forklift.errors import InvalidInput, Location, ParseError

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Source:
    """A parsed config file and the positions of its keys (``path -> (line, column)``)."""

    file: Path
    data: Any
    positions: dict[KeyPath, tuple[int, int]]

    def location(self, path: KeyPath) -> Location:
        """Where ``path`` is in the file (its nearest known ancestor if not itself)."""
        while True:
            pos = self.positions.get(path)
            if pos is not None:
                return Location(str(self.file), pos[0], pos[1])
            if not path:
                return Location(str(self.file))
            path = path[:-1]


def read(path: Path) -> Source:
    """Parse ``path`` (``.toml`` is TOML, anything else YAML) with key positions."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ParseError("not UTF-8 text", location=Location(str(path))) from None
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ParseError(str(exc), location=Location(str(path))) from None
        return Source(path, data, _toml_positions(text))
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        raise ParseError(f"invalid YAML: {getattr(exc, 'problem', exc)}", location=loc) from None
    except RecursionError:
        raise ParseError("YAML nested too deeply", location=Location(str(path))) from None
    positions: dict[KeyPath, tuple[int, int]] = {}
    if node is not None:
        _yaml_positions(node, (), positions)
    return Source(path, {} if data is None else data, positions)


def _yaml_positions(node: yaml.Node, path: KeyPath, out: dict[KeyPath, tuple[int, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            sub = (*path, key.value)
            # an error about a key points at the key; about its value, at the value
            out[sub] = (key.start_mark.line + 1, key.start_mark.column + 1)
            out[(*sub, "")] = (value.start_mark.line + 1, value.start_mark.column + 1)
            _yaml_positions(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _yaml_positions(item, (*path, i), out)


# -- TOML ----------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


class _TomlScanner:
    """Records where keys are; assumes the text already parsed (tomllib checked it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.col = 1
        self.out: dict[KeyPath, tuple[int, int]] = {}
        self.array_tables: dict[KeyPath, int] = {}

    # low-level cursor movement, keeping line and column
    def _peek(self, n: int = 1) -> str:
        return self.text[self.i : self.i + n]

    def _advance(self, n: int = 1) -> None:
        for ch in self.text[self.i : self.i + n]:
            if ch == "\n":
                self.line += 1
                self.col = 1
            else:
                self.col += 1
        self.i += n

    def _skip_ws(self, newlines: bool) -> None:
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self._advance()
            elif ch == "#":
                while self.i < len(self.text) and self.text[self.i] != "\n":
                    self._advance()
            else:
                return

    def _string(self) -> str:
        for quote in ('"""', "'''"):
            if self._peek(3) == quote:
                self._advance(3)
                start = self.i
                while self.i < len(self.text) and self._peek(3) != quote:
                    self._advance(2 if quote == '"""' and self._peek() == "\\" else 1)
                value = self.text[start : self.i]
                self._advance(3)
                while self._peek() == quote[0]:  # up to two quotes may end the content
                    self._advance()
                return value
        quote = self._peek()
        self._advance()
        start = self.i
        while self.i < len(self.text) and self._peek() != quote:
            self._advance(2 if quote == '"' and self._peek() == "\\" else 1)
        value = self.text[start : self.i]
        self._advance()
        return value

    def _key(self) -> list[tuple[str, tuple[int, int]]]:
        """A dotted key: each part with its position."""
        parts: list[tuple[str, tuple[int, int]]] = []
        while True:
            self._skip_ws(newlines=False)
            pos = (self.line, self.col)
            if self._peek() in ('"', "'"):
                parts.append((self._string(), pos))
            else:
                m = _BARE.match(self.text, self.i)
                if m is None:
                    return parts
                parts.append((m.group(0), pos))
                self._advance(len(m.group(0)))
            self._skip_ws(newlines=False)
            if self._peek() != ".":
                return parts
            self._advance()

    def _record(self, base: KeyPath, parts: list[tuple[str, tuple[int, int]]]) -> KeyPath:
        path = base
        for name, pos in parts:
            path = (*path, name)
            self.out.setdefault(path, pos)
        return path

    def _value(self, path: KeyPath) -> None:
        self._skip_ws(newlines=False)
        self.out[(*path, "")] = (self.line, self.col)
        ch = self._peek()
        if ch in ('"', "'"):
            self._string()
        elif ch == "[":
            self._advance()
            index = 0
            while True:
                self._skip_ws(newlines=True)
                if self._peek() in ("]", ""):
                    self._advance()
                    return
                self.out[(*path, index)] = (self.line, self.col)
                self._value((*path, index))
                self._skip_ws(newlines=True)
                if self._peek() == ",":
                    self._advance()
                    index += 1
        elif ch == "{":
            self._advance()
            while True:
                self._skip_ws(newlines=False)
                if self._peek() in ("}", ""):
                    self._advance()
                    return
                key = self._record(path, self._key())
                self._skip_ws(newlines=False)
                self._advance()  # "="
                self._value(key)
                self._skip_ws(newlines=False)
                if self._peek() == ",":
                    self._advance()
        else:
            while self.i < len(self.text) and self._peek() not in ",]}\n#":
                self._advance()

    def scan(self) -> dict[KeyPath, tuple[int, int]]:
        table: KeyPath = ()
        while True:
            self._skip_ws(newlines=True)
            if self.i >= len(self.text):
                return self.out
            if self._peek() == "[":
                double = self._peek(2) == "[["
                self._advance(2 if double else 1)
                parts = self._key()
                path: KeyPath = tuple(name for name, _ in parts)
                if double:
                    index = self.array_tables.get(path, -1) + 1
                    self.array_tables[path] = index
                    self._record((), parts)
                    table = (*path, index)
                    self.out.setdefault(table, parts[-1][1] if parts else (self.line, self.col))
                else:
                    table = self._record((), parts)
                self._advance(2 if double else 1)
                continue
            parts = self._key()
            if not parts:
                self._advance()
                continue
            key = self._record(table, parts)
            self._skip_ws(newlines=False)
            self._advance()  # "="
            self._value(key)


def _toml_positions(text: str) -> dict[KeyPath, tuple[int, int]]:
    try:
        return _TomlScanner(text).scan()
    except (IndexError, RecursionError):
        return {}  # positions are a courtesy; the data itself parsed fine
