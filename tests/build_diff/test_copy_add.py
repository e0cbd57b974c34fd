"""COPY and ADD: forklift's file trees against ``buildah bud --layers`` on the same context.

Each test builds one Dockerfile with both tools and compares the whole root
filesystem (paths, types, modes, owners, contents, symlink targets, hard links)
and the config. The explicit assertions after ``check_same`` pin the rule under
test to what the Dockerfile reference says, so the test cannot pass with both
tools wrong in the same way.
"""

from __future__ import annotations

import gzip
import io
import tarfile

from tests.build_diff.harness import BuildFn, Node, same

SRC = {
    "src/a.txt": "a\n",
    "src/sub/b.sh": b"#!/bin/sh\necho b\n",
    "src/sub/l": "@link:../a.txt",
    "src/empty/": "",
}


def test_copy_of_a_directory_copies_its_contents(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\nCOPY src /app/\nCOPY src /app2\nCOPY src/ /app3\nCOPY src/sub /app4/sub/\n",
        SRC,
    )
    tree = out.ours
    # the directory's *contents* land in the destination, never the directory itself
    assert "app/a.txt" in tree and "app/src" not in tree
    assert "app2/sub/b.sh" in tree and "app3/empty" in tree
    assert tree["app/sub/l"].kind == "l" and tree["app/sub/l"].data == "../a.txt"
    assert "app4/sub/b.sh" in tree and "app4/sub/sub" not in tree


def test_copy_destination_rules(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "COPY a.txt /dest/\n"  # trailing slash: a directory
        "COPY a.txt /file\n"  # no slash, missing: the file's new name
        "COPY a.txt /newdir/sub/\n"  # missing parents are created
        "COPY a.txt /etc\n"  # no slash but an existing directory: into it
        "COPY a.txt b.txt /multi/\n"  # several sources need a directory
        "COPY bin /bin\n"  # a directory merged into an existing one
        "WORKDIR /w\n"
        "COPY a.txt rel/\n"  # relative destinations are under WORKDIR
        "COPY b.txt ./dot.txt\n"
        "COPY a.txt .\n",
        {"a.txt": "a\n", "b.txt": "b\n", "bin/extra": "x\n"},
    )
    tree = out.ours
    assert tree["dest/a.txt"].kind == "f" and tree["file"].kind == "f"
    assert tree["newdir/sub/a.txt"].kind == "f" and tree["etc/a.txt"].kind == "f"
    assert {"multi/a.txt", "multi/b.txt"} <= set(tree)
    assert "bin/extra" in tree and tree["bin/busybox"].kind == "f"  # merged, not replaced
    assert {"w/rel/a.txt", "w/dot.txt", "w/a.txt"} <= set(tree)


def test_copy_globs(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "COPY *.txt /g/\n"
        "COPY src/*/x.conf /h/\n"
        "COPY [ab]*.md /i/\n"
        "COPY s?c /j/\n",  # a wildcard that matches a directory copies its contents
        {
            "a.txt": "a",
            "b.txt": "b",
            "a1.md": "m",
            "c.md": "no",
            "src/p/x.conf": "1",
            "src/q/x.conf": "2",
            "src/q/y": "y",
        },
    )
    tree = out.ours
    assert {"g/a.txt", "g/b.txt"} <= set(tree) and "i/c.md" not in tree
    assert "h/x.conf" in tree  # two matches, same name: the last one wins
    assert "j/p/x.conf" in tree and "j/src" not in tree


def test_copy_wildcard_without_matches_beside_other_sources(duo: BuildFn) -> None:
    # BuildKit copies context sources with AllowEmptyWildcard (dockerfile2llb dispatchCopy):
    # a pattern that matches nothing is not an error while the instruction names other files.
    out = same(duo, "FROM busybox\nCOPY nomatch* a.txt /k/\n", {"a.txt": "a"})
    assert out.ours["k/a.txt"].kind == "f"


def test_copy_chown_with_names_and_ids(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "COPY --chown=app:app a.txt /o1/\n"
        "COPY --chown=1000:1000 a.txt /o2/\n"
        "COPY --chown=2001 a.txt /o4/\n"  # an id alone: the same number for the group
        "COPY --chown=app:nogroup src /o5/\n"
        "COPY --chown=7:8 a.txt /o6/deep/\n",  # directories it creates get the owner too
        {"a.txt": "a", "src/f": "f", "src/d/g": "g"},
    )
    tree = out.ours
    assert (tree["o1/a.txt"].uid, tree["o1/a.txt"].gid) == (1000, 1000)
    assert (tree["o4/a.txt"].uid, tree["o4/a.txt"].gid) == (2001, 2001)
    assert (tree["o5/d/g"].uid, tree["o5/d/g"].gid) == (1000, 65534)
    assert (tree["o6/deep"].uid, tree["o6/deep"].gid) == (7, 8)


