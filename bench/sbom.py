"""Benchmark ``forklift sbom`` against ``tar -t`` over the same layers, in one run.

Builds under /tmp two OCI layouts:

* ``minbase``: a debootstrapped Debian 12 minbase (tests/debian.py; downloaded
  from Debian's mirror on first use and cached under /tmp), one gzip layer;
* ``large``: that minbase plus a layer of N Python distributions
  (``*.dist-info`` with METADATA, RECORD and a module each) and a layer of M
  ``node_modules`` packages (package.json and index.js each, a quarter of them
  nested one level), generated here.

Then times ``tar -tzf`` over the layer blobs and ``forklift sbom`` (a
subprocess, JSON output; wall time and its own peak RSS via wait4), and prints
the ratio. Targets: minbase under 1 s including start-up; the large image
within 2x of ``tar -t``; peak memory under 300 MB.

    .venv/bin/python bench/sbom.py [--python 2000] [--node 20000] [--runs 3] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.benchrows import emit_row  # noqa: E402


def installed_bytecode(work: Path) -> None:
    """Measure forklift as installed: compiled bytecode kept (outside the source tree)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")


def _add(tf: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1700000000
    tf.addfile(info, io.BytesIO(data))


def python_layer(path: Path, count: int) -> None:
    site = "usr/local/lib/python3.11/site-packages"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(count):
            name, version = f"pkg{i:05d}", f"1.{i % 50}.{i % 7}"
            info = f"{site}/{name}-{version}.dist-info"
            meta = (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                    f"Summary: generated package {i}\nLicense: MIT\n"
                    "Classifier: License :: OSI Approved :: MIT License\n\n" + "Long description.\n" * 20)  # fmt: skip
            module = f"{site}/{name}/__init__.py"
            _add(tf, module, f"VALUE = {i}\n".encode() * 30)
            _add(tf, f"{info}/METADATA", meta.encode())
            _add(tf, f"{info}/INSTALLER", b"pip\n")
            record = f"{name}/__init__.py,sha256=x,300\n{name}-{version}.dist-info/METADATA,,\n"
            _add(tf, f"{info}/RECORD", record.encode())


def node_layer(path: Path, count: int) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(count):
            name = f"mod-{i:05d}"
            if i % 4 == 3:  # nested under the previous package
                base = f"srv/app/node_modules/mod-{i - 1:05d}/node_modules/{name}"
            else:
                base = f"srv/app/node_modules/{name}"
            doc = {"name": name, "version": f"2.{i % 30}.0", "license": "MIT",
                   "description": "generated", "main": "index.js",
                   "dependencies": {}, "repository": {"type": "git", "url": "x"}}  # fmt: skip
            _add(tf, f"{base}/package.json", json.dumps(doc, indent=2).encode())
            _add(tf, f"{base}/index.js", b"module.exports = 1;\n" * 20)
            _add(tf, f"{base}/README.md", b"# readme\n" * 40)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def make_layout(root: Path, tars: list[Path]) -> tuple[str, list[Path]]:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descs, diff_ids, history, layer_paths = [], [], [], []
    for i, tar in enumerate(tars):
        diff_ids.append(_sha256(tar))
        gz = root / f"layer{i}.tar.gz"
        if shutil.which("pigz"):
            with open(gz, "wb") as out:
                subprocess.run(["pigz", "-1", "-c", str(tar)], stdout=out, check=True)
        else:
            with open(tar, "rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        digest = _sha256(gz)
        dest = blobs / digest.split(":")[1]
        gz.replace(dest)
        layer_paths.append(dest)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                      "size": dest.stat().st_size})  # fmt: skip
        history.append({"created_by": f"layer {i}"})

    def put(doc: dict) -> dict:
        data = json.dumps(doc).encode()
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return {"digest": "sha256:" + h, "size": len(data)}

    config = put({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history})  # fmt: skip
    manifest = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                    "layers": descs})  # fmt: skip
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
         "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))  # fmt: skip
    return f"oci:{root}:bench", layer_paths


def run_measured(cmd: list[str]) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS (MB) of this one child, and its stdout."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read() if proc.stderr else b""
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')[-2000:]}")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read()


def tar_time(blobs: list[Path]) -> tuple[float, int]:
    t = time.perf_counter()
    count = 0
    for p in blobs:
        count += subprocess.run(
            ["tar", "-tzf", str(p)], check=True, capture_output=True
        ).stdout.count(b"\n")
    return time.perf_counter() - t, count


def warm(paths: list[Path]) -> None:
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass


def measure(
    label: str,
    name: str,
    blobs: list[Path],
    runs: int,
    figure: str,
    target: float | None,
    target_x: float | None = None,
) -> None:
    warm(blobs)
    tar_best, entries = min(tar_time(blobs) for _ in range(runs))
    cmd = [sys.executable, "-m", "forklift", "sbom", name, "--format", "json"]
    run_measured(cmd)  # warm: bytecode written, files cached
    results = [run_measured(cmd) for _ in range(runs)]
    wall = min(r[0] for r in results)
    rss = max(r[1] for r in results)
    doc = json.loads(results[0][2])
    print(f"{label}: {len(doc['packages'])} packages, {entries} tar entries in {len(blobs)} layers")
    print(f"  tar -tzf        {tar_best:6.2f}s")
    print(f"  forklift sbom   {wall:6.2f}s  peak RSS {rss:.0f} MB  "
          f"(ratio {wall / tar_best:.2f}x; best of {runs})")  # fmt: skip
    emit_row(
        figure,
        unit="s",
        forklift=round(wall, 3),
        peer="tar -tzf over the same layers",
        peer_value=round(tar_best, 3),
        rounds=runs,
        target=f"< {target:g} s" if target else f"<= {target_x:g}x tar -t",
        met=wall < target if target else wall <= (target_x or 0) * tar_best,
        note=f"best of {runs}; peak RSS {rss:.0f} MB; {len(doc['packages'])} packages",
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--python", type=int, default=2000)
    ap.add_argument("--node", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated images")
    args = ap.parse_args()
    from tests.debian import debootstrap_tar

    minbase = debootstrap_tar("debian-bookworm-minbase")
    work = Path(tempfile.mkdtemp(prefix="forklift-bench-sbom-", dir="/tmp"))
    installed_bytecode(work)
    try:
        t = time.perf_counter()
        small, small_blobs = make_layout(work / "minbase", [minbase])
        python_layer(work / "python.tar", args.python)
        node_layer(work / "node.tar", args.node)
        large, large_blobs = make_layout(
            work / "large", [minbase, work / "python.tar", work / "node.tar"]
        )
        print(f"generated images in {time.perf_counter() - t:.1f}s "
              f"({args.python} Python, {args.node} node packages)")  # fmt: skip
        measure("minbase (target: < 1 s including start-up)", small, small_blobs, args.runs,
                "`sbom` of a Debian 12 minbase image, start-up included", 1.0)  # fmt: skip
        measure("large (targets: <= 2x tar -t, < 300 MB)", large, large_blobs, args.runs,
                f"`sbom` of minbase + {args.python} Python + {args.node} node packages",
                None, 2.0)  # fmt: skip
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
