"""Paths: destinations through symlinks in the image, long and unusual names, large ids."""

from __future__ import annotations

from tests.build_diff.harness import BuildFn, same

LONG = "d" * 120 + "/" + "n" * 150 + ".txt"  # needs PAX/GNU long names in a tar


def test_destinations_through_symlinks_in_the_image(duo: BuildFn) -> None:
    # BuildKit resolves the destination inside the root (fs.RootPath): a symlinked directory
    # receives the files; the link itself stays a link.
    out = same(
        duo,
        "FROM busybox\n"
        "RUN mkdir -p /real/sub /opt && ln -s /real /lnk && ln -s sub /real/rel && ln -s /real /opt/abs\n"
        "COPY a.txt /lnk/\n"
        "COPY a.txt /lnk/rel/\n"
        "COPY src/ /opt/abs/merged/\n"
        "WORKDIR /lnk/work\n"
        "COPY a.txt here.txt\n",
        {"a.txt": "a", "src/x": "x"},
    )
    tree = out.ours
    assert tree["lnk"].kind == "l" and tree["real/rel"].kind == "l"
    assert {"real/a.txt", "real/sub/a.txt", "real/merged/x", "real/work/here.txt"} <= set(tree)


def test_long_and_unusual_names_and_large_ids(duo: BuildFn) -> None:
    out = same(
        duo,
        "FROM busybox\n"
        "COPY src/ /names/\n"
        "COPY --chown=3000000:3000001 a.txt /big-ids/\n"
        f"RUN ln -s /names/{LONG} /long-link && touch '/names/new file' /names/ünï\n",
        {
            f"src/{LONG}": "long",
            "src/with space.txt": "s",
            "src/ünïcödé.txt": "u",
            "src/-dash": "d",
            "src/empty": "",
            "a.txt": "a",
        },
    )
    tree = out.ours
    assert tree[f"names/{LONG}"].preview == b"long" and tree["long-link"].data == f"/names/{LONG}"
    assert (tree["big-ids/a.txt"].uid, tree["big-ids/a.txt"].gid) == (3_000_000, 3_000_001)
    assert {"names/with space.txt", "names/ünïcödé.txt", "names/new file", "names/ünï"} <= set(tree)
