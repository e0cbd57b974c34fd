"""examples/python-style: pip install --prefix=/install in a builder stage on Debian 12.

Network and slow: the first run downloads a Debian root filesystem with debootstrap from
Debian's mirror (kept under /tmp for later runs), so it is left out of the default test
command and run by CI with ``-m network``. The package installed is a wheel this test builds from the example's
greetlib/ sources; nothing comes from PyPI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.build_diff.harness import forklift_image
from tests.build_examples.running import build, run_both
from tests.build_examples.wheel import build_wheel
from tests.helpers import Podman, Result

pytestmark = [pytest.mark.slow, pytest.mark.network]


def test_python_style_builds_and_runs_with_forklift_and_podman(
    debian_python_image: str,
    example: Callable[[str], Path],
    podman: Podman,
    tmp_path: Path,
    cli: Callable[..., Result],
) -> None:
    ctx = example("python-style")
    build_wheel(
        ctx / "greetlib" / "src" / "greetlib",
        ctx / "wheels",
        name="greetlib",
        version="1.0.0",
        scripts={"greet": "greetlib:main"},
    )
    built = build(ctx, "hello-python:1")
    assert built.status("RUN pip install") == "DONE"

    _, root = forklift_image("hello-python:1", tmp_path / "image")
    site = root / "usr/local/lib/python3.11/dist-packages"
    assert (site / "greetlib" / "__init__.py").is_file()
    assert (root / "usr/local/bin/greet").read_text().startswith("#!/usr/bin/python3")
    # the builder's prefix and wheels stay in the builder
    assert not (root / "install").exists() and not (root / "build").exists()

    ours, theirs = run_both(podman, "hello-python:1", ("forklift",))
    assert ours == theirs == "Hello, forklift, from greetlib 1.0.0\n"
    # the console script pip generated runs too
    script = cli("run", "--rm", "--entrypoint", "greet", "hello-python:1", "cli")
    assert script.stdout == "Hello, cli, from greetlib 1.0.0\n", script.stderr
