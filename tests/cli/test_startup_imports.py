"""Start-up stays small: quick commands load only what they use.

Structural checks in a fresh interpreter through the real entry point, not timings:
what a command imports is what its start-up costs (the figures are in bench/startup.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Run the CLI, then report what was imported from an exit handler (the CLI ends the
# process itself once exit handlers have run).
PROBE = """
import atexit, json, sys
def report():
    sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)) + "\\n")
atexit.register(report)
from forklift.cli import main
main(sys.argv[1:])
"""


def _modules(home: Path, *args: str) -> tuple[int, set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"FORKLIFT_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES ")]
    assert lines, proc.stderr
    return proc.returncode, set(json.loads(lines[-1][len("MODULES ") :])), proc.stdout


def _top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_images_loads_no_network_logging_or_runtime_code(tmp_path: Path) -> None:
    rc, modules, out = _modules(tmp_path / "home", "images")
    assert rc == 0
    assert out.split()[:2] == ["REPOSITORY", "TAG"]
    heavy = {"httpx", "httpcore", "rich", "cryptography", "logging", "ctypes", "granian", "sqlite3"}
    assert not _top(modules) & heavy, sorted(_top(modules) & heavy)
    # the recovery pass ran and found nothing: the snapshot and server code stayed unloaded
    assert "forklift.runtime.recovery" in modules
    assert "forklift.runtime.snapshots" not in modules
    assert not {m for m in modules if m.startswith("forklift.registry.server")}


def test_version_loads_no_store(tmp_path: Path) -> None:
    rc, modules, _ = _modules(tmp_path / "home", "version")
    assert rc == 0
    assert not _top(modules) & {"httpx", "rich", "logging", "cryptography"}


def test_exit_code_survives_the_fast_exit(tmp_path: Path) -> None:
    # a user error still ends with its own code and one line, after the exit handlers ran
    rc, _, _ = _modules(tmp_path / "home", "rmi", "no-such-image:1")
    assert rc not in (0, 70)


def test_a_no_op_build_loads_neither_signing_nor_snapshot_nor_thread_pool_code(
    home: Path, busybox_image: str, tmp_path: Path
) -> None:
    # a fully cached single-stage build mounts nothing and runs nothing: it must not pay
    # for the snapshotter, a thread pool (and the logging it imports) or the policy code
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a")
    (ctx / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY a.txt /\nLABEL a=b\n")
    rc, _, _ = _modules(home, "build", "-q", "-t", "noop:1", str(ctx))
    assert rc == 0
    # without the record of the last build (forklift.build.noop) the rebuild really plans
    for record in (home / "cache" / "noop").glob("*.json"):
        record.unlink()
    rc, modules, _ = _modules(home, "build", "-q", "-t", "noop:1", str(ctx))
    assert rc == 0
    assert "forklift.build.builder" in modules  # it did build
    assert "forklift.sign.policyfile" in modules  # and looked for a policy
    unwanted = {
        m
        for m in modules
        if (m.startswith("forklift.sign.") and m != "forklift.sign.policyfile")
        or m in {"forklift.runtime.snapshots", "concurrent.futures", "logging"}
    }
    assert not unwanted, sorted(unwanted)
    # the next rebuild is answered from the record: no Dockerfile front end, no builder
    rc, modules, out = _modules(home, "build", "-q", "-t", "noop:1", str(ctx))
    assert rc == 0 and out.startswith("sha256:")
    loaded = sorted(m for m in modules if m.startswith(("forklift.dockerfile", "forklift.build.")))
    assert loaded == [
        "forklift.build.cache",
        "forklift.build.explain",
        "forklift.build.noop",
        "forklift.build.options",
        "forklift.build.progress",
    ]


def test_a_cancelled_command_does_not_wait_for_a_stuck_thread(tmp_path: Path) -> None:
    # A pull's download thread blocked in a read of a stalled registry must not keep a
    # cancelled command alive until the read's timeout (the interpreter's normal exit
    # joins every non-daemon thread; concurrent.futures' workers are non-daemon).
    probe = """
import threading, sys
from forklift import cancel
from forklift.cli import _exit
threading.Thread(target=threading.Event().wait, name="stuck-read").start()
if sys.argv[1] == "cancelled":
    cancel.TOKEN.cancel()
    cancel.TOKEN.settle(5)
_exit(130)
"""
    proc = subprocess.run(
        [sys.executable, "-c", probe, "cancelled"], capture_output=True, timeout=30
    )
    assert proc.returncode == 130, proc.stderr
    # (without a cancellation the normal exit still waits for it, as Python's does)
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", probe, "not"], capture_output=True, timeout=3)
