"""Inline ignores: ``# forklift-lint ignore=ID,ID`` and hadolint's pragmas.

* ``# forklift-lint ignore=FL205,apt-no-install-recommends`` in the comment
  block right above an instruction silences those rules for that instruction
  (every line it spans, heredoc bodies included).
* ``# hadolint ignore=DL3008,DL3009`` does the same with hadolint ids, mapped
  to the forklift rules with the same intent (ShellCheck ``SC`` codes are
  accepted and ignored).
* ``# forklift-lint global ignore=...`` / ``# hadolint global ignore=...``
  anywhere in the file silence rules for the whole file.
* BuildKit's ``# check=skip=Rule1,Rule2`` parser directive skips the
  BuildKit checks named (``skip=all``: every BuildKit check), and
  ``error=true`` makes BuildKit checks errors, as in ``docker build``.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from forklift.dockerfile.ast import Dockerfile
from forklift.lint.catalog import RULES, resolve_ids

_PRAGMA = re.compile(
    r"^(?:forklift-lint|hadolint)\s+(global\s+)?ignore\s*=\s*([A-Za-z0-9_,\-\s]+?)\s*$",
    re.IGNORECASE,
)
_GLOBAL_LINE = re.compile(
    r"^\s*#\s*(?:forklift-lint|hadolint)\s+global\s+ignore\s*=\s*([A-Za-z0-9_,\-\s]+?)\s*$",
    re.IGNORECASE,
)


@dataclass
class Pragmas:
    """The ignores of one file: per instruction span and file-wide."""

    spans: list[tuple[int, int, frozenset[str]]] = field(default_factory=list)
    file_wide: set[str] = field(default_factory=set)
    buildkit_skip: set[str] = field(default_factory=set)
    buildkit_error: bool = False
    _starts: list[int] = field(default_factory=list)

    def ignores(self, rule: str, line: int) -> bool:
        """True when ``rule`` is silenced at ``line``."""
        if rule in self.file_wide or rule in self.buildkit_skip:
            return True
        i = bisect.bisect_right(self._starts, line) - 1
        while i >= 0:
            start, end, ids = self.spans[i]
            if start <= line <= end:
                if rule in ids:
                    return True
            elif end < line:
                break
            i -= 1
        return False


def _ids(text: str) -> set[str]:
    return resolve_ids(p for p in re.split(r"[,\s]+", text) if p)


def read_pragmas(df: Dockerfile, *, honour_inline: bool = True) -> Pragmas:
    """Collect the ignores of ``df`` (``honour_inline=False`` drops per-line/global pragmas)."""
    pr = Pragmas()
    if honour_inline:
        for ins in df.instructions:
            ids: set[str] = set()
            for comment in ins.comments:
                m = _PRAGMA.match(comment.strip())
                if m is None:
                    continue
                if m.group(1):
                    pr.file_wide |= _ids(m.group(2))
                else:
                    ids |= _ids(m.group(2))
            if ids:
                pr.spans.append((ins.start_line, ins.end_line, frozenset(ids)))
        # Global pragmas may sit anywhere, not only above an instruction.
        for line in df.source.split("\n"):
            m = _GLOBAL_LINE.match(line)
            if m:
                pr.file_wide |= _ids(m.group(1))
    pr.spans.sort(key=lambda s: s[0])
    pr._starts = [s[0] for s in pr.spans]
    check = df.directive("check")
    if check:
        for part in check.split(";"):
            key, _, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if key == "skip":
                if value.lower() == "all":
                    pr.buildkit_skip |= {r.id for r in RULES.values() if r.buildkit}
                else:
                    names = [v.strip() for v in value.split(",") if v.strip()]
                    pr.buildkit_skip |= {
                        r.id for r in RULES.values() if r.buildkit and r.buildkit in names
                    }
            elif key == "error":
                pr.buildkit_error = value.lower() in ("1", "t", "true")
    return pr
