"""forklift build pulls a FROM image missing from the store through the registry client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forklift.store import Store
from tests.registry_client.servers import Distribution, start_distribution

pytestmark = pytest.mark.root


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Distribution]:
    reg = start_distribution(tmp_path / "distribution")
    yield reg
    reg.stop()


def test_missing_base_image_is_pulled_by_tag_and_by_digest(
    busybox_image: str, registry: Distribution, tmp_path: Path, cli
) -> None:
    remote = f"{registry.host}/base/busybox:1"
    pushed = cli("push", "-q", busybox_image, remote)
    assert pushed.returncode == 0, pushed.stderr
    pinned = pushed.stdout.strip().splitlines()[-1]
    assert "@sha256:" in pinned
    assert cli("rmi", busybox_image).returncode == 0
    for i, base in enumerate((remote, pinned)):
        # a fresh store each time: the base is nowhere locally
        for image in Store.open().images():
            for name in image.names:
                Store.open().remove(str(name))
        _collecting_store().prune()
        ctx = tmp_path / f"ctx{i}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo pulled > /proof\n")
        r = cli("build", "-q", "-t", f"frompull:{i}", str(ctx))
        assert r.returncode == 0, r.stderr
        run = cli("run", "--rm", f"frompull:{i}", "cat", "/proof")
        assert run.stdout == "pulled\n", run.stderr


def _collecting_store() -> Store:
    """The store with the runtime's collector, as the CLI composes it for prune."""
    from forklift.runtime.recovery import RuntimeCollector

    return Store.open(collectors=[RuntimeCollector()])
