"""The stage scheduler, and the checks BuildOptions makes for every caller (not only the CLI)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from forklift.build.options import BuildOptions, Output, find_dockerfile, parse_output
from forklift.build.scheduler import run_stages
from forklift.errors import UsageError

# -- the scheduler ------------------------------------------------------------------------


def test_a_stage_starts_when_its_own_dependencies_are_done() -> None:
    # 0 is slow and independent; 2 needs only 1. Level by level, 2 would wait for 0 too;
    # here 0 can only finish once 2 has run, so the build completes only if 2 starts while
    # 0 is still running.
    two_ran = threading.Event()
    order: list[str] = []

    def run(i: int) -> int:
        if i == 0:
            assert two_ran.wait(timeout=30), "stage 2 waited for stage 0 (level by level)"
            order.append("0 done")
        elif i == 2:
            order.append("2 ran")
            two_ran.set()
        return i * 10

    results = run_stages({0: [], 1: [], 2: [1]}, run, jobs=2)
    assert results == {0: 0, 1: 10, 2: 20}
    assert order == ["2 ran", "0 done"]


def test_one_job_runs_in_file_order_after_dependencies() -> None:
    seen: list[int] = []
    run_stages({0: [2], 1: [], 2: [], 3: [0, 1]}, lambda i: seen.append(i), jobs=1)
    assert seen == [1, 2, 0, 3]


def test_the_first_failure_stops_what_has_not_started() -> None:
    # 0 fails while 1 runs; 2 (waiting for 1) must not start after that, and 1 finishes.
    failed = threading.Event()
    started: list[int] = []

    def run(i: int) -> int:
        started.append(i)
        if i == 0:
            failed.set()
            raise RuntimeError("stage 0 failed")
        if i == 1:
            assert failed.wait(timeout=30)
        return i

    with pytest.raises(RuntimeError, match="stage 0 failed"):
        run_stages({0: [], 1: [], 2: [1]}, run, jobs=2)
    assert sorted(started) == [0, 1]


# -- BuildOptions -------------------------------------------------------------------------


def test_options_check_what_the_cli_used_to_check(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with pytest.raises(UsageError, match="is not a directory"):
        BuildOptions(context=str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="not a number of seconds"):
        BuildOptions(context=str(ctx), source_date_epoch="yesterday")
    with pytest.raises(UsageError, match="not a number of seconds"):
        BuildOptions(context=str(ctx), build_args={"SOURCE_DATE_EPOCH": "-5"})
    with pytest.raises(UsageError, match="--rewrite-timestamp needs SOURCE_DATE_EPOCH"):
        BuildOptions(context=str(ctx), rewrite_timestamp=True)
    with pytest.raises(UsageError, match="not a directory or docker-image://REF"):
        BuildOptions(context=str(ctx), build_contexts={"deps": str(tmp_path / "nope")})
    # the epoch comes from the build arg when not given, as a number
    opts = BuildOptions(context=str(ctx), build_args={"SOURCE_DATE_EPOCH": "1700000000"})
    assert opts.epoch == 1_700_000_000
    assert (
        BuildOptions(context=str(ctx), source_date_epoch=" 42 ", rewrite_timestamp=True).epoch == 42
    )
    assert BuildOptions(context=str(ctx), build_contexts={"img": "docker-image://alpine"})


def test_relative_dockerfile_follows_dockers_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile.dev").write_text("FROM scratch\n")
    (tmp_path / "Other").write_text("FROM scratch\n")
    monkeypatch.chdir(tmp_path)
    # relative to the current directory first, then to the context
    assert BuildOptions(context="ctx", dockerfile="Other").dockerfile == "Other"
    assert BuildOptions(context="ctx", dockerfile="Dockerfile.dev").dockerfile == str(
        Path("ctx") / "Dockerfile.dev"
    )
    assert BuildOptions(context="ctx").dockerfile == str(Path("ctx") / "Dockerfile")
    (ctx / "Containerfile").write_text("FROM scratch\n")
    assert find_dockerfile("ctx", None) == str(Path("ctx") / "Containerfile")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("type=image", Output("image")),
        ("type=oci,dest=out.tar", Output("oci", "out.tar")),
        ("type=docker,dest=-", Output("docker", "-")),
        ("type=tar,dest=fs.tar", Output("tar", "fs.tar")),
        ("type=local,dest=out", Output("local", "out")),
        ("out", Output("local", "out")),  # docker: a bare path is a local export
        ("-", Output("tar", "-")),  # docker: "-" is a tar on standard output
    ],
)
def test_output_spellings(text: str, expected: Output) -> None:
    assert parse_output(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("type=zip,dest=x", "unsupported output type 'zip'"),
        ("type=tar", "needs dest="),
        ("type=local,dest=-", "type=local writes a directory"),
        ("type=oci,dest=x,compression=zstd", "unsupported key 'compression'"),
    ],
)
def test_bad_outputs(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_output(text)
