"""The streamed final filesystem: whiteouts, opaque directories, replacements, hard links, history."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import BinaryIO

import pytest

from forklift.analyze.source import open_image
from forklift.layers.tarformat import TarReader
from forklift.sbom.fsview import Analyzer, FileInfo, FinalView, walk_rootfs
from forklift.sbom.inventory import scan_layers
from tests.analyze.images import Layer, Member, directory, make_layout, opaque, whiteout


class Meta(Analyzer):
    """Keeps the text of every file named META (with history)."""

    name = "meta"
    names = frozenset({"META"})
    keep_history = True

    def read(self, info: FileInfo, stream: BinaryIO) -> object | None:
        return stream.read().decode()


def f(path: str, text: str) -> Member:
    return Member(path, data=text.encode())


def final(name: str) -> dict[str, tuple[str, int, list[tuple[int, object]]]]:
    view = FinalView([a := Meta()])
    with open_image(name) as (src, image):
        scan_layers(src, image, view)
    assert view.warnings == []
    return {x.info.path: (x.value, x.info.layer, x.history) for x in view.found(a)}  # type: ignore[misc]


def test_whiteouts_opaque_dirs_and_replacements(tmp_path: Path) -> None:
    name = make_layout(
        tmp_path / "img",
        [
            Layer([directory("a"), f("a/one/META", "1"), f("a/two/META", "2"), f("b/x/META", "3"),
                   f("c/META", "4"), f("d/sub/META", "5"), f("e/META", "6"), f("g/META", "7")]),
            Layer([whiteout("a/one"),            # deletes a directory holding a kept file
                   opaque("b"), f("b/y/META", "8"),  # hides b/x but not what this layer adds
                   whiteout("c/META"),           # deletes the file itself
                   Member("d", kind="symlink", target="/elsewhere"),  # a link where a dir was
                   f("e/META", "6b"),            # overwritten: newest wins, history kept
                   directory("g/META")]),        # a directory where the file was
            Layer([f("c/META", "4b")]),          # re-created after deletion: no history
        ],
    )  # fmt: skip
    got = final(name)
    assert got == {
        "a/two/META": ("2", 0, []),
        "b/y/META": ("8", 1, []),
        "c/META": ("4b", 2, []),
        "e/META": ("6b", 1, [(0, "6")]),
    }


def test_whiteout_in_the_same_layer_spares_that_layers_files(tmp_path: Path) -> None:
    name = make_layout(
        tmp_path / "img",
        [
            Layer([f("p/META", "old")]),
            Layer([f("p/META", "new"), opaque("p")]),  # the marker after the file
        ],
    )
    # the file stays; the version it replaced was hidden, so it is no longer its history
    assert final(name) == {"p/META": ("new", 1, [])}


def test_hard_links_to_kept_and_unkept_files(tmp_path: Path) -> None:
    name = make_layout(
        tmp_path / "img",
        [
            Layer([f("x/META", "kept"), Member("y/META", kind="hardlink", target="x/META"),
                   f("z/other", "plain"), Member("w/META", kind="hardlink", target="z/other")]),
        ],
    )  # fmt: skip
    got = final(name)
    assert got == {
        "x/META": ("kept", 0, []),
        "y/META": ("kept", 0, []),
        "w/META": ("plain", 0, []),  # read in a second pass over the layer
    }


def test_rootfs_walk(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a/META").write_text("x")
    (root / "proc").mkdir()
    (root / "proc/META").write_text("kernel")  # never part of an image
    (root / "l").symlink_to("a")  # not followed
    view = FinalView([a := Meta()])
    walk_rootfs(str(root), view)
    assert [(x.info.path, x.value, x.info.layer) for x in view.found(a)] == [("a/META", "x", -1)]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_headers_agree_with_full_entries(tmp_path: Path, fmt: int) -> None:
    """``TarReader.headers()`` (the scanner's cheap iteration) yields what full entries say."""
    buf = io.BytesIO()
    long_dir = "d" * 90 + "/" + "e" * 60  # needs the ustar prefix field
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:

        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "",
                mode: int = 0o644) -> None:  # fmt: skip
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            tf.addfile(info, io.BytesIO(data) if data else None)

        add("./etc/", tarfile.DIRTYPE, mode=0o755)
        add("etc/passwd", data=b"root:x:0:0\n")
        add(f"{long_dir}/file", data=b"x" * 700, mode=0o4755)
        if fmt != tarfile.USTAR_FORMAT:
            add("n" * 150 + "/long-name.txt", data=b"long")
            add("\u00e9t\u00e9/caf\u00e9", data=b"utf8")
        add("etc/hard", tarfile.LNKTYPE, link="./etc/passwd")
        add("etc/soft", tarfile.SYMTYPE, link="../etc//passwd")
        add("usr/.wh..wh..opq")
    data = buf.getvalue()
    full = [(e.path, e.type, e.size, e.mode, e.linkname) for e in TarReader(io.BytesIO(data))]
    reader = TarReader(io.BytesIO(data))
    lean, contents = [], []
    for header in reader.headers():
        lean.append(header)
        contents.append(reader.read())
    assert lean == full
    assert contents[1] == b"root:x:0:0\n" and contents[2] == b"x" * 700
