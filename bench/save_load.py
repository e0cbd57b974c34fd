#!/usr/bin/env python3
"""Save/load throughput next to `cp` of the same bytes, measured in one run.

Builds an image of several layers (half incompressible, half text-like) in a
scratch store, then times, interleaved and repeated:
  cp      cp --reflink=never of the archive (may use in-kernel copy_file_range)
  cat     cat archive > copy (every byte through user space, as forklift moves them)
  load    forklift load -i archive.tar   (docker-archive: uncompressed layers, hashed while stored)
  save    forklift save -o out.tar IMAGE (uncompressed layers: a verified copy)
  save-gz forklift save of the same image with gzip layers (decompressing on the way)
and prints MB/s and the ratio to cp. Usage: bench/save_load.py [--mb 300] [--rounds 3]
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


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fk-bench-save-"))
    try:
        env = {**os.environ, "FORKLIFT_HOME": str(work / "home")}
        # An image: import a rootfs of the first layer, then a docker-archive with more layers is
        # what `docker save` would give; build one by saving and re-loading.
        layers = []
        per = args.mb * (1 << 20) // 6
        for i in range(6):
            p = work / f"l{i}.tar"
            layer_tar(p, per, text=i % 2 == 1, seed=i)
            layers.append(p)
        subprocess.run(
            [*FORKLIFT, "import", str(layers[0]), "bench:gz"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
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
        results: dict[str, list[float]] = {"cp": [], "cat": [], "load": [], "save": []}
        for _ in range(args.rounds):
            subprocess.run(["sync"], check=True)
            # Baselines end with sync: forklift fsyncs what it writes, so they must too.
            results["cp"].append(
                timed(
                    ["sh", "-c", f"cp --reflink=never '{archive}' '{work / 'copy.tar'}' && sync"],
                    env,
                )
            )
            os.unlink(work / "copy.tar")
            results["cat"].append(
                timed(["sh", "-c", f"cat '{archive}' > '{work / 'copy.tar'}' && sync"], env)
            )
            os.unlink(work / "copy.tar")
            subprocess.run([*FORKLIFT, "rmi", "bench:plain"], env=env, capture_output=True)
            subprocess.run([*FORKLIFT, "prune"], env=env, capture_output=True)
            results["load"].append(timed([*FORKLIFT, "load", "-q", "-i", str(archive)], env))
            results["save"].append(
                timed([*FORKLIFT, "save", "-o", str(work / "out.tar"), "bench:plain"], env)
            )
            os.unlink(work / "out.tar")
        gz_mb = (work / "l0.tar").stat().st_size / 1e6
        gz = [
            timed([*FORKLIFT, "save", "-o", str(work / "gz.tar"), "bench:gz"], env)
            for _ in range(args.rounds)
        ]
        cp = statistics.median(results["cp"])
        print(
            f"archive: {size_mb:.0f} MB in 6 layers (3 incompressible, 3 text-like); medians of {args.rounds}"
        )
        for key in ("cp", "cat", "load", "save"):
            t = statistics.median(results[key])
            print(f"  {key:8s} {t:7.3f} s  {size_mb / t:8.1f} MB/s  ratio to cp {t / cp:5.2f}x")
        t = statistics.median(gz)
        print(
            f"  save-gz  {t:7.3f} s  {gz_mb / t:8.1f} MB/s (uncompressed MB written; gzip layer decompressed)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


if __name__ == "__main__":
    main()
