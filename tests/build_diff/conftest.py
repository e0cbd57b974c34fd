"""Fixtures for the differential tests: one buildah per test worker, holding the same busybox base.

buildah gets forklift's busybox image (``forklift save`` -> ``buildah pull
docker-archive:``), so both builders start from the same bytes; the session
fixture checks that before any test relies on it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.build_diff.harness import (
    CONFIG_FIELDS,
    DOCKER_ONLY_FIELDS,
    Buildah,
    BuildFn,
    Outcome,
    forklift_image,
    snapshot,
    write_context,
)
from tests.helpers import run_cli


@pytest.fixture(scope="session", autouse=True)
def _needs_root_and_buildah() -> None:
    # Not a skip: without these nothing here can run, and silence would pass for coverage.
    assert os.geteuid() == 0, "the differential build tests need root (runc, overlayfs)"
    assert shutil.which("buildah"), "buildah is not installed (apt-get install buildah)"


@pytest.fixture(scope="session")
def buildah(
    busybox_rootfs_tar: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Buildah]:
    """A private buildah holding busybox:latest, the same image forklift's tests import."""
    work = tmp_path_factory.mktemp("buildah-base")
    env = {"FORKLIFT_HOME": str(work / "home")}
    run_cli("import", str(busybox_rootfs_tar), "busybox:latest", "--change", 'CMD ["sh"]',
            env=env, check=True)  # fmt: skip
    archive = work / "busybox.tar"
    run_cli("save", "-o", str(archive), "busybox:latest", env=env, check=True)
    ours = json.loads(run_cli("inspect", "busybox:latest", env=env, check=True).stdout)
    b = Buildah()
    try:
        b.load(archive, "busybox:latest")
        # the tests' own stores import the same tarball, which gives the same layer
        assert _diff_ids(ours) == b.config("busybox:latest")["rootfs"]["diff_ids"]
        yield b
    finally:
        b.cleanup()


_counter = itertools.count()


@pytest.fixture
def duo(buildah: Buildah, busybox_image: str, tmp_path: Path, busybox_rootfs_tar: Path) -> BuildFn:
    """``duo(dockerfile, files)`` builds with both tools and returns an :class:`Outcome`.

    Keyword arguments: ``build_args`` (dict), ``target``, ``docker_format`` (buildah
    ``--format docker`` and compare Shell/OnBuild/Healthcheck too), ``parent`` (a
    Dockerfile both build first as ``parent:latest``, for ONBUILD), ``modes`` (permission
    bits for context paths).
    """

    def build(
        dockerfile: str,
        files: Mapping[str, str | bytes] | None = None,
        *,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        docker_format: bool = False,
        parent: str | None = None,
        modes: Mapping[str, int] | None = None,
    ) -> Outcome:
        n = next(_counter)
        context = tmp_path / f"ctx{n}"
        context.mkdir()
        write_context(context, files or {}, modes)
        (context / "Dockerfile").write_text(dockerfile)
        tag = f"diff{os.getpid()}-{n}:latest"
        extra: list[str] = []
        for k, v in (build_args or {}).items():
            extra += ["--build-arg", f"{k}={v}"]
        if target:
            extra += ["--target", target]
        if parent is not None:
            pctx = tmp_path / f"parent{n}"
            pctx.mkdir()
            (pctx / "Dockerfile").write_text(parent)
            run_cli("build", "-q", "-t", "parent:latest", str(pctx), check=True)
            buildah.bud(pctx, "parent:latest", docker_format=True)
        run_cli("build", "-q", "-t", tag, *extra, str(context), check=True)
        buildah.bud(context, tag, docker_format=docker_format, extra=tuple(extra))
        ours_config, ours_root = forklift_image(tag, tmp_path / f"ours{n}")
        theirs_config = buildah.config(tag, docker_format=docker_format)
        with buildah.rootfs(tag) as root:
            theirs = snapshot(root)
        fields = CONFIG_FIELDS + (DOCKER_ONLY_FIELDS if docker_format else ())
        return Outcome(ours_config, theirs_config, snapshot(ours_root), theirs, ours_root, fields)

    return build


def _diff_ids(inspected: object) -> list[str]:
    # `forklift inspect` prints a list (docker inspect style) or one object
    item = inspected[0] if isinstance(inspected, list) else inspected
    assert isinstance(item, dict)
    rootfs = item.get("RootFS") or item.get("rootfs") or item.get("Config", {}).get("rootfs")
    assert rootfs, f"no rootfs in forklift inspect output: {list(item)}"
    return rootfs.get("Layers") or rootfs.get("diff_ids")
