#!/usr/bin/env python3
"""forklift build next to `buildah bud --layers` on small real-world Dockerfiles.

Two sets, each Dockerfile built cold (its steps not in the cache, the bases there;
a Dockerfile whose first steps are those of one built before it in the round, such as
the two near-copies from cypress-docker-images, finds those in both tools' caches) and
then again unchanged (no-op), both tools back to back, the order alternating every
round, stores emptied every round:

  examples   the example pipelines in examples/ (hello, go-style, node-style on
             busybox; python-style on a Debian 12 base with python3 and pip)
  corpus     real-world Dockerfiles from ../shared/corpus/dockerfiles/ (taken
             round robin over the repositories, in a fixed order, by a fixed filter: Linux, no RUN --mount, no ADD of a
             URL, no COPY --from another image, a base named without variables or a
             digest, 2-25 instructions with at least one RUN and one COPY/ADD)

No network: every base a corpus Dockerfile names is tagged onto one local image, Debian 12
minbase (debootstrap, cached under /tmp/forklift-test-cache) with stand-ins in
/usr/local/bin for the tools a RUN would download with or call (apt-get, apk, curl,
pip, npm, go, make, ...: they print their arguments and succeed). So a RUN runs a real
process in a real container for both tools, but installs nothing: what is measured is
what each builder adds around the steps. COPY sources are stubbed in a generated
context (a directory for `.` and names ending in `/`, a small file otherwise). A
Dockerfile that fails with either tool in the untimed probe build is left out, and
said so.

forklift runs with its bytecode compiled beforehand (as installed); buildah is the
Debian package (compiled Go), both with private stores on overlay, buildah with
--pull=never. The bases are loaded untimed, and unpacked untimed for both (buildah's
pull unpacks them; forklift unpacks them by running a container of each). Rows for bench/run_all are printed as BENCH-ROW lines.

The corpus Dockerfiles timed are listed in bench/build_small.list (made by --reprobe:
the filter above, then an untimed build with each tool, round robin over the repositories
until --max build with both), so every run times the same files.

Usage: bench/build_small.py [--rounds 3] [--quick] [--reprobe [--max 12]] [--keep]   (root)
  --quick     the first 6 listed corpus Dockerfiles
  --reprobe   choose the corpus Dockerfiles again and rewrite bench/build_small.list
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchrows import emit_row
from build import FORKLIFT, REPO, Timing, forklift_env, timed

CORPUS = Path(os.environ.get("FORKLIFT_CORPUS", REPO.parent / "shared" / "corpus")) / "dockerfiles"
EXAMPLES = REPO / "examples"
LIST = Path(__file__).resolve().parent / "build_small.list"
STUB_BASE = "fk-small/stub-debian:12"
#: commands a RUN may call that minbase lacks or that would reach the network
STUBBED = [
    "apt-get",
    "apt",
    "apk",
    "curl",
    "wget",
    "pip",
    "pip3",
    "pipenv",
    "poetry",
    "uv",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "node",
    "go",
    "make",
    "git",
    "cargo",
    "rustup",
    "gcc",
    "cc",
    "g++",
    "python",
    "python3",
    "java",
    "mvn",
    "gradle",
    "dotnet",
    "composer",
    "php",
    "ruby",
    "gem",
    "bundle",
    "adduser",
    "addgroup",
    "su-exec",
    "gosu",
    "tini",
    "jq",
    "upx",
    "unzip",
    "dnf",
    "yum",
    "microdnf",
    "update-ca-certificates",
    "openssl",
    "ssh-keygen",
    "setcap",
    "envsubst",
    "gpg",
    "gpgv",
    "dirmngr",
    "javac",
    "pear",
    "pecl",
    "docker-php-ext-install",
    "docker-php-ext-configure",
    "docker-php-ext-enable",
]
STUB_SCRIPT = '#!/bin/sh\necho "stand-in: $(basename "$0") $*"\nexit 0\n'
#: adduser/addgroup (Alpine's and Debian's) stand-ins record the name, so that a later
#: USER, chown or install -o finds it
ADD_ACCOUNT = """#!/bin/sh
for name; do :; done
n=$((1000 + $(wc -l < /etc/group)))
grep -q "^$name:" /etc/group || echo "$name:x:$n:" >> /etc/group
case "$(basename "$0")" in
  adduser) grep -q "^$name:" /etc/passwd || echo "$name:x:$n:$n::/home/$name:/bin/sh" >> /etc/passwd ;;
