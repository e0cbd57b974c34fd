#!/usr/bin/env python3
"""Time from Ctrl-C to exit: a build in a RUN step, and a pull stuck in a download.

* build: ``forklift build`` vs ``buildah bud`` of ``RUN sleep 300`` on the same
  busybox image; SIGINT once the step's container runs.
* pull: ``forklift pull`` vs ``skopeo copy docker://... oci:...`` from a
  registry on 127.0.0.1 whose layer downloads stall half-way; SIGINT once the
  downloads are stuck.

Prints the median seconds from the signal to the process's exit, its exit
status, and the ratio. Target (issue 10): forklift exits 130 within 1 s, with
everything released.

    sudo .venv/bin/python bench/cancel.py [-n 5]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fake_registry import StallingRegistry, image_documents, stalling_registry  # noqa: E402
from tests.helpers import make_busybox_rootfs, write_rootfs_tar  # noqa: E402

from forklift.oci.digest import Digest  # noqa: E402


def interrupt(cmd: list[str], env: dict[str, str], ready: Callable[[], bool]) -> tuple[float, int]:
    """Start ``cmd``, wait for ``ready``, SIGINT it; (seconds to exit, exit status)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{' '.join(cmd[:4])}... ended before it could be interrupted")
        time.sleep(0.01)
    time.sleep(0.3)
    start = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return 60.0, -9
    return time.perf_counter() - start, proc.returncode


def runc_busy(root: Path) -> Callable[[], bool]:
    return lambda: root.is_dir() and any(root.iterdir())


def report(name: str, ours: list[tuple[float, int]], theirs: list[tuple[float, int]], peer: str):  # type: ignore[no-untyped-def]
    a = statistics.median(t for t, _ in ours)
    b = statistics.median(t for t, _ in theirs) if theirs else float("nan")
    codes_a = sorted({c for _, c in ours})
    codes_b = sorted({c for _, c in theirs})
    print(
        f"{name:6} forklift {a:6.3f} s (exit {codes_a})   {peer} {b:6.3f} s (exit {codes_b})"
        f"   ratio {a / b:5.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs of each tool")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (overlayfs mounts, runc)")
    work = Path(tempfile.mkdtemp(prefix="fkcancel-", dir="/tmp"))
    try:
        tar = write_rootfs_tar(make_busybox_rootfs(work / "rootfs"), work / "rootfs.tar")
        home = work / "home"
        env = {**os.environ, "FORKLIFT_HOME": str(home)}
        forklift = [sys.executable, "-m", "forklift"]
        subprocess.run([*forklift, "import", str(tar), "busybox:latest"], env=env, check=True)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN sleep 300\n")
        buildah = ["buildah", "--root", str(work / "br"), "--runroot", str(work / "brr")]
        buildah += ["--storage-driver", "vfs"]
        subprocess.run(
            [*buildah, "pull", f"docker-archive:{_archive(work, forklift, env)}"],
            check=True,
            capture_output=True,
        )
        (ctx / "Containerfile").write_text("FROM localhost/busybox:latest\nRUN sleep 300\n")
        ours, theirs = [], []
        for _ in range(args.n):
            ours.append(
                interrupt(
                    [*forklift, "build", "--no-cache", str(ctx)],
                    env,
                    runc_busy(home / "run" / "runc"),
                )
            )
            theirs.append(
                interrupt(
                    [
                        *buildah,
                        "bud",
                        "--isolation",
                        "oci",
                        "--runtime",
                        "runc",
                        "-f",
                        str(ctx / "Containerfile"),
                        str(ctx),
                    ],
                    env,
                    lambda: _runc_any(),
                )
            )
        report("build", ours, theirs, "buildah")

        layers = [_tar_gz(f"f{i}", os.urandom(4 << 20)) for i in range(3)]
        manifest, blobs = image_documents(layers)
        registry = StallingRegistry(manifest, blobs, stall={str(Digest.of(x)) for x in layers})
        ours, theirs = [], []
        with stalling_registry(registry):
            for i in range(args.n):
                ours.append(
                    interrupt(
                        [*forklift, "pull", f"{registry.host}/b/stuck:1"],
                        env,
                        lambda: _partials(home) == 3,
                    )
                )
                dest = work / f"oci{i}"
                theirs.append(
                    interrupt(
                        [
                            "skopeo",
                            "copy",
                            "--src-tls-verify=false",
                            f"docker://{registry.host}/b/stuck:1",
                            f"oci:{dest}:x",
                        ],
                        env,
                        lambda: registry.stalled.is_set(),
                    )
                )
        report("pull", ours, theirs, "skopeo")
    finally:
        subprocess.run(["umount", "-R", "-l", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _partials(home: Path) -> int:
    tmp = home / ".tmp"
    return len(os.listdir(tmp)) if tmp.is_dir() else 0


def _runc_any() -> bool:
    out = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout
    return bool(out.split())


def _archive(work: Path, forklift: list[str], env: dict[str, str]) -> Path:
    path = work / "busybox.tar"
    subprocess.run([*forklift, "save", "-o", str(path), "busybox:latest"], env=env, check=True)
    return path


def _tar_gz(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), 1)


if __name__ == "__main__":
    main()
