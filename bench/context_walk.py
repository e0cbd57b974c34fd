"""Walk a large build context: forklift's walker vs ``find``, and the cost of an ignored tree.

Generates under /tmp (removed afterwards) a context of 100,000 files plus a
``node_modules/`` of 200,000 files excluded by ``.dockerignore``, then times in
the same run (median of several rounds, caches warm):

* ``find CONTEXT -path CONTEXT/node_modules -prune -o -type f -print | wc -l``
  (the included part only);
* forklift's :func:`~forklift.dockerfile.context.walk_context` with the ignore
  file, counting files;
* the same walk with ``node_modules`` moved out of the context (rename), to
  show what the ignored directory adds.

Targets: walk within 2x of find; the ignored directory adding under 5%.

    python bench/context_walk.py [--files 100000] [--ignored 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from forklift.dockerfile.context import walk_context  # noqa: E402
from forklift.dockerfile.ignore import IgnoreMatcher  # noqa: E402


def make_tree(
    base: Path, count: int, per_dir: int = 100, fanout: int = 10, ext: str = ".py"
) -> None:
    """``count`` empty files, ``per_dir`` per directory, directories ``fanout`` wide."""
    made = 0
    d = 0
    while made < count:
        directory = base / f"m{d // fanout:04d}" / f"p{d % fanout}"
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(min(per_dir, count - made)):
            fd = os.open(directory / f"f{i:03d}{ext}", os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
        made += min(per_dir, count - made)
        d += 1


def time_it(fn, rounds: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    fn()  # warm the dentry cache and the code
    results = []
    out = 0
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        results.append(time.perf_counter() - start)
    return statistics.median(results), out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--ignored", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="forklift-bench-ctx-"))
    try:
        ctx = tmp / "ctx"
        parked = tmp / "parked-node_modules"
        t0 = time.perf_counter()
        make_tree(ctx / "src", args.files)
        make_tree(ctx / "node_modules", args.ignored, ext=".js")
        (ctx / ".dockerignore").write_text("node_modules\n*.log\n.git\n")
        print(
            f"generated {args.files} + {args.ignored} ignored files in {time.perf_counter() - t0:.1f}s under {tmp}"
        )
        matcher = IgnoreMatcher.from_file(ctx / ".dockerignore")

        def find_included() -> int:
            cmd = f"find '{ctx}' -path '{ctx}/node_modules' -prune -o -type f -print | wc -l"
            out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout
            return int(out)

        def walk() -> int:
            return sum(1 for _p, kind, _e in walk_context(ctx, matcher) if kind == "f")

        t_find, n_find = time_it(find_included, args.rounds)
        t_walk, n_walk = time_it(walk, args.rounds)
        os.rename(ctx / "node_modules", parked)
        try:
            t_walk_without, n_without = time_it(walk, args.rounds)
        finally:
            os.rename(parked, ctx / "node_modules")
        assert n_walk == n_find == n_without, (n_walk, n_find, n_without)

        print(f"{'what':52s} {'files':>8s} {'seconds':>8s}")
        print(f"{'find (included part only) | wc -l':52s} {n_find:8d} {t_find:8.3f}")
        print(f"{'forklift walk_context (node_modules ignored)':52s} {n_walk:8d} {t_walk:8.3f}")
        print(
            f"{'forklift walk_context (node_modules moved away)':52s} {n_without:8d} {t_walk_without:8.3f}"
        )
        print(f"walk / find:                      {t_walk / t_find:.2f}x   (target < 2x)")
        print(
            f"ignored 200k-file dir adds:       {100 * (t_walk / t_walk_without - 1):+.1f}%  (target < 5%)"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
