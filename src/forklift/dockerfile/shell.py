"""Variable expansion and word splitting, exactly as BuildKit's shell lexer does them.

This is the small shell-like language of Dockerfile arguments (not a shell):
single and double quotes, the escape character (``\\`` or the file's
``# escape=`` token), ``$VAR``, ``${VAR}`` and the modifiers ``${VAR:-word}``,
``${VAR-word}``, ``${VAR:+word}``, ``${VAR+word}``, ``${VAR:?msg}``,
``${VAR?msg}``, ``${VAR#pat}``, ``${VAR##pat}``, ``${VAR%pat}``,
``${VAR%%pat}``, ``${VAR/pat/repl}`` and ``${VAR//pat/repl}``.

Two entry points matter to most callers:

* :func:`expand` - one word in, one string out (quotes removed, variables
  substituted); what BuildKit uses for ENV, LABEL, WORKDIR, USER, COPY paths...
* :func:`split_words` - the same, then split into words on unquoted white
  space; what BuildKit uses for EXPOSE and heredoc detection.

:class:`Lexer` exposes every knob (raw quotes, raw escapes, skipping unset
variables, not processing quotes) and :meth:`Lexer.process` also reports which
variables were found and which were not (the linter and the unused-build-arg
check need that).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from forklift.dockerfile.gocompat import fix_invalid_utf8, go_quote, is_digit, is_letter, is_space

_EOF = ""  # sentinel returned when the input is exhausted


class ExpansionError(ValueError):
    """A word could not be processed (unterminated quote, bad ``${...}``, ``${X:?}``)."""


@dataclass(frozen=True)
class Expansion:
    """What :meth:`Lexer.process` found: the result, its words, and variable use."""

    result: str
    words: tuple[str, ...]
    matched: frozenset[str]
    unmatched: frozenset[str]


_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _Words:
    """Word accumulator with BuildKit's rules (``wordsStruct``)."""

    __slots__ = ("in_word", "word", "words")

    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if is_space(ch):
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.word += ch
            self.in_word = True

    def add_raw_char(self, ch: str) -> None:
        self.word += ch
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        self.word += s
        self.in_word = True

    def get_words(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


@dataclass
class Lexer:
    """BuildKit's ``shell.Lex``: configuration for processing words.

    ``escape`` is the escape character; ``raw_quotes`` keeps quote characters in
    the output; ``raw_escapes`` keeps escape characters; ``skip_unset`` leaves
    references to unset variables as written; ``skip_quotes`` treats quotes as
    ordinary characters.
    """

    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_unset: bool = False
    skip_quotes: bool = False

    def process(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Expand ``word`` with ``env``; raise :class:`ExpansionError` on bad syntax."""
        state = _State(self, word, env)
        try:
            result, words = state.stop_on(_EOF, self.raw_escapes)
        except ExpansionError as exc:
            raise ExpansionError(f"failed to process {go_quote(word)}: {exc}") from None
        return Expansion(result, tuple(words), frozenset(state.matched), frozenset(state.unmatched))


class _State:
    """One run of the lexer over one word (BuildKit's ``shellWord``)."""

    def __init__(self, lex: Lexer, word: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        # Go's text/scanner drops a BOM at the very start and reads invalid
        # UTF-8 as U+FFFD.
        if word.startswith("\ufeff"):
            word = word[1:]
        self.src = fix_invalid_utf8(word)
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    # -- scanner ---------------------------------------------------------
    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else _EOF

    def next(self) -> str:
        if self.pos < len(self.src):
            ch = self.src[self.pos]
            self.pos += 1
            return ch
        return _EOF

    # -- grammar ---------------------------------------------------------
    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        escape = self.lex.escape
        quotes = not self.lex.skip_quotes
        src = self.src
        n = len(src)
        while self.pos < n:
            ch = src[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(result), words.get_words()
            if ch == "$":
                tmp = self.dollar()
                result.append(tmp)
                words.add_string(tmp)
            elif quotes and ch == "'":
                tmp = self.single_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif quotes and ch == '"':
                tmp = self.double_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif ch == "<":
                tmp = self.possible_heredoc()
                result.append(tmp)
                words.add_raw_string(tmp)
            else:
                self.pos += 1
                if ch == escape:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get_words()

    def possible_heredoc(self) -> str:
        """``<<`` keeps the blanks after it in the same word, so ``<<  EOF`` is one word."""
        self.pos += 1  # the first '<'
        if self.peek() != "<":
            return "<"
        self.pos += 1
        start = self.pos
        while self.peek() in (" ", "\t"):
            self.pos += 1
        return "<<" + self.src[start : self.pos]

    def single_quote(self) -> str:
        out: list[str] = []
        raw = self.lex.raw_quotes
        ch = self.next()
        if raw:
            out.append(ch)
        while True:
            ch = self.next()
            if ch == _EOF:
                raise ExpansionError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                if raw:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out: list[str] = []
        raw = self.lex.raw_quotes
        escape = self.lex.escape
        ch = self.next()
        if raw:
            out.append(ch)
        while True:
            nxt = self.peek()
            if nxt == _EOF:
                raise ExpansionError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if nxt == '"':
                ch = self.next()
                if raw:
                    out.append(ch)
                return "".join(out)
            if nxt == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == escape:
                if self.raw_escapes:
                    out.append(ch)
                after = self.peek()
                if after == _EOF:
                    # A trailing escape is dropped; the missing quote is
                    # reported on the next round.
                    continue
                if after in ('"', "$", escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == _EOF:
                break
            if not out and is_digit(ch):
                while self.peek() != _EOF and is_digit(self.peek()):
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (is_letter(ch) or is_digit(ch) or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def get_env(self, name: str) -> tuple[str, bool]:
        value = self.env.get(name)
        if value is None:
            self.unmatched.add(name)
            return "", False
        self.matched.add(name)
        return value, True

    def dollar(self) -> str:
        self.next()  # the '$'
        if self.peek() != "{":
            name = self.name()
            if name == "":
                return "$"
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset:
                return "$" + name
            return value

        self.next()  # the '{'
        first = self.peek()
        if first == _EOF:
            raise ExpansionError("syntax error: missing '}'")
        if first in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        # Go formats a missing rune (EOF) as U+FFFD in the modifier text.
        chs = ch or "\ufffd"

        if ch == "}":
            value, found = self.get_env(name)
            if not found and self.lex.skip_unset:
                return "${" + name + "}"
            return value

        if ch in (":", "+", "-", "?", "#", "%"):
            null_is_unset = False
            if ch == ":":
                null_is_unset = True
                ch = self.next()
                chs += ch or "\ufffd"
            raw = ch in ("#", "%")
            try:
                word, _ = self.stop_on("}", raw)
            except ExpansionError:
                if self.peek() == _EOF:
                    raise ExpansionError("syntax error: missing '}'") from None
                raise
            value, found = self.get_env(name)
            if self.lex.skip_unset and not found:
                return "${" + name + chs + word + "}"
            if ch == "-":
                if not found or (null_is_unset and value == ""):
                    return word
                return value
            if ch == "+":
                if not found or (null_is_unset and value == ""):
                    return ""
                return word
            if ch == "?":
                if not found:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and value == "":
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            if ch in ("%", "#"):
                greedy = False
                if word and word[0] == ch:
                    greedy = True
                    word = word[1:]
                if ch == "%":
                    return _trim_suffix(word, value, greedy)
                return _trim_prefix(word, value, greedy)
            raise ExpansionError(f"unsupported modifier ({chs}) in substitution")

        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            try:
                pattern, _ = self.stop_on("/", True)
            except ExpansionError:
                if self.peek() == _EOF:
                    raise ExpansionError("syntax error: missing '/' in ${}") from None
                raise
            try:
                replacement, _ = self.stop_on("}", True)
            except ExpansionError:
                if self.peek() == _EOF:
                    raise ExpansionError("syntax error: missing '}'") from None
                raise
            value, found = self.get_env(name)
            if self.lex.skip_unset and not found:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            regex = _pattern_to_regex(pattern, greedy=True, anchored=False)
            if replace_all:
                return _go_replace_all(regex, value, replacement)
            m = regex.search(value)
            if m is not None:
                value = value[: m.start()] + replacement + value[m.end() :]
            return value

        raise ExpansionError(f"unsupported modifier ({chs}) in substitution")


_REGEX_SPECIALS = frozenset("[]{}.+()|^$")


def _pattern_to_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """Shell wildcard (``*``, ``?``, ``\\`` escapes; no brackets) to a regular expression."""
    out: list[str] = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    n = len(pattern)
    while i < n:
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            nxt = pattern[i] if i < n else ""
            if nxt in ("}", "/"):
                # `}` and `/` are escaped only to get past ${...} parsing.
                continue
            i += 1
            if nxt not in ("*", "?", "\\"):
                shown = nxt or "\ufffd"
                raise ExpansionError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{shown}'"
                )
            out.append("\\" + nxt)
            continue
        if tok in _REGEX_SPECIALS:
            out.append("\\" + tok)
            continue
        out.append(tok)
    try:
        return re.compile("".join(out))
    except re.error as exc:  # pragma: no cover - escaping above keeps patterns valid
        raise ExpansionError(f"invalid pattern ({pattern}) in substitution: {exc}") from None


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    regex = _pattern_to_regex(pattern, greedy=greedy, anchored=True)
    m = regex.search(value)
    if m is not None:
        return value[m.end() :]
    return value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping ``\\x`` escape pairs in order (``a\\*c`` -> ``c\\*a``)."""
    chars = list(pattern)
    last = len(chars) - 1
    out = [""] * len(chars)
    i = 0
    while i <= last:
        tok = chars[i]
        idx = last - i
        if tok == "\\" and i != last:
            out[idx - 1] = tok
            out[idx] = chars[i + 1]
            i += 2
        else:
            out[idx] = tok
            i += 1
    return "".join(out)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Regular expressions find leftmost matches; reverse both sides so the
    # shortest/longest suffix becomes a prefix.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _expand_template(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand`` for templates on a pattern without groups.

    ``$$`` is ``$``; ``$0``/``${0}`` is the whole match; any other ``$name`` is
    empty; a ``$`` not followed by a name stays as is.
    """
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        brace = i < n and template[i] == "{"
        k = i + 1 if brace else i
        start = k
        while k < n and (is_letter(template[k]) or is_digit(template[k]) or template[k] == "_"):
            k += 1
        name = template[start:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")
            continue
        i = k + 1 if brace else k
        if name == "0":
            out.append(match.group(0))
    return "".join(out)


def _go_replace_all(regex: re.Pattern[str], src: str, repl: str) -> str:
    """Go's ``Regexp.ReplaceAllString``: an empty match right after a match is not replaced."""
    out: list[str] = []
    last_end = 0
    search = 0
    n = len(src)
    while search <= n:
        m = regex.search(src, search)
        if m is None:
            break
        a, b = m.span()
        out.append(src[last_end:a])
        if b > last_end or a == 0:
            out.append(_expand_template(repl, m))
        last_end = b
        if search + 1 > b:
            search += 1
        else:
            search = b
    out.append(src[last_end:])
    return "".join(out)


_DEFAULT = Lexer()


def expand(
    word: str,
    env: Mapping[str, str],
    *,
    escape: str = "\\",
    skip_unset: bool = False,
) -> str:
    """Expand one word: remove quotes and escapes, substitute variables from ``env``.

    >>> expand('"$A"-${B:-b}', {"A": "a"})
    'a-b'
    """
    lexer = _DEFAULT if escape == "\\" and not skip_unset else Lexer(escape, skip_unset=skip_unset)
    return lexer.process(word, env).result


def split_words(
    word: str,
    env: Mapping[str, str],
    *,
    escape: str = "\\",
    skip_unset: bool = False,
) -> list[str]:
    """Expand ``word`` and split it into words on unquoted, unescaped white space.

    White space produced by a variable splits too, as in a shell:

    >>> split_words('a "b c" $X', {"X": "d e"})
    ['a', 'b c', 'd', 'e']
    """
    lexer = _DEFAULT if escape == "\\" and not skip_unset else Lexer(escape, skip_unset=skip_unset)
    return list(lexer.process(word, env).words)
