"""Dockerfile parser: text to :class:`~forklift.dockerfile.ast.Dockerfile`, as BuildKit parses it.

The rules reproduced here (and checked against BuildKit's own output for 1,597
files, see ``tests/dockerfile/test_oracle.py``):

* Lines end at ``\\n``; a trailing ``\\r`` is dropped, a UTF-8 BOM on line 1 is
  ignored, and a physical line longer than 65,535 bytes is an error.
* Parser directives (``# escape=``, ``# syntax=``, ``# check=``) are read from
  the header; ``escape`` selects ``\\`` or a backtick as escape character.
* An instruction continues onto the next line when its line ends with the
  escape character (optionally followed by spaces/tabs) not itself escaped.
  Comment lines inside a continuation are dropped; blank lines are dropped
  with a warning; the leading white space of continuation lines is kept.
* The keyword is the first word; ``--flag`` words right after it are flags
  (quotes removed); the rest is split per instruction: exec/JSON form when the
  rest is a JSON array of strings (invalid JSON falls back to shell form),
  ``key=value`` / legacy ``key value`` for ENV and LABEL, words for ARG, white
  space for FROM/EXPOSE and non-JSON COPY/ADD/VOLUME, the whole rest for shell
  forms.
* RUN, COPY and ADD (also under ONBUILD) in shell form may carry heredocs:
  every ``[n]<<[-]WORD`` word starts one, and the bodies follow the line in
  order, each up to a line equal to its (unquoted) word.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from forklift.dockerfile.ast import (
    Directive,
    Dockerfile,
    Flag,
    Heredoc,
    Instruction,
    ParseWarning,
)
from forklift.dockerfile.directives import DirectiveError, DirectiveScanner
from forklift.dockerfile.gocompat import (
    fix_invalid_utf8,
    go_json_loads,
    go_quote,
    is_space,
    trim_left_space,
    trim_space,
)
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.errors import Location, NotFound, ParseError

#: The keywords BuildKit knows; anything else parses but is rejected later.
KEYWORDS = (
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
)

# bufio.Scanner's default maximum token size; BuildKit reports it minus one.
MAX_LINE_BYTES = 64 * 1024

_WS_RUN = re.compile(r"[\t\v\f\r ]+")
_HEREDOC_WORD = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_HEREDOC_KEYWORDS = frozenset({"add", "copy", "run"})

EMPTY_CONTINUATION_URL = "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"


class _LineError(Exception):
    """Internal: a parse error with BuildKit's message, before a location is attached."""


@dataclass
class _Node:
    """Mutable intermediate result of one line parser (BuildKit's ``Node`` chain)."""

    args: list[str] = field(default_factory=list)
    json: bool = False
    empty: bool = False
    child: Instruction | None = None


def _split_continuation(line: str, escape: str) -> tuple[str, bool]:
    """Strip a trailing continuation escape; return (text, is_end_of_instruction).

    BuildKit's rule: the escape character followed only by spaces/tabs at the
    end of the line continues the instruction unless the character before it is
    also the escape character (an escaped escape). An escape alone on its line
    continues too.
    """
    end = len(line)
    while end > 0 and line[end - 1] in " \t":
        end -= 1
    if end == 0 or line[end - 1] != escape:
        return line, True
    if end >= 2 and line[end - 2] == escape:
        return line, True
    return line[: end - 1], False


def _is_comment(line: str) -> bool:
    stripped = trim_left_space(line)
    return stripped.startswith("#")


def _trim_newline(raw: str) -> str:
    return raw.rstrip("\r\n")


# -- flags -------------------------------------------------------------------


