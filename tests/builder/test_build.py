"""forklift build: cache behaviour, failures, secrets, mounts, heredocs, outputs (runc + overlayfs)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from forklift.build.builder import build
from forklift.build.options import BuildOptions, Secret
from forklift.errors import BuildError, NotFound
from forklift.reference import parse_reference
from forklift.store import Store
from tests.helpers import assert_no_traceback

pytestmark = pytest.mark.root


def layer_members(store: Store, image: str) -> dict[str, bytes | None]:
    """Every member of every layer of an image: path -> content (None for non-files)."""
    img = store.resolve(image)
    out: dict[str, bytes | None] = {}
    for layer in img.manifest.layers:  # type: ignore[union-attr]
        data = store.read_blob(layer.digest)
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            for m in tf:
                f = tf.extractfile(m) if m.isfile() else None
                out[m.name] = f.read() if f else None
    return out


def write(ctx: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def do_build(ctx: Path, tag: str = "t:1", **kw) -> tuple:
    from forklift.build.progress import PlainProgress

    out = io.StringIO()
    result = build(
        BuildOptions(context=str(ctx), tags=(parse_reference(tag),), **kw),
        progress=PlainProgress(out),
    )
    return result, out.getvalue()


NODE_STYLE = """\
FROM busybox
WORKDIR /app
COPY package.json ./
RUN echo "installing deps from $(cat package.json)" && mkdir -p node_modules && cp package.json node_modules/.installed
COPY src/ ./src/
RUN cat src/*.js > bundle.js
"""


@pytest.fixture
def node_ctx(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": NODE_STYLE,
            "package.json": '{"deps": 1}',
            "src/a.js": "a()",
            "src/b.js": "b()",
        },
    )
    return ctx


def cached_lines(result) -> list[bool]:
    return [s.cached for s in result.steps if not s.instruction.upper().startswith("FROM")]


def test_cache_rules(busybox_image: str, node_ctx: Path) -> None:
    first, _ = do_build(node_ctx)
    assert not any(cached_lines(first))
    # no-op: everything cached, same image
    again, log = do_build(node_ctx)
    assert all(cached_lines(again)) and again.image_id == first.image_id
    assert "cache miss" not in log
    # touching a file without changing it: still cached
    os.utime(node_ctx / "src" / "a.js", (1, 1))
    touched, _ = do_build(node_ctx)
    assert all(cached_lines(touched))
    # one source file changes: only from COPY src
    (node_ctx / "src" / "b.js").write_text("b2()")
    changed, log = do_build(node_ctx)
    steps = {s.instruction: s.cached for s in changed.steps}
    assert steps["COPY package.json ./"] is True
    assert steps[next(k for k in steps if k.startswith("RUN echo"))] is True
    assert steps["COPY src/ ./src/"] is False
    assert steps["RUN cat src/*.js > bundle.js"] is False
    # the miss is named by instruction and line; the step's header above shows the whole text
    assert "cache miss: COPY (line 5): src/b.js changed" in log
    # the dependency manifest changes: install runs again
    (node_ctx / "package.json").write_text('{"deps": 2}')
    deps, log = do_build(node_ctx)
    steps = {s.instruction: s.cached for s in deps.steps}
    assert steps["COPY package.json ./"] is False
    assert "package.json changed" in log
    members = layer_members(Store.open(), "t:1")
    assert members["app/node_modules/.installed"] == b'{"deps": 2}'


def test_build_arg_misses_at_first_use(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nARG VERSION=1.2\nRUN echo before > /before\nRUN echo $VERSION > /v\n"
        },
    )
    do_build(ctx)
    result, log = do_build(ctx, build_args={"VERSION": "1.3"})
    steps = {s.instruction: s.cached for s in result.steps}
    # BuildKit: every ARG in scope reaches RUN as env, so the first RUN after ARG misses
    assert steps["RUN echo before > /before"] is False
    assert "build arg VERSION changed 1.2 -> 1.3" in log
    assert layer_members(Store.open(), "t:1")["v"] == b"1.3\n"


def test_failing_run_names_line_and_exit_code_and_tags_nothing(
    busybox_image: str, tmp_path: Path, cli
) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo one\nRUN echo some output && exit 3\n"})
    with pytest.raises(BuildError) as info:
        do_build(ctx, tag="broken:1")
    assert info.value.location is not None and info.value.location.line == 3
    assert "exit code 3" in info.value.message
    assert "some output" in (info.value.hint or "")
    with pytest.raises(NotFound):
        Store.open().resolve("broken:1")
    result = cli("build", "-t", "broken:2", "--progress", "plain", str(ctx))
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "Dockerfile:3" in result.stderr and "exit code 3" in result.stderr


def test_hostile_symlink_cannot_read_outside_the_context(
    busybox_image: str, tmp_path: Path
) -> None:
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("TOP SECRET")
    ctx = tmp_path / "ctx"
    write(
        ctx, {"Dockerfile": "FROM busybox\nCOPY link /copied\nCOPY dir/ /dir/\n", "dir/file": "x"}
    )
    (ctx / "link").symlink_to(secret)
    (ctx / "dir" / "inner").symlink_to(secret)
    # The top-level source symlink resolves inside the context (as in a chroot): not found there.
    with pytest.raises(NotFound):
        do_build(ctx)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY dir/ /dir/\n")
    do_build(ctx)
    members = layer_members(Store.open(), "t:1")
    assert all(v != b"TOP SECRET" for v in members.values())
    assert members["dir/inner"] is None  # kept as a symlink, not followed


def test_secrets_stay_out_of_layers_history_and_cache_key(
    busybox_image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    secret_file = tmp_path / "token"
    secret_file.write_text("s3cr3t-value")
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=secret,id=token cat /run/secrets/token > /tmp/len && wc -c /tmp/len && rm /tmp/len\n"
            'RUN --mount=type=secret,id=token,env=TOKEN test "${#TOKEN}" = 12 && echo ok > /ok\n'
        },
    )
    do_build(ctx, secrets={"token": Secret("token", src=str(secret_file))})
    store = Store.open()
    members = layer_members(store, "t:1")
    assert members["ok"] == b"ok\n"
    assert not any(k.startswith("run/secrets") for k in members)
    assert all(b"s3cr3t" not in (v or b"") for v in members.values())
    image = store.resolve("t:1")
    assert "s3cr3t" not in json.dumps(image.config.to_json())  # type: ignore[union-attr]
    # a different secret value (same length) does not invalidate the cache
    (tmp_path / "other").write_text("another-valu")
    again, _ = do_build(ctx, secrets={"token": Secret("token", src=str(tmp_path / "other"))})
    assert all(cached_lines(again))


def test_cache_mount_persists_and_never_enters_a_layer(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nARG N\nRUN --mount=type=cache,target=/var/cache/x echo $N >> /var/cache/x/log && cat /var/cache/x/log > /seen\n"
        },
    )
    do_build(ctx, build_args={"N": "1"})
    do_build(ctx, build_args={"N": "2"})
    members = layer_members(Store.open(), "t:1")
    assert members["seen"] == b"1\n2\n"
    assert not any(k.startswith("var/cache/x/") for k in members)


def test_bind_tmpfs_and_network_none(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/in > /copied && "
            "! touch /mnt/data/new 2>/dev/null\n"
            "RUN --mount=type=tmpfs,target=/scratch echo tmp > /scratch/f && test -f /scratch/f\n"
            "RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces\n",
            "data/in": "bound",
            ".dockerignore": "data/ignored\n",
            "data/ignored": "hidden",
        },
    )
    do_build(ctx)
    members = layer_members(Store.open(), "t:1")
    assert members["copied"] == b"bound"
    assert not any(k.startswith(("scratch/", "mnt/data/")) for k in members)
    assert members["ifaces"] == b"lo\n"


def test_heredocs_in_run_and_copy(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\n"
            "RUN <<EOF\necho from heredoc > /h1\necho second >> /h1\nEOF\n"
            'RUN <<EOF\n#!/bin/sh\necho "shebang $0" > /h2\nEOF\n'
            "COPY <<EOT /etc/greeting\nhello $NAME\nEOT\n"
            "RUN cat <<EOF > /h3\nfed via stdin\nEOF\n",
        },
    )
    do_build(ctx)
    members = layer_members(Store.open(), "t:1")
    assert members["h1"] == b"from heredoc\nsecond\n"
    assert members["h2"].startswith(b"shebang ")  # type: ignore[union-attr]
    assert (
        members["etc/greeting"] == b"hello \n"
    )  # $NAME is unset: expanded to empty, as BuildKit does
    assert members["h3"] == b"fed via stdin\n"


def test_run_deletions_become_whiteouts(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nRUN mkdir -p /d && echo x > /d/f && echo y > /gone\nRUN rm /gone /d/f\n"
        },
    )
    do_build(ctx)
    members = layer_members(Store.open(), "t:1")
    assert ".wh.gone" in members and "d/.wh.f" in members


def test_metadata_and_history(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nLABEL a=b\nENV PATH=/bin:/usr/bin X=1\nEXPOSE 8080\nUSER nobody\n"
            'WORKDIR /srv/app\nVOLUME /data\nSTOPSIGNAL SIGTERM\nENTRYPOINT ["/bin/sh", "-c"]\nCMD ["echo hi"]\n'
        },
    )
    do_build(ctx, labels={"extra": "1"})
    image = Store.open().resolve("t:1")
    c = image.config.config  # type: ignore[union-attr]
    assert c.labels == {"a": "b", "extra": "1"}
    assert c.env_dict()["X"] == "1" and c.exposed_ports == ("8080/tcp",)
    assert c.user == "nobody" and c.working_dir == "/srv/app" and c.volumes == ("/data",)
    assert c.entrypoint == ("/bin/sh", "-c") and c.cmd == ("echo hi",)
    history = image.config.history  # type: ignore[union-attr]
    assert history[-1].created_by == 'CMD ["echo hi"]' and history[-1].empty_layer
    assert history[-1].comment == "forklift: Dockerfile:10"
    members = layer_members(Store.open(), "t:1")
    assert "srv/app/" in members or "srv/app" in members  # WORKDIR created the directory


def test_source_date_epoch_reproducible(busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY f /f\nRUN echo built > /out\n", "f": "data"})
    a, _ = do_build(
        ctx, tag="r:1", source_date_epoch=1700000000, rewrite_timestamp=True, no_cache=True
    )
    os.utime(
        ctx / "f", (2_000_000_000, 2_000_000_000)
    )  # a fresh checkout elsewhere: newer than the epoch
    b, _ = do_build(
        ctx, tag="r:2", source_date_epoch=1700000000, rewrite_timestamp=True, no_cache=True
    )
    assert a.digest == b.digest
    image = Store.open().resolve("r:1")
    assert image.config.created == "2023-11-14T22:13:20Z"  # type: ignore[union-attr]


def test_multistage_only_needed_stages_and_outputs(busybox_image: str, tmp_path: Path, cli) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox AS unused\nRUN exit 1\n"
            "FROM busybox AS build\nRUN echo artifact > /artifact\n"
            "FROM scratch\nCOPY --from=build /artifact /artifact\nCOPY --from=1 /bin/busybox /busybox\n",
        },
    )
    result, _ = do_build(ctx, tag="ms:1")
    assert {s.stage for s in result.steps} == {"build", "stage-2"}
    members = layer_members(Store.open(), "ms:1")
    assert set(members) == {"artifact", "busybox"}
    # intermediate stages never become images
    names = {n.familiar() for i in Store.open().images() for n in i.names}
    assert names == {"busybox:latest", "ms:1"}
    out = tmp_path / "img.tar"
    r = cli(
        "build",
        "-q",
        "-o",
        f"type=docker,dest={out}",
        "-t",
        "ms:2",
        "--iidfile",
        str(tmp_path / "iid"),
        str(ctx),
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "iid").read_text() == r.stdout.strip()
    with tarfile.open(out) as tf:
        assert json.load(tf.extractfile("manifest.json"))[0]["RepoTags"] == ["ms:2"]  # type: ignore[arg-type]


def test_parse_errors_and_missing_base(home: Path, tmp_path: Path, cli) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nBOGUS x\n"})
    r = cli("build", str(ctx))
    assert r.returncode != 0 and "Dockerfile:2" in r.stderr
    assert_no_traceback(r)
    write(ctx, {"Dockerfile": "FROM nothere:1\nRUN true\n"})
    r = cli("build", str(ctx))
    assert r.returncode != 0 and "nothere:1" in r.stderr
    assert_no_traceback(r)


def test_print_targets_and_outline(tmp_path: Path, cli) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "# base stage\nFROM busybox AS base\n# VERSION the version\nARG VERSION=1\nFROM base AS final\n"
        },
    )
    r = cli("build", "--print", "targets", str(ctx))
    assert r.returncode == 0 and "base" in r.stdout and "final (default)" in r.stdout
    r = cli("build", "--print", "outline", "--target", "base", "--format", "json", str(ctx))
    assert json.loads(r.stdout)["args"][0]["name"] == "VERSION"


def test_unnamed_stages_are_listed_and_refused_alike(home: Path, tmp_path: Path, cli) -> None:
    # BuildKit names no unnamed stage: --print targets shows no name for it (the last one is
    # "(default)"), --target cannot name it, and the hint offers only the names there are.
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox AS base\nFROM base\nRUN true\nFROM scratch\n"})
    r = cli("build", "--print", "targets", str(ctx))
    assert r.returncode == 0, r.stderr
    assert [line.strip() for line in r.stdout.splitlines()] == [
        "TARGET      DESCRIPTION",
        "base",
        "",
        "(default)",
    ]
    targets = json.loads(cli("build", "--print", "targets", "--format", "json", str(ctx)).stdout)
    assert [t.get("name") for t in targets["targets"]] == ["base", None, None]
    for name in ("stage-1", "1"):
        r = cli("build", "--target", name, str(ctx))
        assert r.returncode != 0
        assert_no_traceback(r)
        assert f'Error: target stage "{name}" could not be found' in r.stderr
        assert "Hint: stages: base\n" in r.stderr
    r = cli("build", "--target", "bsae", str(ctx))
    assert 'target stage "bsae" could not be found (did you mean base?)' in r.stderr


def test_outline_of_an_unnamed_target_says_what_it_found(tmp_path: Path, cli) -> None:
    # examples/go-style: the target is the unnamed last stage, and neither it nor the stage it
    # copies from declares an ARG or mounts a secret -- an empty outline, said in words.
    example = Path(__file__).resolve().parents[2] / "examples" / "go-style"
    r = cli("build", "--print", "outline", str(example))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "TARGET:      (default)"
    assert "No build args, secrets or SSH" in r.stdout
    r = cli("dockerfile", "outline", "--format", "json", str(example))
    assert json.loads(r.stdout) == {"args": [], "secrets": [], "ssh": []}
    r = cli("build", "--print", "outline", "--target", "build", "--format", "json", str(example))
    assert json.loads(r.stdout)["name"] == "build"


def test_progress_shows_the_expanded_base_and_short_miss_lines(
    busybox_image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "ARG BASE=busybox\nFROM ${BASE} AS build\nARG V=1\n"
            "RUN echo $V \\\n        > /v\n",
        },
    )
    do_build(ctx)
    _, log = do_build(ctx, build_args={"V": "2"})
    digest = Store.open().resolve("busybox:latest").digest
    # (a file with one stage names none, as BuildKit's progress does)
    assert f"#2 [1/3] FROM docker.io/library/busybox:latest@{digest}\n" in log
    assert "${BASE}" not in log
    assert "[internal] load metadata for docker.io/library/busybox:latest" in log
    # the step's header shows the instruction once; the miss line names it by keyword and line
    assert "cache miss: RUN (line 4): build arg V changed 1 -> 2" in log
    assert log.count("> /v") == 1


def test_check_runs_the_checks_and_never_builds(busybox_image: str, tmp_path: Path, cli) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox AS a\nFROM busybox AS a\nRUN echo built > /x\n"})
    r = cli("build", "--check", "-t", "checked:1", str(ctx))
    assert r.returncode == 1  # a check failed (docker exits non-zero too)
    assert "FL507" in r.stdout and "Duplicate stage name" in r.stdout
    assert "Check complete" in r.stdout
    quiet = cli("build", "--check", "-q", str(ctx))
    assert (quiet.returncode, quiet.stdout) == (1, "")  # -q: the exit code says it all
    # nothing to fix: exit 0, and still nothing is built
    write(
        ctx, {"Dockerfile": 'FROM busybox:1.36 AS a\nRUN echo built > /x\nUSER 1000\nCMD ["sh"]\n'}
    )
    (ctx / ".dockerignore").write_text(".git\n")
    ok = cli("build", "--check", "-t", "checked:2", str(ctx))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "checked" not in cli("images").stdout


def test_lint_first_then_build(busybox_image: str, tmp_path: Path, cli) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox AS a\nFROM busybox AS a\nRUN echo built > /x\n"})
    r = cli("build", "--lint", "-t", "linted:1", str(ctx))
    assert r.returncode == 1
    assert_no_traceback(r)
    assert "FL507" in r.stderr and "did not start" in r.stderr
    assert "linted:1" not in cli("images").stdout
    write(ctx, {"Dockerfile": "FROM busybox AS a\nRUN echo built > /x\n"})
    r = cli("build", "--lint", "-q", "-t", "linted:2", str(ctx))
    assert r.returncode == 0, r.stderr  # warnings only: the build runs
    assert "linted" in cli("images").stdout


def test_prune_keeps_build_cache_and_its_snapshots(
    busybox_image: str, tmp_path: Path, home: Path
) -> None:
    ctx = tmp_path / "ctx"
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n"})
    do_build(ctx)
    Store.open().remove("t:1")
    snapshots = home / "snapshots"
    before = {p.name for p in snapshots.iterdir() if len(p.name) == 64}
    report = _collecting_store().prune()
    after = {p.name for p in snapshots.iterdir() if len(p.name) == 64}
    assert before and before == after, report  # cached RUN results stay unpacked
    again, _ = do_build(ctx)
    assert all(cached_lines(again))
    _collecting_store().prune(cache=True)
    rebuilt, _ = do_build(ctx)
    assert not any(cached_lines(rebuilt))


def _collecting_store() -> Store:
    """The store with the runtime's collector, as the CLI composes it for prune."""
    from forklift.runtime.recovery import RuntimeCollector

    return Store.open(collectors=[RuntimeCollector()])


def test_outputs_local_tar_and_stdout(busybox_image: str, tmp_path: Path, cli, podman) -> None:
    ctx = tmp_path / "ctx"
    write(
        ctx,
        {
            "Dockerfile": "FROM busybox\nRUN mkdir /out && echo built > /out/x && rm /bin/ls\n"
            "COPY a /a\n",
            "a": "from the context\n",
        },
    )
    # type=local: the final filesystem in a directory (the RUN's deletion applied)
    local = tmp_path / "local"
    r = cli("build", "-q", "-o", f"type=local,dest={local}", str(ctx))
    assert r.returncode == 0, r.stderr
    assert (local / "out" / "x").read_text() == "built\n"
    assert (local / "a").read_text() == "from the context\n"
    assert (local / "bin" / "busybox").is_file() and not (local / "bin" / "ls").exists()
    # docker's shorthand: -o DIR is type=local
    bare = tmp_path / "bare"
    assert cli("build", "-q", "-o", str(bare), str(ctx)).returncode == 0
    assert (bare / "out" / "x").read_text() == "built\n"

    def names(data: bytes) -> set[str]:
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            return {m.name for m in tf}

    # type=tar to a file and to standard output: the same filesystem, no whiteouts
    tar_file = tmp_path / "fs.tar"
    assert cli("build", "-q", "-o", f"type=tar,dest={tar_file}", str(ctx)).returncode == 0
    from_file = names(tar_file.read_bytes())
    assert {"out/x", "a", "bin/busybox"} <= from_file and "bin/ls" not in from_file
    assert not any(".wh." in n for n in from_file)
    out = subprocess.run(
        [sys.executable, "-m", "forklift", "build", "-o", "-", str(ctx)],
        capture_output=True,
        check=True,
    )
    assert names(out.stdout) == from_file
    assert "Built" in out.stderr.decode()  # progress and the summary stay on stderr
    # oci and docker archives on standard output, read by podman
    for kind in ("oci", "docker"):
        path = tmp_path / f"stdout-{kind}.tar"
        with open(path, "wb") as f:
            subprocess.run(
                [sys.executable, "-m", "forklift", "build", "-q", "-t", f"out:{kind}",
                 "-o", f"type={kind},dest=-", str(ctx)],
                stdout=f,
                check=True,
            )  # fmt: skip
        loaded = podman("load", "-i", str(path))
        image = loaded.stdout.strip().split()[-1]
        cat = podman("run", "--rm", "--net", "none", image, "cat", "/out/x")
        assert cat.stdout == "built\n"
    # nothing to a terminal, and type=local needs a directory
    bad = cli("build", "-o", "type=local,dest=-", str(ctx))
    assert bad.returncode != 0 and "type=local writes a directory" in bad.stderr
    bad = cli("build", "-o", "type=tar", str(ctx))
    assert bad.returncode != 0 and "needs dest=" in bad.stderr
