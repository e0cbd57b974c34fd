"""Fixtures for the runtime tests: real overlayfs, runc and crun (these tests run as root).

Every test here is checked for leaks afterwards: no mount may remain under
its temporary directory and no runtime may keep state for a container.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from forklift.runtime import overlay
from forklift.store import Store
from tests.helpers import make_busybox_rootfs, run_cli, write_rootfs_tar


@pytest.fixture(scope="session", autouse=True)
def _needs_root() -> None:
    # Not a skip: without root nothing here can work, and silence would pass for coverage.
    assert os.geteuid() == 0, "the runtime tests need root (overlayfs mounts, runc)"


@pytest.fixture(autouse=True)
def _no_leaks(tmp_path: Path) -> Iterator[None]:
    yield
    left = overlay.mounts_under(tmp_path)
    for point in left:  # clean up so one failure does not cascade, then fail
        overlay.unmount(point)
    assert not left, f"mounts left behind: {left}"
    for runtime in ("runc", "crun"):
        state = tmp_path / "forklift-home" / "run" / runtime
        if state.is_dir():
            assert not list(state.iterdir()), (
                f"{runtime} state left behind: {list(state.iterdir())}"
            )


@pytest.fixture(scope="session", autouse=True)
def _no_leaks_in_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    base = tmp_path_factory.getbasetemp()
    assert not overlay.mounts_under(base), overlay.mounts_under(base)


@pytest.fixture
def store(home: Path) -> Store:
    """The store at ``home``, with the runtime's collector (as the CLI composes it)."""
    from forklift.runtime.recovery import RuntimeCollector

    return Store.open(home, collectors=[RuntimeCollector()])


@pytest.fixture(scope="session")
def grouped_rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox rootfs where user ``app`` is also a member of groups ``audio`` and ``video``."""
    base = tmp_path_factory.mktemp("grouped")
    root = make_busybox_rootfs(base / "rootfs")
    (root / "etc" / "group").write_text(
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\naudio:x:29:app\nvideo:x:44:nobody,app\n"
    )
    (root / "etc" / "passwd").write_text(
        (root / "etc" / "passwd").read_text() + "svc:x:1500:44::/srv:/bin/sh\n"
    )
    return write_rootfs_tar(root, base / "rootfs.tar")


@pytest.fixture
def entrypoint_image(home: Path, busybox_rootfs_tar: Path) -> str:
    """busybox with ``ENTRYPOINT ["echo","ep"]``, ``CMD ["default"]``, an ENV and a WORKDIR."""
    run_cli(
        "import",
        "-c",
        'ENTRYPOINT ["echo", "ep"]',
        "-c",
        'CMD ["default"]',
        "-c",
        "ENV GREETING=hello FROM_IMAGE=yes",
        "-c",
        "WORKDIR /tmp",
        str(busybox_rootfs_tar),
        "epbox:latest",
        check=True,
    )
    return "epbox:latest"
