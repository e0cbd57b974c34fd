"""State a killed forklift leaves behind is found and cleaned (issue 10, item 16).

Each test SIGKILLs a real forklift process at some point of a build, a ``run``
or a pull, checks that the leftovers are really there (``/proc/mounts``,
``runc list``) and that ``fsck`` reports them, then that the next command
cleans them, and that live work of another process is never touched.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from forklift.oci.digest import Digest
from forklift.runtime import overlay
from tests.fake_registry import StallingRegistry, image_documents, stalling_registry
from tests.helpers import build_many_files_image, run_cli

SECRET = "s3cr3t-value-that-must-not-stay-on-disk"


def _spawn(home: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "forklift", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "FORKLIFT_HOME": str(home)},
        cwd=cwd,
    )


def _wait_for(what: str, ready: Callable[[], object], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"exited ({proc.returncode}) before {what}: {err.decode()}")
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Not communicate(): a container forklift left running may hold the same pipes.
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _runc_list(home: Path) -> list[str]:
    root = home / "run" / "runc"
    if not root.is_dir():
        return []
    out = subprocess.run(
        ["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def _entries(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.is_dir() else []


def _fsck_leftovers(home: Path) -> list[dict[str, str]]:
    result = run_cli("fsck", "--format", "json")
    report = json.loads(result.stdout)
    assert (result.returncode == 0) == (not report["leftovers"] and not report["problems"])
    return report["leftovers"]


def _assert_clean(home: Path) -> None:
    assert overlay.mounts_under(home) == []
    assert _runc_list(home) == []
    assert _entries(home / "snapshots" / "active") == []
    assert _entries(home / "snapshots" / "tmp") == []
    assert _entries(home / "run" / "bundles") == []
    assert _fsck_leftovers(home) == []


def _age(paths: list[Path]) -> None:
    """Make temporary files look as old as a crash a minute ago (the grace period is seconds)."""
    old = time.time() - 60
    for p in paths:
        os.utime(p, (old, old))


def test_killed_during_a_run_step_with_a_secret(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok && sleep 300\n"
    )
    (tmp_path / "tok").write_text(SECRET)
    build = _spawn(home, "build", "--secret", f"id=tok,src={tmp_path / 'tok'}", str(ctx))
    _wait_for("the RUN container", lambda: _runc_list(home), build)
    _kill9(build)
    # What the killed build left: its container still running, the rootfs overlay, the
    # tmpfs holding the secret, the workspace and scratch directories, the bundle.
    (container,) = _runc_list(home)
    mounts = overlay.mounts_under(home)
    assert any(m.endswith("/rootfs") for m in mounts) and any("/secrets" in m for m in mounts)
    kinds = {item["kind"] for item in _fsck_leftovers(home)}
    assert {"container", "mount", "directory"} <= kinds
    # The next command (any of them) cleans up, and says so.
    images = run_cli("images")
    assert images.returncode == 0
    assert "Cleaned up after a killed forklift process" in images.stderr
    _assert_clean(home)
    assert not (home / "run" / "runc" / container).exists()
    for path in home.rglob("*"):  # the secret never reached the disk
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path


def test_killed_during_a_run_step_with_a_filtered_context_bind(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    # A bind mount of a context directory with ignored files is a filtered copy. It lives
    # in the step's scratch space, which recovery knows, never in $TMPDIR, where a
    # killed build would leave it for good.
    ctx = tmp_path / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "keep.txt").write_text("kept")
    (ctx / "src" / "drop.log").write_text("ignored")
    (ctx / ".dockerignore").write_text("**/*.log\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN --mount=type=bind,source=src,target=/s cat /s/keep.txt && sleep 300\n"
    )
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    build = subprocess.Popen(
        [sys.executable, "-m", "forklift", "build", str(ctx)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "FORKLIFT_HOME": str(home), "TMPDIR": str(tmpdir)},
    )
    _wait_for("the RUN container", lambda: _runc_list(home), build)
    _kill9(build)
    assert _entries(tmpdir) == []
    (scratch,) = [p for p in (home / "snapshots" / "active").iterdir() if p.name.startswith("s-")]
    (copy,) = scratch.glob("bind-ctx-*/d")
    assert (copy / "keep.txt").read_text() == "kept"
    assert not (copy / "drop.log").exists()
    assert run_cli("images").returncode == 0
    _assert_clean(home)


def test_killed_during_a_build_of_a_context_on_stdin(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    # `build -` unpacks the context tar into the snapshotter's scratch space (known to
    # recovery), not into $TMPDIR, where a killed build would leave it for good.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            ("Dockerfile", b"FROM busybox\nCOPY data.txt /\nRUN sleep 300\n"),
            ("data.txt", b"from stdin"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    build = subprocess.Popen(
        [sys.executable, "-m", "forklift", "build", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "FORKLIFT_HOME": str(home), "TMPDIR": str(tmpdir)},
    )
    assert build.stdin is not None
    build.stdin.write(buf.getvalue())
    build.stdin.close()
    _wait_for("the RUN container", lambda: _runc_list(home), build)
    _kill9(build)
    assert _entries(tmpdir) == []
    unpacked = list((home / "snapshots" / "active").glob("s-*/data.txt"))
    assert [p.read_text() for p in unpacked] == ["from stdin"]
    assert run_cli("images").returncode == 0
    _assert_clean(home)


@pytest.mark.parametrize("verb", ["save", "build"])
def test_killed_archive_to_a_pipe_leaves_no_spool(
    home: Path, busybox_image: str, tmp_path: Path, verb: str
) -> None:
    # `save` and `build -o type=docker,dest=-` spool the archive first. Killed while the
    # pipe is full (nobody reads it), the spool is in the scratch space the next command
    # cleans, not in $TMPDIR or anywhere else.
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nLABEL spooled=yes\n")
    args = (
        ["save", busybox_image]
        if verb == "save"
        else ["build", "-o", "type=docker,dest=-", str(ctx)]
    )
    save = subprocess.Popen(
        [sys.executable, "-m", "forklift", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "FORKLIFT_HOME": str(home), "TMPDIR": str(tmpdir)},
    )
    active = home / "snapshots" / "active"

    def spooled() -> bool:
        return any(p.stat().st_size > 1 << 20 for p in active.glob("s-*/archive.tar"))

    _wait_for("the spooled archive", spooled, save)
    _kill9(save)
    assert _entries(tmpdir) == []
    before = set(home.iterdir())
    assert run_cli("images").returncode == 0
    _assert_clean(home)
    assert not {p for p in before if p.name.startswith("export-")}


def test_killed_while_unpacking_a_layer_over_its_parent(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    # A second layer of many files: unpacked through an overlay of the first (a mount).
    build_many_files_image(tmp_path / "ctx")
    tmp = home / "snapshots" / "tmp"
    run = _spawn(home, "run", "--rm", "many:1", "true")
    _wait_for("the unpack overlay", lambda: overlay.mounts_under(tmp), run)
    _kill9(run)
    assert overlay.mounts_under(tmp)
    left = _fsck_leftovers(home)
    assert {"mount", "directory"} <= {item["kind"] for item in left}
    assert run_cli("prune").returncode == 0  # prune cleans too, and keeps the image
    _assert_clean(home)
    again = run_cli("run", "--rm", "many:1", "sh", "-c", "ls /many | wc -l")
    assert again.stdout.strip() == "6000", again.stderr


def test_killed_while_writing_the_layer_of_a_run_step(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN busybox dd if=/dev/urandom of=/big bs=1M count=300 2>/dev/null\n"
    )
    partials = home / ".tmp"
    build = _spawn(home, "build", str(ctx))
    _wait_for("a partial layer blob", lambda: _entries(partials), build)
    _kill9(build)
    left = [partials / n for n in _entries(partials)]
    assert left and all(n.name.endswith(".partial") for n in left)
    _age(left)
    kinds = [item["kind"] for item in _fsck_leftovers(home)]
    assert "temporary file" in kinds and "directory" in kinds  # the blob and the workspace
    assert run_cli("images").returncode == 0
    assert _entries(partials) == []
    _assert_clean(home)


def test_killed_forklift_run_rm_is_removed(home: Path, busybox_image: str) -> None:
    run = _spawn(home, "run", "--rm", "--name", "gone", busybox_image, "sleep", "300")
    _wait_for("the container", lambda: _runc_list(home), run)
    _kill9(run)
    assert _runc_list(home) and overlay.mounts_under(home)
    assert [x["kind"] for x in _fsck_leftovers(home)].count("container") >= 1
    listed = run_cli("ps", "-a", "--format", "json")
    assert json.loads(listed.stdout) == []  # --rm: removed, not just marked exited
    _assert_clean(home)
    assert _entries(home / "containers") in ([], [".lock"])


def _tar_gz(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), 1)


def test_killed_during_a_pull(home: Path) -> None:
    layers = [_tar_gz("a", os.urandom(1 << 20)), _tar_gz("b", os.urandom(1 << 20))]
    manifest, blobs = image_documents(layers)
    registry = StallingRegistry(manifest, blobs, stall={str(Digest.of(x)) for x in layers})
    with stalling_registry(registry):
        pull = _spawn(home, "pull", f"{registry.host}/stall/me:1")
        partials = home / ".tmp"
        _wait_for("two stalled downloads", lambda: len(_entries(partials)) == 2, pull)
        _kill9(pull)
    left = [partials / n for n in _entries(partials)]
    assert len(left) == 2
    _age(left)
    assert [x["kind"] for x in _fsck_leftovers(home)] == ["temporary file"] * 2
    assert run_cli("images").returncode == 0
    assert _entries(partials) == []
    _assert_clean(home)


def test_live_work_of_another_process_is_left_alone(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN touch /go-on && sleep 300\n")
    build = _spawn(home, "build", str(ctx))
    running = _spawn(home, "run", "--name", "live", busybox_image, "sleep", "300")
    _wait_for("both containers", lambda: len(_runc_list(home)) == 2, build)
    before = (sorted(_runc_list(home)), overlay.mounts_under(home))
    assert _fsck_leftovers(home) == []  # nothing of live processes is a leftover
    # (Not prune: it waits for the build, a writer, to finish.)
    for verb in (("images",), ("ps", "-a"), ("rmi", "no-such-image")):
        run_cli(*verb)
    assert (sorted(_runc_list(home)), overlay.mounts_under(home)) == before
    build.send_signal(signal.SIGINT)
    build.communicate(timeout=60)
    assert build.returncode == 130
    _kill9(running)
    run_cli("rm", "-f", "live", check=True)
    _assert_clean(home)


@pytest.mark.parametrize("verb", ["images", "fsck --repair"])
def test_a_dead_lease_alone_is_reaped(home: Path, busybox_image: str, verb: str) -> None:
    # A lease lock file nobody holds, with a workspace named after it (a process killed
    # right after taking its lease): both go, and fsck --repair cleans as well.
    leases = home / "snapshots" / "leases"
    leases.mkdir(parents=True, exist_ok=True)
    (leases / "999999-0badcafe.lock").touch()
    (leases / "999999-0badcafe.json").write_text("[]")
    (home / "snapshots" / "active" / "m-999999-0badcafe-abcd1234" / "upper").mkdir(parents=True)
    assert {x["kind"] for x in _fsck_leftovers(home)} == {"directory"}
    run_cli(*verb.split())
    assert _entries(leases) == []
    _assert_clean(home)
