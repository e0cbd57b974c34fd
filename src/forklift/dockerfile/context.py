"""Walking a build context: the files an ignore file lets through, found fast.

:func:`walk_context` yields what BuildKit's context walker (tonistiigi/fsutil)
sends for a local context: every path not excluded by the ignore patterns, in
sorted depth-first order, directories before their contents. An excluded
directory is still listed when something inside it is re-included by an
``!`` exception (so the tree stays complete), exactly like BuildKit.

Speed comes from not looking where nothing can be kept: an excluded directory
is skipped without being opened unless an exception pattern could match
something below it (decided from the exception's literal prefix, see
:meth:`~forklift.dockerfile.ignore.IgnoreMatcher.could_reinclude_below`), and
inside a directory the patterns that cannot apply there are dropped, so most
entries cost one combined regular-expression test.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Iterator

from forklift.dockerfile.ignore import IgnoreMatcher, MatchKind, Pattern
from forklift.errors import InvalidInput, NotFound

FILE = "f"
DIR = "d"
SYMLINK = "l"
OTHER = "o"


#: One path of the context: ``(path, kind, entry)`` where ``path`` is relative to
#: the root and slash-separated, ``kind`` is ``"f"`` (file), ``"d"`` (directory),
#: ``"l"`` (symlink) or ``"o"`` (other), and ``entry`` is the ``os.DirEntry`` it
#: came from (``entry.stat(follow_symlinks=False)`` is the lstat, cached). Plain
#: tuples because they cost a tenth of a named tuple to create, and a context
#: can have hundreds of thousands of entries.
ContextEntry = tuple[str, str, os.DirEntry[str]]


def entry_stat(item: ContextEntry) -> os.stat_result:
    """``lstat`` of a context entry (not following symlinks; cached by ``os.scandir``)."""
    return item[2].stat(follow_symlinks=False)


class _Plan:
    """Per-directory matching shortcut: which patterns can apply, and the default outcome."""

    __slots__ = ("default_excluded", "default_info", "test")

    def __init__(
        self,
        test: re.Pattern[str] | None,
        default_excluded: bool,
        default_info: list[bool],
    ) -> None:
        self.test = test
        self.default_excluded = default_excluded
        self.default_info = default_info


class _Planner:
    def __init__(self, matcher: IgnoreMatcher) -> None:
        self.matcher = matcher
        self.patterns = matcher.patterns
        self.cache: dict[tuple[int, ...], re.Pattern[str] | None] = {}
        # A pattern that only fails when used must be evaluated for real.
        self.exact = any(p.kind is MatchKind.BAD for p in self.patterns)

    def relevant(self, prefix: str) -> tuple[int, ...]:
        """Indices of the patterns that might match a path ``prefix + name``."""
        depth = prefix.count("/") + 1
        out = []
        for i, p in enumerate(self.patterns):
            if p.depth is not None and p.depth != depth:
                continue
            if p.kind is MatchKind.SUFFIX:
                out.append(i)
                continue
            lit = p.literal_prefix
            if prefix.startswith(lit) or lit.startswith(prefix):
                out.append(i)
        return tuple(out)

    def combined(self, indices: tuple[int, ...]) -> re.Pattern[str] | None:
        if indices in self.cache:
            return self.cache[indices]
        if not indices:
            compiled = None
        else:
            compiled = re.compile("|".join(_alternative(self.patterns[i]) for i in indices))
        self.cache[indices] = compiled
        return compiled

    def plan(self, prefix: str, parent_info: list[bool] | None) -> _Plan:
        # Outcome for a child that no pattern matches by itself: only the
        # parent's results count.
        info = [False] * len(self.patterns)
        excluded = False
        for i, p in enumerate(self.patterns):
            hit = parent_info[i] if parent_info else False
            if not hit and p.exclusion != excluded:
                continue
            info[i] = hit
            if hit:
                excluded = not p.exclusion
        return _Plan(self.combined(self.relevant(prefix)), excluded, info)


def _alternative(p: Pattern) -> str:
    return "(?:" + p.python_regex + ")"


def walk_context(
    root: str | os.PathLike[str],
    matcher: IgnoreMatcher | None = None,
    listed: list[str] | None = None,
) -> Iterator[ContextEntry]:
    """Iterate over the context's entries that ``matcher`` does not exclude.

    Order: sorted by name, depth first, a directory before its contents.
    Symlinks are listed, not followed. Raises :class:`~forklift.errors.NotFound`
    when ``root`` is not a directory (at call time) and, while iterating,
    :class:`~forklift.errors.InvalidInput` for an unreadable included directory
    or :class:`~forklift.dockerfile.ignore.IgnorePatternError` for a pattern
    that cannot be used. ``listed``, when given, collects the path of every
    directory read (what the walk's result depends on, with its entries).
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise NotFound(f"build context {root!r} is not a directory")
    if matcher is None or not matcher.patterns:
        return _walk_all(root, listed)
    return _walk_filtered(root, matcher, _Planner(matcher), listed)


def _scandir_sorted(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        entries = list(it)
    entries.sort(key=_entry_name)
    return entries


_entry_name = operator.attrgetter("name")


def _read_dir(
    path: str, inside_excluded: bool, listed: list[str] | None = None
) -> list[os.DirEntry[str]]:
    if listed is not None:
        listed.append(path)
    try:
        return _scandir_sorted(path)
    except PermissionError:
        if inside_excluded:
            # BuildKit skips unreadable directories it only looked into for
            # possible exceptions.
            return []
        raise InvalidInput(
            f"cannot read build context directory {path!r}: permission denied"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"cannot read build context directory {path!r}: {exc.strerror}"
        ) from None


def _leaf_kind(e: os.DirEntry[str]) -> str:
    if e.is_file(follow_symlinks=False):
        return FILE
    if e.is_symlink():
        return SYMLINK
    return OTHER


def _walk_all(root: str, listed: list[str] | None = None) -> Iterator[ContextEntry]:
    # Iterative depth-first walk; the frame of the directory being read lives
    # in local variables, parents on `stack`.
    stack: list[tuple[list[os.DirEntry[str]], int, str]] = []
    entries = _read_dir(root, False, listed)
    idx = 0
    prefix = ""
    while True:
        n = len(entries)
        while idx < n:
            e = entries[idx]
            idx += 1
            p = prefix + e.name
            if e.is_dir(follow_symlinks=False):
                yield (p, DIR, e)
                stack.append((entries, idx, prefix))
                entries = _read_dir(e.path, False, listed)
                idx = 0
                prefix = p + "/"
                n = len(entries)
            else:
                yield (p, _leaf_kind(e), e)
        if not stack:
            return
        entries, idx, prefix = stack.pop()


def _walk_filtered(
    root: str, matcher: IgnoreMatcher, planner: _Planner, listed: list[str] | None = None
) -> Iterator[ContextEntry]:
    # `pending` holds excluded directories on the current path that are being
    # searched for re-included content; they are listed (in order) as soon as
    # something below them is kept, so the tree stays complete.
    pending: list[ContextEntry] = []
    match = matcher.match_with_parent
    could_reinclude = matcher.could_reinclude_below if matcher.has_exclusions else None
    # With a pattern that only fails when used, test every path for real.
    force = _MATCH_EVERYTHING if planner.exact else None

    stack: list[
        tuple[list[os.DirEntry[str]], int, str, list[bool] | None, _Plan, ContextEntry | None]
    ] = []
    entries = _read_dir(root, False, listed)
    idx = 0
    prefix = ""
    info_here: list[bool] | None = None  # results of the directory being read
    plan = planner.plan(prefix, info_here)
    marker: ContextEntry | None = None  # this directory, if it is excluded
    while True:
        n = len(entries)
        test = force or plan.test
        default_excluded = plan.default_excluded
        default_info = plan.default_info
        while idx < n:
            e = entries[idx]
            idx += 1
            p = prefix + e.name
            if test is not None and test.match(p) is not None:
                excluded, info = match(p, info_here)
            else:
                excluded = default_excluded
                info = default_info
            if not e.is_dir(follow_symlinks=False):
                if excluded:
                    continue
                if pending:
                    yield from pending
                    pending.clear()
                yield (p, FILE if e.is_file(follow_symlinks=False) else _leaf_kind(e), e)
                continue
            dir_entry: ContextEntry = (p, DIR, e)
            if excluded:
                if could_reinclude is None or not could_reinclude(p):
                    continue
                pending.append(dir_entry)
                new_marker: ContextEntry | None = dir_entry
            else:
                if pending:
                    yield from pending
                    pending.clear()
                yield dir_entry
                new_marker = None
            stack.append((entries, idx, prefix, info_here, plan, marker))
            entries = _read_dir(e.path, new_marker is not None or bool(pending), listed)
            idx = 0
            prefix = p + "/"
            info_here = info
            marker = new_marker
            plan = planner.plan(prefix, info_here)
            n = len(entries)
            test = force or plan.test
            default_excluded = plan.default_excluded
            default_info = plan.default_info
        if marker is not None and pending and pending[-1] is marker:
            pending.pop()
        if not stack:
            return
        entries, idx, prefix, info_here, plan, marker = stack.pop()


_MATCH_EVERYTHING = re.compile("")


def context_paths(root: str | os.PathLike[str], matcher: IgnoreMatcher | None = None) -> list[str]:
    """Convenience: the relative paths :func:`walk_context` yields, as a list."""
    return [entry[0] for entry in walk_context(root, matcher)]
