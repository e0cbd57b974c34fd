""".dockerignore: reading ignore files and matching paths, with moby/patternmatcher semantics.

Reading (:func:`read_ignore_patterns`, like ``ignorefile.ReadAll``): a UTF-8 BOM
on line 1 is dropped; a line whose *first* character is ``#`` is a comment;
other lines are trimmed, blank ones skipped; ``!`` marks an exception
(re-include) and white space after it is dropped; each pattern is path-cleaned
(``./a//b/`` -> ``a/b``) and a leading ``/`` removed.

Matching (:class:`IgnoreMatcher`): patterns are Go ``filepath.Match`` syntax
(``*``, ``?``, ``[...]``, ``\\`` escapes) plus ``**`` for any number of
directories. They are tried in file order and the last one that matches wins:
a plain pattern excludes, an exception re-includes. A path counts as matched
by a pattern when the path itself or any of its parent directories matches
(``MatchesOrParentMatches``), which is what the Docker CLI and BuildKit use.

Which ignore file applies (:func:`find_ignore_file`): ``<Dockerfile>.dockerignore``
next to the Dockerfile takes precedence over ``<context>/.dockerignore``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from forklift.dockerfile.gocompat import clean_path, trim_space
from forklift.errors import Location, ParseError

MAX_LINE_BYTES = 64 * 1024


class IgnorePatternError(ParseError):
    """An ignore pattern is malformed (``[`` unclosed, lone ``!``...)."""


def read_ignore_patterns(source: str | bytes, filename: str = ".dockerignore") -> list[str]:
    """The patterns of an ignore file's text, normalised like ``ignorefile.ReadAll``."""
    text = source.decode("utf-8", "surrogateescape") if isinstance(source, bytes) else source
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    patterns: list[str] = []
    for number, raw in enumerate(lines, 1):
        if raw.endswith("\r"):
            raw = raw[:-1]
        if (
            len(raw) >= MAX_LINE_BYTES // 4
            and len(raw.encode("utf-8", "surrogateescape")) >= MAX_LINE_BYTES
        ):
            raise IgnorePatternError(
                "error reading .dockerignore: line too long", location=Location(filename, number)
            )
        if raw.startswith("#"):
            continue
        pattern = trim_space(raw)
        if pattern == "":
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = trim_space(pattern[1:])
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        if invert:
            pattern = "!" + pattern
        patterns.append(pattern)
    return patterns


def find_ignore_file(
    context: str | os.PathLike[str], dockerfile: str | os.PathLike[str] | None = None
) -> Path | None:
    """The ignore file that applies to a build, or ``None``.

    ``<dockerfile>.dockerignore`` (same directory, same name plus
    ``.dockerignore``) wins over ``<context>/.dockerignore``.
    """
    for candidate in ignore_file_candidates(context, dockerfile):
        if candidate.is_file():
            return candidate
    return None


def ignore_file_candidates(
    context: str | os.PathLike[str], dockerfile: str | os.PathLike[str] | None = None
) -> list[Path]:
    """Where :func:`find_ignore_file` looks, in its order."""
    out = [Path(os.fspath(dockerfile) + ".dockerignore")] if dockerfile is not None else []
    out.append(Path(context) / ".dockerignore")
    return out


# -- patterns -----------------------------------------------------------------


class MatchKind(Enum):
    """How a compiled pattern is tested (patternmatcher's fast paths)."""

    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEXP = "regexp"
    BAD = "bad"


_GO_ESCAPED = frozenset(".+()|{}$")


@dataclass(frozen=True)
class Pattern:
    """One compiled ignore pattern.

    ``text`` is the cleaned pattern without ``!``; ``exclusion`` is true for
    ``!`` exceptions; ``literal_prefix`` is the part before the first wildcard
    (used by the context walker to prove a directory can be skipped).
    """

    text: str
    exclusion: bool
    kind: MatchKind
    regex: re.Pattern[str] | None
    literal_prefix: str
    python_regex: str
    # Number of path components every match has, when that is fixed (no "**",
    # no bracket class - a class may match "/"); None otherwise.
    depth: int | None = None

    def matches(self, path: str) -> bool:
        """Whether the slash-separated ``path`` matches (no parent-directory rule)."""
        kind = self.kind
        if kind is MatchKind.EXACT:
            return path == self.text
        if kind is MatchKind.PREFIX:
            return path.startswith(self.text[:-2])
        if kind is MatchKind.SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]
        if kind is MatchKind.REGEXP:
            assert self.regex is not None
            return self.regex.match(path) is not None
        raise IgnorePatternError(f"syntax error in pattern {self.text!r}")


