"""Benchmark ``forklift analyze`` against ``tar -t`` over the same layers, in one run.

Generates under /tmp an OCI layout of about 1 GB in 50,000 files spread over
several gzip layers (some files overwritten and deleted by later layers, so
there is waste to find), then times:

* ``tar -tzf`` over every layer blob (GNU tar, gzip decompression), and
* ``forklift analyze oci:...`` (a subprocess: wall time and peak RSS).

Prints both and the ratio. Targets: within 2x of ``tar -t``, under 200 MB.

    .venv/bin/python bench/analyze.py [--size-mb 1024] [--files 50000] [--layers 5] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path


class _Data(io.RawIOBase):
    """``size`` bytes that compress about 2:1 (so gzip does real work), generated on the fly."""

    def __init__(self, size: int, seed: int) -> None:
        self.left = size
        half = hashlib.sha256(str(seed).encode()).digest() * 512  # 16 KiB random-ish
        self.block = half + bytes(len(half))

    def readable(self) -> bool:
        return True

    def readinto(self, b):  # type: ignore[no-untyped-def]
        n = min(len(b), self.left, len(self.block))
        b[:n] = self.block[:n]
        self.left -= n
        return n


def make_image(root: Path, total: int, files: int, layers: int) -> str:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    per_layer = files // layers
    size = total // files
    descs, diff_ids, history = [], [], []
    for li in range(layers):
        raw = root / f"l{li}.tar"
        with tarfile.open(raw, "w", format=tarfile.PAX_FORMAT) as tf:
            for d in range(per_layer // 500 + 1):
                info = tarfile.TarInfo(f"data/l{li}/d{d}")
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            for i in range(per_layer):
                info = tarfile.TarInfo(f"data/l{li}/d{i // 500}/f{i}.bin")
                info.size = size
                tf.addfile(info, io.BufferedReader(_Data(size, i)))
            if li > 0:
                # overwrite and delete some files of the layer below: waste to report
                for i in range(0, 200):
                    info = tarfile.TarInfo(f"data/l{li - 1}/d{i // 500}/f{i}.bin")
                    info.size = size // 2
                    tf.addfile(info, io.BufferedReader(_Data(size // 2, i)))
                for i in range(200, 400):
                    info = tarfile.TarInfo(f"data/l{li - 1}/d{i // 500}/.wh.f{i}.bin")
                    tf.addfile(info)
        digest = hashlib.sha256()
        with open(raw, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        diff_ids.append("sha256:" + digest.hexdigest())
        subprocess.run(["pigz", "-1", "-f", str(raw)], check=True)
        gz = raw.with_suffix(".tar.gz")
        digest = hashlib.sha256()
        with open(gz, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        dest = blobs / digest.hexdigest()
        gz.replace(dest)
        descs.append(
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + digest.hexdigest(),
                "size": dest.stat().st_size,
            }
        )
        history.append(
            {"created_by": f"RUN generate layer {li}", "comment": f"forklift: Dockerfile:{li + 2}"}
        )

    def put(doc: dict) -> dict:
        data = json.dumps(doc).encode()
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return {"digest": "sha256:" + h, "size": len(data)}

    config = put(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
    )
    manifest = put(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": descs,
        }
    )
    (root / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        **manifest,
                        "annotations": {"org.opencontainers.image.ref.name": "bench"},
                    }
                ],
            }
        )
    )
    return f"oci:{root}:bench"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the generated image")
    args = ap.parse_args()
    if not shutil.which("pigz") or not shutil.which("tar"):
        sys.exit("needs pigz and GNU tar")
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-analyze-", dir="/tmp"))
    try:
        t = time.perf_counter()
        name = make_image(work / "layout", args.size_mb * 1_000_000, args.files, args.layers)
        print(
            f"generated {args.size_mb} MB in {args.files} files, {args.layers} layers "
            f"({time.perf_counter() - t:.1f}s)"
        )
        layer_blobs = [
            p
            for p in (work / "layout" / "blobs" / "sha256").iterdir()
            if p.stat().st_size > 100_000
        ]
        # warm the page cache for both contenders
        for p in layer_blobs:
            with open(p, "rb") as f:
                while f.read(1 << 22):
                    pass
        t = time.perf_counter()
        count = 0
        for p in layer_blobs:
            out = subprocess.run(["tar", "-tzf", str(p)], check=True, capture_output=True).stdout
            count += out.count(b"\n")
        tar_time = time.perf_counter() - t
        t = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run(
            [sys.executable, "-m", "forklift", "analyze", name, "--format", "json"],
            check=True,
            capture_output=True,
        )
        fk_time = time.perf_counter() - t
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        doc = json.loads(proc.stdout)
        print(f"tar -tzf over {len(layer_blobs)} layers: {tar_time:.2f}s ({count} entries)")
        print(
            f"forklift analyze:           {fk_time:.2f}s, peak RSS {peak_kb / 1024:.0f} MB"
            + ("" if peak_kb >= before else " (approx)")
        )
        print(
            f"ratio forklift/tar: {fk_time / tar_time:.2f}x  (target <= 2x; memory target < 200 MB)"
        )
        print(
            f"  image {doc['total_size'] / 1e6:.0f} MB, wasted {doc['wasted_bytes'] / 1e6:.1f} MB, "
            f"efficiency {doc['efficiency']:.4f}, {sum(layer['entries'] for layer in doc['layers'])} entries"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("FORKLIFT_HOME", tempfile.mkdtemp(prefix="forklift-bench-home-"))
    main()
