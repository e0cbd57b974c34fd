"""A rebuild skips the work whose inputs did not change (runc + overlayfs).

Work skipped, never durations: a no-op rebuild reads no context file's content
(the stat cache answers), writes no blob and leaves the store index and build
history untouched; a changed file is read again even when its size and mtime
are made to look the same.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forklift.build import context as context_mod
from forklift.build.context import StatCache
from forklift.store import Store
from tests.builder.test_build import cached_lines, do_build, layer_members, write

pytestmark = pytest.mark.root

DOCKERFILE = """\
FROM busybox
WORKDIR /app
COPY package.json ./
RUN cp package.json installed.json
COPY src/ ./src/
RUN cat src/*.js > bundle.js
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    files = {"Dockerfile": DOCKERFILE, "package.json": '{"deps": 1}'}
    files.update({f"src/m{i:02d}.js": f"module{i}()\n" for i in range(30)})
    write(ctx, files)
    # older than the racy window: the first build may remember every digest
    time.sleep(context_mod.RACY_NS / 1e9 * 2)
    return ctx


@pytest.fixture
def context_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Paths the context module opens (how the stat cache reads a file's content)."""
    seen: list[str] = []

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(os.fspath(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(context_mod, "open", spy, raising=False)
    yield seen


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``path``: relative name -> (inode, mtime_ns)."""
    out = {}
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(path))] = (st.st_ino, st.st_mtime_ns)
    return out


def test_noop_rebuild_reads_no_context_file_and_writes_nothing(
    busybox_image: str, project: Path, context_reads: list[str]
) -> None:
    first, _ = do_build(project)
    assert not any(cached_lines(first))
    read_first = [p for p in context_reads if p.startswith(str(project))]
    assert len(read_first) == 31  # package.json and the 30 sources, each once

    home = Path(os.environ["FORKLIFT_HOME"])
    before = _tree(home)
    context_reads.clear()
    again, log = do_build(project)
    assert all(cached_lines(again)) and again.image_id == first.image_id
    assert "cache miss" not in log
    assert [p for p in context_reads if p.startswith(str(project))] == []
    after = _tree(home)
    # no new blob, no rewritten index or history: same files, same inodes, same mtimes
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert not {k for k in changed if k.startswith("blobs/") or k.endswith("index.json")}
    assert not {k for k in changed if "history" in k}, changed


def test_changed_file_with_same_size_and_mtime_is_read_again(
    busybox_image: str, project: Path, context_reads: list[str]
) -> None:
    do_build(project)
    target = project / "src" / "m07.js"
    st = target.stat()
    target.write_text("MODULE7()\n")  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only ctime moved
    context_reads.clear()
    changed, _ = do_build(project)
    assert [p for p in context_reads if p.startswith(str(project))] == [str(target)]
    steps = {s.instruction: s.cached for s in changed.steps}
    assert steps["COPY package.json ./"] is True
    assert steps["COPY src/ ./src/"] is False
    assert layer_members(Store.open(), "t:1")["app/src/m07.js"] == b"MODULE7()\n"


def test_stat_cache_forgets_racily_clean_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    db = tmp_path / "stat.sqlite3"

    def digest_twice() -> int:
        for _ in range(2):
            cache = StatCache(db)
            cache.prefetch(str(tmp_path))
            digest = cache.digest(str(f), os.lstat(f))
            cache.close()
            assert digest == hashlib.sha256(b"x" * 100).hexdigest()
        return cache.hashed

    # a file changed "just now" (window wider than the test) is read on every build
    monkeypatch.setattr(context_mod, "RACY_NS", 10**15)
    assert digest_twice() == 1
    # once its last change is older than the window, the second build reuses the digest
    monkeypatch.setattr(context_mod, "RACY_NS", 0)
    assert digest_twice() == 0
