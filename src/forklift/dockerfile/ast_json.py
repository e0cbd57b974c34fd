"""The syntax tree as JSON (what ``forklift dockerfile parse`` prints).

Shape (every instruction object has the same keys; ``child`` only for ONBUILD)::

    {
      "file": "Dockerfile",
      "escape": "\\\\",
      "directives": [{"name": "syntax", "value": "docker/dockerfile:1", "line": 1}],
      "warnings": [{"message": "Empty continuation line found in: RUN ...", "line": 7}],
      "instructions": [
        {
          "keyword": "run", "raw_keyword": "RUN",
          "start_line": 3, "end_line": 6, "column": 1,
          "flags": [{"name": "mount", "value": "type=cache,target=/root/.cache",
                     "text": "--mount=type=cache,target=/root/.cache", "line": 3, "column": 5}],
          "args": ["<<EOF"], "json": false,
          "original": "RUN --mount=type=cache,target=/root/.cache <<EOF",
          "heredocs": [{"name": "EOF", "content": "apt-get update\\n", "expand": true,
                        "chomp": false, "fd": 0, "start_line": 4, "end_line": 6}],
          "comments": ["install packages"]
        }
      ]
    }

Strings that were not valid UTF-8 in the file carry U+FFFD in JSON.
"""

from __future__ import annotations

import json
from typing import Any

from forklift.dockerfile.ast import Dockerfile, Heredoc, Instruction
from forklift.dockerfile.gocompat import fix_invalid_utf8


def _s(text: str) -> str:
    return fix_invalid_utf8(text)


def heredoc_to_json(doc: Heredoc) -> dict[str, Any]:
    """One heredoc as a JSON object."""
    return {
        "name": _s(doc.name),
        "content": _s(doc.content),
        "expand": doc.expand,
        "chomp": doc.chomp,
        "fd": doc.fd,
        "start_line": doc.start_line,
        "end_line": doc.end_line,
    }


def instruction_to_json(ins: Instruction) -> dict[str, Any]:
    """One instruction as a JSON object (see the module doc for the shape)."""
    out: dict[str, Any] = {
        "keyword": ins.keyword,
        "raw_keyword": _s(ins.raw_keyword),
        "start_line": ins.start_line,
        "end_line": ins.end_line,
        "column": ins.column,
        "flags": [
            {
                "name": _s(f.name),
                "value": None if f.value is None else _s(f.value),
                "text": _s(f.text),
                "line": f.line,
                "column": f.column,
            }
            for f in ins.flags
        ],
        "args": [_s(a) for a in ins.args],
        "json": ins.json,
        "original": _s(ins.original),
        "heredocs": [heredoc_to_json(h) for h in ins.heredocs],
        "comments": [_s(c) for c in ins.comments],
    }
    if ins.child is not None:
        out["child"] = instruction_to_json(ins.child)
    return out


def dockerfile_to_json(df: Dockerfile) -> dict[str, Any]:
    """The whole parse result as a JSON-ready dict."""
    return {
        "file": df.filename,
        "escape": df.escape,
        "directives": [
            {"name": d.name, "value": _s(d.value), "line": d.line} for d in df.directives
        ],
        "warnings": [{"message": _s(w.message), "line": w.line} for w in df.warnings],
        "instructions": [instruction_to_json(i) for i in df.instructions],
    }


def dumps(df: Dockerfile, *, indent: int | None = 2) -> str:
    """The parse result as a JSON string."""
    return json.dumps(dockerfile_to_json(df), indent=indent, ensure_ascii=False)
