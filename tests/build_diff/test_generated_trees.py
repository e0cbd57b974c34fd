"""Generated contexts (hypothesis): COPY of arbitrary small trees, then deletions in RUN.

Each example is a random tree of directories, files and symlinks with varied modes,
copied twice (as directory contents and under a glob), then some of the copied paths
are removed in a RUN step so whiteouts for files, directories and symlinks appear. The
few examples are derandomised, so every run builds the same ones, and not shrunk (each
is two real builds; a failure prints its example as drawn).
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.build_diff.harness import BuildFn

NAMES = st.sampled_from(["a", "b", "c.txt", "d.sh", "ee", "f f", "g-1", "h_2", ".hidden"])
MODES = st.sampled_from([0o644, 0o755, 0o600, 0o700, 0o444, 0o750])


@st.composite
def trees(draw: st.DrawFn) -> dict[str, tuple[str, int, str]]:
    """path -> (kind, mode, content or link target); kind is d, f or l."""
    tree: dict[str, tuple[str, int, str]] = {}
    dirs = [""]
    for _ in range(draw(st.integers(3, 14))):
        parent = draw(st.sampled_from(dirs))
        path = f"{parent}/{draw(NAMES)}".lstrip("/")
        if path in tree:
            continue
        kind = draw(st.sampled_from(["d", "f", "f", "l"]))
        if kind == "d":
            tree[path] = ("d", draw(st.sampled_from([0o755, 0o750, 0o700, 0o775])), "")
            dirs.append(path)
        elif kind == "f":
            tree[path] = ("f", draw(MODES), draw(st.text("xyz\n ", max_size=40)))
        else:
            # targets that are never links themselves, so no loops: siblings made so far
            # that are files or directories, an absolute path, a dangling name, a way up
            siblings = [
                p.rsplit("/", 1)[-1]
                for p, (k, _, _) in tree.items()
                if k != "l" and p.rpartition("/")[0] == parent
            ]
            # `COPY tree/*` follows the links it matches, and a dangling one is an error for
            # every builder: at the top, links point at siblings only
            outside = [] if not parent else ["/etc/passwd", "nowhere", "../up"]
            if not siblings and not outside:
                tree[path] = ("f", draw(MODES), "")
                continue
            target = draw(st.sampled_from([*siblings, *outside]))
            tree[path] = ("l", 0o777, target)
    return tree


@settings(
    max_examples=4,
    derandomize=True,
    deadline=None,
    # each example is two real builds: report the failing example instead of shrinking it
    phases=[Phase.explicit, Phase.generate],
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=trees(), data=st.data())
def test_copy_and_delete_generated_trees(
    duo: BuildFn, tree: dict[str, tuple[str, int, str]], data: st.DataObject
) -> None:
    top = sorted({p.split("/")[0] for p in tree})
    doomed = data.draw(st.lists(st.sampled_from(top), max_size=2, unique=True))
    files: dict[str, str | bytes] = {}
    for path, (kind, _, content) in sorted(tree.items()):
        if kind == "d":
            files[f"tree/{path}/"] = ""
        else:
            files[f"tree/{path}"] = f"@link:{content}" if kind == "l" else content
    modes = {f"tree/{p}": mode for p, (kind, mode, _) in tree.items() if kind != "l"}
    rm = " ".join(f"'/t/{p}'" for p in doomed) or "/t/nothing-here"
    dockerfile = (
        f"FROM busybox\nCOPY tree/ /t/\nCOPY tree/* /u/\nRUN rm -rf {rm} && echo done > /marker\n"
    )
    out = duo(dockerfile, files, modes=modes)
    out.check_same()
    for p in doomed:
        assert f"t/{p}" not in out.ours
