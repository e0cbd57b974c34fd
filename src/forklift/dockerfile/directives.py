"""Parser directives: ``# syntax=``, ``# escape=`` and ``# check=`` at the top of a Dockerfile.

Rules (BuildKit): directives are comment lines of the form ``#key=value``
(white space allowed around ``#``, the key and ``=``), keys are case-insensitive,
only known keys count, each may appear once, and the header ends at the first
line that is not a known directive (an empty line, a plain comment, an
instruction). An unknown key ends the header too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from forklift.dockerfile.ast import Directive

KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})

# Go's \s is ASCII-only and excludes \v; `.` excludes only \n.
_WS = r"[\t\n\f\r ]"
_HASH_DIRECTIVE = re.compile(rf"#{_WS}*([a-zA-Z][a-zA-Z0-9]*){_WS}*={_WS}*(.+?){_WS}*\Z")
_SLASH_DIRECTIVE = re.compile(rf"//{_WS}*([a-zA-Z][a-zA-Z0-9]*){_WS}*={_WS}*(.+?){_WS}*\Z")


class DirectiveError(ValueError):
    """A directive was repeated (``only one escape parser directive can be used``)."""


@dataclass
class DirectiveScanner:
    """Feeds lines one at a time and recognises the directive header.

    ``line`` counts the lines seen so far (the first line fed is line 1).
    """

    comment_style: str = "#"
    line: int = 0
    done: bool = False
    seen: set[str] = field(default_factory=set)

    def feed(self, text: str) -> Directive | None:
        """Look at one line (newline already removed); return a directive or ``None``."""
        self.line += 1
        if self.done:
            return None
        pattern = _HASH_DIRECTIVE if self.comment_style == "#" else _SLASH_DIRECTIVE
        m = pattern.match(text)
        if m is None:
            self.done = True
            return None
        key = m.group(1).lower()
        if key not in KNOWN_DIRECTIVES:
            self.done = True
            return None
        if key in self.seen:
            raise DirectiveError(f"only one {key} parser directive can be used")
        self.seen.add(key)
        return Directive(key, m.group(2), self.line)


def parse_directives(text: str) -> list[Directive]:
    """All known directives in the header of ``text`` (stops quietly at a repeat)."""
    scanner = DirectiveScanner()
    found: list[Directive] = []
    for line in text.split("\n"):
        if scanner.done:
            break
        try:
            d = scanner.feed(line[:-1] if line.endswith("\r") else line)
        except DirectiveError:
            break
        if d is not None:
            found.append(d)
    return found


@dataclass(frozen=True)
class DirectiveMatch:
    """Result of :func:`detect_directive`: ``value`` is the first word, ``cmdline`` the whole text."""

    value: str
    cmdline: str
    line: int


def _strip_bom_and_shebang(text: str) -> tuple[str, int]:
    if text.startswith("\ufeff"):
        text = text[1:]
    first, _sep, rest = text.partition("\n")
    if first.startswith("#!"):
        return rest, 1
    return text, 0


def _from_scanner(key: str, text: str, scanner: DirectiveScanner) -> DirectiveMatch | None:
    for raw in text.split("\n"):
        if scanner.done:
            break
        try:
            d = scanner.feed(raw[:-1] if raw.endswith("\r") else raw)
        except DirectiveError:
            break
        if d is not None and d.name == key:
            value = d.value.split(" ", 1)[0]
            return DirectiveMatch(value, d.value, d.line)
    return None


def detect_directive(key: str, text: str, *, any_format: bool = False) -> DirectiveMatch | None:
    """Find directive ``key`` the way BuildKit's ``ParseDirective``/``DetectSyntax`` do.

    A UTF-8 BOM and a leading ``#!`` shebang line are skipped. With
    ``any_format`` (what ``syntax`` detection uses) ``//key=value`` comments and a
    whole-file JSON object ``{"key": "..."}`` are accepted too.
    """
    body, offset = _strip_bom_and_shebang(text)
    found = _from_scanner(key, body, DirectiveScanner(line=offset))
    if found is not None or not any_format:
        return found
    found = _from_scanner(key, body, DirectiveScanner(comment_style="//", line=offset))
    if found is not None:
        return found
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get(key), str):
        return DirectiveMatch(doc[key], doc[key], offset)
    return None


def detect_syntax(text: str) -> DirectiveMatch | None:
    """The frontend named by ``# syntax=`` (or ``//syntax=`` / JSON ``{"syntax": ...}``)."""
    return detect_directive("syntax", text, any_format=True)
