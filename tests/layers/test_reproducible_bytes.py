"""Layer bytes, and so digests, are the same on two installs: checked, not assumed.

gzip and zstd output depends on the compressor library, not only on the input
and the level. pyproject.toml pins python-isal and zstandard to ranges whose
ends were installed side by side and give identical blobs; the layer
descriptor records the encoder (``dev.forklift.layer.encoder``), so two images
that should match can be told apart when they cannot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forklift.layers import ENCODER_ANNOTATION, GZIP_BACKEND, encoder_id, write_layer
from tests.helpers import REPO

CACHE = Path(os.environ.get("FORKLIFT_TEST_CACHE", "/tmp/forklift-test-cache")) / "compressors"

#: the ends of the ranges pyproject.toml allows (lowest and highest checked release)
RANGES = {"isal": ("1.6.1", "1.9.1"), "zstandard": ("0.24.0", "0.25.0")}

WRITE = """
import json, sys
from forklift.layers import write_layer
out = {}
for compression in ("gzip", "zstd"):
    with open(sys.argv[2] + "." + compression, "wb") as f:
        info = write_layer(f, sys.argv[1], compression=compression)
    out[compression] = [str(info.digest), info.encoder]
import isal, zstandard
out["versions"] = [isal.__version__, zstandard.__version__]
print(json.dumps(out))
"""


def _tree(root: Path) -> Path:
    """Text-like and incompressible files, a few MB: enough for several deflate blocks."""
    import random

    rnd = random.Random(7)
    words = [
        "".join(rnd.choice("abcdefghij klm\n") for _ in range(rnd.randint(1, 12)))
        for _ in range(3000)
    ]
    (root / "src").mkdir(parents=True)
    for i in range(20):
        (root / "src" / f"f{i}.txt").write_text("".join(rnd.choice(words) for _ in range(20000)))
    (root / "blob.bin").write_bytes(rnd.randbytes(1 << 20))
    for p in root.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return root


def _install(package: str, version: str) -> Path:
    target = CACHE / f"{package}-{version}"
    if not (target / ".done").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
             f"{package}=={version}"],
            check=True, timeout=600,
        )  # fmt: skip
        (target / ".done").touch()
    return target


@pytest.mark.network
def test_two_installs_write_the_same_layer_bytes(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    results = []
    for which in (0, 1):  # the oldest, then the newest release of each range
        paths = [_install(pkg, versions[which]) for pkg, versions in RANGES.items()]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(REPO / "src")])}
        proc = subprocess.run(
            [sys.executable, "-c", WRITE, str(tree), str(tmp_path / f"out{which}")],
            capture_output=True, text=True, env=env, timeout=300, check=True,
        )  # fmt: skip
        results.append(json.loads(proc.stdout))
    old, new = results
    assert old["versions"] == [RANGES["isal"][0], RANGES["zstandard"][0]]
    assert new["versions"] == [RANGES["isal"][1], RANGES["zstandard"][1]]
    assert old["gzip"] == new["gzip"]  # same digest, same encoder id
    assert old["zstd"] == new["zstd"]


def test_layer_descriptors_record_the_encoder(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    with open(tmp_path / "l.tgz", "wb") as f:
        info = write_layer(f, tree)
    desc = info.descriptor()
    assert desc.annotations[ENCODER_ANNOTATION] == f"gzip;level=1;deflate={GZIP_BACKEND}"
    assert encoder_id("zstd", 5).startswith("zstd;level=5;libzstd=")
    assert encoder_id("") == ""
    with open(tmp_path / "l.tar", "wb") as f:
        assert (
            ENCODER_ANNOTATION
            not in write_layer(f, tree, compression="none").descriptor().annotations
        )


def test_built_and_imported_layers_carry_it(busybox_image: str, home: Path, tmp_path: Path) -> None:
    from forklift.build.builder import build
    from forklift.build.options import BuildOptions
    from forklift.reference import parse_reference
    from forklift.store import Store

    store = Store.open(home)
    imported = store.resolve(busybox_image).manifest
    (layer,) = imported.layers  # type: ignore[union-attr]
    assert layer.annotations == {ENCODER_ANNOTATION: encoder_id("gzip")}
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("data")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY f /f\n")
    build(BuildOptions(context=str(ctx), tags=(parse_reference("built:1"),), compression="zstd"))
    built = store.resolve("built:1").manifest
    assert built.layers[-1].annotations == {ENCODER_ANNOTATION: encoder_id("zstd")}  # type: ignore[union-attr]
