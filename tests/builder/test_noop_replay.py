"""An unchanged rebuild is answered from the last build's record (forklift.build.noop).

Through the real CLI, runc and overlayfs. Whether a build was replayed is seen from
what the process imported: a replay never loads the builder or the Dockerfile front
end. Each change a real rebuild would see (content, a new file, the ignore file, the
Dockerfile, a build arg, a moved base tag, a pruned cache, a removed image) must make
the next build a real one, with the result that one gives.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from forklift.build import noop
from forklift.build.options import BuildOptions, BuildResult
from forklift.oci.digest import Digest
from forklift.store import Store
from tests.builder.test_build import write

pytestmark = pytest.mark.root

# Run the CLI, then say whether the builder was loaded (the CLI exits through sys.exit,
# after exit handlers).
PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write(
    "BUILDER-LOADED %s\\n" % ("forklift.build.builder" in sys.modules)))
from forklift.cli import main
main(sys.argv[1:])
"""

DOCKERFILE = """\
FROM busybox AS base
ARG GREETING=hi
ENV APP=/app
WORKDIR /app
COPY package.json ./
RUN cp package.json installed.json
COPY src/ ./src/

FROM base AS final
LABEL stage=final
COPY --from=base /app/installed.json /copied.json
RUN echo "$GREETING" > /greeting
CMD ["sh"]
"""