def _extract_flags(line: str) -> tuple[str, list[tuple[str, int]]]:
    """Split leading ``--flag`` words from the arguments (BuildKit's ``extractBuilderFlags``).

    Returns the rest of the line and the flags with their offset in ``line``.
    Quotes inside a flag are removed, ``\\`` escapes the next character, and a
    lone ``--`` ends the flags.
    """
    words: list[tuple[str, int]] = []
    n = len(line)
    pos = 0
    in_word = False
    in_quote = False
    quote = ""
    blank_ok = False
    word: list[str] = []
    start = 0
    while pos <= n:
        ch = line[pos] if pos < n else ""
        if not in_word and not in_quote:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            in_word = True
            start = pos
        if pos == n:
            text = "".join(word)
            if text != "--" and (blank_ok or word):
                words.append((text, start))
            break
        if in_quote:
            if ch == quote:
                in_quote = False
                pos += 1
                continue
            if ch == "\\":
                if pos + 1 == n:
                    in_quote = False
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            word.append(ch)
            pos += 1
            continue
        # in a word
        if is_space(ch):
            in_word = False
            text = "".join(word)
            if text == "--":
                return line[pos:], words
            if blank_ok or word:
                words.append((text, start))
            word = []
            blank_ok = False
            pos += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
            in_quote = True
            pos += 1
            continue
        if ch == "\\":
            if pos + 1 == n:
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        word.append(ch)
        pos += 1
    return "", words


# -- argument parsers (BuildKit's line_parsers.go) ---------------------------


def _parse_words(rest: str, escape: str) -> list[str]:
    """Split ``rest`` into words keeping quotes (ENV/LABEL/ARG)."""
    words: list[str] = []
    n = len(rest)
    pos = 0
    phase = 0  # 0 = between words, 1 = in a word, 2 = in quotes
    quote = ""
    blank_ok = False
    buf: list[str] = []
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == 0:
            if pos == n:
                break
            if is_space(ch):
                pos += 1
                continue
            phase = 1
        if pos == n:
            if blank_ok or buf:
                words.append("".join(buf))
            break
        if phase == 1:
            if is_space(ch):
                phase = 0
                if blank_ok or buf:
                    words.append("".join(buf))
                buf = []
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
                phase = 2
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                buf.append(ch)
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
            continue
        # phase 2: inside quotes
        if ch == quote:
            phase = 1
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = 1
                pos += 1
                continue
            buf.append(ch)
            pos += 1
            ch = rest[pos]
        buf.append(ch)
        pos += 1
    return [fix_invalid_utf8(w) for w in words]


def _parse_name_val(rest: str, key: str, escape: str) -> _Node:
    words = _parse_words(rest, escape)
    if not words:
        return _Node()
    if "=" not in words[0]:
        parts = _WS_RUN.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _LineError(f"{key} must have two arguments")
        return _Node([parts[0], parts[1], ""])
    args: list[str] = []
    for word in words:
        if "=" not in word:
            raise _LineError(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value"
            )
        k, v = word.split("=", 1)
        args += [k, v, "="]
    return _Node(args)


def _parse_whitespace_delimited(rest: str) -> _Node:
    if rest == "":
        return _Node()
    return _Node(_WS_RUN.split(rest))