esac
exit 0
"""


@dataclass
class Case:
    name: str
    context: Path
    dockerfile: Path
    bases: set[str] = field(default_factory=set)  # names to alias onto STUB_BASE


# -- choosing and preparing the corpus Dockerfiles ------------------------------------


def corpus_candidates() -> list[tuple[str, Path]]:
    """(repository, file) for every corpus Dockerfile the fixed filter accepts, sorted."""
    from forklift.dockerfile import instructions as ins
    from forklift.dockerfile.parser import parse

    out: list[tuple[str, Path]] = []
    with open(CORPUS / "SOURCES.tsv") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["kind"] == "real-world"]
    for row in sorted(rows, key=lambda r: r["local_file"]):
        if row["duplicate"]:
            continue
        path = CORPUS / row["local_file"]
        text = path.read_text(errors="replace")
        if re.search(r"windows|nanoserver|powershell", text, re.I):
            continue
        try:
            parsed = ins.parse_stages(parse(text, str(path)))
        except Exception:  # the corpus holds files our parser rightly refuses
            continue
        stage_names = {s.name for s in parsed.stages if s.name}
        commands = [c for s in parsed.stages for c in s.commands]
        runs = [c for c in commands if isinstance(c, ins.RunCommand)]
        copies = [c for c in commands if isinstance(c, ins.CopyCommand | ins.AddCommand)]
        ok = 2 <= len(commands) <= 25 and runs and copies
        ok = ok and not any(c.mount_specs or c.files for c in runs)
        ok = ok and not any(isinstance(c, ins.OnbuildCommand) for c in commands)
        for s in parsed.stages:
            base = s.base_name.lower()
            if "$" in base or "@" in base or "$" in s.platform:
                ok = False
        for c in copies:
            if any("$" in src or "://" in src or src.startswith("git@") for src in c.sources):
                ok = False
            external = isinstance(c, ins.CopyCommand) and c.from_.lower() not in stage_names
            if external and c.from_ and not c.from_.isdigit():
                ok = False
        if ok:
            out.append((row["repo"], path))
    return out


def prepare_corpus_case(path: Path, work: Path) -> Case:
    """A context for one corpus Dockerfile: the file itself and a stub for each source."""
    from forklift.dockerfile import instructions as ins
    from forklift.dockerfile.parser import parse

    text = path.read_text(errors="replace")
    parsed = ins.parse_stages(parse(text, str(path)))
    ctx = work / "corpus" / path.parent.name / path.stem.replace(".", "_")
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(text)
    stage_names = {s.name for s in parsed.stages if s.name}
    case = Case(f"{path.parent.name}/{path.stem}", ctx, ctx / "Dockerfile")
    for s in parsed.stages:
        base = s.base_name.lower()
        repository = base.split("@")[0].rsplit(":", 1)[0] if ":" in base.split("/")[-1] else base
        real_busybox = repository in ("busybox", "library/busybox", "docker.io/library/busybox")
        if base != "scratch" and base not in stage_names and not real_busybox:
            case.bases.add(s.base_name)  # (busybox is there for both tools, as itself)
        for c in s.commands:
            if isinstance(c, ins.CopyCommand) and c.from_:
                continue
            if isinstance(c, ins.CopyCommand | ins.AddCommand):
                for src in c.sources:
                    _stub_source(ctx, src)
    return case


def _stub_source(ctx: Path, src: str) -> None:
    rel = re.sub(r"[*?]", "stub", re.sub(r"\[[^\]]*\]", "s", src)).lstrip("/")
    rel = os.path.normpath(rel) if rel else "."
    if rel.startswith(".."):
        return
    target = ctx / rel
    if rel == "." or src.endswith("/"):
        target.mkdir(parents=True, exist_ok=True)
        if not any(target.iterdir()):
            (target / "stub.txt").write_text("stub\n")
        return
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(STUB_SCRIPT)
    target.chmod(0o755)


# -- the bases, the same bytes for both tools ---------------------------------------------


def make_bases(work: Path) -> list[Path]:
    """docker-archives of busybox, debian-python and the stub base (made by forklift once)."""
    from tests.debian import debootstrap_tar
    from tests.helpers import make_busybox_rootfs, write_rootfs_tar

    env = {**forklift_env(work), "FORKLIFT_HOME": str(work / "seed")}

    def fk(*args: str) -> None:
        subprocess.run([*FORKLIFT, *args], env=env, check=True, capture_output=True)

    busybox_tar = write_rootfs_tar(make_busybox_rootfs(work / "busybox"), work / "busybox.tar")
    fk("import", str(busybox_tar), "busybox:latest", "--change", 'CMD ["sh"]')
    fk("import", str(debootstrap_tar("debian-bookworm-python3", ("python3", "python3-pip"))),
       "debian-python:bookworm")  # fmt: skip
    fk("import", str(debootstrap_tar("debian-bookworm-minbase")), "fk-small/debian:seed",
       "--change", 'CMD ["bash"]')  # fmt: skip
    stub_ctx = work / "stub-base"
    (stub_ctx / "bin").mkdir(parents=True)
    for name in STUBBED:
        (stub_ctx / "bin" / name).write_text(
            ADD_ACCOUNT if name in ("adduser", "addgroup") else STUB_SCRIPT
        )
        (stub_ctx / "bin" / name).chmod(0o755)
    (stub_ctx / "Dockerfile").write_text("FROM fk-small/debian:seed\nCOPY bin/ /usr/local/bin/\n")
    fk("build", "-q", "-t", STUB_BASE, str(stub_ctx))
    archives = []
    for name in ("busybox:latest", "debian-python:bookworm", STUB_BASE):
        out = work / (re.sub(r"[^a-z0-9]+", "-", name) + ".tar")
        fk("save", "-o", str(out), name)
        archives.append(out)
    return archives


def aliases(name: str) -> list[str]:
    """The names under which buildah's short-name lookup finds a local image."""
    if "/" in name and ("." in name.split("/")[0] or ":" in name.split("/")[0]):
        return [name]
    full = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    return [name, full]


