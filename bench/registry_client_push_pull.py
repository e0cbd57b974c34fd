#!/usr/bin/env python3
"""Registry push / pull / re-push / mount-copy: forklift's client next to skopeo, one run.

Builds an OCI layout with six pre-compressed, incompressible layers (~340 MB by
default), then, interleaved for several rounds, against a local CNCF
distribution (``/usr/bin/docker-registry``, plain HTTP on 127.0.0.1):

  push     layout -> registry            (a fresh registry each time: nothing to skip, nothing to mount)
  pull     registry -> directory          (every blob verified by both tools)
  repush   the same push again            (every blob already there: HEADs only)
  mount    repo a -> repo b, one registry (cross-repository mounts, no blob bytes)

Each measurement is one process (start-up included): ``skopeo copy`` vs
``bench/registry_client_worker.py`` (the client library, 4 blobs at a time).
Prints median wall time, MB/s, CPU seconds of the process, and the ratios.
Usage: bench/registry_client_push_pull.py [--mb 340] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = [sys.executable, str(HERE / "registry_client_worker.py")]
SKOPEO = ["skopeo", "--insecure-policy"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.port = free_port()
        cfg = root / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: {secrets.token_hex(8)}\n"
        )
        self.proc = subprocess.Popen(
            ["/usr/bin/docker-registry", "serve", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("docker-registry did not start")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def make_layout(path: Path, total_mb: int, layers: int = 6) -> int:
    """An OCI layout whose layers are random bytes (as incompressible as gzip output)."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    per = total_mb * 1_000_000 // layers
    descs = []
    for _ in range(layers):
        data = os.urandom(per)
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + digest,
                "size": per,
            }
        )
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]},
        }
    ).encode()
    cdigest = hashlib.sha256(config).hexdigest()
    (blobs / cdigest).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + cdigest,
                "size": len(config),
            },
            "layers": descs,
        }
    ).encode()
    mdigest = hashlib.sha256(manifest).hexdigest()
    (blobs / mdigest).write_bytes(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (path / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": "sha256:" + mdigest,
                        "size": len(manifest),
                        "annotations": {"org.opencontainers.image.ref.name": "v1"},
                    }
                ],
            }
        )
    )
    return per * layers


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=340)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("skopeo") is None:
        raise SystemExit("skopeo is needed for the comparison")
    work = Path(tempfile.mkdtemp(prefix="fk-bench-registry-"))
    env = dict(os.environ)
    # forklift's blob-location memory lives here; fresh, so only explicit mounts happen
    env["FORKLIFT_HOME"] = str(work / "forklift-home")
    layout = work / "layout"
    total = make_layout(layout, args.mb)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    _ = resource  # CPU comes from os.wait4's rusage of each process
    try:
        for rnd in range(args.rounds):
            order = ["skopeo", "forklift"] if rnd % 2 == 0 else ["forklift", "skopeo"]
            for tool in order:
                reg = Registry(work / f"reg-{rnd}-{tool}")
                try:
                    h = reg.host
                    if tool == "skopeo":
                        push = [
                            *SKOPEO,
                            "copy",
                            "--dest-tls-verify=false",
                            f"oci:{layout}:v1",
                            f"docker://{h}/bench/a:v1",
                        ]
                        pull = [
                            *SKOPEO,
                            "copy",
                            "--src-tls-verify=false",
                            f"docker://{h}/bench/a:v1",
                            f"oci:{work / 'out-skopeo'}:v1",
                        ]
                        mount = [
                            *SKOPEO,
                            "copy",
                            "--src-tls-verify=false",
                            "--dest-tls-verify=false",
                            f"docker://{h}/bench/a:v1",
                            f"docker://{h}/bench/b:v1",
                        ]
                    else:
                        push = [*WORKER, "push", h, "bench/a:v1", str(layout)]
                        pull = [*WORKER, "pull", h, "bench/a:v1", str(work / "out-forklift")]
                        mount = [*WORKER, "mount", h, "bench/a:v1", "bench/b:v1"]
                    results.setdefault(("push", tool), []).append(run(push, env))
                    results.setdefault(("pull", tool), []).append(run(pull, env))
                    results.setdefault(("repush", tool), []).append(run(push, env))
                    results.setdefault(("mount", tool), []).append(run(mount, env))
                finally:
                    reg.stop()
                    for out in ("out-skopeo", "out-forklift"):
                        shutil.rmtree(work / out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mb = total / 1e6
    print(f"image: 6 layers, {mb:.0f} MB (random bytes); {args.rounds} interleaved rounds; medians")
    print(f"{'op':8} {'tool':9} {'wall s':>8} {'MB/s':>8} {'CPU s':>7}")
    for op in ("push", "pull", "repush", "mount"):
        med = {}
        for tool in ("skopeo", "forklift"):
            walls = [w for w, _ in results[(op, tool)]]
            cpus = [c for _, c in results[(op, tool)]]
            med[tool] = (statistics.median(walls), statistics.median(cpus))
            rate = f"{mb / med[tool][0]:8.0f}" if op in ("push", "pull") else f"{'':>8}"
            print(f"{op:8} {tool:9} {med[tool][0]:8.3f} {rate} {med[tool][1]:7.2f}")
        speed = med["skopeo"][0] / med["forklift"][0]
        cpu = med["forklift"][1] / med["skopeo"][1] if med["skopeo"][1] else float("nan")
        print(
            f"{op:8} {'ratio':9} forklift is {speed:.2f}x skopeo's speed, uses {cpu:.2f}x its CPU"
        )


if __name__ == "__main__":
    main()