def _validate_glob(pattern: str) -> bool:
    """Whether Go's ``filepath.Match`` accepts ``pattern`` as well-formed (Unix rules)."""
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                return False
            i += 2
            continue
        if ch != "[":
            i += 1
            continue
        i += 1
        if i < n and pattern[i] == "^":
            i += 1
        nranges = 0
        while True:
            if i < n and pattern[i] == "]" and nranges > 0:
                i += 1
                break
            ok, i = _glob_class_char(pattern, i)
            if not ok:
                return False
            if pattern[i] == "-":
                ok, i = _glob_class_char(pattern, i + 1)
                if not ok:
                    return False
            nranges += 1
    return True


def _glob_class_char(pattern: str, i: int) -> tuple[bool, int]:
    # Go's getEsc: a class member may not be empty, '-' or ']'; must be followed by more.
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        return False, i
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            return False, i
    if "\udc80" <= pattern[i] <= "\udcff":
        return False, i  # invalid UTF-8 byte
    i += 1
    if i >= n:
        return False, i
    return True, i


def _literal_prefix(pattern: str) -> str:
    for i, ch in enumerate(pattern):
        if ch in "*?[]\\":
            return pattern[:i]
    return pattern


def compile_pattern(raw: str) -> Pattern | None:
    """Compile one pattern as ``patternmatcher.New`` does; ``None`` for a blank one.

    Raises :class:`IgnorePatternError` for a lone ``!`` or a pattern that Go's
    ``filepath.Match`` rejects. (A pattern that passes that check but is not a
    valid regular expression is accepted here and fails when it is used.)
    """
    p = trim_space(raw)
    if p == "":
        return None
    p = clean_path(p)
    exclusion = False
    if p[0] == "!":
        if len(p) == 1:
            raise IgnorePatternError('illegal exclusion pattern: "!"')
        exclusion = True
        p = p[1:]
    if not _validate_glob(p):
        raise IgnorePatternError(f"syntax error in pattern: {p}")
    kind, regex_text = _classify(p)
    regex: re.Pattern[str] | None = None
    if kind is MatchKind.REGEXP:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                regex = re.compile(regex_text)
        except re.error:
            kind = MatchKind.BAD
    return Pattern(
        p, exclusion, kind, regex, _literal_prefix(p), _python_equivalent(kind, p, regex_text)
    )


def _classify(pattern: str) -> tuple[MatchKind, str]:
    """patternmatcher's ``compile``: pick a fast path or build the regular expression."""
    reg = ["^"]
    kind = MatchKind.EXACT
    i = 0
    n = len(pattern)
    pos = 0  # index of the character being processed (for the "** at start" rule)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                if i >= n:
                    if kind is MatchKind.EXACT:
                        kind = MatchKind.PREFIX
                    else:
                        reg.append(".*")
                        kind = MatchKind.REGEXP
                else:
                    reg.append("(.*/)?")
                    kind = MatchKind.REGEXP
                if pos == 0:
                    kind = MatchKind.SUFFIX
            else:
                reg.append("[^/]*")
                kind = MatchKind.REGEXP
        elif ch == "?":
            reg.append("[^/]")
            kind = MatchKind.REGEXP
        elif ch in _GO_ESCAPED:
            reg.append("\\" + ch)
        elif ch == "\\":
            if i < n:
                reg.append("\\" + pattern[i])
                i += 1
                kind = MatchKind.REGEXP
            else:
                reg.append("\\\\")
        elif ch in "[]":
            reg.append(ch)
            kind = MatchKind.REGEXP
        else:
            # Everything else goes into the expression as is, like in Go (a
            # '^' is an anchor there too; class syntax passes through).
            reg.append(ch)
        pos += 1
    return kind, "".join(reg) + "\\Z"


