"""``forklift run/ps/rm`` end to end: real overlayfs, real runc (and crun), busybox images."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from forklift.runtime import overlay
from tests.helpers import assert_no_traceback, run_cli

# Docker's default capability set as a CapEff mask: bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31.
DOCKER_DEFAULT_CAPS = sum(1 << b for b in (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31))


def _status_field(text: str, name: str) -> str:
    return next(
        line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name)
    )


def test_prints_and_exit_codes(busybox_image: str) -> None:
    ok = run_cli("run", "--rm", busybox_image, "echo", "hello from busybox")
    assert (ok.returncode, ok.stdout) == (0, "hello from busybox\n")
    three = run_cli("run", "--rm", busybox_image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (three.returncode, three.stdout, three.stderr) == (3, "out\n", "err\n")
    missing = run_cli("run", "--rm", busybox_image, "no-such-command")
    assert missing.returncode == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in missing.stderr
    not_exec = run_cli("run", "--rm", busybox_image, "/etc/passwd")
    assert not_exec.returncode == 126
    assert "permission denied" in not_exec.stderr


def test_image_by_id_prefix(home: Path, busybox_image: str) -> None:
    from forklift.store import Store

    image_id = Store.open(home).resolve(busybox_image).id
    result = run_cli("run", "--rm", image_id.hex[:12], "echo", "by id")
    assert (result.returncode, result.stdout) == (0, "by id\n")


def test_forklift_errors_exit_125(home: Path, busybox_image: str) -> None:
    result = run_cli("run", "--rm", "--pull", "never", "no-such-image:1")
    assert result.returncode == 125
    assert_no_traceback(result)
    assert "not in the local store" in result.stderr
    bad_user = run_cli("run", "--rm", "-u", "nobody-here", busybox_image, "true")
    assert bad_user.returncode == 125
    assert "unable to find user nobody-here" in bad_user.stderr


def test_env_workdir_and_named_user(tmp_path: Path, busybox_image: str) -> None:
    env_file = tmp_path / "vars.env"
    env_file.write_text("# settings\nFROM_FILE=file value\nOVERRIDE=file\n")
    result = run_cli(
        "run", "--rm", "--env-file", str(env_file), "-e", "OVERRIDE=cli", "-e", "PASSED",
        "-w", "/made/by/workdir", "-u", "app", busybox_image,
        "sh", "-c", 'id; pwd; echo "$FROM_FILE|$OVERRIDE|$PASSED|$HOME"; ls -ld /made/by/workdir',
        env={"PASSED": "from host"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "uid=1000(app) gid=1000(app) groups=1000(app)"
    assert lines[1] == "/made/by/workdir"
    assert lines[2] == "file value|cli|from host|/home/app"
    assert lines[3].startswith("drwxr-xr-x") and " root " in lines[3]


def test_supplementary_groups_from_the_image(home: Path, grouped_rootfs_tar: Path) -> None:
    run_cli("import", str(grouped_rootfs_tar), "grouped:1", check=True)

    def ids(*user: str) -> tuple[str, str, str]:
        status = run_cli("run", "--rm", *user, "grouped:1", "cat", "/proc/self/status").stdout
        uid, gid, groups = (_status_field(status, k) for k in ("Uid", "Gid", "Groups"))
        return uid.split()[0], gid.split()[0], groups

    # The kernel's view: app's memberships in /etc/group become supplementary groups, and
    # the primary group is always one of them (the CVE-2023-25173 rule of runc and podman).
    assert ids("-u", "app") == ("1000", "1000", "29 44 1000")
    assert ids("-u", "app:audio") == ("1000", "29", "29")
    assert ids("-u", "app", "--group-add", "50") == ("1000", "1000", "29 44 50 1000")
    assert ids("-u", "4242:4343") == ("4242", "4343", "4343")
    assert ids() == ("0", "0", "0")


def test_image_entrypoint_cmd_env_and_workdir(entrypoint_image: str) -> None:
    assert run_cli("run", "--rm", entrypoint_image).stdout == "ep default\n"
    assert run_cli("run", "--rm", entrypoint_image, "a", "b").stdout == "ep a b\n"
    shown = run_cli(
        "run", "--rm", "--entrypoint", "sh", entrypoint_image,
        "-c", 'echo "$GREETING $FROM_IMAGE"; pwd',
    )  # fmt: skip
    assert shown.stdout == "hello yes\n/tmp\n"
    overridden = run_cli(
        "run", "--rm", "-e", "GREETING=from-cli", "--entrypoint", "sh", entrypoint_image,
        "-c", 'echo "$GREETING $FROM_IMAGE"',
    )  # fmt: skip
    assert overridden.stdout == "from-cli yes\n"
    # --entrypoint alone clears the image's Cmd (else echo would print "default").
    assert run_cli("run", "--rm", "--entrypoint", "echo", entrypoint_image).stdout == "\n"


def test_bind_mounts_rw_and_ro(tmp_path: Path, busybox_image: str) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "given").write_text("from host")
    result = run_cli(
        "run", "--rm", "-v", f"{rw}:/out", "-v", f"{ro}:/in:ro", busybox_image, "sh", "-c",
        "cat /in/given; echo written > /out/result; touch /in/nope 2>/dev/null || echo ro-enforced",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from hostro-enforced\n"
    assert (rw / "result").read_text() == "written\n"
    assert not (ro / "nope").exists()


def test_network_none_has_only_loopback(busybox_image: str) -> None:
    none = run_cli("run", "--rm", "--network", "none", busybox_image, "cat", "/proc/net/dev")
    names = [line.split(":")[0].strip() for line in none.stdout.splitlines()[2:]]
    assert names == ["lo"]
    host_names = sorted(
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    )
    default = run_cli("run", "--rm", busybox_image, "cat", "/proc/net/dev")
    assert (
        sorted(line.split(":")[0].strip() for line in default.stdout.splitlines()[2:]) == host_names
    )


def test_security_defaults(busybox_image: str) -> None:
    script = (
        "cat /proc/self/status; echo ok > /dev/null && echo devnull-ok; "
        "touch /sys/x 2>/dev/null || echo sys-ro; wc -c < /proc/timer_list; cat /etc/hostname"
    )
    root = run_cli(
        "run", "--rm", "--network", "none", "--hostname", "box1", busybox_image, "sh", "-c", script
    )
    assert root.returncode == 0, root.stderr
    assert int(_status_field(root.stdout, "CapEff"), 16) == DOCKER_DEFAULT_CAPS
    assert int(_status_field(root.stdout, "CapBnd"), 16) == DOCKER_DEFAULT_CAPS
    assert _status_field(root.stdout, "NoNewPrivs") == "1"
    # /proc/timer_list has content on the host; masked, it reads as empty.
    assert Path("/proc/timer_list").read_bytes()
    tail = root.stdout.splitlines()[-4:]
    assert tail == ["devnull-ok", "sys-ro", "0", "box1"]
    user = run_cli("run", "--rm", "-u", "app", busybox_image, "cat", "/proc/self/status")
    assert int(_status_field(user.stdout, "CapEff"), 16) == 0
    assert int(_status_field(user.stdout, "CapBnd"), 16) == DOCKER_DEFAULT_CAPS


def _mounts_mentioning(home: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if str(home) in line]


def test_rm_flag_leaves_nothing(home: Path, busybox_image: str) -> None:
    result = run_cli(
        "run", "--rm", busybox_image, "sh", "-c", "echo data > /tmp/file; cat /tmp/file"
    )
    assert result.stdout == "data\n"
    assert not (home / "containers").exists() or list((home / "containers").glob("*/")) == []
    assert not (home / "roots" / "containers").exists() or not list(
        (home / "roots" / "containers").iterdir()
    )
    assert _mounts_mentioning(home) == []
    assert list((home / "run" / "runc").iterdir()) == []
    assert run_cli("ps", "-a", "-q").stdout == ""


def test_kept_containers_are_listed_and_removed(home: Path, busybox_image: str) -> None:
    first = run_cli(
        "run", "--name", "first", busybox_image, "sh", "-c", "echo kept > /tmp/x; exit 4"
    )
    assert first.returncode == 4
    run_cli("run", busybox_image, "true", check=True)
    listed = json.loads(run_cli("ps", "-a", "--format", "json").stdout)
    assert len(listed) == 2
    by_name = {c["name"]: c for c in listed}
    record = by_name["first"]
    assert record["status"] == "exited" and record["exit_code"] == 4
    assert record["command"] == ["sh", "-c", "echo kept > /tmp/x; exit 4"]
    assert record["image"] == busybox_image
    # The writable layer is kept, and the image's blobs stay rooted by the container.
    upper = home / "containers" / record["id"] / "upper"
    assert (upper / "tmp" / "x").read_text() == "kept\n"
    assert (home / "roots" / "containers" / f"{record['id']}.json").exists()
    table = run_cli("ps", "-a").stdout.splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"]
    assert any("Exited (4)" in line and line.endswith("first") for line in table)
    assert run_cli("ps").stdout.splitlines()[1:] == []  # nothing running
    # Names are unique.
    clash = run_cli("run", "--name", "first", busybox_image, "true")
    assert clash.returncode == 125 and "already in use" in clash.stderr
    other = next(c for c in listed if c["name"] != "first")
    removed = run_cli("rm", "first", other["id"][:8])  # by name and by ID prefix
    assert removed.returncode == 0, removed.stderr
    assert run_cli("ps", "-a", "-q").stdout == ""
    assert not (home / "containers" / record["id"]).exists()
    assert not (home / "roots" / "containers" / f"{record['id']}.json").exists()
    missing = run_cli("rm", "first")
    assert missing.returncode == 1 and "no such container: first" in missing.stderr


def test_crun_works_too(busybox_image: str) -> None:
    assert shutil.which("crun"), "crun is part of the test environment"
    result = run_cli(
        "run", "--rm", "--runtime", "crun", "--network", "none", "-u", "app", busybox_image,
        "sh", "-c", "id; cat /proc/net/dev | tail -n +3 | cut -d: -f1; exit 5",
    )  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert result.stdout.split() == ["uid=1000(app)", "gid=1000(app)", "groups=1000(app)", "lo"]


def test_missing_runtime_is_a_clear_error(tmp_path: Path, busybox_image: str) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = run_cli("run", "--rm", busybox_image, "true", env={"PATH": str(empty)})
    assert result.returncode == 125
    assert_no_traceback(result)
    assert "no OCI runtime found" in result.stderr
    named = run_cli(
        "run", "--rm", "--runtime", "crun", busybox_image, "true", env={"PATH": str(empty)}
    )
    assert "no OCI runtime found: crun is not installed" in named.stderr


def test_stdin_is_attached_with_i(busybox_image: str) -> None:
    result = run_cli(
        "run", "--rm", "-i", busybox_image, "sh", "-c", "tr a-z A-Z", input=b"piped in\n"
    )
    assert result.stdout == "PIPED IN\n"
    closed = run_cli("run", "--rm", busybox_image, "cat", input=b"ignored\n")
    assert closed.stdout == ""


def test_tty_with_t(busybox_image: str) -> None:
    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "forklift", "run", "--rm", "-it", busybox_image, "sh", "-c",
         "test -t 0 && test -t 1 && echo on-a-tty; echo TERM=$TERM"],
        stdin=child, stdout=child, stderr=child, env=os.environ.copy(),
    )  # fmt: skip
    os.close(child)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([parent], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(parent, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    assert proc.wait(timeout=30) == 0
    os.close(parent)
    text = out.decode(errors="replace").replace("\r", "")
    assert "on-a-tty" in text and "TERM=xterm" in text


def test_tty_without_a_terminal_is_refused(busybox_image: str) -> None:
    result = run_cli("run", "--rm", "-t", busybox_image, "true")
    assert result.returncode == 125
    assert "not a TTY" in result.stderr


def _start(home: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "forklift", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "FORKLIFT_HOME": str(home)},
    )


def _wait_running(home: Path, proc: subprocess.Popen[bytes]) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        listed = json.loads(run_cli("ps", "--format", "json").stdout)
        if listed and list((home / "run" / "runc").iterdir()):
            return listed[0]
        time.sleep(0.1)
    raise AssertionError("the container never started")


def test_sigint_is_forwarded_to_the_container(home: Path, busybox_image: str) -> None:
    proc = _start(
        home, "--rm", busybox_image, "sh", "-c",
        'trap "echo got-INT; exit 42" INT; echo ready; while true; do sleep 0.1; done',
    )  # fmt: skip
    _wait_running(home, proc)
    # the shell is PID 1: a SIGINT before its trap is set would be ignored, not forwarded
    # in vain, so wait until the script says the trap is there
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 42
    assert out.decode().split() == ["got-INT"]
    assert _mounts_mentioning(home) == []


def test_ctrl_c_kills_a_container_that_ignores_it_and_cleans_up(
    home: Path, busybox_image: str
) -> None:
    # sleep as PID 1 ignores SIGINT; after --stop-timeout the container is killed.
    proc = _start(
        home, "--name", "sleeper", "--stop-timeout", "1", busybox_image,
        "sh", "-c", "echo ready; exec sleep 300",
    )  # fmt: skip
    record = _wait_running(home, proc)
    assert record["status"] == "running" and record["pid"] == proc.pid
    assert overlay.is_mounted(home / "containers" / record["id"] / "rootfs")
    # the container's own process runs (not the runtime's init, which a SIGINT may end)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert time.monotonic() - started < 15
    assert proc.returncode == 137  # SIGKILL, as Docker reports it
    assert _mounts_mentioning(home) == []
    assert list((home / "run" / "runc").iterdir()) == []
    after = json.loads(run_cli("ps", "-a", "--format", "json").stdout)[0]
    assert (after["status"], after["exit_code"]) == ("exited", 137)
    run_cli("rm", "sleeper", check=True)


def test_a_sigint_during_start_up_reaches_the_program_not_the_runtime(
    home: Path, busybox_image: str
) -> None:
    # Sent the moment runc's state appears, a SIGINT used to end runc's own start-up in
    # about 1 run of 4 (exit 2 or 130); it must wait for the program, which here ignores
    # it (PID 1 without a handler), so --stop-timeout's kill ends the run: 137 every time.
    state_dir = home / "run" / "runc"
    for attempt in range(8):
        proc = _start(home, "--rm", "--stop-timeout", "1", busybox_image, "sleep", "300")
        deadline = time.monotonic() + 60
        while not (state_dir.is_dir() and any(state_dir.iterdir())):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.001)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 137, (attempt, err.decode())
    assert _mounts_mentioning(home) == []
    assert run_cli("ps", "-a", "-q").stdout == ""


def test_rm_needs_force_for_a_running_container(home: Path, busybox_image: str) -> None:
    proc = _start(home, "--name", "busy", busybox_image, "sleep", "300")
    _wait_running(home, proc)
    refused = run_cli("rm", "busy")
    assert refused.returncode == 1 and "is running" in refused.stderr
    forced = run_cli("rm", "-f", "busy")
    assert forced.returncode == 0, forced.stderr
    proc.communicate(timeout=30)
    assert proc.returncode == 137
    assert run_cli("ps", "-a", "-q").stdout == ""
    assert _mounts_mentioning(home) == []


def test_a_killed_supervisor_is_noticed_and_cleaned_up(home: Path, busybox_image: str) -> None:
    proc = _start(home, "--name", "orphan", busybox_image, "sleep", "300")
    record = _wait_running(home, proc)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    assert _mounts_mentioning(home) != []  # the mount outlived forklift
    listed = json.loads(run_cli("ps", "-a", "--format", "json").stdout)
    assert listed[0]["status"] == "exited" and listed[0]["exit_code"] is None
    assert "died" in listed[0]["error"]
    # ps released what the dead supervisor held: the container, its runtime state, the mount.
    assert _mounts_mentioning(home) == []
    assert list((home / "run" / "runc").iterdir()) == []
    run_cli("rm", record["id"], check=True)


def test_snapshots_are_shared_between_runs(home: Path, busybox_image: str) -> None:
    run_cli("run", "--rm", busybox_image, "true", check=True)
    snaps = [p for p in (home / "snapshots").iterdir() if len(p.name) == 64]
    assert len(snaps) == 1
    inode = snaps[0].stat().st_ino
    run_cli("run", "--rm", busybox_image, "true", check=True)
    assert [p.stat().st_ino for p in (home / "snapshots").iterdir() if len(p.name) == 64] == [inode]
