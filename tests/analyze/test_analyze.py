"""``forklift analyze`` on images with a known amount of waste, built layer by layer here.

Every expected number is worked out by hand in this file from the layer
contents (the sizes below), not taken from forklift's output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forklift.analyze import Thresholds, analyze_image, parse_bytes, parse_ratio
from forklift.errors import DigestMismatch, UsageError
from forklift.store.store import Store
from forklift.transports import copy
from tests.analyze.images import Layer, Member, directory, file, make_layout, opaque, whiteout

MB = 1_000_000

LAYERS = [
    Layer(
        [
            directory("etc"),
            file("etc/os-release", 100),
            directory("var"),
            directory("var/lib"),
            file("var/lib/base.bin", 5 * MB),
            directory("usr"),
            directory("usr/share"),
            directory("usr/share/doc"),
            file("usr/share/doc/a.txt", 1000),
            file("usr/share/doc/b.txt", 2000),
        ],
        created_by="/bin/sh -c #(nop) ADD file:rootfs.tar in / ",
    ),
    Layer(
        [
            directory("var/lib/apt"),
            directory("var/lib/apt/lists"),
            file("var/lib/apt/lists/deb_Packages", 4 * MB),
            directory("usr/bin"),
            file("usr/bin/tool", 700_000),
        ],
        created_by="RUN /bin/sh -c apt-get update && apt-get install -y tool # buildkit",
        comment="forklift: Dockerfile:3",
    ),
    Layer(
        [directory("var/lib/apt"), whiteout("var/lib/apt/lists")],
        created_by="RUN /bin/sh -c rm -rf /var/lib/apt/lists # buildkit",
        comment="forklift: Dockerfile:4",
    ),
    Layer(
        [directory("tmp"), file("tmp/big.bin", 30 * MB)],
        created_by="RUN /bin/sh -c dd if=/dev/urandom of=/tmp/big.bin bs=1M count=30",
        comment="forklift: Dockerfile:5",
    ),
    Layer(
        [directory("tmp"), whiteout("tmp/big.bin")],
        created_by="RUN /bin/sh -c rm /tmp/big.bin",
        comment="forklift.dockerfile.line=6",
    ),
    Layer([file("etc/os-release", 400)], created_by="COPY os-release /etc/ # buildkit"),
    Layer(
        [directory("usr/share/doc"), opaque("usr/share/doc"), file("usr/share/doc/c.txt", 50)],
        created_by="RUN /bin/sh -c rm -rf /usr/share/doc && mkdir -p /usr/share/doc && echo > c.txt",
        comment="forklift: Dockerfile:8",
    ),
]

# -- worked out by hand -------------------------------------------------------
LAYER_SIZES = [100 + 5 * MB + 1000 + 2000, 4 * MB + 700_000, 0, 30 * MB, 0, 400, 50]
TOTAL = sum(LAYER_SIZES)  # 39_703_550
FINAL = 400 + 5 * MB + 700_000 + 50  # os-release (new), base.bin, tool, c.txt
WASTED = 4 * MB + 30 * MB + 100 + 1000 + 2000  # apt lists, big.bin, old os-release, hidden docs
USER = TOTAL - LAYER_SIZES[0]
# dive's occurrences per path (leaf nodes per layer; whiteouts sized as what they delete):
#   os-release 100,400 | base.bin 5M | a.txt 1000 + opaque 1000 | b.txt 2000 + opaque 2000
#   c.txt 50 | deb_Packages 4M | var/lib/apt/lists (dir whiteout) 4M | tool 700k | big.bin 30M,30M
DIVE_MIN = 100 + 5 * MB + 1000 + 2000 + 50 + 4 * MB + 4 * MB + 700_000 + 30 * MB
DIVE_CUM = 500 + 5 * MB + 2000 + 4000 + 50 + 4 * MB + 4 * MB + 700_000 + 60 * MB
DIVE_WASTED = 500 + 2000 + 4000 + 60 * MB


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_layout(tmp_path_factory.mktemp("img") / "layout", LAYERS, tag="waste")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, layout: str) -> tuple[Store, str]:
    """The same image imported through its OCI layout into a fresh store."""
    store = Store(tmp_path_factory.mktemp("home"))
    copy(layout, "waste-demo:1", store=store)
    return store, "waste-demo:1"


def test_sizes_waste_and_efficiency_by_hand(stored: tuple[Store, str]) -> None:
    store, name = stored
    a = analyze_image(name, store=store)
    assert [layer.stats.size for layer in a.layers] == LAYER_SIZES
    assert a.total_size == TOTAL
    assert a.final_size == FINAL
    assert a.wasted_bytes == WASTED
    assert a.wasted_bytes == a.total_size - a.final_size
    assert a.user_size == USER
    assert a.user_wasted_percent == pytest.approx(WASTED / USER)
    assert a.efficiency == pytest.approx(DIVE_MIN / DIVE_CUM)
    assert a.dive_wasted_bytes == DIVE_WASTED
    assert a.final_files == 4


def test_per_layer_changes(layout: str) -> None:
    a = analyze_image(layout)
    stats = [(s.stats.added, s.stats.modified, s.stats.removed) for s in a.layers]
    assert stats == [(4, 0, 0), (2, 0, 0), (0, 0, 1), (1, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 2)]
    assert a.layers[2].stats.removed_bytes == 4 * MB
    assert [s.step.line for s in a.layers] == [None, 3, 4, 5, 6, None, 8]
    assert a.layers[0].step.instruction == "ADD file:rootfs.tar in /"
    assert a.layers[5].step.instruction == "COPY os-release /etc/"


def test_waste_names_both_steps_and_the_fix(layout: str) -> None:
    a = analyze_image(layout)
    groups = {(w.added.index, w.removed.index): w for w in a.waste}
    assert set(groups) == {(1, 2), (3, 4), (0, 5), (0, 6)}
    apt = groups[(1, 2)]
    # the apt lists cleaned in a later RUN: both instructions, with their lines
    assert apt.bytes == 4 * MB and apt.files == 1 and apt.kind == "deleted"
    assert "apt-get install" in apt.added.step.created_by and apt.added.step.line == 3
    assert "rm -rf /var/lib/apt/lists" in apt.removed.step.created_by
    assert apt.removed.step.line == 4
    assert apt.examples == (("/var/lib/apt/lists/deb_Packages", 4 * MB),)
    assert "same RUN" in apt.fix and "--mount=type=cache" in apt.fix
    big = groups[(3, 4)]
    assert (big.bytes, big.kind) == (30 * MB, "deleted")
    assert "same RUN" in big.fix and "line 5" in big.fix
    assert (groups[(0, 5)].bytes, groups[(0, 5)].kind) == (100, "overwritten")
    assert (groups[(0, 6)].bytes, groups[(0, 6)].files) == (3000, 2)
    assert [w.bytes for w in a.waste] == sorted((w.bytes for w in a.waste), reverse=True)
    assert a.items[0].path == "/tmp/big.bin" and a.items[0].size == 30 * MB


def test_biggest_files_and_dirs(layout: str) -> None:
    a = analyze_image(layout, top=3)
    assert a.biggest_files == (
        ("/var/lib/base.bin", 5 * MB, 0),
        ("/usr/bin/tool", 700_000, 1),
        ("/etc/os-release", 400, 5),
    )
    assert a.biggest_dirs == (
        ("/var", 5 * MB, 1),
        ("/var/lib", 5 * MB, 1),
        ("/usr", 700_050, 2),
    )


def test_replacements_and_duplicates(tmp_path: Path) -> None:
    name = make_layout(
        tmp_path / "l",
        [
            Layer([directory("a"), file("a/x", 10), file("a/y", 20), file("f", 7), file("f", 9)]),
            Layer([file("a", 5)]),  # a file replaces the directory a/
            Layer([directory("f"), file("f/z", 3)]),  # a directory replaces the file f
        ],
        compress=False,
    )
    a = analyze_image(name)
    assert a.total_size == 10 + 20 + 7 + 9 + 5 + 3
    assert a.final_size == 5 + 3
    assert a.wasted_bytes == 10 + 20 + 7 + 9
    kinds = {(w.added.index, w.removed.index, w.kind): w.bytes for w in a.waste}
    assert kinds == {(0, 1, "overwritten"): 30, (0, 0, "overwritten"): 7, (0, 2, "overwritten"): 9}


def test_biggest_files_skip_what_holds_no_bytes_and_counts_read_well(tmp_path: Path) -> None:
    # busybox-like: one real file, many 0-byte symlinks to it, an empty file
    links = [Member(f"bin/{n}", kind="symlink", target="busybox") for n in ("ash", "cat", "ls")]
    name = make_layout(
        tmp_path / "l",
        [Layer([directory("bin"), file("bin/busybox", 1000), *links, file("etc/empty", 0)])],
        compress=False,
    )
    a = analyze_image(name)
    assert a.biggest_files == (("/bin/busybox", 1000, 0),)
    r = _cli(name, home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(1 file)" in r.stdout and "(1 files)" not in r.stdout
    assert "file(s)" not in r.stdout


def test_docker_archive_from_skopeo_gives_the_same_numbers(layout: str, tmp_path: Path) -> None:
    skopeo = shutil.which("skopeo")
    assert skopeo, "skopeo is part of the test environment"
    archive = tmp_path / "img.tar"
    subprocess.run(
        [skopeo, "copy", "--quiet", layout, f"docker-archive:{archive}:waste:1"],
        check=True,
        timeout=120,
    )
    a = analyze_image(f"docker-archive:{archive}")
    assert (a.total_size, a.final_size, a.wasted_bytes) == (TOTAL, FINAL, WASTED)
    assert a.efficiency == pytest.approx(DIVE_MIN / DIVE_CUM)
    assert a.layers[1].step.line == 3  # history comments survive the trip


def test_corrupt_layer_is_a_digest_error(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    name = make_layout(root, [Layer([file("x", 1000)])], compress=False)
    blobs = sorted((root / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer_blob = blobs[-1]  # the tar is the largest blob
    data = bytearray(layer_blob.read_bytes())
    data[600] ^= 0xFF  # inside x's content: the tar still parses
    layer_blob.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch):
        analyze_image(name)


def test_thresholds_and_units() -> None:
    assert parse_bytes("20MB") == 20 * MB
    assert parse_bytes("1.5GiB") == int(1.5 * 1024**3)
    assert parse_bytes("512 kib") == 512 * 1024
    assert parse_bytes("3000") == 3000
    assert parse_ratio("95%", "x") == pytest.approx(0.95)
    for bad in ("20 parsecs", "-1", ""):
        with pytest.raises(UsageError):
            parse_bytes(bad)
    with pytest.raises(UsageError):
        parse_ratio("1.5", "--lowest-efficiency")


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forklift", "analyze", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FORKLIFT_HOME": str(home)},
    )


def test_ci_mode_exit_codes(layout: str, tmp_path: Path) -> None:
    efficiency = DIVE_MIN / DIVE_CUM  # about 0.593
    ok = _cli(layout, "--lowest-efficiency", "0.5", "--highest-wasted-bytes", "40MB", home=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "PASS  lowest-efficiency" in ok.stdout
    for args in (
        ("--lowest-efficiency", "0.95"),
        ("--highest-wasted-bytes", "20MB"),
        ("--highest-user-wasted-percent", "0.2"),
    ):
        r = _cli(layout, *args, home=tmp_path)
        assert r.returncode == 1, args
        assert "FAIL" in r.stdout
    r = _cli(layout, "--format", "json", "--lowest-efficiency", "0.95", home=tmp_path)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["wasted_bytes"] == WASTED and doc["efficiency"] == pytest.approx(efficiency)
    assert doc["ci"]["passed"] is False
    assert doc["ci"]["checks"][0] == {
        "name": "lowest-efficiency",
        "threshold": 0.95,
        "value": pytest.approx(efficiency),
        "passed": False,
    }
    apt = next(w for w in doc["waste"] if w["added_by"]["line"] == 3)
    assert apt["removed_by"]["line"] == 4 and apt["bytes"] == 4 * MB


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = _cli("oci:/nonexistent/layout:x", home=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith("Error: ")
    r = _cli("oci:/x:y", "--highest-wasted-bytes", "lots", home=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("Error: invalid size")


def test_thresholds_object(layout: str) -> None:
    a = analyze_image(layout)
    gates = Thresholds(lowest_efficiency=0.5, highest_wasted_bytes=WASTED).evaluate(a)
    assert [g.passed for g in gates] == [True, True]
    gates = Thresholds(highest_wasted_bytes=WASTED - 1).evaluate(a)
    assert [g.passed for g in gates] == [False]