def test_copy_chown_user_name_alone_takes_the_users_primary_group(duo: BuildFn) -> None:
    # Dockerfile reference / BuildKit readUser: a name without a group gets the uid *and*
    # the primary gid of that passwd entry (here 3000, which differs from the uid).
    out = same(
        duo,
        "FROM busybox\n"
        "RUN echo 'svc:x:2000:3000::/:/bin/sh' >> /etc/passwd && echo 'svcgrp:x:3000:' >> /etc/group\n"
        "COPY --chown=svc a.txt /o3/\n"
        "COPY --chown=svc:app a.txt /o7/\n",
        {"a.txt": "a"},
    )
    assert (out.ours["o3/a.txt"].uid, out.ours["o3/a.txt"].gid) == (2000, 3000)
    assert (out.ours["o7/a.txt"].uid, out.ours["o7/a.txt"].gid) == (2000, 1000)


def test_copy_chmod(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "COPY --chmod=0600 a.txt /m1/\n"
        "COPY --chmod=755 src /m2/\n"
        "COPY --chmod=4755 a.txt /m3\n",
        {"a.txt": "a", "src/f": "f", "src/d/g": "g"},
    )
    assert out.ours["m1/a.txt"].mode == 0o600
    assert out.ours["m2/f"].mode == 0o755 and out.ours["m3"].mode == 0o4755


def test_copy_symlinks_from_the_context(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "COPY link /s1\n"  # a symlink named as a source is followed (its target is copied)
        "COPY src /s2/\n"  # symlinks inside a copied directory stay symlinks
        "COPY dirlink /s3/\n",
        {
            "a.txt": "a",
            "link": "@link:a.txt",
            "src/l1": "@link:/etc/passwd",
            "src/l2": "@link:nowhere",
            "dir/x": "x",
            "dirlink": "@link:dir",
        },
    )
    tree = out.ours
    assert tree["s1"].kind == "f"
    assert tree["s2/l1"] == Node("l", 0o777, 0, 0, "/etc/passwd")
    assert tree["s3/x"].kind == "f"


def test_copy_keeps_hard_links_within_one_source(duo: BuildFn) -> None:
    # BuildKit's context transfer and copier keep hard links inside one copied tree
    # (separate sources are copied separately, so /h2 gets two files).
    out = same(
        duo,
        "FROM busybox\nCOPY src /h/\nCOPY src/a src/b /h2/\n",
        {"src/a": "a", "src/b": "@hardlink:src/a", "src/sub/c": "@hardlink:src/a"},
    )
    assert out.ours["h/b"].hardlink == "h/a" and out.ours["h/sub/c"].hardlink == "h/a"
    assert out.ours["h2/b"].hardlink == ""


def test_copy_honours_dockerignore(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\nCOPY . /ctx/\n",
        {
            ".dockerignore": "*.log\n!keep.log\nnode_modules\n**/tmp\nDockerfile\n",
            "a.log": "no",
            "keep.log": "yes",
            "node_modules/x/index.js": "no",
            "deep/er/tmp/t": "no",
            "deep/er/file": "yes",
        },
    )
    assert {"ctx/keep.log", "ctx/deep/er/file", "ctx/.dockerignore"} <= set(out.ours)
    assert not {"ctx/a.log", "ctx/node_modules", "ctx/deep/er/tmp"} & set(out.ours)


