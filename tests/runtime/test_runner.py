"""run_container as the builder uses it: output callbacks, timeouts, kill, and a clean upper dir."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from forklift.errors import RuntimeFailure, UsageError
from forklift.runtime import (
    STDOUT,
    BindMount,
    ContainerSpec,
    Snapshotter,
    TmpfsMount,
    find_runtime,
    image_layers,
    run_container,
)
from forklift.runtime.oci_runtime import exit_code_for_error
from forklift.store import Store


@pytest.fixture
def layers(store: Store, busybox_image: str) -> tuple:
    return image_layers(store, store.resolve(busybox_image))


def _upper_paths(upper: Path) -> set[str]:
    return {str(p.relative_to(upper)) for p in upper.rglob("*")}


def _runtime(home: Path) -> object:
    return find_runtime("runc", home=home)


def test_output_callbacks_and_merged_order(home: Path, store: Store, layers: tuple) -> None:
    out: list[bytes] = []
    err: list[bytes] = []
    script = "echo one; echo two >&2; echo three"
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:
        rt = _runtime(home)
        split = run_container(
            ContainerSpec(args=("sh", "-c", script)), m, runtime=rt, stdout=out.append,
            stderr=err.append,
        )  # fmt: skip
        merged: list[bytes] = []
        both = run_container(
            ContainerSpec(args=("sh", "-c", script)), m, runtime=rt, stdout=merged.append,
            stderr=STDOUT,
        )  # fmt: skip
    assert split.ok and both.ok
    assert b"".join(out) == b"one\nthree\n" and b"".join(err) == b"two\n"
    # One stream; runc copies the container's stdout and stderr on separate pipes, so only
    # the order within each stream is guaranteed.
    lines = b"".join(merged).decode().splitlines()
    assert sorted(lines) == ["one", "three", "two"]
    assert lines.index("one") < lines.index("three")


def test_stdin_bytes_are_fed(home: Path, store: Store, layers: tuple) -> None:
    got: list[bytes] = []
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:
        result = run_container(
            ContainerSpec(args=("wc", "-c")), m, runtime=_runtime(home), stdin=b"x" * 100_000,
            stdout=got.append,
        )  # fmt: skip
    assert result.ok and b"".join(got).strip() == b"100000"


def test_upper_holds_only_the_run_changes(home: Path, store: Store, layers: tuple) -> None:
    # busybox has /etc but no /etc/hosts: the mount point is created for the run, then removed.
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:
        result = run_container(
            ContainerSpec(
                args=("sh", "-c", "cat /etc/hosts > /dev/null && echo x > /tmp/x"),
                mounts=(TmpfsMount("/new/deep/cache"), BindMount(str(home), "/srv/ctx", True)),
            ),
            m,
            runtime=_runtime(home),
        )
        assert result.ok, result
        m.unmount()
        assert _upper_paths(m.upper) == {"tmp", "tmp/x"}


def test_a_run_writing_next_to_a_stub_keeps_its_change(
    home: Path, store: Store, layers: tuple
) -> None:
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:
        result = run_container(
            ContainerSpec(args=("sh", "-c", "echo v > /etc/added")), m, runtime=_runtime(home)
        )
        assert result.ok
        m.unmount()
        assert _upper_paths(m.upper) == {"etc", "etc/added"}
        assert (m.upper / "etc" / "added").read_text() == "v\n"


def test_timeout_kills_the_container(home: Path, store: Store, layers: tuple) -> None:
    rt = _runtime(home)
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:
        started = time.monotonic()
        result = run_container(
            ContainerSpec(args=("sleep", "60")), m, runtime=rt, timeout=1.0, container_id="t-out"
        )
        assert time.monotonic() - started < 20
    assert result.timed_out and result.exit_code == 137
    assert not rt.has_state("t-out")


def test_another_thread_can_kill_a_run(home: Path, store: Store, layers: tuple) -> None:
    rt = _runtime(home)
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:

        def killer() -> None:
            # Running, not only created: a process killed before `runc start` is a runc error.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                state = rt.state("victim")
                if state is not None and state.get("status") == "running":
                    break
                time.sleep(0.02)
            rt.kill("victim", "KILL")

        t = threading.Thread(target=killer)
        t.start()
        result = run_container(
            ContainerSpec(args=("sleep", "60")), m, runtime=rt, container_id="victim"
        )
        t.join()
    assert result.exit_code == 137 and not result.timed_out


def test_runtime_failures_map_to_docker_exit_codes(home: Path, store: Store, layers: tuple) -> None:
    # A bind mount over /bin hides the precheck's view, so the runtime itself reports it.
    empty = home / "emptybin"
    empty.mkdir()
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:
        result = run_container(
            ContainerSpec(args=("/bin/sh", "-c", "true"), mounts=(BindMount(str(empty), "/bin"),)),
            m,
            runtime=_runtime(home),
            stderr=lambda _: None,
        )
    assert result.exit_code == 127
    assert result.runtime_error is not None and "/bin/sh" in result.runtime_error
    assert exit_code_for_error("exec: foo: permission denied") == 126
    assert exit_code_for_error("mount failed: invalid argument") == 125


def test_find_runtime_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeFailure, match="no OCI runtime found"):
        find_runtime(home=tmp_path)
    with pytest.raises(UsageError, match="unknown OCI runtime"):
        find_runtime("docker", home=tmp_path)
    rt = find_runtime("/usr/bin/runc" if os.path.exists("/usr/bin/runc") else "/usr/sbin/runc",
                      home=tmp_path)  # fmt: skip
    assert rt.name == "runc" and rt.state_root == tmp_path / "run" / "runc"