def _parse_json(rest: str) -> list[str] | None:
    rest = trim_left_space(rest)
    if not rest.startswith("["):
        return None
    try:
        value = go_json_loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):  # pragma: no cover - starts with "["
        return None
    if not all(isinstance(v, str) for v in value):
        raise _LineError("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _parse_maybe_json(rest: str) -> _Node:
    if rest == "":
        return _Node()
    values = _parse_json(rest)
    if values is not None:
        return _Node(values, json=True)
    return _Node([rest])


def _parse_maybe_json_to_list(rest: str) -> _Node:
    values = _parse_json(rest)
    if values is not None:
        return _Node(values, json=True)
    return _parse_whitespace_delimited(rest)


def _parse_health(rest: str) -> _Node:
    sep = 0
    while sep < len(rest) and not is_space(rest[sep]):
        sep += 1
    nxt = sep
    while nxt < len(rest) and is_space(rest[nxt]):
        nxt += 1
    if sep == 0:
        return _Node()
    cmd = _parse_maybe_json(rest[nxt:])
    return _Node([rest[:sep], *cmd.args], json=cmd.json)


def _parse_args(keyword: str, rest: str, escape: str, ctx: _LineContext, offset: int) -> _Node:
    """Dispatch to the argument parser of ``keyword``; ``offset`` locates ``rest`` in the line."""
    if keyword in ("add", "copy", "volume"):
        return _parse_maybe_json_to_list(rest)
    if keyword == "arg":
        return _Node(_parse_words(rest, escape))
    if keyword in ("cmd", "entrypoint", "run", "shell"):
        return _parse_maybe_json(rest)
    if keyword == "env":
        return _parse_name_val(rest, "ENV", escape)
    if keyword == "label":
        return _parse_name_val(rest, "LABEL", escape)
    if keyword in ("expose", "from"):
        return _parse_whitespace_delimited(rest)
    if keyword == "healthcheck":
        return _parse_health(rest)
    if keyword in ("maintainer", "stopsignal", "user", "workdir"):
        return _Node([rest]) if rest else _Node()
    if keyword == "onbuild":
        if rest == "":
            return _Node()
        return _Node(child=ctx.parser.node_from_line(ctx, rest, offset, ()))
    # Unknown keyword: BuildKit keeps an empty argument; rejected later.
    return _Node(empty=True)


# -- heredocs ----------------------------------------------------------------

_HEREDOC_LINE_LEXER = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True)
_HEREDOC_WORD_LEXER = Lexer("\\", skip_unset=True)
_HEREDOC_WORD_RAW_LEXER = Lexer("\\", raw_quotes=True, skip_unset=True)


@dataclass(frozen=True)
class HeredocMarker:
    """A ``[n]<<[-]WORD`` marker found in an instruction line."""

    name: str
    expand: bool
    chomp: bool
    fd: int


def parse_heredoc_marker(word: str) -> HeredocMarker | None:
    """Decode one word as a heredoc marker (BuildKit's ``ParseHeredoc``), or ``None``.

    Raises :class:`~forklift.dockerfile.shell.ExpansionError` when the word after
    ``<<`` cannot be lexed (for example an unterminated quote).
    """
    m = _HEREDOC_WORD.match(word)
    if m is None:
        return None
    fd = int(m.group(1)) if m.group(1) else 0
    chomp = m.group(2) == "-"
    rest = m.group(3)
    if rest == "":
        return None
    words = _HEREDOC_WORD_LEXER.process(rest, {}).words
    if len(words) != 1:
        return None
    raw_words = _HEREDOC_WORD_RAW_LEXER.process(rest, {}).words
    if len(raw_words) != len(words):
        raise ExpansionError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quotes = name.count("'") + name.count('"')
    raw_quotes = raw_words[0].count("'") + raw_words[0].count('"')
    return HeredocMarker(name, quotes == raw_quotes, chomp, fd)


def heredoc_markers(line: str) -> list[HeredocMarker]:
    """Every heredoc marker in an instruction line, in order."""
    try:
        words = _HEREDOC_LINE_LEXER.process(line, {}).words
    except ExpansionError:
        # BuildKit ignores lexing errors here: such a line has no heredocs.
        return []
    found: list[HeredocMarker] = []
    for word in words:
        marker = parse_heredoc_marker(word)
        if marker is not None:
            found.append(marker)
    return found


# -- the line-oriented driver -------------------------------------------------


