#!/usr/bin/env python3
"""Save/load next to `cp` + `sync` of the same bytes, measured in one interleaved run.

Builds an image of six layers (half incompressible, half text-like) as a
docker-archive, then, in every round and in a rotating order:
  cp      cp --reflink=never of the archive, then sync FILE (may use copy_file_range)
  cat     cat archive > copy, then sync FILE (every byte through user space)
  load    forklift load -i archive.tar   (docker-archive -> store; layers hashed, fsynced)
  save    forklift save -o out.tar IMAGE (store -> docker-archive; verified, fsynced)
and prints per tool the median wall time, MB/s and CPU seconds, and for load
and save the median of the per-round ratios to the faster of cp and cat in that
round (target: <= 1.3x).
Usage: bench/save_load.py [--mb 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

FORKLIFT = [sys.executable, "-m", "forklift"]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchrows import emit_row  # noqa: E402


def layer_tar(path: Path, size: int, text: bool, seed: int) -> None:
    rnd = os.urandom if not text else None
    with tarfile.open(path, "w") as tf:
        left, n = size, 0
        while left > 0:
            chunk = min(left, 8 << 20)
            data = (
                rnd(chunk)
                if rnd
                else (
                    f"line {seed} {n} lorem ipsum dolor sit amet consectetur\n" * (chunk // 50 + 1)
                ).encode()[:chunk]
            )
            info = tarfile.TarInfo(f"data/{seed}/{n}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            left -= chunk
            n += 1


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fk-bench-save-"))
    try:
        env = {**os.environ, "FORKLIFT_HOME": str(work / "home")}
        layers = []
        per = args.mb * (1 << 20) // 6
        for i in range(6):
            p = work / f"l{i}.tar"
            layer_tar(p, per, text=i % 2 == 1, seed=i)
            layers.append(p)
        # A multi-layer docker-archive written by hand (uncompressed layers, as docker save writes).
        import hashlib
        import json

        diff_ids = ["sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for p in layers]
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            }
        ).encode()
        cfg_name = hashlib.sha256(config).hexdigest() + ".json"
        archive = work / "image.tar"
        with tarfile.open(archive, "w") as tf:
            tf.addfile(_info(cfg_name, len(config)), io.BytesIO(config))
            names = []
            for p, d in zip(layers, diff_ids, strict=True):
                name = d.removeprefix("sha256:") + ".tar"
                tf.add(p, arcname=name)
                names.append(name)
            manifest = json.dumps(
                [{"Config": cfg_name, "RepoTags": ["bench:plain"], "Layers": names}]
            ).encode()
            tf.addfile(_info("manifest.json", len(manifest)), io.BytesIO(manifest))
        # gzip-layer image for save-gz: copy through an OCI layout written by forklift with gzip? Use import of each.
        size_mb = archive.stat().st_size / 1e6
        # as installed: bytecode cached (outside the source tree)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        subprocess.run([*FORKLIFT, "load", "-q", "-i", str(archive)], env=env, check=True)
        results: dict[str, list[tuple[float, float]]] = {
            k: [] for k in ("cp", "cat", "load", "save")
        }
        copy_to = work / "copy.tar"
        out = work / "out.tar"
        cmds = {
            # `sync FILE` flushes that file only (a bare sync would wait for every other
            # process's writes too); forklift fsyncs exactly the files it writes
            "cp": ["sh", "-c", f"cp --reflink=never '{archive}' '{copy_to}' && sync '{copy_to}'"],
            "cat": ["sh", "-c", f"cat '{archive}' > '{copy_to}' && sync '{copy_to}'"],
            "load": [*FORKLIFT, "load", "-q", "-i", str(archive)],
            "save": [*FORKLIFT, "save", "-o", str(out), "bench:plain"],
        }
        order = list(cmds)
        for rnd in range(args.rounds):
            for key in order[rnd % 4 :] + order[: rnd % 4]:
                if key == "load":
                    subprocess.run([*FORKLIFT, "rmi", "bench:plain"], env=env, capture_output=True)
                    subprocess.run([*FORKLIFT, "prune"], env=env, capture_output=True)
                subprocess.run(["sync"], check=True)  # start each from clean page cache state
                results[key].append(timed(cmds[key], env))
                for leftover in (copy_to, out):
                    leftover.unlink(missing_ok=True)
        load = os.getloadavg()[0]
        print(
            f"archive: {size_mb:.0f} MB in 6 layers (3 incompressible, 3 text-like); "
            f"{args.rounds} interleaved rounds; medians; one process each, start-up included "
            f"(bytecode present); load {load:.2f}"
        )
        print(f"  {'':8s} {'wall s':>8s} {'MB/s':>8s} {'CPU s':>7s}")
        for key in ("cp", "cat", "load", "save"):
            wall = statistics.median(w for w, _ in results[key])
            cpu = statistics.median(c for _, c in results[key])
            print(f"  {key:8s} {wall:8.3f} {size_mb / wall:8.1f} {cpu:7.2f}")
        # the peer in each round: the faster of the two ways to copy and flush the bytes
        peer = [min(a, b) for a, b in zip(results["cp"], results["cat"], strict=True)]
        peer_wall = statistics.median(w for w, _ in peer)
        peer_cpu = statistics.median(c for _, c in peer)
        for key in ("load", "save"):
            ratios = [f[0] / c[0] for f, c in zip(results[key], peer, strict=True)]
            slower = statistics.median(ratios)
            print(f"  {key} / (the faster of cp, cat + sync): {slower:.2f}x (target <= 1.3x)")
            emit_row(
                f"{key} of a {size_mb:.0f} MB docker-archive (6 layers)",
                unit="s",
                forklift=round(statistics.median(w for w, _ in results[key]), 3),
                peer="cp or cat + sync of the same bytes (the faster)",
                peer_value=round(peer_wall, 3),
                ratio=round(1 / slower, 3),
                cpu=round(statistics.median(c for _, c in results[key]), 3),
                peer_cpu=round(peer_cpu, 3),
                rounds=args.rounds,
                target="<= 1.3x the copy's time (ratio >= 0.77)",
                met=slower <= 1.3,
                load=load,
                note=f"{slower:.2f}x the copy's time",
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


if __name__ == "__main__":
    main()
