"""SIGINT and SIGTERM cancel a build or a pull at once, leaving nothing behind (issue 10, item 15).

Real forklift processes, real runc and overlayfs, a real (stalling) registry on
127.0.0.1. The time to exit is measured by ``bench/cancel.py``, not asserted
here; what is asserted is the exit status, the message, and that everything
was released by the process itself: no container, no mount, no workspace, no
partial file, nothing for the next command to recover.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from forklift.oci.digest import Digest
from forklift.runtime import overlay
from tests.fake_registry import StallingRegistry, image_documents, stalling_registry
from tests.helpers import build_many_files_image, run_cli
from tests.runtime.test_recovery import _entries, _runc_list, _spawn, _tar_gz, _wait_for


def _assert_released(home: Path) -> None:
    """Everything the cancelled process held is gone, without any recovery having run."""
    assert overlay.mounts_under(home) == []
    assert _runc_list(home) == []
    assert _entries(home / "snapshots" / "active") == []
    assert _entries(home / "run" / "bundles") == []
    assert _entries(home / ".tmp") == []
    leases = home / "snapshots" / "leases"
    assert [n for n in _entries(leases) if not n.endswith(".lock")] == []
    fsck = run_cli("fsck")
    assert fsck.returncode == 0, fsck.stdout  # fsck does not recover: it would report


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_build_is_cancelled_during_a_run_step(
    home: Path, busybox_image: str, tmp_path: Path, sig: signal.Signals
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo started && sleep 300\n")
    build = _spawn(home, "build", "--progress", "plain", "-t", "never:1", str(ctx))
    _wait_for("the RUN container", lambda: _runc_list(home), build)
    build.send_signal(sig)
    _, err = build.communicate(timeout=60)
    assert build.returncode == 128 + sig
    text = err.decode()
    assert f"Error: build canceled ({sig.name})" in text
    assert "CANCELED" in text and "exit code 137" not in text
    assert "never" not in run_cli("images").stdout
    _assert_released(home)


def test_parallel_stages_are_all_cancelled(home: Path, busybox_image: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS a\nRUN sleep 300\n"
        "FROM busybox AS b\nRUN sleep 301\n"
        "FROM busybox\nCOPY --from=a /bin/sh /a\nCOPY --from=b /bin/sh /b\n"
    )
    build = _spawn(home, "build", str(ctx))
    _wait_for("both RUN containers", lambda: len(_runc_list(home)) == 2, build)
    build.send_signal(signal.SIGTERM)
    build.communicate(timeout=60)
    assert build.returncode == 143
    _assert_released(home)


@pytest.mark.parametrize("layers", [1, 3])
def test_pull_is_cancelled_while_downloads_are_stuck(home: Path, layers: int) -> None:
    # One layer: the main thread is blocked in a socket read; three: worker threads are.
    blobs = [_tar_gz(f"f{i}", os.urandom(1 << 20)) for i in range(layers)]
    manifest, documents = image_documents(blobs)
    registry = StallingRegistry(manifest, documents, stall={str(Digest.of(b)) for b in blobs})
    with stalling_registry(registry):
        pull = _spawn(home, "pull", f"{registry.host}/stuck/image:1")
        _wait_for("the stalled downloads", lambda: len(_entries(home / ".tmp")) == layers, pull)
        pull.send_signal(signal.SIGINT)
        _, err = pull.communicate(timeout=60)
    assert pull.returncode == 130
    assert "Error: pull canceled (SIGINT)" in err.decode()
    assert run_cli("images", "-q").stdout == ""
    _assert_released(home)


def test_run_forwards_sigterm_to_the_container(home: Path, busybox_image: str) -> None:
    # forklift run keeps docker's behaviour: the signal goes to the container, which decides.
    run = _spawn(
        home, "run", "--rm", busybox_image, "sh", "-c",
        'trap "echo got-TERM; exit 7" TERM; echo ready; while true; do sleep 0.1; done',
    )  # fmt: skip
    assert run.stdout is not None
    assert run.stdout.readline() == b"ready\n"
    run.send_signal(signal.SIGTERM)
    out, _ = run.communicate(timeout=60)
    assert run.returncode == 7 and out == b"got-TERM\n"
    _assert_released(home)


def test_run_is_cancelled_while_its_layers_are_unpacked(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    # Before the container starts there is nothing to forward the signal to: it cancels.
    build_many_files_image(tmp_path / "ctx")
    tmp = home / "snapshots" / "tmp"
    run = _spawn(home, "run", "--rm", "many:1", "true")
    _wait_for("the unpack overlay", lambda: overlay.mounts_under(tmp), run)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "Error: run canceled (SIGINT)" in err.decode()
    assert _entries(tmp) == [] and _entries(home / "containers") in ([], [".lock"])
    _assert_released(home)


def test_a_second_signal_exits_at_once_and_the_next_command_cleans_up(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    # The first signal starts the cleanup; a second one (an impatient user) ends the process
    # then and there. Whatever it still held is recovered by the next command.
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN sleep 300\n")
    build = _spawn(home, "build", str(ctx))
    _wait_for("the RUN container", lambda: _runc_list(home), build)
    build.send_signal(signal.SIGINT)
    build.send_signal(signal.SIGINT)
    build.communicate(timeout=60)
    assert build.returncode == 130
    run_cli("images", check=True)
    _assert_released(home)


def test_cancel_token_runs_callbacks_and_raises() -> None:
    import threading

    from forklift import cancel

    token = cancel.Token()
    early, late = threading.Event(), threading.Event()
    with token.on_cancel(early.set):
        token.check()  # not cancelled: nothing happens
        token.cancel(signal.SIGTERM)
        with pytest.raises(cancel.Cancelled) as info:
            token.check()
    assert early.wait(10)
    assert info.value.exit_code == 143 and str(info.value) == "command canceled (SIGTERM)"
    with token.on_cancel(late.set):  # registered after the cancellation: runs at once
        assert late.wait(10)
    token.reset()
    token.check()
    assert not isinstance(cancel.Cancelled(2), Exception)  # except Exception cannot swallow it
