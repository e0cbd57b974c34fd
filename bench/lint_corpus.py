"""Benchmark ``forklift lint`` over every Dockerfile of the shared corpus: files per second.

hadolint is not installed on this machine (it is a Haskell binary with no
Debian/PyPI/npm package here), so there is no peer to run side by side: this
prints forklift alone, in-process (the library) and through the CLI.

    .venv/bin/python bench/lint_corpus.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "dockerfiles"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from forklift.lint import lint_file

    files = sorted(p for p in CORPUS.resolve().rglob("*") if p.is_file() and p.suffix != ".tsv")
    best = float("inf")
    counts: Counter[str] = Counter()
    for _ in range(args.rounds):
        counts.clear()
        t = time.perf_counter()
        for p in files:
            for f in lint_file(p).findings:
                counts[f.severity.label] += 1
        best = min(best, time.perf_counter() - t)
    print(
        f"library: {len(files)} files in {best:.2f}s = {len(files) / best:.0f} files/s "
        f"(best of {args.rounds}); findings: {dict(counts)}"
    )
    t = time.perf_counter()
    batch = [str(p) for p in files]
    subprocess.run(
        [sys.executable, "-m", "forklift", "lint", "-t", "none", "--format", "json", *batch],
        check=True,
        capture_output=True,
    )
    cli = time.perf_counter() - t
    print(f"CLI (one process, all files, JSON): {cli:.2f}s = {len(files) / cli:.0f} files/s")
    if shutil.which("hadolint"):
        t = time.perf_counter()
        subprocess.run(["hadolint", "--no-fail", *batch], capture_output=True)
        h = time.perf_counter() - t
        print(
            f"hadolint: {h:.2f}s = {len(files) / h:.0f} files/s; ratio forklift/hadolint {cli / h:.2f}x"
        )
    else:
        print("hadolint: not installed here, no side-by-side number")


if __name__ == "__main__":
    main()
