#!/usr/bin/env python3
"""Start-up of quick commands, next to their peers and the interpreter, in one interleaved run.

  images   forklift images (a store holding one image)   vs  podman images (private storage)
  version  forklift version                              vs  python -c pass (the floor)

Each measurement is one process (as a user runs it, bytecode cached). Prints the
median and the minimum wall time and the median CPU (user+sys) per command, and
the ratio of medians to the peer (>1: forklift faster). The re-push row (target
<= 0.15 s) is in bench/registry_transport.py, next to skopeo's.
Usage: bench/startup.py [-n 15]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchrows import emit_row  # noqa: E402
from tests.helpers import make_busybox_rootfs, write_rootfs_tar  # noqa: E402

FORKLIFT = [sys.executable, "-m", "forklift"]


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}"
        )
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fk-bench-startup-"))
    try:
        env = dict(os.environ, FORKLIFT_HOME=str(work / "home"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        tar = write_rootfs_tar(make_busybox_rootfs(work / "rootfs"), work / "rootfs.tar")
        subprocess.run([*FORKLIFT, "import", str(tar), "busybox:latest"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        cmds: dict[str, list[str]] = {
            "forklift images": [*FORKLIFT, "images"],
            "forklift version": [*FORKLIFT, "version"],
            "python -c pass": [sys.executable, "-c", "pass"],
        }
        if shutil.which("podman"):
            root = work / "podman"
            podman = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run")]
            subprocess.run([*podman, "import", str(tar), "busybox:latest"], check=True,
                           capture_output=True)  # fmt: skip
            cmds["podman images"] = [*podman, "images"]
        for cmd in cmds.values():
            run(cmd, env)  # warm: bytecode written, files cached
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
        names = list(cmds)
        for i in range(args.n):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                results[name].append(run(cmds[name], env))
        load = os.getloadavg()[0]
        print(
            f"{args.n} interleaved runs each (bytecode present, as installed); "
            f"wall median / min, CPU median (user+sys); load {load:.2f}"
        )
        med, cpu = {}, {}
        for name, got in results.items():
            walls = [w for w, _ in got]
            med[name] = statistics.median(walls)
            cpu[name] = statistics.median(c for _, c in got)
            print(f"  {name:18s} {med[name]:6.3f} s / {min(walls):6.3f} s   CPU {cpu[name]:6.3f} s")
        has_podman = "podman images" in med
        if has_podman:
            print(
                f"  images: forklift is {med['podman images'] / med['forklift images']:.2f}x "
                "podman's speed (target: forklift images <= 0.1 s)"
            )
        emit_row(
            "`images` (one stored image), start-up included",
            unit="s",
            forklift=round(med["forklift images"], 3),
            peer="podman images" if has_podman else None,
            peer_value=round(med["podman images"], 3) if has_podman else None,
            cpu=round(cpu["forklift images"], 3),
            peer_cpu=round(cpu["podman images"], 3) if has_podman else None,
            rounds=args.n,
            target="<= 0.1 s",
            met=med["forklift images"] <= 0.1,
            load=load,
        )
        emit_row(
            "`version`, start-up included",
            unit="s",
            forklift=round(med["forklift version"], 3),
            cpu=round(cpu["forklift version"], 3),
            rounds=args.n,
            load=load,
            note=f"the interpreter alone (python -c pass): {med['python -c pass']:.3f} s",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