def _python_equivalent(kind: MatchKind, text: str, regex_text: str) -> str:
    """A Python regular expression (for ``fullmatch``-free ``match``) equal to ``Pattern.matches``."""
    if kind is MatchKind.EXACT:
        return "(?s:" + re.escape(text) + r")\Z"
    if kind is MatchKind.PREFIX:
        return "(?s:" + re.escape(text[:-2]) + ".*)"
    if kind is MatchKind.SUFFIX:
        suffix = text[2:]
        alt = "(?s:.*" + re.escape(suffix) + r")\Z"
        if suffix[:1] == "/":
            alt = "(?:" + alt + "|(?s:" + re.escape(suffix[1:]) + r")\Z)"
        return alt
    if kind is MatchKind.REGEXP:
        return "(?:" + regex_text[1:] + ")"
    return r"(?!)"


class IgnoreMatcher:
    """A list of ignore patterns with Docker's matching rules.

    >>> m = IgnoreMatcher(["node_modules", "*.log", "!keep.log"])
    >>> m.excludes("node_modules/a/b.js"), m.excludes("x.log"), m.excludes("keep.log")
    (True, True, False)
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        compiled = [compile_pattern(p) for p in patterns]
        self.patterns: tuple[Pattern, ...] = tuple(p for p in compiled if p is not None)
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str] | None) -> IgnoreMatcher:
        """Read and compile an ignore file; ``None`` (no file, as :func:`find_ignore_file`
        says when a context has none) gives a matcher that excludes nothing."""
        if path is None:
            return cls(())
        data = Path(path).read_bytes()
        try:
            return cls(read_ignore_patterns(data, os.fspath(path)))
        except IgnorePatternError as exc:
            if exc.location is None:
                raise IgnorePatternError(exc.message, location=Location(os.fspath(path))) from None
            raise

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        texts = [("!" if p.exclusion else "") + p.text for p in self.patterns]
        return f"IgnoreMatcher({texts!r})"

    def excludes(self, path: str) -> bool:
        """Whether ``path`` (relative, slash-separated) is left out of the context.

        Same as moby/patternmatcher's ``MatchesOrParentMatches``: the last
        pattern that matches the path or one of its parent directories decides.
        """
        parts = path.split("/")
        parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.matches(path)
            if not hit:
                for parent in parents:
                    if pattern.matches(parent):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def matches_legacy(self, path: str) -> bool:
        """The deprecated ``patternmatcher.Matches`` (only the parent at the pattern's depth counts)."""
        path = clean_path(path)
        if path == ".":
            return False
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.matches(path)
            if not hit and parent != ".":
                depth = len(pattern.text.split("/"))
                if depth <= len(parent_dirs):
                    try:
                        hit = pattern.matches("/".join(parent_dirs[:depth]))
                    except IgnorePatternError:
                        hit = False
            if hit:
                matched = not pattern.exclusion
        return matched

    def match_with_parent(
        self, path: str, parent_info: Sequence[bool] | None
    ) -> tuple[bool, list[bool]]:
        """``MatchesUsingParentResults``: match ``path`` given its parent directory's results.

        ``parent_info`` is what this method returned for the parent directory
        (``None`` for a top-level path). Returns the decision and the per-pattern
        results to pass to the children. This is what BuildKit's context walker
        uses, and it differs from :meth:`excludes` in corner cases.
        """
        info = [False] * len(self.patterns)
        matched = False
        for i, pattern in enumerate(self.patterns):
            hit = bool(parent_info[i]) if parent_info else False
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.matches(path)
                if not hit and not parent_info and "/" in path:
                    parts = path.split("/")
                    for j in range(1, len(parts)):
                        try:
                            if pattern.matches("/".join(parts[:j])):
                                hit = True
                                break
                        except IgnorePatternError:
                            break
            info[i] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, info

    def could_reinclude_below(self, directory: str) -> bool:
        """Whether some exception pattern might match a path strictly inside ``directory``.

        Conservative: ``True`` unless the exception's literal prefix (the text
        before its first wildcard) rules out every path under ``directory/``.
        """
        prefix = directory + "/"
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            if pattern.kind is MatchKind.SUFFIX:
                return True
            lit = pattern.literal_prefix
            if lit.startswith(prefix):
                return True
            # An exact pattern only ever matches its own text.
            if pattern.kind is not MatchKind.EXACT and prefix.startswith(lit):
                return True
        return False
