"""Why a step missed the cache: compare its inputs with the same step of the last build.

After each build the inputs of every step (instruction, environment, build
args, file checksums of COPY sources, base image digest) are saved under
``$FORKLIFT_HOME/build-history/<id>.json``, where the id names the build
(context directory, Dockerfile, target). The first miss of each stage is
explained against that record: ``COPY src/ ./src: src/app/views.py changed``,
``RUN make: build arg VERSION changed 1.2 -> 1.3``, ``FROM base: base image
digest changed``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from forklift.fsutil import atomic_write

_MAX_LISTED = 5


def history_id(context: str, dockerfile: str, target: str | None) -> str:
    """A stable name for "this build" (same context, Dockerfile and target)."""
    text = "\0".join([os.path.realpath(context), os.path.realpath(dockerfile), target or ""])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class BuildHistory:
    """The recorded inputs of the last build with the same id."""

    def __init__(self, home: str | os.PathLike[str], build_id: str) -> None:
        self.path = Path(home) / "build-history" / f"{build_id}.json"

    def load(self) -> dict[str, list[dict[str, Any]]]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, stages: dict[str, list[dict[str, Any]]]) -> None:
        """Record this build's step inputs (not rewritten when they are the same)."""
        data = json.dumps(stages, sort_keys=True).encode()
        try:
            if self.path.read_bytes() == data:
                return
        except OSError:
            pass
        atomic_write(self.path, data)


def _changed_files(old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for path in sorted(set(old) | set(new)):
        if path not in old:
            out.append(f"{path} added")
        elif path not in new:
            out.append(f"{path} removed")
        elif old[path] != new[path]:
            out.append(f"{path} changed")
    return out


def _changed_vars(kind: str, old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            out.append(f"{kind} {key} added ({new[key]})")
        elif key not in new:
            out.append(f"{kind} {key} removed")
        elif old[key] != new[key]:
            out.append(f"{kind} {key} changed {old[key]} -> {new[key]}")
    return out


def _listed(items: list[str]) -> str:
    shown = items[:_MAX_LISTED]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _changed_options(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        kinds = (str(before).split(":")[0], str(after).split(":")[0])
        if key == "from" and kinds == ("stage", "stage"):
            out.append("the stage it uses changed")
        elif key == "from" and kinds == ("image", "image"):
            out.append(f"source image changed {str(before)[6:]} -> {str(after)[6:]}")
        else:
            out.append(f"{key} changed {before!r} -> {after!r}")
    return out


def explain_miss(previous: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """One line saying what changed between the previous and current inputs of a step."""
    if previous is None:
        return "no earlier build of this step"
    if previous.get("key") == current.get("key"):
        return "the cached result is gone (pruned, or --no-cache)"
    reasons: list[str] = []
    if previous.get("instruction") != current.get("instruction"):
        reasons.append(f"instruction changed (was: {previous.get('instruction')})")
    if previous.get("base") != current.get("base"):
        reasons.append(f"base image digest changed {previous.get('base')} -> {current.get('base')}")
    files = _changed_files(previous.get("files") or {}, current.get("files") or {})
    if files:
        reasons.append(_listed(files))
    args = _changed_vars("build arg", previous.get("args") or {}, current.get("args") or {})
    env = _changed_vars("ENV", previous.get("env") or {}, current.get("env") or {})
    reasons.extend(args + env)
    for key, label in (("user", "USER"), ("workdir", "WORKDIR"), ("shell", "SHELL")):
        if previous.get(key) != current.get(key):
            reasons.append(f"{label} changed {previous.get(key)!r} -> {current.get(key)!r}")
    reasons.extend(_changed_options(previous.get("options") or {}, current.get("options") or {}))
    if not reasons and previous.get("parent") != current.get("parent"):
        reasons.append("an earlier step's result changed")
    return "; ".join(reasons) or "inputs changed"


def full_comparison(previous: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Every difference, for ``--explain-cache``."""
    if previous is None:
        return ["  (no earlier build recorded)"]
    lines: list[str] = []
    for key in sorted(set(previous) | set(current)):
        if key in ("key", "parent"):
            continue
        old, new = previous.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, dict) or isinstance(new, dict):
            diff = (
                _changed_files(old or {}, new or {})
                if key == "files"
                else _changed_vars(key, old or {}, new or {})
            )
            lines.extend(f"  {d}" for d in diff)
        else:
            lines.append(f"  {key}: {old!r} -> {new!r}")
    return lines or ["  (inputs equal; the parent step changed)"]
