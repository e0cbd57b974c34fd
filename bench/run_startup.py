#!/usr/bin/env python3
"""Container start-up: ``forklift run --rm busybox true`` vs ``podman run --rm busybox true``.

Both run the same busybox root filesystem (made from busybox-static, imported
into each tool's private storage), with the same OCI runtime (runc) and the
host network, interleaved in one run so machine noise hits both alike. Prints
medians, the ratio, and forklift's first (unpacking) run.

    sudo .venv/bin/python bench/run_startup.py [-n 15] [--runtime runc|crun]
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

from tests.helpers import make_busybox_rootfs, write_rootfs_tar  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode(errors='replace')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs of each tool")
    parser.add_argument("--runtime", default="runc", choices=["runc", "crun"])
    parser.add_argument("--network", default="host", choices=["host", "none"])
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (overlayfs mounts, runc)")
    if args.runtime == "crun" and shutil.which("podman"):
        print("note: podman only works with runc on this machine; podman uses runc below")

    work = Path(tempfile.mkdtemp(prefix="fkbench-", dir="/tmp"))
    try:
        tar = write_rootfs_tar(make_busybox_rootfs(work / "rootfs"), work / "rootfs.tar")
        env = {**os.environ, "FORKLIFT_HOME": str(work / "home")}
        # Measure forklift as installed, with byte-code caches (kept out of the checkout).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        forklift = [sys.executable, "-m", "forklift"]
        subprocess.run([*forklift, "import", str(tar), "busybox:latest"], env=env, check=True,
                       capture_output=True)  # fmt: skip
        podman = ["podman", "--root", str(work / "pr"), "--runroot", str(work / "prr"),
                  "--runtime", "runc", "--cgroup-manager", "cgroupfs"]  # fmt: skip
        subprocess.run([*podman, "import", str(tar), "busybox:latest"], check=True,
                       capture_output=True)  # fmt: skip

        fk_cmd = [*forklift, "run", "--rm", "--runtime", args.runtime, "--network", args.network,
                  "busybox", "true"]  # fmt: skip
        pod_cmd = [*podman, "run", "--rm", "--network", args.network, "busybox", "true"]
        first = timed(fk_cmd, env)  # unpacks the layer into a snapshot
        timed(pod_cmd, env)  # podman's first run sets up its own storage
        fk_times, pod_times = [], []
        for _ in range(args.n):
            fk_times.append(timed(fk_cmd, env))
            pod_times.append(timed(pod_cmd, env))
        python_only = timed([sys.executable, "-c", "pass"], env)

        fk, pod = statistics.median(fk_times), statistics.median(pod_times)
        print(f"runs: {args.n} each, interleaved; runtime {args.runtime}, network {args.network}")
        print(f"forklift run --rm busybox true   median {fk * 1000:7.1f} ms   "
              f"(min {min(fk_times) * 1000:.1f}, "
              f"first run incl. unpack {first * 1000:.1f})")  # fmt: skip
        print(f"podman run --rm busybox true     median {pod * 1000:7.1f} ms   "
              f"(min {min(pod_times) * 1000:.1f})")  # fmt: skip
        print(f"ratio podman/forklift: {pod / fk:.2f}x  (python interpreter start alone: "
              f"{python_only * 1000:.1f} ms)")  # fmt: skip
    finally:
        subprocess.run(["podman", "--root", str(work / "pr"), "--runroot", str(work / "prr"),
                        "system", "reset", "-f"], capture_output=True)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