class Forklift:
    name = "forklift"

    def __init__(self, work: Path, archives: list[Path], base_names: set[str]) -> None:
        self.home = work / "fk-home"
        self.env = {**forklift_env(work), "FORKLIFT_HOME": str(self.home)}
        self.archives, self.base_names = archives, base_names

    def reset(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        for archive in self.archives:
            subprocess.run([*FORKLIFT, "load", "-q", "-i", str(archive)], env=self.env,
                           check=True, capture_output=True)  # fmt: skip
        self.alias(self.base_names)
        # buildah's pull leaves the layers unpacked; a container of each base unpacks them
        # here too (into the snapshots builds share), so neither cold build pays for it
        for image in ("busybox:latest", "debian-python:bookworm", STUB_BASE):
            subprocess.run([*FORKLIFT, "run", "--rm", image, "sh", "-c", ":"], env=self.env,
                           check=True, capture_output=True)  # fmt: skip

    def alias(self, names: set[str]) -> None:
        """Tag the stub base as each of ``names``."""
        for name in sorted(names):
            subprocess.run([*FORKLIFT, "tag", STUB_BASE, name], env=self.env, check=True,
                           capture_output=True)  # fmt: skip

    def build(self, case: Case) -> Timing:
        return timed([*FORKLIFT, "build", "-q", "-f", str(case.dockerfile), "-t", "small:latest",
                      str(case.context)], self.env)  # fmt: skip

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


class Buildah:
    name = "buildah"

    def __init__(self, archives: list[Path], base_names: set[str]) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="bahs-", dir="/tmp"))  # runroot must be short
        self.archives, self.base_names = archives, base_names

    def argv(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.base / "r"), "--runroot", str(self.base / "rr"),
                "--storage-driver", "overlay", *args]  # fmt: skip

    def reset(self) -> None:
        self.cleanup()
        self.base.mkdir(parents=True, exist_ok=True)
        for archive in self.archives:
            subprocess.run(self.argv("pull", "-q", f"docker-archive:{archive}"), check=True,
                           capture_output=True)  # fmt: skip
        self.alias(self.base_names)

    def alias(self, names: set[str]) -> None:
        """Tag the stub base as each of ``names`` (and the long forms short names stand for)."""
        tags = [a for n in sorted(names) for a in aliases(n)]
        if tags:
            subprocess.run(self.argv("tag", STUB_BASE, *tags), check=True, capture_output=True)

    def build(self, case: Case) -> Timing:
        return timed(self.argv("bud", "--layers", "--pull=never", "-q", "-f", str(case.dockerfile),
                               "-t", "small:latest", str(case.context)))  # fmt: skip

    def cleanup(self) -> None:
        if self.base.exists():
            subprocess.run(self.argv("rm", "-a"), capture_output=True)
            subprocess.run(self.argv("rmi", "-a", "-f"), capture_output=True)
            for line in reversed(Path("/proc/mounts").read_text().splitlines()):
                point = line.split()[1]
                if point.startswith(str(self.base)):
                    subprocess.run(["umount", "-l", point], capture_output=True)
            shutil.rmtree(self.base, ignore_errors=True)


