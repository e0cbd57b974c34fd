"""Fixtures shared by every test package: an isolated store, a busybox root filesystem, the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    SHARED_SKIP,
    Podman,
    make_busybox_rootfs,
    need_corpus,
    run_cli,
    write_rootfs_tar,
)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The external real-world test material (``../shared/corpus``); skips when it is absent."""
    return need_corpus()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty store just for this test ($FORKLIFT_HOME)."""
    path = tmp_path / "forklift-home"
    monkeypatch.setenv("FORKLIFT_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def busybox_rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tarball of a busybox root filesystem (made from busybox-static, nothing downloaded)."""
    base = tmp_path_factory.mktemp("busybox")
    return write_rootfs_tar(make_busybox_rootfs(base / "rootfs"), base / "rootfs.tar")


@pytest.fixture
def cli() -> object:
    """``cli("images")`` runs the CLI in a subprocess and returns a Result."""
    return run_cli


@pytest.fixture
def busybox_image(home: Path, busybox_rootfs_tar: Path) -> str:
    """A store (``home``) holding busybox:latest imported from the busybox rootfs tarball."""
    run_cli(
        "import", str(busybox_rootfs_tar), "busybox:latest", "--change", 'CMD ["sh"]', check=True
    )
    return "busybox:latest"


@pytest.fixture
def podman() -> Iterator[Podman]:
    """A podman with private storage, removed afterwards."""
    p = Podman()
    yield p
    p.cleanup()


@pytest.fixture(autouse=True)
def _restore_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    # Skips for missing ../shared material all carry one message; report them from one
    # place so the summary says it in one line instead of one line per test.
    report: pytest.TestReport = yield
    if report.skipped and isinstance(report.longrepr, tuple) and SHARED_SKIP in report.longrepr[2]:
        report.longrepr = ("tests/helpers.py", None, report.longrepr[2])  # type: ignore[assignment]
    return report
