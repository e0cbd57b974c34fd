"""Helpers shared by tests: the CLI in a subprocess, a busybox root filesystem, free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]
#: ../shared beside the checkout: real-world material that a fresh clone does not have
SHARED = Path(os.environ.get("FORKLIFT_TEST_SHARED") or REPO.parent / "shared")
CORPUS = Path(os.environ.get("FORKLIFT_TEST_CORPUS") or SHARED / "corpus")
TOOLS = SHARED / "tools"
#: CI sets this so that a missing ../shared fails the run instead of skipping quietly
REQUIRE_SHARED = os.environ.get("FORKLIFT_TEST_REQUIRE_SHARED", "") not in ("", "0")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
BUSYBOX_APPLETS = (
    "sh",
    "ls",
    "cat",
    "echo",
    "true",
    "false",
    "id",
    "env",
    "mkdir",
    "rm",
    "sleep",
    "touch",
    "wc",
    "head",
    "stat",
)


SHARED_SKIP = "every test that needs it is skipped"


def _shared_or_skip(path: Path, what: str, variable: str) -> Path:
    if path.is_dir():
        return path.resolve()
    # The same message for every such test: tests/conftest.py folds them into one summary line.
    if not SHARED.is_dir() and path.is_relative_to(SHARED):
        # a fresh clone: no ../shared at all, so one line covers the corpus and the tools
        what, path, variable = "../shared (corpus and tools)", SHARED, "FORKLIFT_TEST_SHARED"
    message = f"{what} not found at {path} (set {variable}); {SHARED_SKIP}"
    if REQUIRE_SHARED:
        pytest.fail(f"{message}, but FORKLIFT_TEST_REQUIRE_SHARED is set", pytrace=False)
    pytest.skip(message)


def need_corpus() -> Path:
    """The external corpus (``../shared/corpus``), or skip the calling test when it is absent."""
    return _shared_or_skip(CORPUS, "the external test corpus", "FORKLIFT_TEST_CORPUS")


def need_tools() -> Path:
    """The prebuilt tools in ``../shared/tools``, or skip the calling test when absent."""
    return _shared_or_skip(TOOLS, "the shared tools", "FORKLIFT_TEST_SHARED")


def corpus_cases(load: Callable[[Path], list[T]], *, width: int = 1) -> list[Any]:
    """Parameters read from the corpus at collection time, or one placeholder when it is absent.

    A test parametrized this way must also request the ``corpus`` fixture, which skips
    the placeholder with the usual reason.
    """
    if not CORPUS.is_dir():
        return [pytest.param(*([None] * width), id="no-corpus")]
    return load(CORPUS.resolve())


def make_busybox_rootfs(root: Path) -> Path:
    """A minimal root filesystem: static busybox plus symlinked applets, /etc/passwd and /etc/group."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\napp:x:1000:\n")
    for d in ("tmp", "root", "proc", "sys", "dev"):
        (root / d).mkdir()
    return root


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    *args: str, input: bytes | None = None, env: dict[str, str] | None = None, check: bool = False
) -> Result:
    """Run ``forklift ARGS`` in a subprocess (the real entry point, real exit codes)."""
    proc = subprocess.run(
        [sys.executable, "-m", "forklift", *args],
        input=input,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    result = Result(
        proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"forklift {' '.join(args)} failed ({proc.returncode}):\n{result.stderr}"
        )
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_no_traceback(result: Result) -> None:
    """The command failed with forklift's one-line error (progress output may come before it)."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr


def write_rootfs_tar(root: Path, out: Path) -> Path:
    """Tar up a directory tree (sorted, PAX) as a root filesystem tarball."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(root.rglob("*")):
            tf.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return out


class Podman:
    """podman with its own storage (short paths: podman limits runroot to 50 characters)."""

    def __init__(self) -> None:
        import tempfile

        self.base = Path(tempfile.mkdtemp(prefix="fkpod-", dir="/tmp"))

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            "podman", "--root", str(self.base / "r"), "--runroot", str(self.base / "rr"),
            "--runtime", "runc", "--storage-driver", "vfs", *args,
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def cleanup(self) -> None:
        subprocess.run(
            ["podman", "--root", str(self.base / "r"), "--runroot", str(self.base / "rr"),
             "--storage-driver", "vfs", "system", "reset", "-f"],
            capture_output=True, timeout=120,
        )  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)


def build_many_files_image(ctx: Path, tag: str = "many:1") -> str:
    """Build ``tag``: busybox plus a layer of 6,000 small files, slow enough to unpack
    that a test can signal or kill a process while it does."""
    (ctx / "many").mkdir(parents=True)
    for i in range(6000):
        (ctx / "many" / f"f{i}").write_bytes(os.urandom(64))
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY many/ /many/\n")
    run_cli("build", "-q", "-t", tag, str(ctx), check=True)
    return tag
