"""The build-context walker: BuildKit's results, and pruning of excluded directories."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forklift.dockerfile import context as context_mod
from forklift.dockerfile.context import context_paths, entry_stat, walk_context
from forklift.dockerfile.ignore import IgnoreMatcher
from forklift.errors import NotFound


def _expected_rows(corpus: Path) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    rows: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    text = (corpus / "dockerignore" / "context-expected.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("#") or line.startswith("context\t") or not line.strip():
            continue
        ctx, ignore_file, path, kind, buildkit, _legacy = line.split("\t")
        rows[(ctx, ignore_file)].append((path, kind, buildkit))
    return rows


def test_contexts_match_buildkit_walker(corpus: Path) -> None:
    rows = _expected_rows(corpus)
    assert len(rows) == 27
    checked = 0
    for (ctx, ignore_file), items in rows.items():
        root = corpus / "dockerignore" / "contexts" / ctx
        matcher = IgnoreMatcher.from_file(root / ignore_file)
        got = {path: kind for path, kind, _entry in walk_context(root, matcher)}
        for path, kind, buildkit in items:
            assert (path in got) == (buildkit == "kept"), (ctx, ignore_file, path)
            if path in got:
                assert got[path] == kind, (ctx, path)
            checked += 1
        # nothing beyond the listed paths
        assert set(got) <= {p for p, _, _ in items}
    assert checked == 219


def _tree(root: Path, files: list[str]) -> None:
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)


def test_order_types_and_stat(tmp_path: Path) -> None:
    _tree(tmp_path, ["b/z", "a", "b/a/x", ".dockerignore"])
    (tmp_path / "link").symlink_to("a")
    items = list(walk_context(tmp_path))
    assert [(p, k) for p, k, _ in items] == [
        (".dockerignore", "f"),
        ("a", "f"),
        ("b", "d"),
        ("b/a", "d"),
        ("b/a/x", "f"),
        ("b/z", "f"),
        ("link", "l"),
    ]
    assert entry_stat(items[1]).st_size == 1


def test_excluded_directory_listed_only_for_reincluded_content(tmp_path: Path) -> None:
    _tree(tmp_path, ["docs/README.md", "docs/other.md", "docs/sub/x", "src/a.py"])
    matcher = IgnoreMatcher(["docs", "!docs/README.md"])
    assert context_paths(tmp_path, matcher) == ["docs", "docs/README.md", "src", "src/a.py"]


def test_pruning_skips_excluded_trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, ["node_modules/p/q/r.js", "node_modules/p/s.js", "src/keep/x.py", "src/a.py"])
    read: list[str] = []
    real = context_mod._read_dir

    def spy(path: str, inside_excluded: bool, listed=None):  # type: ignore[no-untyped-def]
        read.append(os.path.relpath(path, tmp_path))
        return real(path, inside_excluded, listed)

    monkeypatch.setattr(context_mod, "_read_dir", spy)
    # An exception that cannot reach below node_modules does not cause a descent.
    matcher = IgnoreMatcher(["node_modules", "*.md", "!src/keep/x.py"])
    paths = context_paths(tmp_path, matcher)
    assert "node_modules" not in paths
    assert not any(r.startswith("node_modules") for r in read)
    # An exception that could match below it does (and finds what it re-includes).
    read.clear()
    matcher = IgnoreMatcher(["node_modules", "!**/s.js"])
    assert context_paths(tmp_path, matcher) == [
        "node_modules",
        "node_modules/p",
        "node_modules/p/s.js",
        "src",
        "src/a.py",
        "src/keep",
        "src/keep/x.py",
    ]
    assert "node_modules/p/q" in read


def test_missing_root_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        walk_context(tmp_path / "nope")


# -- property: the optimised walk equals a naive full evaluation --------------

NAMES = ["a", "b", "ab", "c.txt", "d.log"]
PATTERN_PARTS = ["a", "b", "ab", "*", "?", "a*", "*.txt", "*.log", "c.txt", "**"]


def _naive(root: Path, matcher: IgnoreMatcher) -> list[str]:
    """Every path checked with ``match_with_parent``, no shortcuts, no pruning; an
    excluded directory is listed when something below it is kept."""
    out: list[str] = []

    def walk(directory: Path, prefix: str, info: list[bool] | None) -> list[str]:
        kept: list[str] = []
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            rel = prefix + entry.name
            excluded, child_info = matcher.match_with_parent(rel, info)
            below = walk(Path(entry.path), rel + "/", child_info) if entry.is_dir() else []
            if not excluded or below:
                kept.append(rel)
            kept.extend(below)
        return kept

    out = walk(root, "", None)
    return out


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join), max_size=12),
    st.lists(
        st.builds(
            lambda neg, parts: ("!" if neg else "") + "/".join(parts),
            st.booleans(),
            st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=3),
        ),
        max_size=5,
    ),
)
def test_walker_equals_naive_evaluation(
    tmp_path_factory: pytest.TempPathFactory, files: list[str], patterns: list[str]
) -> None:
    root = tmp_path_factory.mktemp("ctx")
    made = []
    for rel in files:
        # a path cannot be both a file and a directory
        if any(m == rel or m.startswith(rel + "/") or rel.startswith(m + "/") for m in made):
            continue
        made.append(rel)
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    matcher = IgnoreMatcher(patterns)
    assert context_paths(root, matcher) == _naive(root, matcher)
