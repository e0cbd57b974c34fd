"""docker's container verbs scripts rely on: ``run -d`` with ``logs``, ``stop`` and ``wait``;
``run`` pulling a missing image; ``Created`` for a container that never started; one line
for a docker flag forklift does not have. Real runc, overlayfs, a real registry."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import Result, assert_no_traceback, run_cli
from tests.registry_server.servers import start_distribution


def fl(*args: str, home: Path | None = None, check: bool = False) -> Result:
    env = {"FORKLIFT_HOME": str(home)} if home is not None else None
    return run_cli(*args, env=env, check=check)


def _record(name: str) -> dict:
    return next(
        c for c in json.loads(fl("ps", "-a", "--format", "json").stdout) if c["name"] == name
    )


def _until(predicate, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_detached_run_logs_wait(busybox_image: str) -> None:
    started = fl(
        "run", "-d", "--name", "job", busybox_image, "sh", "-c",
        "echo one; echo oops >&2; printf 'two\\nthree'; exit 7",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    (cid,) = started.stdout.split()
    assert len(cid) == 64
    # wait blocks until the end and prints the exit code; the container keeps its logs
    waited = fl("wait", "job")
    assert (waited.returncode, waited.stdout) == (0, "7\n")
    logs = fl("logs", cid[:12])
    assert (logs.stdout, logs.stderr) == ("one\ntwo\nthree", "oops\n")
    # --tail counts lines across both streams, as docker's does; the two pipes are read by
    # separate threads, so where "oops" falls among the stdout lines is up to the scheduler
    tailed = fl("logs", "--tail", "2", "job")
    assert len(tailed.stdout.splitlines() + tailed.stderr.splitlines()) == 2
    assert tailed.stdout.endswith("three") and tailed.stdout in ("three", "two\nthree")
    stamped = fl("logs", "-t", "job").stdout.splitlines()
    assert stamped[0].endswith("Z one") and stamped[0][:4].isdigit()
    record = _record("job")
    assert (record["status"], record["exit_code"], record["detached"]) == ("exited", 7, True)
    assert fl("rm", "job").returncode == 0


def test_stop_sends_the_stop_signal_then_kill(busybox_image: str, home: Path) -> None:
    # a shell that traps TERM exits by itself; sleep as PID 1 ignores TERM and is killed
    polite = fl(
        "run", "-d", "--name", "polite", busybox_image, "sh", "-c",
        'trap "echo bye; exit 0" TERM; echo ready; while true; do sleep 0.1; done',
    )  # fmt: skip
    assert polite.returncode == 0, polite.stderr
    stubborn = fl("run", "-d", "--name", "stubborn", busybox_image, "sleep", "300")
    assert stubborn.returncode == 0, stubborn.stderr
    _until(lambda: "ready" in fl("logs", "polite").stdout, "the trap to be set")
    running = fl("ps").stdout
    assert "polite" in running and "stubborn" in running and "Up " in running
    assert fl("stop", "polite").stdout == "polite\n"
    assert _record("polite")["exit_code"] == 0
    assert fl("logs", "polite").stdout == "ready\nbye\n"
    stopped = fl("stop", "-t", "1", "stubborn")
    assert stopped.returncode == 0, stopped.stderr
    assert _record("stubborn")["exit_code"] == 137
    assert fl("wait", "stubborn").stdout == "137\n"
    # stop on a container that is not running changes nothing
    assert fl("stop", "stubborn").returncode == 0
    assert fl("ps", "-q").stdout == ""
    assert list((home / "run" / "runc").iterdir()) == []
    assert fl("rm", "polite", "stubborn").returncode == 0


def test_logs_follow_until_the_end_and_rm_of_detached(busybox_image: str) -> None:
    started = fl(
        "run",
        "-d",
        "--rm",
        busybox_image,
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
    )
    (cid,) = started.stdout.split()
    followed = fl("logs", "-f", cid)
    # either all of it (followed to the end) or the container was gone (--rm) before logs ran
    assert followed.stdout == "1\n2\n3\n" or "no such container" in followed.stderr
    _until(lambda: fl("ps", "-a", "-q").stdout == "", "--rm to remove the container")


def test_a_container_that_never_started_is_created(busybox_image: str) -> None:
    fg = fl("run", "--name", "fg", busybox_image, "no-such-command")
    assert fg.returncode == 127
    bg = fl("run", "-d", "--name", "bg", busybox_image, "no-such-command")
    assert bg.returncode == 127
    assert 'exec: "no-such-command": executable file not found' in bg.stderr
    for name in ("fg", "bg"):
        record = _record(name)
        assert record["status"] == "created" and record["exit_code"] == 127
        assert record["started"] is None and "no-such-command" in record["error"]
    rows = [line for line in fl("ps", "-a").stdout.splitlines()[1:]]
    assert len(rows) == 2 and all("Created" in r and "Exited" not in r for r in rows)
    assert fl("wait", "bg").stdout == "127\n"
    logs = fl("logs", "fg")
    assert logs.returncode != 0 and "foreground" in logs.stderr
    assert_no_traceback(logs)
    assert fl("rm", "fg", "bg").returncode == 0


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("-p", "8080:80"), "-p/--publish"),
        (("--publish=8080:80",), "-p/--publish"),
        (("--restart", "always"), "--restart"),
        (("--privileged",), "--privileged"),
        (("-m", "512m"), "-m/--memory"),
        (("--cap-add", "NET_ADMIN"), "--cap-add"),
    ],
)
def test_unsupported_docker_flags_get_one_line(
    busybox_image: str, flags: tuple[str, ...], says: str
) -> None:
    r = fl("run", *flags, busybox_image, "true")
    assert r.returncode == 125
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("Error: forklift run does not support")
    assert says in r.stderr
    assert "No such option" not in r.stderr
    # a flag after the image belongs to the command, not to forklift
    passed = fl("run", "--rm", busybox_image, "echo", *flags)
    assert passed.stdout.split() == list(flags)


def test_detached_needs_no_terminal_flags(busybox_image: str) -> None:
    r = fl("run", "-dit", busybox_image, "sh")
    assert r.returncode == 125 and "-d cannot be combined with -i or -t" in r.stderr


def test_run_pulls_a_missing_image(busybox_image: str, home: Path, tmp_path: Path) -> None:
    registry = start_distribution(tmp_path / "registry")
    try:
        remote = f"{registry.host}/tools/busybox:1"
        fl("push", busybox_image, remote, check=True)
        fresh = tmp_path / "fresh-home"
        never = fl("run", "--rm", "--pull", "never", remote, "true", home=fresh)
        assert never.returncode == 125 and "not in the local store" in never.stderr
        pulled = fl("run", "--rm", remote, "echo", "pulled and ran", home=fresh)
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout == "pulled and ran\n"
        assert f"Unable to find image '{remote}' locally" in pulled.stderr
        # now it is in the store: no pull, no message
        again = fl("run", "--rm", remote, "true", home=fresh)
        assert again.returncode == 0 and "Unable to find" not in again.stderr
        always = fl("run", "--rm", "--pull", "always", remote, "true", home=fresh)
        assert always.returncode == 0, always.stderr
        assert "Unable to find" not in always.stderr and "sha256:" in always.stderr
    finally:
        registry.stop()


def test_a_supervisor_that_died_before_starting_is_noticed(home: Path) -> None:
    import subprocess

    from forklift.runtime.containers import ContainerRecord, Containers, process_start
    from forklift.store import Store

    gone = subprocess.Popen(["sleep", "0"])
    start = process_start(gone.pid)
    gone.wait()
    containers = Containers(Store.open(home))
    record = ContainerRecord(
        id="a" * 64, name="orphaned", image="busybox", image_id="", image_digest="",
        command=("true",), created="2026-01-01T00:00:00Z", pid=gone.pid, pid_start=start,
        detached=True,
    )  # fmt: skip
    containers.dir_of(record.id).mkdir(parents=True)
    containers.save(record)
    (seen,) = containers.list(all=True)
    assert (seen.status, seen.exit_code) == ("created", 125)
    assert "supervisor died" in (seen.error or "")
    assert containers.wait("orphaned") == 125  # wait does not hang on it


@pytest.mark.parametrize("name", ["job\n", "-job", "a/b", ""])
def test_a_bad_container_name_is_refused_before_anything_runs(
    busybox_image: str, home: Path, name: str
) -> None:
    # "job\n" passed a `^...$` check once: Python's `$` matches before a final newline.
    r = fl("run", "--name", name, busybox_image, "echo", "ran")
    assert r.returncode != 0
    assert_no_traceback(r)
    assert "invalid container name" in r.stderr
    assert "ran" not in r.stdout
    assert fl("ps", "-a", "-q").stdout.strip() == ""
