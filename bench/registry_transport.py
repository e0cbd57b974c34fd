#!/usr/bin/env python3
"""The registry verbs side by side with skopeo: push, pull, re-push, mount-copy, one run.

The same image (six pre-compressed, incompressible layers, ~340 MB by default)
is moved by the real CLIs, interleaved over several rounds, against a local
CNCF distribution (``/usr/bin/docker-registry``, plain HTTP on 127.0.0.1):

  push     forklift push (from its store)   vs  skopeo copy oci:LAYOUT docker://...
  pull     forklift pull (into a new store) vs  skopeo copy docker://... oci:DIR
  pull-oci forklift copy docker://... oci:DIR vs the same skopeo copy
  repush   the same push again (every blob already there: HEADs only)
  mount    forklift copy docker://R/a docker://R/b  vs  skopeo copy (same): mounts, no bytes

Each measurement is one process, start-up included (with Python's bytecode
cache, as an installed forklift has it). Prints medians of wall time, MB/s and
CPU seconds (user+sys of the process), and the ratios.
Usage: bench/registry_transport.py [--mb 340] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchrows import emit_row  # noqa: E402
from registry_client_push_pull import Registry, make_layout, run  # noqa: E402

FORKLIFT = [sys.executable, "-m", "forklift"]
SKOPEO = ["skopeo", "--insecure-policy"]
OPS = ("push", "pull", "pull-oci", "repush", "mount")
# (figure, target as text, whether the ratio or forklift's seconds is checked, the bound)
FIGURES = {
    "push": ("client push to distribution", ">= 1.2x", "ratio", 1.2),
    "pull": ("client pull into the store", ">= 1.2x", "ratio", 1.2),
    "pull-oci": ("client pull into an OCI layout", ">= 1.2x", "ratio", 1.2),
    "repush": ("re-push, every blob present", "<= 0.15 s", "seconds", 0.15),
    "mount": ("cross-repository copy (blob mounts)", None, None, None),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=340)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is needed for the comparison")
    work = Path(tempfile.mkdtemp(prefix="fk-bench-transport-"))
    env = dict(os.environ)
    env.pop("FORKLIFT_INSECURE_REGISTRIES", None)
    # As installed, Python keeps compiled bytecode; a sandbox may forbid writing it
    # (PYTHONDONTWRITEBYTECODE), which would add ~40 ms of compiling to every start.
    # Keep the caches in the bench's own directory, not in the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    src_home = work / "src-home"
    env["FORKLIFT_HOME"] = str(src_home)
    layout = work / "layout"
    total = make_layout(layout, args.mb)
    subprocess.run([*FORKLIFT, "copy", "-q", f"oci:{layout}:v1", "bench:v1"], env=env, check=True)
    # create the mount home's blob-location database once (see "mount" below)
    sys.path.insert(0, str(HERE.parent / "src"))
    from forklift.transports.registry.blob_locations import BlobLocations

    (work / "mount-home" / "registry-client").mkdir(parents=True)
    locations = BlobLocations(work / "mount-home" / "registry-client" / "blob-locations.sqlite3")
    locations.remember("warm-up", "warm-up", ["sha256:" + "0" * 64])
    locations.close()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for rnd in range(args.rounds):
            order = ["skopeo", "forklift"] if rnd % 2 == 0 else ["forklift", "skopeo"]
            for tool in order:
                reg = Registry(work / f"reg-{rnd}-{tool}")
                out = work / f"out-{tool}"
                try:
                    h = reg.host
                    if tool == "skopeo":
                        cmds = {
                            "push": [
                                *SKOPEO, "copy", "--dest-tls-verify=false",
                                f"oci:{layout}:v1", f"docker://{h}/bench/a:v1",
                            ],
                            "pull": [
                                *SKOPEO, "copy", "--src-tls-verify=false",
                                f"docker://{h}/bench/a:v1", f"oci:{out}:v1",
                            ],
                            "mount": [
                                *SKOPEO, "copy", "--src-tls-verify=false",
                                "--dest-tls-verify=false",
                                f"docker://{h}/bench/a:v1", f"docker://{h}/bench/b:v1",
                            ],
                        }  # fmt: skip
                        cmds["repush"] = cmds["push"]
                        cmds["pull-oci"] = cmds["pull"]
                        op_env = env
                    else:
                        cmds = {
                            "push": [*FORKLIFT, "push", "-q", "bench:v1", f"{h}/bench/a:v1"],
                            "pull": [*FORKLIFT, "pull", "-q", f"{h}/bench/a:v1"],
                            "pull-oci": [
                                *FORKLIFT, "copy", "-q", f"docker://{h}/bench/a:v1", f"oci:{out}:v1",
                            ],
                            "mount": [
                                *FORKLIFT, "copy", "-q",
                                f"docker://{h}/bench/a:v1", f"docker://{h}/bench/b:v1",
                            ],
                        }  # fmt: skip
                        cmds["repush"] = cmds["push"]
                        op_env = env
                    for op in OPS:
                        this_env = op_env
                        if tool == "forklift" and op == "pull":
                            # a new, empty store (and no remembered blob locations)
                            this_env = {**env, "FORKLIFT_HOME": str(out)}
                        if tool == "forklift" and op == "mount":
                            # a home that knows nothing of this round's registry (a new port
                            # each round): the mount source must come from the copy itself.
                            # Its blob-location database exists already, as it would for
                            # anyone who used forklift before (creating it costs ~30 ms).
                            this_env = {**env, "FORKLIFT_HOME": str(work / "mount-home")}
                        results.setdefault((op, tool), []).append(run(cmds[op], this_env))
                        if op in ("pull", "pull-oci"):
                            shutil.rmtree(out, ignore_errors=True)
                finally:
                    reg.stop()
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = total / 1e6
    load = os.getloadavg()[0]
    print(
        f"image: 6 layers, {mb:.0f} MB (random bytes); {args.rounds} interleaved rounds; "
        "medians; one process per operation, start-up included (bytecode present); "
        f"load {load:.2f}"
    )
    print(f"{'op':8} {'tool':9} {'wall s':>8} {'MB/s':>8} {'CPU s':>7}")
    for op in OPS:
        med = {}
        for tool in ("skopeo", "forklift"):
            walls = [w for w, _ in results[(op, tool)]]
            cpus = [c for _, c in results[(op, tool)]]
            med[tool] = (statistics.median(walls), statistics.median(cpus))
            rate = f"{mb / med[tool][0]:8.0f}" if op.startswith(("push", "pull")) else f"{'':>8}"
            print(f"{op:8} {tool:9} {med[tool][0]:8.3f} {rate} {med[tool][1]:7.2f}")
        # the median of the per-round ratios (rounds alternate which tool goes first)
        speed = statistics.median(
            sk[0] / fk[0]
            for sk, fk in zip(results[(op, "skopeo")], results[(op, "forklift")], strict=True)
        )
        cpu = statistics.median(
            fk[1] / sk[1]
            for sk, fk in zip(results[(op, "skopeo")], results[(op, "forklift")], strict=True)
            if sk[1]
        )
        print(
            f"{op:8} {'ratio':9} forklift is {speed:.2f}x skopeo's speed, uses {cpu:.2f}x its CPU"
        )
        figure, target, checked, bound = FIGURES[op]
        met = None
        if checked == "ratio":
            met = speed >= bound
        elif checked == "seconds":
            met = med["forklift"][0] <= bound
        emit_row(
            f"{figure}, {mb:.0f} MB" if op != "repush" else figure,
            unit="s",
            forklift=round(med["forklift"][0], 3),
            peer="skopeo copy",
            peer_value=round(med["skopeo"][0], 3),
            ratio=round(speed, 3),
            cpu=round(med["forklift"][1], 3),
            peer_cpu=round(med["skopeo"][1], 3),
            rounds=args.rounds,
            target=target,
            met=met,
            load=load,
        )


if __name__ == "__main__":
    main()
