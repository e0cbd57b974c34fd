"""Property tests: the stacker against a brute-force replay of the layers."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.analyze.stack import Stacker
from forklift.layers.entry import EntryType

NAMES = ["a", "b", "c"]
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
op = st.one_of(
    st.tuples(st.just("file"), paths, st.integers(0, 1000)),
    st.tuples(st.just("dir"), paths, st.just(0)),
    st.tuples(st.just("whiteout"), paths, st.just(0)),
    st.tuples(st.just("opaque"), paths, st.just(0)),
)
layers = st.lists(st.lists(op, max_size=6), min_size=1, max_size=5)


def replay(image: list[list[tuple[str, str, int]]]) -> tuple[int, int, dict[str, int]]:
    """A plain dict filesystem: path -> size (None for dirs); returns (total, final, files)."""
    fs: dict[str, int | None] = {}
    total = 0

    def drop(path: str) -> None:
        for p in [p for p in fs if p == path or p.startswith(path + "/")]:
            del fs[p]

    for layer in image:
        items: dict[str, tuple[str, int]] = {}
        for kind, path, size in layer:
            if kind in ("file", "dir"):
                if kind == "file":
                    total += size
                items[path] = (kind, size)
        for kind, path, _ in layer:
            if kind == "opaque":
                for p in [p for p in fs if p.startswith(path + "/")]:
                    del fs[p]
            elif kind == "whiteout":
                drop(path)
        for path in sorted(items):
            kind, size = items[path]
            parent = posixpath.dirname(path)
            while parent:
                if fs.get(parent) is not None:
                    drop(parent)
                fs.setdefault(parent, None)
                parent = posixpath.dirname(parent)
            if path in fs and (fs[path] is None) != (kind == "dir"):
                drop(path)
            if kind == "dir":
                fs.setdefault(path, None)
            else:
                fs[path] = size
    files = {p: s for p, s in fs.items() if s is not None}
    return total, sum(files.values()), files


def entries(layer: list[tuple[str, str, int]]) -> list[tuple[str, EntryType, int]]:
    out = []
    for kind, path, size in layer:
        if kind == "file":
            out.append((path, EntryType.FILE, size))
        elif kind == "dir":
            out.append((path, EntryType.DIR, 0))
        elif kind == "whiteout":
            parent, name = posixpath.split(path)
            out.append((posixpath.join(parent, ".wh." + name), EntryType.FILE, 0))
        else:
            out.append((path + "/.wh..wh..opq", EntryType.FILE, 0))
    return out


def real_tar(layer: list[tuple[str, str, int]]) -> bool:
    """Whether a layer could be a real tar: no path stated both as a file and a
    directory, and no file that another entry of the layer has as a parent."""
    kinds: dict[str, str] = {}
    for kind, path, _ in layer:
        if kind in ("file", "dir") and kinds.setdefault(path, kind) != kind:
            return False
    files = {path for kind, path, _ in layer if kind == "file"}
    for _, path, _ in layer:
        parent = posixpath.dirname(path)
        while parent:
            if parent in files:
                return False
            parent = posixpath.dirname(parent)
    return True


@settings(max_examples=300, deadline=None)
@given(layers)
def test_waste_is_what_the_final_filesystem_does_not_show(image) -> None:  # type: ignore[no-untyped-def]
    s = Stacker()
    for layer in image:
        s.add_layer(entries(layer))  # whatever the layers say, without failing
    if not all(real_tar(layer) for layer in image):
        return  # the brute-force replay has no meaning for these
    total, final, files = replay(image)
    assert s.total == total
    assert s.final_size() == final
    assert s.wasted == total - final
    # the biggest files are the visible ones that hold bytes (empty files and links never are)
    assert {p.lstrip("/"): size for p, size, _ in s.biggest_files(100)} == {
        p: size for p, size in files.items() if size > 0
    }
    score, dive_waste = s.efficiency()
    assert 0.0 <= score <= 1.0
    assert dive_waste >= 0
