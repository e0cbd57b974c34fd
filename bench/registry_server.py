#!/usr/bin/env python3
"""forklift serve vs CNCF distribution, side by side in one interleaved run.

Both registries run on 127.0.0.1 with their storage on the same filesystem and
no access log. Measured (medians over --rounds, each round alternating which
registry goes first):

- skopeo push of a six-layer image of ~340 MB of pre-compressed (incompressible)
  layers, OCI layout -> registry;
- re-push of the same image (every blob exists: HEAD checks + manifest);
- skopeo pull, registry -> OCI layout;
- 8 concurrent skopeo pulls;
- wrk: manifest GET rate and p50/p99 latency at 32 connections;
- curl: one 100 MB blob GET;
- dd: the disk's own limit, writing the image's size with ``conv=fsync`` in the
  same directory each round, so push and pull can be read as a share of it.

``--asgi`` also runs the forklift app under uvicorn+httptools+uvloop (if
installed) for the manifest GET test, the measurement behind choosing granian.

Usage: .venv/bin/python bench/registry_server.py [--rounds 3] [--size-mb 340] [--asgi]
"""

from __future__ import annotations

import argparse
import gzip  # noqa: F401 - documents that layers are gzip streams
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchrows import emit_row  # noqa: E402
from tests.registry_server.servers import (  # noqa: E402
    Server,
    free_port,
    start_distribution,
    start_forklift,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_image(path: Path, total_mb: int, layers: int = 6) -> int:
    """An OCI layout with ``layers`` gzip layers of random data; returns total blob bytes."""
    (path / "blobs" / "sha256").mkdir(parents=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    per = total_mb * 1024 * 1024 // layers
    descs, diff_ids, total = [], [], 0
    for i in range(layers):
        raw = path / f"layer{i}.tar"
        with tarfile.open(raw, "w") as tf:
            data = path / f"data{i}"
            data.write_bytes(os.urandom(per))
            tf.add(data, arcname=f"data/{i}.bin")
            data.unlink()
        diff_ids.append("sha256:" + hashlib.sha256(raw.read_bytes()).hexdigest())
        subprocess.run(["pigz", "-1", "-n", "-f", str(raw)], check=True)
        gz = raw.with_suffix(".tar.gz")
        blob = gz.read_bytes()
        d = hashlib.sha256(blob).hexdigest()
        gz.rename(path / "blobs" / "sha256" / d)
        descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": f"sha256:{d}",
                "size": len(blob),
            }
        )
        total += len(blob)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    cd = hashlib.sha256(config).hexdigest()
    (path / "blobs" / "sha256" / cd).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{cd}",
                "size": len(config),
            },
            "layers": descs,
        }
    ).encode()
    md = hashlib.sha256(manifest).hexdigest()
    (path / "blobs" / "sha256" / md).write_bytes(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": f"sha256:{md}",
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "latest"},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    return total + len(config)


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True)


def dd_mbps(directory: Path, mb: int) -> float:
    """The disk's write rate with a final fsync, as ``dd`` measures it."""
    target = directory / "dd.out"
    out = subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mb}", "conv=fsync"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    target.unlink()
    m = re.search(r"copied, ([\d.]+) s", out)
    assert m, out
    return mb * 1024 * 1024 / 1e6 / float(m.group(1))


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def wrk(url: str, seconds: int, conns: int = 32) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{conns}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Accept: {OCI_MANIFEST}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%")}


def curl_mbps(url: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out) / 1e6


def _figure(key: str, mb: float) -> str:
    """A metric's row name: what was measured, and with which client."""
    what = key.rsplit(" ", 1)[0]
    if key.startswith(("push", "re-push", "pull", "8 pulls")):
        return f"registry server: {what} ({mb:.0f} MB image, skopeo client)"
    if key.startswith("manifest"):
        stat = what.removeprefix("manifest").replace("GET", "").strip() or "rate of"
        return f"registry server: {stat} manifest GETs (wrk, 32 connections)"
    return f"registry server: {what} (curl)"


def curl_put_mbps(base: str, name: str, path: Path, digest: str) -> float:
    """One monolithic blob upload (POST, then PUT of the file) by curl: the server's
    own ingest rate (hash, write, fsync), with no registry client's work in the way."""
    with httpx.Client(base_url=base, timeout=300) as c:
        loc = c.post(f"/v2/{name}/blobs/uploads/").headers["location"]
    url = str(httpx.URL(base).join(loc).copy_add_param("digest", digest))
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{speed_upload}", "-T", str(path),
         "-H", "Content-Type: application/octet-stream", url],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if out[0] != "201":
        raise RuntimeError(f"blob PUT answered {out[0]}")
    return float(out[1]) / 1e6


