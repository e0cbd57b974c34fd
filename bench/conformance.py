#!/usr/bin/env python3
"""The official OCI conformance suites against forklift serve and CNCF distribution 2.8.2.

Runs the released v1.1.1 suite and the main-branch suite (with the unreleased
spec's checks: OCI_VERSION=dev, upload cancel, tag parameters) in each
configuration, ``--runs`` times, a fresh registry per run, and prints the
pass/fail/skip counts side by side. Distribution gets the configurations it
supports (no built-in token server, no sparse mode: "-").

Usage: .venv/bin/python bench/conformance.py [--runs 20] [--only v1|main] [--keep DIR]
Needs ../shared/tools/conformance (see its README).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import TOOLS  # noqa: E402
from tests.registry_server.conformance import SuiteResult, run_main, run_v1  # noqa: E402
from tests.registry_server.servers import Server, start_distribution, start_forklift  # noqa: E402

USER, PASSWORD = "conformance", "c0nformance-pass"

# name -> (suite, auth, forklift flags, sparse, crossmount, runs against distribution)
CONFIGS: list[tuple[str, str, str, tuple[str, ...], bool, bool, bool]] = [
    ("v1.1.1 no auth, OCI_AUTOMATIC_CROSSMOUNT=1", "v1", "none", (), False, True, True),
    ("v1.1.1 htpasswd, OCI_AUTOMATIC_CROSSMOUNT=0", "v1", "htpasswd", (), False, False, True),
    ("v1.1.1 token auth, OCI_AUTOMATIC_CROSSMOUNT=0", "v1", "token", (), False, False, False),
    ("main (dev) no auth", "main", "none", (), False, False, True),
    ("main (dev) htpasswd", "main", "htpasswd", (), False, False, True),
    (
        "main (dev) htpasswd, --automatic-mount",
        "main",
        "htpasswd",
        ("--automatic-mount",),
        False,
        False,
        False,
    ),
    (
        "main (dev) token, --automatic-mount",
        "main",
        "token",
        ("--automatic-mount",),
        False,
        False,
        False,
    ),
    ("main (dev) OCI_DATA_SPARSE=true, sparse mode", "main", "none", (), True, False, False),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _users(work: Path) -> Path:
    out = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    )
    path = work / "users"
    path.write_text(out.stdout)
    return path


def _forklift(work: Path, auth: str, flags: tuple[str, ...], sparse: bool) -> Server:
    args = ["--gc-interval", "0", "--access-log", "", *flags]
    if auth != "none":
        args += ["--htpasswd", str(_users(work))]
        if auth == "token":
            args.append("--token-auth")
    if sparse:
        (work / "sparse.yaml").write_text("storage: {sparse_index: true}\n")
        args += ["--config", str(work / "sparse.yaml")]
    return start_forklift(work / "root", *args)


def _distribution(work: Path, auth: str) -> Server:
    return start_distribution(work / "dist", _users(work) if auth == "htpasswd" else None)


def _run(
    start: Callable[[Path], Server],
    suite: str,
    auth: str,
    sparse: bool,
    crossmount: bool,
    work: Path,
) -> SuiteResult:
    work.mkdir(parents=True)
    server = start(work)
    creds = {} if auth == "none" else {"user": USER, "password": PASSWORD}
    try:
        if suite == "v1":
            return run_v1(
                TOOLS, server.url, work / "report", automatic_crossmount=crossmount, **creds
            )
        return run_main(TOOLS, server.host, work / "report", sparse=sparse, **creds)
    finally:
        server.stop()


def _summary(results: list[SuiteResult]) -> str:
    if not results:
        return "-"
    counts = collections.Counter(r.counts() for r in results)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{n}x {c}" for c, n in counts.most_common())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per configuration (default 1)")
    parser.add_argument("--only", choices=["v1", "main"], help="one suite only")
    parser.add_argument("--no-distribution", action="store_true", help="forklift only")
    parser.add_argument("--keep", type=Path, help="keep reports under this directory")
    args = parser.parse_args()
    if not (TOOLS / "conformance").is_dir():
        print(f"error: {TOOLS / 'conformance'} not found (../shared/tools)", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="forklift-conformance-"))
    rows: list[tuple[str, list[SuiteResult], list[SuiteResult]]] = []
    clean = True
    for i, (title, suite, auth, flags, sparse, crossmount, on_dist) in enumerate(CONFIGS):
        if args.only and suite != args.only:
            continue
        ours: list[SuiteResult] = []
        theirs: list[SuiteResult] = []
        for run in range(args.runs):
            log(f"{title}: run {run + 1}/{args.runs}")
            ours.append(
                _run(
                    lambda w, a=auth, f=flags, s=sparse: _forklift(w, a, f, s),
                    suite,
                    auth,
                    sparse,
                    crossmount,
                    work / f"c{i}" / f"forklift-{run}",
                )
            )
            if on_dist and not args.no_distribution:
                theirs.append(
                    _run(
                        lambda w, a=auth: _distribution(w, a),
                        suite,
                        auth,
                        sparse,
                        crossmount,
                        work / f"c{i}" / f"distribution-{run}",
                    )
                )
        clean &= all(r.failed == 0 for r in ours)
        rows.append((title, ours, theirs))
    width = max(len(t) for t, _, _ in rows)
    print(f"\n{'configuration':<{width}}  {'forklift':<24}  distribution 2.8.2")
    print(f"{'':<{width}}  {'(pass/fail/skip per run)':<24}")
    for title, ours, theirs in rows:
        print(f"{title:<{width}}  {_summary(ours):<24}  {_summary(theirs)}")
    failing = {name for _, ours, _ in rows for r in ours for name in r.failures}
    if failing:
        print("\nforklift failures:", *sorted(failing), sep="\n  ")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\nreports: {work}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