def example_cases(work: Path) -> list[Case]:
    cases = []
    for d in sorted(EXAMPLES.iterdir()):
        if (d / "Dockerfile").is_file():
            ctx = work / "examples" / d.name
            shutil.copytree(d, ctx, symlinks=True)
            if d.name == "python-style":  # its wheel is made from greetlib/, as the tests do
                from tests.build_examples.wheel import build_wheel

                build_wheel(ctx / "greetlib" / "src" / "greetlib", ctx / "wheels",
                            name="greetlib", version="1.0.0",
                            scripts={"greet": "greetlib:main"})  # fmt: skip
            cases.append(Case(f"examples/{d.name}", ctx, ctx / "Dockerfile"))
    return cases


def probe(tools: list, cases: list[Case], want: int | None) -> list[Case]:
    """The cases both tools build (untimed, in order), at most ``want`` of them.

    The bases each case names are tagged as it comes; those of the kept cases are
    tagged again by every reset.
    """
    kept: list[Case] = []
    for case in cases:
        if want is not None and len(kept) >= want:
            break
        failed = []
        for tool in tools:
            tool.alias(case.bases - tool.base_names)
            try:
                tool.build(case)
            except SystemExit as exc:
                failed.append(f"{tool.name}: {str(exc).strip().splitlines()[-1][:100]}")
        if failed:
            print(f"  left out {case.name}: {'; '.join(failed)}", flush=True)
        else:
            print(f"  kept {case.name}", flush=True)
            kept.append(case)
            for tool in tools:
                tool.base_names |= case.bases
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max", type=int, default=12, help="corpus Dockerfiles to choose")
    ap.add_argument("--quick", action="store_true", help="the first 6 listed")
    ap.add_argument("--reprobe", action="store_true", help="choose them again")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("buildah"):
        raise SystemExit("run as root with buildah installed")
    if not (CORPUS / "SOURCES.tsv").is_file():
        raise SystemExit(f"the corpus is not at {CORPUS} (set FORKLIFT_CORPUS)")
    want = args.max
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the stores when killed
    work = Path(tempfile.mkdtemp(prefix="fk-bench-small-"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "forklift")],
                   env=forklift_env(work), check=True)  # fmt: skip
    print("making the bases (forklift import + build, saved for both tools) ...", flush=True)
    archives = make_bases(work)
    if args.reprobe or not LIST.is_file():
        per_repo: dict[str, list[Path]] = {}
        for repo, path in corpus_candidates():
            per_repo.setdefault(repo, []).append(path)
        # round robin over the repositories: the first file of each, then the second, ...
        paths = [ps[i] for i in range(max(map(len, per_repo.values()))) for ps in
                 per_repo.values() if i < len(ps)]  # fmt: skip
    else:
        paths = [CORPUS / line.strip() for line in LIST.read_text().splitlines()
                 if line.strip() and not line.startswith("#")]  # fmt: skip
        paths = paths[:6] if args.quick else paths
    corpus = [prepare_corpus_case(p, work) for p in paths]
    by_name = {case.name: path for case, path in zip(corpus, paths, strict=True)}
    examples = example_cases(work)
    tools = [Forklift(work, archives, set()), Buildah(archives, set())]
    try:
        for tool in tools:
            tool.reset()
        print(f"probing {len(corpus)} corpus Dockerfiles and {len(examples)} examples ...")
        examples = probe(tools, examples, None)
        corpus = probe(tools, corpus, want if args.reprobe or not LIST.is_file() else None)
        if args.reprobe or not LIST.is_file():
            LIST.write_text(
                "# corpus Dockerfiles bench/build_small.py times (bench/build_small.py --reprobe)\n"
                + "".join(f"{by_name[c.name].relative_to(CORPUS)}\n" for c in corpus)
            )
        sets = {"examples": examples, "corpus": corpus}
        times: dict[str, dict[str, dict[str, list[Timing]]]] = {}
        for rnd in range(args.rounds):
            order = tools if rnd % 2 == 0 else tools[::-1]
            for tool in order:
                tool.reset()
            for case in examples + corpus:
                for scenario in ("cold", "no-op"):
                    for tool in order:
                        t = tool.build(case)
                        times.setdefault(case.name, {}).setdefault(scenario, {}).setdefault(
                            tool.name, []
                        ).append(t)
                print(
                    f"round {rnd + 1} {case.name[:60]:60} "
                    + "  ".join(
                        f"{s} fk {times[case.name][s]['forklift'][-1].wall:5.2f} "
                        f"bh {times[case.name][s]['buildah'][-1].wall:5.2f}"
                        for s in ("cold", "no-op")
                    )
                    + f"  load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
        if args.rounds:
            report(sets, times, args.rounds)
    finally:
        for tool in tools:
            tool.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(
    sets: dict[str, list[Case]], times: dict[str, dict[str, dict[str, list[Timing]]]], rounds: int
) -> None:
    print("\nper Dockerfile: medians (wall s), ratio = median of per-round buildah/forklift")
    print(f"{'Dockerfile':60} {'scenario':8} {'forklift':>8} {'buildah':>8} {'ratio':>7}")
    for set_name, cases in sets.items():
        if not cases:
            continue
        for scenario in ("cold", "no-op"):
            ratios, fk_total, bh_total, fk_cpu, bh_cpu = [], 0.0, 0.0, 0.0, 0.0
            for case in cases:
                t = times[case.name][scenario]
                fk, bh = t["forklift"], t["buildah"]
                ratio = statistics.median(b.wall / f.wall for f, b in zip(fk, bh, strict=True))
                ratios.append((ratio, case.name))
                fk_total += statistics.median(x.wall for x in fk)
                bh_total += statistics.median(x.wall for x in bh)
                fk_cpu += statistics.median(x.cpu for x in fk)
                bh_cpu += statistics.median(x.cpu for x in bh)
                print(
                    f"{case.name[:60]:60} {scenario:8} {statistics.median(x.wall for x in fk):8.2f}"
                    f" {statistics.median(x.wall for x in bh):8.2f} {ratio:6.2f}x"
                )
            slower = [name for r, name in ratios if r < 1.0]
            worst = min(ratios)
            median_ratio = statistics.median(r for r, _ in ratios)
            print(
                f"  {set_name} {scenario}: {len(cases)} Dockerfiles, median ratio {median_ratio:.2f}x,"
                f" worst {worst[0]:.2f}x ({worst[1]}), buildah faster on {len(slower)}"
            )
            emit_row(
                f"{scenario} build, {len(cases)} small {'example' if set_name == 'examples' else 'real-world'}"
                " Dockerfiles (sum of medians)",
                unit="s", forklift=round(fk_total, 2), peer="buildah bud --layers",
                peer_value=round(bh_total, 2), ratio=round(median_ratio, 2),
                cpu=round(fk_cpu, 2), peer_cpu=round(bh_cpu, 2), rounds=rounds,
                target="never slower (each >= 1x)", met=not slower,
                note=f"ratio: median per Dockerfile; worst {worst[0]:.2f}x;"
                f" buildah faster on {len(slower)} of {len(cases)}",
            )  # fmt: skip


if __name__ == "__main__":
    main()
