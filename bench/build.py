#!/usr/bin/env python3
"""forklift build next to `buildah bud --layers`, interleaved in one run.

A generated project (issue 4's performance case):
  src/           2,000 source files, 20 MB, in 40 directories
  node_modules/  200 MB that .dockerignore excludes (a developer's local install)
  lock.json      the dependency manifest; a RUN step turns it into ~50 MB of "packages"
  Dockerfile     three stages (deps, build, runtime), 18 instructions, 11 of them layer steps

Scenarios, each run by both tools back to back (the order alternates every round), on
stores that start empty each round (the busybox base is loaded untimed):
  cold        first build
  no-op       the same build again
  one-file    one source file changed
  dep-change  the dependency manifest changed
then the final image's size: compressed (forklift's store blobs; buildah's layers as
`buildah push oci:` compresses them, gzip) and uncompressed (the layer tars).

buildah uses its overlay driver in private storage (--root/--runroot), as a default root
install would. Afterwards, forklift alone is timed cold and one-file with each
--compression (gzip, zstd, none), to inform the default: buildah keeps layers
uncompressed until it pushes.

Every figure is also printed as a BENCH-ROW line (bench/benchrows.py) for bench/run_all.
forklift runs with its bytecode compiled beforehand, as an installed forklift has it.

Usage: bench/build.py [--rounds 3] [--quick] [--keep]   (root; needs buildah and busybox-static)
  --quick   skip the --compression study and the image-size comparison
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchrows import emit_row

REPO = Path(__file__).resolve().parents[1]
FORKLIFT = [sys.executable, "-m", "forklift"]
SCENARIOS = ("cold", "no-op", "one-file", "dep-change")
#: issue 17's targets: (minimum ratio buildah/forklift, maximum forklift seconds)
TARGETS: dict[str, tuple[float, float | None]] = {
    "cold": (2.0, None),
    "no-op": (1.0, 0.2),
    "one-file": (1.5, None),
    "dep-change": (2.0, None),
}
FIGURES = {
    "cold": "cold build (2,000-file context, 3 stages)",
    "no-op": "no-op rebuild (same context)",
    "one-file": "rebuild, one source file changed",
    "dep-change": "rebuild, dependency manifest changed",
}

DOCKERFILE = """\
FROM busybox AS deps
WORKDIR /app
COPY lock.json ./
# "npm ci": ~50 MB of packages (20 files of 50 KB per package, half text, half binary)
RUN set -e; for p in $(sed -n 's/.*"\\(pkg-[0-9]*\\)": "\\([0-9.]*\\)".*/\\1@\\2/p' lock.json); do \\
      mkdir -p node_modules/$p; \\
      for i in 0 1 2 3 4 5 6 7 8 9; do \\
        yes "module.exports = require('./$p/$i'); // $p" | head -c 51200 > node_modules/$p/f$i.js; \\
        head -c 51200 /dev/urandom > node_modules/$p/f$i.node; \\
      done; \\
    done

