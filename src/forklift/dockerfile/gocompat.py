"""Small pieces of Go's standard library that BuildKit's behaviour depends on.

BuildKit is written in Go, and several observable results of its Dockerfile
front end come straight from Go library semantics: which characters count as
white space (``unicode.IsSpace``), how a string is quoted in an AST dump
(``strconv.Quote``), what ``encoding/json`` accepts, how ``filepath.Clean``
normalises a path, and how "did you mean" suggestions are picked. Python's
built-ins differ in small ways (``str.isspace`` treats U+001C..U+001F as space,
``json.loads`` accepts ``NaN``), so the parser uses these helpers instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# unicode.IsSpace: the Unicode White_Space property (Python's str.isspace also
# accepts U+001C..U+001F, which Go does not).
GO_SPACES = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_SPACE_SET = frozenset(GO_SPACES)


def is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace`` for one character."""
    return ch in _SPACE_SET


def trim_space(s: str) -> str:
    """Go's ``strings.TrimSpace``."""
    return s.strip(GO_SPACES)


def trim_left_space(s: str) -> str:
    """Go's ``strings.TrimLeftFunc(s, unicode.IsSpace)``."""
    return s.lstrip(GO_SPACES)


def is_letter(ch: str) -> bool:
    """Go's ``unicode.IsLetter`` (categories L*), same set as ``str.isalpha``."""
    return ch.isalpha()


def is_digit(ch: str) -> bool:
    """Go's ``unicode.IsDigit`` (category Nd), same set as ``str.isdecimal``."""
    return ch.isdecimal()


def fix_invalid_utf8(s: str) -> str:
    """Replace bytes that were not valid UTF-8 by U+FFFD, as Go's rune decoding does.

    Files are decoded with ``surrogateescape``, so every invalid byte shows up as
    a lone surrogate U+DC80..U+DCFF; Go code that ranges over runes sees
    ``utf8.RuneError`` (U+FFFD) there instead.
    """
    if not any("\ud800" <= c <= "\udfff" for c in s):
        return s
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in s)


_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: double-quoted, Go escapes, non-printables as ``\\u``.

    Lone surrogates U+DC80..U+DCFF stand for undecodable bytes (see
    :func:`fix_invalid_utf8`); Go prints such a byte as ``\\xHH``.
    """
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for c in s:
        esc = _QUOTE_ESCAPES.get(c)
        if esc is not None:
            out.append(esc)
            continue
        o = ord(c)
        if 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        elif c.isprintable():
            out.append(c)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def go_quote_list(items: Iterable[str]) -> str:
    """Go's ``fmt.Sprintf("%q", []string{...})``: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


class _NotGoJSON(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NotGoJSON(name)


def _float_in_range(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        # encoding/json cannot store this in a float64 and reports an error.
        raise _NotGoJSON(text)
    return value


_GO_JSON = json.JSONDecoder(
    parse_constant=_reject_constant,
    parse_float=_float_in_range,
    parse_int=_float_in_range,
)


def go_json_loads(text: str) -> object:
    """Decode JSON the way Go's ``encoding/json`` would, or raise ``ValueError``.

    Differences from :func:`json.loads` that matter here: ``NaN``/``Infinity``
    are rejected, numbers out of float64 range are errors, and invalid UTF-8 or
    lone surrogates inside strings become U+FFFD instead of staying lone.
    """
    value = _GO_JSON.decode(text)
    return _fix_surrogates(value)


def _fix_surrogates(value: object) -> object:
    if isinstance(value, str):
        return fix_invalid_utf8(value)
    if isinstance(value, list):
        return [_fix_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_fix_surrogates(k): _fix_surrogates(v) for k, v in value.items()}
    return value


def clean_path(path: str) -> str:
    """Go's ``path/filepath.Clean`` on a slash-separated (Unix) path."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


def levenshtein(a: str, b: str) -> int:
    """Edit distance with unit costs (insert, delete, substitute)."""
    if a == b:
        return 0
    if not a:
        return len(b)
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(value: str, options: Iterable[str], *, case_sensitive: bool) -> str | None:
    """BuildKit's "did you mean" pick: the closest option within edit distance 2.

    Returns ``None`` when ``value`` is itself an option (the error is about
    something else) or nothing is close. Options are tried in sorted order so
    the pick is deterministic (BuildKit iterates a Go map).
    """
    probe = value if case_sensitive else value.lower()
    best: str | None = None
    best_dist = 3
    for opt in sorted(options):
        cand = opt if case_sensitive else opt.lower()
        if cand == probe:
            return None
        dist = levenshtein(probe, cand)
        if dist < best_dist:
            best_dist = dist
            if case_sensitive:
                best = cand
            elif value == value.lower():
                best = cand.lower()
            elif value == value.upper():
                best = cand.upper()
            else:
                best = cand
    return best


def with_suggestion(
    message: str, value: str, options: Iterable[str], *, case_sensitive: bool
) -> str:
    """Append ``" (did you mean X?)"`` to ``message`` when a close option exists."""
    match = suggest(value, options, case_sensitive=case_sensitive)
    if match is None:
        return message
    return f"{message} (did you mean {match}?)"


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: ``"1h30m"``, ``"2.5s"``, ``"-3ms"`` -> nanoseconds.

    Raises ``ValueError`` with Go's message (``time: invalid duration "x"``).
    """
    orig = text
    quoted = go_quote(orig)
    s = text
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while s:
        i = 0
        while i < len(s) and s[i].isdigit() and s[i].isascii():
            i += 1
        int_part = s[:i]
        s = s[i:]
        frac_part = ""
        if s.startswith("."):
            s = s[1:]
            j = 0
            while j < len(s) and s[j].isdigit() and s[j].isascii():
                j += 1
            frac_part = s[:j]
            s = s[j:]
        if int_part == "" and frac_part == "":
            raise ValueError(f"time: invalid duration {quoted}")
        k = 0
        while k < len(s) and s[k] != "." and not (s[k].isdigit() and s[k].isascii()):
            k += 1
        unit = s[:k]
        s = s[k:]
        if unit == "":
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        scale = _DURATION_UNITS[unit]
        value = int(int_part or "0") * scale
        if frac_part:
            value += int(frac_part) * scale // (10 ** len(frac_part))
        total += value
        if total > (1 << 63) - 1:
            raise ValueError(f"time: invalid duration {quoted}")
    result = int(total)
    return -result if neg else result


def format_go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` for whole units (``30s``, ``1m30s``, ``1ms``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim_frac(ns / 1_000)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_trim_frac(ns / 1_000_000)}ms"
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    secs = _trim_frac(rem / 1_000_000_000)
    out = ""
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return f"{sign}{out}{secs}s"


def _trim_frac(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
