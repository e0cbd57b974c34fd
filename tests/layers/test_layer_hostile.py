"""Hostile tarballs: nothing outside the root is ever created, changed or linked.

Every test extracts into ``<tmp>/l1/l2/root`` next to ``<tmp>/outside`` (with a
sentinel file), so a broken extractor would hit files the test can see,
never the machine's real /etc.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forklift.errors import ForkliftError, InvalidInput, UnsafeArchive
from forklift.layers import extract_layer
from tests.layers.trees import build_tar, member, snapshot


class Box:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "l1" / "l2" / "root"
        self.outside = base / "outside"
        self.root.mkdir(parents=True)
        self.outside.mkdir()
        (self.outside / "victim").write_text("do not touch")
        (base / "l1" / "etc").mkdir()
        (base / "l1" / "etc" / "passwd").write_text("the 'real' passwd two levels up")
        self.before = snapshot(base)

    def outside_unchanged(self) -> bool:
        """Everything but the root's content is as before (the root itself still a dir)."""

        def outside(snap: dict[str, tuple[object, ...]]) -> dict[str, tuple[object, ...]]:
            return {k: v for k, v in snap.items() if not k.startswith("l1/l2/root")}

        now = snapshot(self.base)
        return outside(now) == outside(self.before) and (
            self.root.is_dir() and not self.root.is_symlink()
        )


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def extract(box: Box, members, **options):  # type: ignore[no-untyped-def]
    return extract_layer(io.BytesIO(build_tar(members)), box.root, **options)


