"""Parse every Dockerfile of the corpus: forklift vs BuildKit's own Go parser.

The peer is the PyPI package ``dockerfile`` (BuildKit's ``parser.Parse``
compiled into a Python extension); install it with ``pip install dockerfile``.
Files are read into memory first, so only parsing is timed. Prints files/s
for forklift's parser, forklift's parser + typed instructions, and the peer,
with ratios.

    python bench/dockerfile_parse.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from forklift.dockerfile.instructions import parse_stages  # noqa: E402
from forklift.dockerfile.parser import parse  # noqa: E402
from forklift.errors import ForkliftError  # noqa: E402

CORPUS = ROOT / ".." / "shared" / "corpus"


def corpus_files() -> list[tuple[str, bytes]]:
    files = sorted((CORPUS / "dockerfiles").rglob("*.Dockerfile"))
    files += sorted(p for p in (CORPUS / "parser-testfiles").rglob("Dockerfile"))
    return [(str(p.relative_to(CORPUS)), p.read_bytes()) for p in files]


def time_rounds(fn: Callable[[], int], rounds: int) -> tuple[float, int]:
    fn()  # warm up
    times = []
    ok = 0
    for _ in range(rounds):
        start = time.perf_counter()
        ok = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), ok


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    files = corpus_files()
    texts = [(name, data.decode("utf-8", "replace")) for name, data in files]
    total_bytes = sum(len(d) for _, d in files)
    print(f"corpus: {len(files)} files, {total_bytes / 1e6:.2f} MB")

    def forklift_parse() -> int:
        ok = 0
        for name, data in files:
            try:
                parse(data, name)
                ok += 1
            except ForkliftError:
                pass
        return ok

    def forklift_typed() -> int:
        ok = 0
        for name, data in files:
            try:
                parse_stages(parse(data, name))
                ok += 1
            except ForkliftError:
                pass
        return ok

    rows: list[tuple[str, float, int]] = []
    t, ok = time_rounds(forklift_parse, args.rounds)
    rows.append(("forklift parse", t, ok))
    t, ok = time_rounds(forklift_typed, args.rounds)
    rows.append(("forklift parse + typed instructions", t, ok))
    try:
        import dockerfile  # BuildKit's Go parser (peer)
    except ImportError:
        print("peer not installed: pip install dockerfile  (BuildKit's Go parser)")
        dockerfile = None
    if dockerfile is not None:

        def peer() -> int:
            ok = 0
            for _name, text in texts:
                try:
                    dockerfile.parse_string(text)
                    ok += 1
                except dockerfile.GoParseError:
                    pass
            return ok

        t, ok = time_rounds(peer, args.rounds)
        rows.append(("BuildKit Go parser (dockerfile pkg)", t, ok))

    base = rows[-1][1] if dockerfile is not None else rows[0][1]
    print(f"{'parser':38s} {'files/s':>10s} {'MB/s':>7s} {'parsed':>7s} {'time vs peer':>13s}")
    for label, t, ok in rows:
        print(
            f"{label:38s} {len(files) / t:10.0f} {total_bytes / t / 1e6:7.2f} {ok:7d} {t / base:12.2f}x"
        )


if __name__ == "__main__":
    main()
