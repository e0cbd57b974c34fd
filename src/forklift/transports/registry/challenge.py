"""``WWW-Authenticate`` challenges (RFC 7235 / RFC 6750), parsed robustly.

A header may hold several challenges separated by commas, and a challenge's
parameters are comma-separated too; values may be quoted strings that contain
commas (``scope="repository:a:pull,push"``) and backslash escapes. Some
registries send an unquoted ``scope=repository:a:pull,push``: the stray
``push`` is re-attached to the value it came from instead of being taken for a
new challenge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf"({_TOKEN})[ \t]*=[ \t]*(.*)", re.S)
_SCHEME = re.compile(rf"({_TOKEN})(?:[ \t]+(.*))?", re.S)
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_KNOWN_SCHEMES = frozenset({"basic", "bearer", "digest", "negotiate", "ntlm", "hoba", "mutual"})


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a lower-cased scheme and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes the server asked for (the ``scope`` parameter is space-separated)."""
        return tuple(s for s in self.params.get("scope", "").split(" ") if s)

    @property
    def error(self) -> str | None:
        """RFC 6750 error code, e.g. ``invalid_token`` or ``insufficient_scope``."""
        return self.params.get("error")


def _split_items(text: str) -> list[str]:
    """Split on commas that are outside quoted strings."""
    items: list[str] = []
    buf: list[str] = []
    quoted = False
    escaped = False
    for ch in text:
        if quoted:
            buf.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
            buf.append(ch)
        elif ch == ",":
            items.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
    items.append("".join(buf).strip())
    return items


def _unquote(value: str) -> tuple[str, bool]:
    """(value, was_quoted); a quoted string loses its quotes and backslash escapes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return re.sub(r"\\(.)", r"\1", inner, flags=re.S), True
    if value.startswith('"'):
        # unterminated quote: keep what is there rather than failing the whole header
        return re.sub(r"\\(.)", r"\1", value[1:], flags=re.S), True
    return value, False


class _Builder:
    def __init__(self, scheme: str) -> None:
        self.scheme = scheme.lower()
        self.params: dict[str, str] = {}
        self.token68: str | None = None
        self.last_key: str | None = None
        self.last_quoted = True

    def add_param(self, name: str, raw: str) -> None:
        value, quoted = _unquote(raw)
        key = name.lower()
        # the first occurrence wins, as repeated parameters are invalid anyway
        self.params.setdefault(key, value)
        self.last_key, self.last_quoted = key, quoted

    def build(self) -> Challenge:
        return Challenge(self.scheme, dict(self.params), self.token68)


def parse_challenges(headers: str | Iterable[str]) -> list[Challenge]:
    """Parse one or more ``WWW-Authenticate`` header values into challenges.

    Never raises: unparseable fragments are skipped, so a sloppy server still
    yields whatever challenges can be understood.
    """
    values = [headers] if isinstance(headers, str) else list(headers)
    out: list[Challenge] = []
    for value in values:
        current: _Builder | None = None
        for item in _split_items(value):
            if not item:
                continue
            m = _PARAM.fullmatch(item)
            if m and current is not None:
                current.add_param(m.group(1), m.group(2))
                continue
            m = _SCHEME.fullmatch(item)
            if m is None:
                continue
            word, rest = m.group(1), m.group(2)
            if (
                rest is None
                and current is not None
                and current.last_key is not None
                and not current.last_quoted
                and word.lower() not in _KNOWN_SCHEMES
            ):
                # an unquoted value that contained a comma, e.g. scope=repo:a:pull,push
                key = current.last_key
                current.params[key] = current.params[key] + "," + word
                continue
            if current is not None:
                out.append(current.build())
            current = _Builder(word)
            if rest:
                rest = rest.strip()
                pm = _PARAM.fullmatch(rest)
                if pm:
                    current.add_param(pm.group(1), pm.group(2))
                elif _TOKEN68.fullmatch(rest):
                    current.token68 = rest
        if current is not None:
            out.append(current.build())
    return out


def quote(value: str) -> str:
    """Render ``value`` as an RFC 7230 quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
