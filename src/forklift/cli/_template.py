"""docker's ``--format '{{.Id}}'``: the small part of Go's text/template scripts use.

Supported: text with ``{{ ... }}`` actions holding ``.`` or a field path
(``.Config.Env``), optionally through one function: ``json``, ``join PATH
"sep"``, ``lower``, ``upper``, ``index PATH "key"``; ``{{"\\t"}}``-style string
literals. Values print as Go prints them (lists as ``[a b]``, maps as
``map[k:v]``, booleans as ``true``/``false``); a field that does not exist
prints ``<no value>``, as Go's templates do for maps. Anything else is an error
naming the unsupported action, never a wrong answer.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from forklift.errors import UsageError

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_MISSING = object()
_FUNCTIONS = ("json", "join", "index", "lower", "upper")


def is_template(text: str) -> bool:
    """Whether a ``--format`` value is a Go template rather than a format name."""
    return "{{" in text


def _path(value: Any, path: str, template: str) -> Any:
    if path == ".":
        return value
    if not path.startswith("."):
        raise UsageError(f"template {template!r}: expected a field like .Id, not {path!r}")
    for name in path[1:].split("."):
        if not isinstance(value, dict) or name not in value:
            return _MISSING
        value = value[name]
    return value


def go_string(value: Any) -> str:
    """How Go's fmt prints a JSON-like value (``%v``)."""
    if value is _MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_string(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _literal(word: str) -> str:
    try:
        return str(json.loads(word))  # Go's interpreted string literals are JSON-like
    except ValueError:
        return word.strip('"')


def render(template: str, value: Any) -> str:
    """``template`` applied to ``value`` (a dict as the JSON output has it)."""

    def action(match: re.Match[str]) -> str:
        text = match.group(1)
        if text.startswith('"'):
            return _literal(text)
        try:
            words = shlex.split(text, posix=False)
        except ValueError:
            raise UsageError(f"template {template!r}: cannot read {{{{{text}}}}}") from None
        if len(words) == 1:
            return go_string(_path(value, words[0], template))
        if "|" in words or words[0] not in _FUNCTIONS:
            raise UsageError(
                f"template {template!r}: {{{{{text}}}}} is not supported "
                "(fields like .Config.Env, and json, join, index, lower, upper)"
            )
        func, args = words[0], words[1:]
        target = _path(value, args[0], template)
        if func == "json" and len(args) == 1:
            return json.dumps(
                None if target is _MISSING else target, ensure_ascii=False, separators=(",", ":")
            )
        if func in ("lower", "upper") and len(args) == 1:
            text_value = go_string(target)
            return text_value.lower() if func == "lower" else text_value.upper()
        if func == "join" and len(args) == 2 and isinstance(target, list | tuple):
            return _literal(args[1]).join(go_string(v) for v in target)
        if func == "index" and len(args) == 2 and isinstance(target, dict):
            return go_string(target.get(_literal(args[1]), _MISSING))
        raise UsageError(
            f"template {template!r}: {{{{{text}}}}} is not supported "
            "(fields like .Config.Env, and json, join, index, lower, upper)"
        )

    # docker's CLI turns a typed \t or \n into a tab or a newline
    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return _ACTION.sub(action, text)


def check_format(value: str, names: tuple[str, ...]) -> None:
    """``--format`` takes one of ``names`` or a Go template."""
    if value not in names and not is_template(value):
        raise UsageError(
            f"--format: {value!r} is neither {' nor '.join(names)} nor a Go template "
            "(e.g. '{{.ID}}')"
        )