@dataclass
class _LineContext:
    """One logical line being parsed, with a map back to file positions.

    ``segments`` lists ``(offset in the joined line, file line, column)`` for
    the start of every physical piece that went into the logical line.
    """

    parser: _Parser
    line: str
    segments: list[tuple[int, int, int]]

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) in the file of character ``offset`` of the logical line."""
        best = self.segments[0]
        for seg in self.segments:
            if seg[0] <= offset:
                best = seg
            else:
                break
        return best[1], best[2] + (offset - best[0])


class _Parser:
    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.text = text
        self.escape = "\\"
        self.directives: list[Directive] = []
        self.scanner = DirectiveScanner()

    def error(self, message: str, line: int, column: int = 0) -> ParseError:
        return ParseError(message, location=Location(self.filename, line, column))

    def directive(self, token: str, line_no: int) -> bool:
        try:
            d = self.scanner.feed(token)
        except DirectiveError as exc:
            raise self.error(str(exc), line_no, 1) from None
        if d is None:
            return False
        if d.name == "escape":
            if d.value not in ("`", "\\"):
                raise self.error(
                    f"invalid escape token '{d.value}' does not match ` or \\", line_no, 1
                )
            self.escape = d.value
        self.directives.append(d)
        return True

    def node_from_line(
        self, ctx: _LineContext, text: str, offset: int, comments: tuple[str, ...]
    ) -> Instruction:
        """Parse one instruction whose text starts at ``offset`` in the logical line."""
        stripped = trim_space(text)
        lead = len(text) - len(trim_left_space(text))
        parts = _WS_RUN.split(stripped, maxsplit=1)
        raw_keyword = parts[0]
        keyword = raw_keyword.lower()
        flags: list[Flag] = []
        rest = ""
        rest_offset = offset + lead + len(stripped)
        if len(parts) == 2:
            tail = parts[1]
            tail_offset = offset + lead + len(stripped) - len(tail)
            rest_raw, raw_flags = _extract_flags(tail)
            for flag_text, flag_off in raw_flags:
                name, eq, value = flag_text[2:].partition("=")
                line, col = ctx.position(tail_offset + flag_off)
                flags.append(Flag(name, value if eq else None, flag_text, line, col))
            rest = trim_space(rest_raw)
            rest_offset = (
                tail_offset
                + (len(tail) - len(rest_raw))
                + (len(rest_raw) - len(trim_left_space(rest_raw)))
            )
        node = _parse_args(keyword, rest, self.escape, ctx, rest_offset)
        line, col = ctx.position(offset + lead)
        return Instruction(
            keyword=keyword,
            raw_keyword=raw_keyword,
            flags=tuple(flags),
            args=tuple(node.args),
            json=node.json,
            original=text,
            source="",
            start_line=line,
            end_line=line,
            column=col,
            comments=comments,
            child=node.child,
            empty_node=node.empty,
        )

    def parse(self) -> Dockerfile:
        text = self.text
        lines = text.split("\n")
        # A final newline ends the last line; it does not start another one.
        ends_with_newline = lines[-1] == ""
        if ends_with_newline:
            lines.pop()
        if lines and lines[0].startswith("\ufeff"):
            lines[0] = lines[0][1:]
        total = len(lines)
        too_long = -1
        for idx, raw in enumerate(lines):
            # A str of < 16 Ki code points cannot reach 64 KiB of UTF-8.
            if len(raw) >= MAX_LINE_BYTES // 4 and (
                len(raw.encode("utf-8", "surrogateescape")) >= MAX_LINE_BYTES
            ):
                too_long = idx
                break
        n = total if too_long < 0 else too_long

        def with_newline(idx: int) -> str:
            if idx < total - 1 or ends_with_newline:
                return lines[idx] + "\n"
            return lines[idx]

        instructions: list[Instruction] = []
        warnings: list[ParseWarning] = []
        comments: list[str] = []
        i = 0
        while i < n:
            raw = lines[i]
            i += 1
            if _is_comment(raw):
                c = trim_space(raw[1:])
                if c == "":
                    comments = []
                else:
                    comments.append(c)
            token = trim_left_space(_trim_newline(raw))
            first_col = 1 + len(raw) - len(trim_left_space(raw))
            if self.directive(token, i) and comments:
                comments.pop()
            if _is_comment(token):
                token = ""
            start_line = i
            part, eol = _split_continuation(token, self.escape)
            if eol and part == "":
                continue
            pieces = [part]
            segments = [(0, start_line, first_col)]
            consumed = len(part)
            has_empty = False
            while not eol and i < n:
                raw2 = lines[i]
                i += 1
                tok = _trim_newline(raw2)
                self.directive(tok, i)
                if _is_comment(raw2):
                    continue
                if trim_left_space(tok) == "":
                    has_empty = True
                    continue
                tok, eol = _split_continuation(tok, self.escape)
                segments.append((consumed, i, 1))
                pieces.append(tok)
                consumed += len(tok)
            line = "".join(pieces)
            if has_empty:
                warnings.append(
                    ParseWarning(
                        "Empty continuation line found in: " + line,
                        i,
                        "Empty continuation lines will become errors in a future release",
                        EMPTY_CONTINUATION_URL,
                    )
                )
            ctx = _LineContext(self, line, segments)
            try:
                node = self.node_from_line(ctx, line, 0, tuple(comments))
            except _LineError as exc:
                raise self.error(str(exc), start_line, first_col) from None

            heredocs: list[Heredoc] = []
            target = node.child if node.keyword == "onbuild" and node.child is not None else node
            if target.keyword in _HEREDOC_KEYWORDS and not target.json and "<<" in line:
                try:
                    markers = heredoc_markers(line)
                except ExpansionError as exc:
                    raise self.error(str(exc), start_line, first_col) from None
                for marker in markers:
                    body: list[str] = []
                    body_start = i + 1
                    terminated = False
                    while i < n:
                        idx = i
                        i += 1
                        candidate = _trim_newline(lines[idx])
                        if marker.chomp:
                            candidate = candidate.lstrip("\t")
                        if candidate == marker.name:
                            terminated = True
                            break
                        body.append(with_newline(idx))
                    if not terminated:
                        raise self.error(
                            f"unterminated heredoc: no line {go_quote(marker.name)} "
                            "ends the heredoc started here",
                            start_line,
                            first_col,
                        )
                    heredocs.append(
                        Heredoc(
                            name=marker.name,
                            content="".join(body),
                            expand=marker.expand,
                            chomp=marker.chomp,
                            fd=marker.fd,
                            start_line=body_start,
                            end_line=i,
                        )
                    )
            source = "\n".join(lines[start_line - 1 : i])
            instructions.append(_finish(node, start_line, i, source, tuple(heredocs)))
            comments = []

        if not instructions:
            raise self.error("file with no instructions", n)
        if too_long >= 0:
            raise self.error(
                f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES - 1}",
                too_long + 1,
            )
        return Dockerfile(
            filename=self.filename,
            instructions=tuple(instructions),
            escape=self.escape,
            directives=tuple(self.directives),
            warnings=tuple(warnings),
            source=text,
        )


def _finish(
    node: Instruction, start: int, end: int, source: str, heredocs: tuple[Heredoc, ...]
) -> Instruction:
    child = node.child
    if child is not None:
        child = replace(child, end_line=end, source=source, heredocs=heredocs)
    return replace(
        node,
        start_line=start,
        end_line=end,
        source=source,
        heredocs=heredocs,
        child=child,
    )


def decode(data: bytes) -> str:
    """Decode Dockerfile bytes: UTF-8, undecodable bytes kept as surrogate escapes."""
    return data.decode("utf-8", "surrogateescape")


def parse(source: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile.

    ``source`` is the file's text or bytes (bytes are decoded as UTF-8; bytes
    that are not valid UTF-8 are kept and printed as ``\\xHH`` in dumps).
    ``filename`` is used in error locations. Raises
    :class:`~forklift.errors.ParseError` with ``file:line:col`` for syntax that
    BuildKit's parser rejects; unknown instructions and bad flags parse here and
    are rejected by :func:`forklift.dockerfile.instructions.parse_stages`.
    """
    text = decode(source) if isinstance(source, bytes) else source
    return _Parser(text, filename).parse()


def parse_file(path: str | os.PathLike[str]) -> Dockerfile:
    """Read and parse a Dockerfile from disk (its path is used in error locations)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"Dockerfile {os.fspath(path)!r} not found") from None
    return parse(data, os.fspath(path))