def push_blob(base: str, name: str, data: bytes) -> str:
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    with httpx.Client(base_url=base, timeout=300) as c:
        loc = c.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        url = httpx.URL(base).join(loc).copy_add_param("digest", d)
        r = c.put(url, content=data)
        r.raise_for_status()
    return d


def start_uvicorn(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        "import uvicorn; from pathlib import Path;"
        "from forklift.registry.server import RegistryApp, ServerConfig;"
        "from forklift.registry.server.config import GCConfig;"
        f"app = RegistryApp(ServerConfig(root=Path({str(root)!r}), access_log='', gc=GCConfig(interval=0)));"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, loop='uvloop', http='httptools', log_level='error', access_log=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, f"127.0.0.1:{port}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=340)
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--asgi", action="store_true", help="also compare uvicorn for manifest GETs")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    for tool in ("skopeo", "wrk", "curl", "pigz", "docker-registry"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (scripts/install-system-packages)")

    work = Path(tempfile.mkdtemp(prefix="regbench-", dir=args.workdir))
    try:
        log(f"building a {args.size_mb} MB six-layer image in {work}")
        image = work / "image"
        total = make_image(image, args.size_mb)

        def fresh() -> dict[str, Server]:
            # new roots and ports every round: skopeo's blob-info cache must not turn a
            # push into cross-repository mounts of blobs an earlier round left behind
            for p in (work / "forklift", work / "distribution"):
                shutil.rmtree(p, ignore_errors=True)
            return {
                "forklift": start_forklift(
                    work / "forklift", "--access-log", "", "--gc-interval", "0"
                ),
                "distribution": start_distribution(work / "distribution"),
            }

        res: dict[str, dict[str, list[float]]] = {"forklift": {}, "distribution": {}}

        def rec(kind: str, key: str, value: float) -> None:
            res[kind].setdefault(key, []).append(value)

        def copy(src: str, dst: str) -> float:
            return timed(
                lambda: skopeo(
                    "copy", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst
                )
            )

        def pulls8(ref: str, kind: str) -> float:
            def one(i: int) -> None:
                skopeo("copy", "--src-tls-verify=false", ref, f"oci:{work}/p8-{kind}-{i}:x")

            def run() -> None:
                with ThreadPoolExecutor(8) as ex:
                    list(ex.map(one, range(8)))

            took = timed(run)
            for i in range(8):
                shutil.rmtree(work / f"p8-{kind}-{i}")
            return took

        mb = total / 1e6
        servers: dict[str, Server] = {}
        disk: list[float] = []
        for rnd in range(args.rounds):
            for s in servers.values():
                s.stop()
            disk.append(dd_mbps(work, round(mb)))
            servers = fresh()
            order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
            for kind in order:
                host = servers[kind].host
                ref = f"docker://{host}/bench/img:v1"
                src = f"oci:{image}:latest"
                rec(kind, "push MB/s", mb / copy(src, ref))
                rec(kind, "re-push s", copy(src, ref))
                out = work / f"pull-{kind}"
                rec(kind, "pull MB/s", mb / copy(ref, f"oci:{out}:x"))
                shutil.rmtree(out)
                rec(kind, "8 pulls MB/s", 8 * mb / pulls8(ref, kind))
                log(
                    f"round {rnd + 1}/{args.rounds} {kind}: "
                    + ", ".join(f"{k} {v[-1]:.2f}" for k, v in res[kind].items())
                )

        # manifest GETs and one big blob
        big = os.urandom(100 * 1024 * 1024)
        targets: dict[str, str] = {k: s.host for k, s in servers.items()}
        extra: dict[str, subprocess.Popen[bytes]] = {}
        if args.asgi:
            try:
                import uvicorn  # noqa: F401

                proc, host = start_uvicorn(work / "forklift")
                extra["forklift-uvicorn"] = proc
                targets["forklift-uvicorn"] = host
                res["forklift-uvicorn"] = {}
            except ImportError:
                log("uvicorn not installed: skipping the ASGI server comparison")
        digests = {k: push_blob(f"http://{s.host}", "bench/big", big) for k, s in servers.items()}
        paired: list[float] = []  # forklift's PUT rate / dd's rate just before it, per round
        paired_dd: list[float] = []
        for rnd in range(args.rounds):
            # a new blob each round, so no server already has it
            put = work / "put.bin"
            put.write_bytes(os.urandom(100 * 1024 * 1024))
            put_digest = "sha256:" + hashlib.sha256(put.read_bytes()).hexdigest()
            for kind, host in targets.items() if rnd % 2 == 0 else reversed(targets.items()):
                w = wrk(f"http://{host}/v2/bench/img/manifests/v1", args.wrk_seconds)
                rec(kind, "manifest GET/s", w["rps"])
                rec(kind, "manifest p50 ms", w["p50"])
                rec(kind, "manifest p99 ms", w["p99"])
                if kind in digests:
                    # the disk's rate the moment before, for the same 100 MB: dd's own rate
                    # swings 3-4x between runs on a VM whose host caches the disk
                    before = dd_mbps(work, 100) if kind == "forklift" else None
                    rate = curl_put_mbps(f"http://{host}", "bench/put", put, put_digest)
                    rec(kind, "100MB blob PUT MB/s", rate)
                    if before is not None:
                        paired.append(rate / before)
                        paired_dd.append(before)
                    rec(
                        kind,
                        "100MB blob GET MB/s",
                        curl_mbps(f"http://{host}/v2/bench/big/blobs/{digests[kind]}"),
                    )
        for p in extra.values():
            p.terminate()
            p.wait()
        for s in servers.values():
            s.stop()

        load = os.getloadavg()[0]
        print(
            f"\nforklift serve vs distribution (docker-registry 2.8.2), medians of "
            f"{args.rounds} rounds, image {mb:.0f} MB; load {load:.2f}"
        )
        keys = list(res["forklift"])
        print(
            f"{'metric':<22}{'forklift':>12}{'distribution':>14}{'ratio':>8}"
            + ("  uvicorn" if "forklift-uvicorn" in res else "")
        )
        for key in keys:
            f = statistics.median(res["forklift"][key])
            d = statistics.median(res["distribution"][key])
            ratio = (d / f) if key.endswith(("ms", " s")) else (f / d)
            line = f"{key:<22}{f:>12.2f}{d:>14.2f}{ratio:>7.2f}x"
            if "forklift-uvicorn" in res and key in res["forklift-uvicorn"]:
                line += f"  {statistics.median(res['forklift-uvicorn'][key]):.1f}"
            print(line)
            lower = key.endswith(("ms", " s"))
            emit_row(
                _figure(key, mb),
                unit=key.rsplit(" ", 1)[1],
                better="lower" if lower else "higher",
                forklift=round(f, 3),
                peer="distribution 2.8.2",
                peer_value=round(d, 3),
                rounds=args.rounds,
                load=load,
            )
        print("ratio > 1 means forklift is better (faster, or lower latency/time)")
        dd = statistics.median(disk)
        push = statistics.median(res["forklift"]["push MB/s"])
        pull = statistics.median(res["forklift"]["pull MB/s"])
        print(
            f"disk (dd, conv=fsync) {dd:.0f} MB/s: forklift push {push / dd:.0%} of it, "
            f"pull {pull / dd:.0%} (distribution {statistics.median(res['distribution']['push MB/s']) / dd:.0%} / "
            f"{statistics.median(res['distribution']['pull MB/s']) / dd:.0%})"
        )
        put_rate = statistics.median(res["forklift"]["100MB blob PUT MB/s"])
        print(f"  one 100 MB blob PUT by curl: forklift {put_rate / dd:.0%} of the disk's rate")
        share = statistics.median(paired)
        print(
            f"  paired with a dd of the same 100 MB just before each PUT: {share:.0%} "
            f"(per round {', '.join(f'{r:.0%}' for r in paired)}; dd "
            f"{min(paired_dd):.0f}-{max(paired_dd):.0f} MB/s)"
        )
        emit_row(
            "registry server: curl blob PUT as a share of a dd of the same 100 MB run just before it",
            unit="%",
            better="higher",
            forklift=round(100 * share, 1),
            rounds=args.rounds,
            target=">= 80%",
            met=share >= 0.8,
            load=load,
            note=(
                f"median of per-round ratios {', '.join(f'{r:.0%}' for r in paired)}; "
                f"dd {min(paired_dd):.0f}-{max(paired_dd):.0f} MB/s"
            ),
        )
        for what, rate in (
            ("skopeo push", push),
            ("skopeo pull", pull),
            ("curl blob PUT", put_rate),
        ):
            emit_row(
                f"registry server: {what} as a share of the disk's dd conv=fsync rate",
                unit="%",
                better="higher",
                forklift=round(100 * rate / dd, 1),
                rounds=args.rounds,
                target=">= 80%",
                met=rate / dd >= 0.8,
                load=load,
                note=(
                    f"dd {dd:.0f} MB/s (rounds {min(disk):.0f}-{max(disk):.0f}), "
                    f"forklift {rate:.0f} MB/s"
                ),
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