def _tar(*, gz: bool = False) -> bytes:
    """A small archive with owners, modes, a directory, a symlink and a hard link."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:

        def add(name: str, data: bytes | None = None, **kw) -> None:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            info.uid, info.gid, info.mode = (
                kw.get("uid", 123),
                kw.get("gid", 456),
                kw.get("mode", 0o644),
            )
            info.type = kw.get("type", tarfile.REGTYPE)
            info.linkname = kw.get("link", "")
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)

        add("pkg/", type=tarfile.DIRTYPE, mode=0o750)
        add("pkg/bin/", type=tarfile.DIRTYPE, mode=0o755, uid=0, gid=0)
        add("pkg/bin/tool", b"#!/bin/sh\necho tool\n", mode=0o755)
        add("pkg/README", b"readme\n", mode=0o600, uid=0, gid=0)
        add("pkg/hard", type=tarfile.LNKTYPE, link="pkg/README", mode=0o600, uid=0, gid=0)
        add("pkg/sym", type=tarfile.SYMTYPE, link="bin/tool", mode=0o777)
        add("top.txt", b"top\n", mode=0o4755)
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


def test_add_of_a_local_archive_extracts_it(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "ADD pkg.tar /opt/\n"
        "ADD pkg.tar.gz /opt2\n"  # compressed, and no trailing slash: still a directory
        "ADD notatar.tar /opt3/\n"  # the name does not matter, the content does
        "ADD plain.txt /opt4/\n",
        {"pkg.tar": _tar(), "pkg.tar.gz": _tar(gz=True), "notatar.tar": "text", "plain.txt": "p"},
    )
    tree = out.ours
    assert (tree["opt/pkg/bin/tool"].uid, tree["opt/pkg/bin/tool"].gid) == (123, 456)
    assert tree["opt/pkg"].mode == 0o750 and tree["opt2/top.txt"].mode == 0o4755
    assert tree["opt/pkg/sym"].kind == "l" and tree["opt3/notatar.tar"].kind == "f"
    assert tree["opt/pkg/hard"].hardlink == "opt/pkg/README"


def test_copy_into_an_existing_directory_keeps_its_owner_for_later_steps(duo: BuildFn) -> None:
    # The directory the files land in belongs to app (set by RUN); the COPY layer must not
    # make later RUN steps see it as root's (Docker users rely on this with USER + COPY . .).
    out = same(
        duo,
        "FROM busybox\n"
        "RUN mkdir -p /home/app/work && chown app:app /home/app/work && chmod 750 /home/app/work\n"
        "COPY a.txt /home/app/work/\n"
        "RUN stat -c '%U:%G %a' /home/app/work > /seen-after-copy\n"
        "USER app\n"
        "RUN touch /home/app/work/by-app\n",
        {"a.txt": "a"},
    )
    seen = (out.ours_root / "seen-after-copy").read_text()
    assert seen == "app:app 750\n"


def test_wildcard_matches_that_are_symlinks_are_followed(duo: BuildFn) -> None:
    # BuildKit docopy: each wildcard match is copied with FollowSymlinks like a named source,
    # so a matched symlink to a directory copies that directory's contents, and one to a
    # file copies the file under the link's name (buildah agrees).
    out = same(
        duo,
        "FROM busybox\nCOPY tree/* /u/\n",
        {
            "tree/dir/inner": "i",
            "tree/dirlink": "@link:dir",
            "tree/file": "f",
            "tree/flink": "@link:file",
        },
    )
    assert "u/dirlink" not in out.ours and out.ours["u/inner"].kind == "f"
    assert out.ours["u/flink"].kind == "f" and out.ours["u/flink"].preview == b"f"


def test_variables_in_copy_and_symlinked_destination_files(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "ARG UID=1234\n"
        "ENV DIR=/opt/app NAME=app\n"
        "RUN mkdir -p /etc/conf && echo old > /etc/conf/target && ln -s target /etc/conf/link"
        " && chmod 600 /etc/conf/target\n"
        "COPY a.txt /etc/conf/link\n"  # a file over a symlink to a file
        "COPY a.txt $DIR/\n"
        "COPY --chown=$UID:$UID a.txt ${DIR}/owned\n"
        "COPY --chown=${NAME} a.txt /named-by-env\n"
        "COPY b.txt /bin/cat\n",  # a file over a base symlink of the same name
        {"a.txt": "a", "b.txt": "b"},
    )
    tree = out.ours
    assert (tree["opt/app/owned"].uid, tree["named-by-env"].uid) == (1234, 1000)
    assert tree["bin/cat"].kind == "f"


def test_copy_into_existing_directories(duo: BuildFn) -> None:
    # BuildKit's copier leaves the existing top destination alone; an existing directory
    # below it takes the copied directory's metadata (owner 0:0 without --chown, mode).
    out = same(
        duo,
        "FROM busybox\n"
        "RUN mkdir -p /d/sub && echo 1 > /d/sub/f && chmod 700 /d && chown 5:5 /d/sub\n"
        "COPY src/ /d/\n"
        "COPY src /d2\n",
        {"src/sub/g": "g", "src/h": "h"},
        modes={"src/sub": 0o750, "src": 0o711},
    )
    assert out.ours["d"].mode == 0o700
    assert (out.ours["d/sub"].uid, out.ours["d/sub"].mode) == (0, 0o750)