FROM busybox AS build
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY src/ ./src/
RUN mkdir -p dist && for d in src/*/; do cat "$d"*.js > "dist/$(basename "$d").js"; done \\
    && ls node_modules | wc -l > dist/packages.txt

FROM busybox
WORKDIR /srv
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config/ ./config/
ENV NODE_ENV=production
EXPOSE 8080
USER 65534:65534
CMD ["sh", "-c", "cat /srv/dist/packages.txt"]
"""

WORDS = [
    "const",
    "let",
    "function",
    "return",
    "import",
    "export",
    "from",
    "default",
    "class",
    "extends",
    "async",
    "await",
    "module",
    "require",
    "this",
    "new",
    "if",
    "else",
    "for",
    "while",
    "switch",
    "case",
    "break",
    "continue",
    "try",
    "catch",
    "throw",
    "value",
    "result",
    "options",
    "config",
    "handler",
    "request",
    "response",
    "render",
    "state",
    "props",
    "user",
    "items",
    "index",
    "length",
    "map",
    "filter",
    "reduce",
    "push",
    "Promise",
    "resolve",
    "reject",
    "console",
    "log",
]


def write_context(root: Path, seed: int = 7) -> None:
    """The generated project (deterministic for a seed)."""
    rnd = random.Random(seed)
    (root / "src").mkdir(parents=True)
    for d in range(40):
        sub = root / "src" / f"d{d:02d}"
        sub.mkdir()
        for f in range(50):
            words = rnd.choices(WORDS, k=1700)  # ~10 KB of JS-like text
            lines = [" ".join(words[i : i + 12]) + ";" for i in range(0, len(words), 12)]
            (sub / f"f{f:03d}.js").write_text("\n".join(lines) + "\n")
    blob = (("x" * 80 + "\n") * 256).encode()  # 20 KB, content does not matter
    for d in range(100):
        sub = root / "node_modules" / f"local-{d:03d}"
        sub.mkdir(parents=True)
        for f in range(100):
            (sub / f"m{f:03d}.js").write_bytes(blob)
    (root / "config").mkdir()
    (root / "config" / "app.json").write_text('{"port": 8080}\n')
    write_lock(root, "1.0.0")
    (root / ".dockerignore").write_text("node_modules\n*.log\n.git\n")
    (root / "Dockerfile").write_text(DOCKERFILE)


def write_lock(root: Path, version: str) -> None:
    deps = ",\n".join(f'    "pkg-{i:02d}": "{version}"' for i in range(50))
    (root / "lock.json").write_text('{\n  "packages": {\n' + deps + "\n  }\n}\n")


def change_one_file(root: Path, n: int) -> None:
    path = root / "src" / "d07" / "f013.js"
    with path.open("a") as f:
        f.write(f"console.log('change {n}');\n")


def busybox_rootfs_tar(work: Path) -> Path:
    """A busybox root filesystem tarball (the same base for both tools)."""
    root = work / "bb-rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "echo", "mkdir", "rm", "head", "yes", "sed", "wc"):
        (root / "bin" / applet).symlink_to("busybox")
    for d in ("etc", "tmp", "root", "proc", "sys", "dev"):
        (root / d).mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    out = work / "bb-rootfs.tar"
    with tarfile.open(out, "w") as tf:
        for path in sorted(root.rglob("*")):
            tf.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return out


def forklift_env(work: Path) -> dict[str, str]:
    """The environment forklift runs in: with bytecode, as an installed forklift has it.

    (PYTHONDONTWRITEBYTECODE in a development shell would make every run compile its
    modules again, ~0.3 s; the bytecode goes to a prefix in the work directory, not the
    source tree.)
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(cmd: list[str], env: dict[str, str] | None = None) -> Timing:
    """Run ``cmd``; its wall time and the CPU time of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


class Forklift:
    name = "forklift"

    def __init__(self, work: Path, base_tar: Path, compression: str = "gzip") -> None:
        self.home = work / f"fk-home-{compression}"
        self.env = {**forklift_env(work), "FORKLIFT_HOME": str(self.home)}
        self.compression = compression
        self.base_tar = base_tar

    def reset(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        subprocess.run(
            [*FORKLIFT, "import", str(self.base_tar), "busybox:latest"],
            env=self.env, check=True, capture_output=True,
        )  # fmt: skip

    def build(self, ctx: Path) -> Timing:
        return timed(
            [*FORKLIFT, "build", "-q", "--compression", self.compression, "-t", "bench:latest", str(ctx)],
            self.env,
        )  # fmt: skip

    def sizes(self, work: Path) -> tuple[int, int]:
        """(compressed, uncompressed) bytes of the image's layers."""
        inspected = json.loads(
            subprocess.run(
                [*FORKLIFT, "inspect", "bench:latest"], env=self.env, check=True,
                capture_output=True, text=True,
            ).stdout
        )[0]  # fmt: skip
        compressed = sum(layer["Size"] for layer in inspected["Layers"])
        archive = work / "fk-save.tar"
        subprocess.run(
            [*FORKLIFT, "save", "-o", str(archive), "bench:latest"], env=self.env, check=True
        )
        uncompressed = _docker_archive_layers(archive)
        archive.unlink()
        return compressed, uncompressed

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


class Buildah:
    name = "buildah"

    def __init__(self, work: Path, base_archive: Path) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="bah-", dir="/tmp"))  # runroot must be short
        self.archive = base_archive
        self.work = work

    def argv(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.base / "r"), "--runroot", str(self.base / "rr"),
                "--storage-driver", "overlay", *args]  # fmt: skip

    def reset(self) -> None:
        self.cleanup()
        self.base.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            self.argv("pull", "-q", f"docker-archive:{self.archive}"),
            check=True,
            capture_output=True,
        )
        image = subprocess.run(
            self.argv("images", "-q"), check=True, capture_output=True, text=True
        ).stdout.split()[0]
        subprocess.run(self.argv("tag", image, "busybox:latest"), check=True, capture_output=True)

    def build(self, ctx: Path) -> Timing:
        return timed(self.argv("bud", "--layers", "-q", "-t", "bench:latest", str(ctx)))

    def sizes(self, work: Path) -> tuple[int, int]:
        layout = work / "bah-oci"
        shutil.rmtree(layout, ignore_errors=True)
        subprocess.run(
            self.argv("push", "-q", "bench:latest", f"oci:{layout}:bench"),
            check=True,
            capture_output=True,
        )
        index = json.loads((layout / "index.json").read_text())
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
        compressed = sum(layer["size"] for layer in manifest["layers"])
        uncompressed = 0
        for layer in manifest["layers"]:
            with gzip.open(layout / "blobs" / "sha256" / layer["digest"].split(":")[1]) as f:
                while chunk := f.read(1 << 20):
                    uncompressed += len(chunk)
        shutil.rmtree(layout, ignore_errors=True)
        return compressed, uncompressed

    def cleanup(self) -> None:
        if self.base.exists():
            subprocess.run(self.argv("rm", "-a"), capture_output=True)
            subprocess.run(self.argv("rmi", "-a", "-f"), capture_output=True)
            for line in reversed(Path("/proc/mounts").read_text().splitlines()):
                point = line.split()[1]
                if point.startswith(str(self.base)):
                    subprocess.run(["umount", "-l", point], capture_output=True)
            shutil.rmtree(self.base, ignore_errors=True)


def _docker_archive_layers(archive: Path) -> int:
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        return sum(tf.getmember(name).size for name in manifest[0]["Layers"])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--quick", action="store_true", help="no compression study, no sizes")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("buildah"):
        raise SystemExit("run as root with buildah installed")
    work = Path(tempfile.mkdtemp(prefix="fk-bench-build-"))
    ctx = work / "ctx"
    print(f"generating the project in {ctx} ...", flush=True)
    write_context(ctx)
    base_tar = busybox_rootfs_tar(work)
    # byte-compile forklift once, untimed, as installing it would
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "forklift")],
        env=forklift_env(work), check=True,
    )  # fmt: skip
    # the same base bytes for both: forklift imports the rootfs, buildah pulls forklift's save
    seed_env = {**forklift_env(work), "FORKLIFT_HOME": str(work / "seed")}
    subprocess.run(
        [*FORKLIFT, "import", str(base_tar), "busybox:latest"],
        env=seed_env,
        check=True,
        capture_output=True,
    )
    base_archive = work / "busybox.tar"
    subprocess.run(
        [*FORKLIFT, "save", "-o", str(base_archive), "busybox:latest"], env=seed_env, check=True
    )

    tools = [Forklift(work, base_tar), Buildah(work, base_archive)]
    times: dict[str, dict[str, list[Timing]]] = {t.name: {s: [] for s in SCENARIOS} for t in tools}
    sizes: dict[str, tuple[int, int]] = {}
    version = 0
    try:
        for rnd in range(args.rounds):
            order = tools if rnd % 2 == 0 else tools[::-1]
            for tool in order:
                tool.reset()
            for scenario in SCENARIOS:
                if scenario == "one-file":
                    change_one_file(ctx, rnd)
                elif scenario == "dep-change":
                    version += 1
                    write_lock(ctx, f"1.0.{version}")
                for tool in order:
                    t = tool.build(ctx)
                    times[tool.name][scenario].append(t)
                    print(
                        f"round {rnd + 1} {scenario:10} {tool.name:8} {t.wall:7.2f} s  (cpu {t.cpu:6.2f} s)"
                        f"  load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
            if rnd == args.rounds - 1 and not args.quick:
                for tool in tools:
                    sizes[tool.name] = tool.sizes(work)
        report(times, sizes)
        if not args.quick:
            compression_study(work, ctx, base_tar, args.rounds)
    finally:
        for tool in tools:
            tool.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def med(values: list[Timing], attr: str = "wall") -> float:
    return statistics.median(getattr(v, attr) for v in values)


def report(times: dict[str, dict[str, list[Timing]]], sizes: dict[str, tuple[int, int]]) -> None:
    print("\nmedians (wall seconds; cpu seconds of the build processes); ratio = median of")
    print("the per-round ratios buildah/forklift (> 1: forklift faster)")
    print(
        f"{'scenario':11} {'forklift':>9} {'cpu':>7} {'buildah':>9} {'cpu':>7} {'ratio':>7}  target"
    )
    for s in SCENARIOS:
        fk, bh = med(times["forklift"][s]), med(times["buildah"][s])
        fkc, bhc = med(times["forklift"][s], "cpu"), med(times["buildah"][s], "cpu")
        ratio = statistics.median(
            b.wall / f.wall for f, b in zip(times["forklift"][s], times["buildah"][s], strict=True)
        )
        min_ratio, max_seconds = TARGETS[s]
        ok = ratio >= min_ratio and (max_seconds is None or fk <= max_seconds)
        target = f">= {min_ratio:g}x" + (f", <= {max_seconds:g} s" if max_seconds else "")
        print(
            f"{s:11} {fk:9.2f} {fkc:7.2f} {bh:9.2f} {bhc:7.2f} {ratio:6.2f}x  {target}: {'met' if ok else 'NOT met'}"
        )
        emit_row(
            FIGURES[s], unit="s", forklift=round(fk, 3), peer="buildah bud --layers",
            peer_value=round(bh, 3), ratio=round(ratio, 2), cpu=round(fkc, 2),
            peer_cpu=round(bhc, 2), rounds=len(times["forklift"][s]), target=target, met=ok,
        )  # fmt: skip
    if not sizes:
        return
    (fkz, fku), (bhz, bhu) = sizes["forklift"], sizes["buildah"]
    print("\nfinal image size (MB)        forklift    buildah   difference")
    print(
        f"  compressed (gzip layers)  {fkz / 1e6:9.2f} {bhz / 1e6:10.2f}   {100 * (fkz - bhz) / bhz:+6.2f} %  (target within 2%)"
    )
    print(
        f"  uncompressed (layer tars) {fku / 1e6:9.2f} {bhu / 1e6:10.2f}   {100 * (fku - bhu) / bhu:+6.2f} %"
    )
    emit_row(
        "built image size, gzip layers", unit="MB", forklift=round(fkz / 1e6, 2),
        peer="buildah push (gzip)", peer_value=round(bhz / 1e6, 2), rounds=1,
    )  # fmt: skip


def compression_study(work: Path, ctx: Path, base_tar: Path, rounds: int) -> None:
    print("\nforklift --compression: cold and one-file builds (medians), image size")
    print(f"{'compression':12} {'cold':>7} {'cpu':>7} {'one-file':>9} {'cpu':>7} {'size MB':>9}")
    results: dict[str, tuple[list[Timing], list[Timing], int]] = {}
    kinds = ("gzip", "zstd", "none")
    for rnd in range(rounds):
        for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
            tool = Forklift(work, base_tar, kind)
            tool.reset()
            cold = tool.build(ctx)
            change_one_file(ctx, 100 + rnd)
            one = tool.build(ctx)
            size = tool.sizes(work)[0]
            tool.cleanup()
            colds, ones, _ = results.get(kind, ([], [], 0))
            results[kind] = ([*colds, cold], [*ones, one], size)
    for kind in kinds:
        colds, ones, size = results[kind]
        print(
            f"{kind:12} {med(colds):7.2f} {med(colds, 'cpu'):7.2f} {med(ones):9.2f} {med(ones, 'cpu'):7.2f} {size / 1e6:9.2f}"
        )


if __name__ == "__main__":
    main()