CASES = {
    "dotdot-passwd": [(member("../../etc/passwd"), b"pwned")],
    "dotdot-in-middle": [(member("a/../../../etc/passwd"), b"pwned")],
    "relative-symlink-escape": [
        (member("esc", tarfile.SYMTYPE, linkname="../../../outside"), None),
        (member("esc/pwned"), b"x"),
    ],
    "symlink-chain-escape": [
        (member("a", tarfile.SYMTYPE, linkname="b/../.."), None),
        (member("b", tarfile.DIRTYPE), None),
        (member("a/l2/../../outside/pwned"), b"x"),
    ],
    "nested-symlink-escape": [
        (member("d", tarfile.DIRTYPE), None),
        (member("d/up", tarfile.SYMTYPE, linkname="../.."), None),
        (member("d/up/outside/pwned"), b"x"),
    ],
    "hardlink-dotdot": [(member("h", tarfile.LNKTYPE, linkname="../../../outside/victim"), None)],
    "hardlink-through-escaping-symlink": [
        (member("esc", tarfile.SYMTYPE, linkname="../../../outside"), None),
        (member("h", tarfile.LNKTYPE, linkname="esc/victim"), None),
    ],
    "whiteout-dotdot": [(member("../../../outside/.wh.victim"), b"")],
    "whiteout-named-dotdot": [(member("x/.wh.."), b"")],
    "whiteout-through-escaping-symlink": [
        (member("esc", tarfile.SYMTYPE, linkname="../../../outside"), None),
        (member("esc/.wh.victim"), b""),
    ],
    "opaque-through-escaping-symlink": [
        (member("esc", tarfile.SYMTYPE, linkname="../../../outside"), None),
        (member("esc/.wh..wh..opq"), b""),
    ],
    "replace-root-with-symlink": [(member(".", tarfile.SYMTYPE, linkname="/"), None)],
    "symlink-loop": [
        (member("loop1", tarfile.SYMTYPE, linkname="loop2"), None),
        (member("loop2", tarfile.SYMTYPE, linkname="loop1"), None),
        (member("loop1/x"), b"x"),
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_archive_is_refused_and_harmless(box: Box, name: str) -> None:
    with pytest.raises(UnsafeArchive) as info:
        extract(box, CASES[name])
    assert box.outside_unchanged()
    # The message names the offending member (as a clean path; the root as "/").
    bad = "/".join(p for p in CASES[name][-1][0].name.split("/") if p not in ("", ".")) or "/"
    assert f"member {bad!r}" in str(info.value)


def test_absolute_member_paths_land_inside_the_root(box: Box) -> None:
    extract(box, [(member("/etc/passwd"), b"inside")])
    assert (box.root / "etc" / "passwd").read_text() == "inside"
    assert box.outside_unchanged()


def test_absolute_symlink_is_resolved_inside_the_root(box: Box) -> None:
    # "evil -> <tmp>/outside": inside the container that names <root><tmp>/outside,
    # so that is where the file goes; the host's directory is never written.
    result = extract(
        box,
        [
            (member("evil", tarfile.SYMTYPE, linkname=str(box.outside)), None),
            (member("evil/pwned"), b"x"),
            (member("evil/.wh.victim"), b""),
        ],
    )
    assert box.outside_unchanged()
    inside = box.root / str(box.outside).lstrip("/") / "pwned"
    assert inside.read_bytes() == b"x"
    assert result.entries == 2


def test_hardlink_to_etc_shadow_never_links_the_host_file(box: Box) -> None:
    shadow = Path("/etc/shadow")
    links_before = shadow.stat().st_nlink if shadow.exists() else None
    with pytest.raises(InvalidInput, match="hard link target 'etc/shadow' does not exist"):
        extract(box, [(member("shadow", tarfile.LNKTYPE, linkname="/etc/shadow"), None)])
    if links_before is not None:
        assert shadow.stat().st_nlink == links_before
    assert not (box.root / "shadow").exists()
    # With an etc/shadow in the root, the absolute name means that one.
    (box.root / "etc").mkdir()
    (box.root / "etc" / "shadow").write_text("image shadow")
    extract(box, [(member("shadow", tarfile.LNKTYPE, linkname="/etc/shadow"), None)])
    assert (box.root / "shadow").stat().st_ino == (box.root / "etc" / "shadow").stat().st_ino
    if links_before is not None:
        assert shadow.stat().st_nlink == links_before


def test_hardlink_then_overwrite_does_not_change_the_target(box: Box) -> None:
    (box.root / "important").write_text("original")
    extract(
        box,
        [(member("h", tarfile.LNKTYPE, linkname="important"), None), (member("h"), b"clobbered")],
    )
    assert (box.root / "important").read_text() == "original"
    assert (box.root / "h").read_text() == "clobbered"


def test_symlink_then_file_with_same_name_replaces_the_link(box: Box) -> None:
    extract(
        box,
        [
            (member("f", tarfile.SYMTYPE, linkname=str(box.outside / "victim")), None),
            (member("f"), b"mine"),
        ],
    )
    assert box.outside_unchanged()
    assert not (box.root / "f").is_symlink()


def test_hardlink_to_a_directory_is_refused(box: Box) -> None:
    (box.root / "d").mkdir()
    with pytest.raises(UnsafeArchive, match="is a directory"):
        extract(box, [(member("h", tarfile.LNKTYPE, linkname="d"), None)])


def test_overlay_private_xattrs_in_an_archive_are_ignored(box: Box) -> None:
    info = member("d", tarfile.DIRTYPE)
    info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/../../outside"}
    warnings: list[str] = []
    extract(box, [(info, None)], on_warning=warnings.append)
    assert "trusted.overlay.redirect" not in os.listxattr(box.root / "d")
    assert any("ignoring overlayfs xattr" in w for w in warnings)


# --------------------------------------------------------------------------- fuzzing

# Scenarios: a few symlinks (some escaping, some not) plus writes, links and
# whiteouts through them, in every order.
names = st.sampled_from(["s", "t", "s/t", "t/s", "u"])
targets = st.sampled_from(
    [
        "../../../outside",
        "../../..",
        "..",
        "s",
        "t",
        "/",
        "s/..",
        "t/../..",
        "/s",
        "u/../../..",
        "s/victim",
        "../../../outside/victim",
        "victim",
    ]
)
leaf = st.sampled_from(["pwned", "victim", ".wh.victim", ".wh..wh..opq", "t/pwned", "s/victim"])
op_path = st.tuples(names, leaf).map("/".join)
symlinks = st.lists(st.tuples(st.just("symlink"), names, targets), min_size=1, max_size=3)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("file"), op_path, st.just("")),
        st.tuples(st.just("dir"), names, st.just("")),
        st.tuples(st.just("hardlink"), op_path, targets),
    ),
    min_size=1,
    max_size=5,
)
scenarios = st.tuples(symlinks, operations).flatmap(lambda so: st.permutations(so[0] + so[1]))
KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
}


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(members=scenarios, overlay=st.booleans())
def test_fuzzed_archives_never_touch_the_outside(
    tmp_path_factory: pytest.TempPathFactory, members: list[tuple[str, str, str]], overlay: bool
) -> None:
    box = Box(tmp_path_factory.mktemp("fuzz"))
    tar_members = []
    for kind, path, target in members:
        info = member(path, KINDS[kind], linkname=target)
        tar_members.append((info, b"data" if kind == "file" else None))
    try:
        extract(box, tar_members, overlay=overlay)
    except ForkliftError:
        pass  # refusing is fine; anything else (a traceback) fails the test
    assert box.outside_unchanged()