def build(ctx: Path, *extra: str) -> tuple[bool, str, str]:
    """``forklift build -t app:1 CTX``: (whether it was replayed, image ID, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "build", "--progress", "plain", "-t", "app:1", *extra,
         str(ctx)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    loaded = re.search(r"BUILDER-LOADED (True|False)", proc.stderr)
    assert loaded, proc.stderr
    built = re.search(r"Built ([0-9a-f]{12})", proc.stderr)
    assert built, proc.stderr
    log = proc.stderr[: loaded.start()]
    return loaded.group(1) == "False", built.group(1), log


def records(home: Path) -> list[Path]:
    return sorted((home / "cache" / "noop").glob("*.json"))


def steps(log: str) -> list[str]:
    """The step lines of a plain log, times left out (a replay takes none)."""
    return [re.sub(r"DONE \d+\.\d+s", "DONE", line) for line in log.splitlines()]


@pytest.fixture
def project(tmp_path: Path, busybox_image: str) -> Path:
    ctx = tmp_path / "ctx"
    files = {"Dockerfile": DOCKERFILE, "package.json": '{"deps": 1}'}
    files.update({f"src/m{i}.js": f"module{i}()\n" for i in range(5)})
    write(ctx, files)
    past = 1_700_000_000
    for path in ctx.rglob("*"):  # changed long before the build: recordable
        os.utime(path, (past, past), follow_symlinks=False)
    return ctx


def test_a_replay_shows_and_gives_what_a_real_noop_rebuild_does(home: Path, project: Path) -> None:
    replayed, cold_id, _ = build(project, "--build-arg", "UNUSED=1")
    assert not replayed
    assert len(records(home)) == 1
    # the first rebuild answers from the record; remove the record to see the real one
    replayed, replay_id, replay_log = build(project, "--build-arg", "UNUSED=1")
    assert replayed
    records(home)[0].unlink()
    replayed, real_id, real_log = build(project, "--build-arg", "UNUSED=1")
    assert not replayed
    assert replay_id == real_id == cold_id
    assert steps(replay_log) == steps(real_log)
    assert "CACHED" in replay_log and "UNUSED" in replay_log  # the unused build-arg warning
    # and the tag is applied (to another name too)
    replayed, other_id, _ = build(project, "--build-arg", "UNUSED=1", "-t", "other:2")
    assert replayed and other_id == cold_id
    images = subprocess.run(
        [sys.executable, "-m", "forklift", "images"], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(rf"other\s+2\s+{cold_id}", images), images


def _restore_times(path: Path, st: os.stat_result) -> None:
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def change_content_keep_size_and_mtime(ctx: Path, home: Path) -> None:
    path = ctx / "src" / "m1.js"
    st = path.stat()
    path.write_text("MODULE1()\n")
    _restore_times(path, st)


def add_a_file(ctx: Path, home: Path) -> None:
    (ctx / "src" / "new.js").write_text("new()\n")


def add_an_ignore_file(ctx: Path, home: Path) -> None:
    (ctx / ".dockerignore").write_text("src/m2.js\n")


def edit_the_dockerfile(ctx: Path, home: Path) -> None:
    (ctx / "Dockerfile").write_text(DOCKERFILE + "ENV EXTRA=1\n")


def move_the_base_tag(ctx: Path, home: Path) -> None:
    other = ctx.parent / "other"
    write(other, {"Dockerfile": "FROM busybox\nRUN touch /marker\n"})
    subprocess.run(
        [sys.executable, "-m", "forklift", "build", "-q", "-t", "busybox:latest", str(other)],
        check=True,
        capture_output=True,
    )


def prune_the_cache(ctx: Path, home: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "forklift", "prune", "--cache"], check=True, capture_output=True
    )


def remove_the_image(ctx: Path, home: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "forklift", "rmi", "app:1"], check=True, capture_output=True
    )


@pytest.mark.parametrize(
    "change, same_image",
    [
        (change_content_keep_size_and_mtime, False),
        (add_a_file, False),
        (add_an_ignore_file, False),
        (edit_the_dockerfile, False),
        (move_the_base_tag, False),
        (prune_the_cache, False),  # steps run again: new layers
        (remove_the_image, True),  # the cache still holds every step
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_a_change_makes_the_next_build_real(
    home: Path, project: Path, change: object, same_image: bool
) -> None:
    _, first_id, _ = build(project)
    assert build(project)[0]  # replayed
    change(project, home)  # type: ignore[operator]
    replayed, new_id, log = build(project)
    assert not replayed, log
    assert (new_id == first_id) is same_image, log
    if change is prune_the_cache:
        assert "#" in log and not re.search(r"RUN cp package.json installed.json\n#\d+ CACHED", log)


def test_another_build_arg_is_another_build(home: Path, project: Path) -> None:
    _, first_id, _ = build(project)
    replayed, other_id, _ = build(project, "--build-arg", "GREETING=hello")
    assert not replayed and other_id != first_id
    # the record now holds the second build: going back is a real build again
    replayed, back_id, _ = build(project)
    assert not replayed and back_id == first_id


@pytest.mark.parametrize(
    "extra",
    [("--no-cache",), ("--secret", "id=s,env=HOME"), ("--insecure-policy", "--lint")],
    ids=["no-cache", "secret", "lint"],
)
def test_builds_a_record_cannot_answer_always_run(
    home: Path, project: Path, extra: tuple[str, ...]
) -> None:
    build(project)
    assert build(project)[0]
    replayed, _, _ = build(project, *extra)
    assert not replayed


def test_a_policy_in_force_is_always_checked_for_real(
    home: Path, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(project)
    assert build(project)[0]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}]}))
    monkeypatch.setenv("FORKLIFT_POLICY", str(policy))
    proc = subprocess.run(
        [sys.executable, "-m", "forklift", "build", "-t", "app:1", str(project)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "busybox" in proc.stderr, proc.stderr


def test_a_source_through_a_symlink_is_not_recorded(home: Path, project: Path) -> None:
    (project / "linked").symlink_to("src")
    (project / "Dockerfile").write_text("FROM busybox\nCOPY linked/ /linked/\n")
    build(project)
    assert records(home) == []
    assert not build(project)[0]


def test_a_path_changed_since_the_build_started_is_not_recorded(home: Path, project: Path) -> None:
    store = Store.open()
    options = BuildOptions(context=str(project))
    path = project / "package.json"
    inputs = noop.ReplayInputs(
        paths=(str(path),),
        images=(),
        cache_keys=(),
        shown=((1, "[1/1] FROM scratch", "done"),),
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        manifest_size=2,
        layers=(),
    )
    result = BuildResult(Digest.of(b"{}"), Digest.of(b"{}"), (), ())
    ctime = path.lstat().st_ctime_ns
    assert not noop.save(store, options, inputs, result, started_ns=ctime)
    assert records(home) == []
    assert noop.save(store, options, inputs, result, started_ns=ctime + 10 * noop.RACY_NS)
    assert len(records(home)) == 1
    # a damaged record is ignored, never trusted
    records(home)[0].write_text('{"key": ')
    from forklift.build.progress import QuietProgress

    assert noop.replay(options, store, QuietProgress()) is None


def test_a_file_an_ignore_exception_takes_in_is_seen(home: Path, project: Path) -> None:
    # "docs" is excluded but "!docs/keep.md" may take a file below it back in: the walk
    # lists docs/, so a file appearing there is a change even though nothing was there
    (project / ".dockerignore").write_text("docs\n!docs/keep.md\n")
    (project / "docs").mkdir()
    (project / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx/\n")
    for path in project.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    _, first_id, _ = build(project)
    assert build(project)[0]
    (project / "docs" / "keep.md").write_text("kept\n")
    replayed, new_id, _ = build(project)
    assert not replayed and new_id != first_id
    (project / "docs" / "other.md").write_text("ignored\n")  # a change, even if ignored
    assert not build(project)[0]


def test_add_of_a_url_without_checksum_is_never_replayed(home: Path, project: Path) -> None:
    from tests.builder.test_add_url import Site, _serve

    for site in _serve(Site(files={"/data.txt": b"one\n"})):
        (project / "Dockerfile").write_text(f"FROM busybox\nADD {site.url('/data.txt')} /d\n")
        os.utime(project / "Dockerfile", (1_700_000_000, 1_700_000_000))
        build(project)
        assert records(home) == []
        site.files["/data.txt"] = b"two\n"  # what the URL serves decides the step
        replayed, _, log = build(project)
        assert not replayed and "CACHED" not in log.split("ADD", 1)[1]
