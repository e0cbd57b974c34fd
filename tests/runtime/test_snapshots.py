"""The snapshotter on real overlayfs: unpack once, whiteouts, commit, long chains, prune."""

from __future__ import annotations

import gzip
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from forklift.errors import DigestMismatch, InvalidInput, NotFound
from forklift.layers import write_layer
from forklift.oci.digest import Digest
from forklift.runtime import snapshots as snapmod
from forklift.runtime.snapshots import LayerRef, Snapshotter, chain_id, next_chain_id
from forklift.store import Store
from tests.helpers import REPO
from tests.runtime.layerkit import Member, add_layer, layer_tar, ref_to_json


def _tree(root: Path) -> dict[str, str]:
    """path -> "dir" / file content / "-> target" for everything under root."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_text()
    return out


@pytest.fixture
def base_layers(store: Store) -> list[LayerRef]:
    lower = add_layer(
        store,
        [
            Member("a/"),
            Member("a/file1", b"one"),
            Member("a/file2", b"two"),
            Member("b/"),
            Member("b/x", b"x"),
            Member("c/"),
            Member("c/old", b"old"),
            Member("link", link="a/file1"),
        ],
    )
    upper = add_layer(
        store,
        [
            Member("a/"),
            Member("a/.wh.file1"),
            Member(".wh.b"),
            Member("c/"),
            Member("c/.wh..wh..opq"),
            Member("c/new", b"new"),
            Member("d", b"added"),
        ],
    )
    return [lower, upper]


def test_whiteouts_in_lower_layers_hide_files(store: Store, base_layers: list[LayerRef]) -> None:
    with Snapshotter(store) as snaps, snaps.mount(base_layers) as m:
        assert _tree(m.rootfs) == {
            "a": "dir",
            "a/file2": "two",
            "c": "dir",
            "c/new": "new",
            "d": "added",
            "link": "-> a/file1",
        }
        # The second layer's snapshot holds overlay whiteouts, not deletions. It was
        # applied through an overlay of the first, so the opaque marker shows up as a
        # whiteout of each lower child of c (the same merged view as an opaque xattr).
        top = snaps.get(chain_id([r.diff_id for r in base_layers]))
        assert top is not None
        for hidden in ("a/file1", "b", "c/old"):
            wh = os.lstat(top.path / hidden)
            assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0, hidden
        assert not (top.path / "c" / ".wh..wh..opq").exists()
        assert not (top.path / "a" / "file2").exists()  # untouched lower files stay below


def test_mount_is_writable_and_lowers_stay_untouched(
    store: Store, base_layers: list[LayerRef]
) -> None:
    with Snapshotter(store) as snaps:
        with snaps.mount(base_layers) as m:
            (m.rootfs / "a" / "file2").write_text("changed")
            (m.rootfs / "new").write_text("n")
            assert (m.upper / "a" / "file2").read_text() == "changed"
        bottom = snaps.get(base_layers[0].diff_id)
        assert bottom is not None
        assert (bottom.path / "a" / "file2").read_text() == "two"
        assert not (bottom.path / "new").exists()
        # The default workspace is gone after the block.
        assert list((store.home / "snapshots" / "active").iterdir()) == []


def test_second_mount_does_not_unpack(
    store: Store, base_layers: list[LayerRef], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = snapmod.extract_layer

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(str(kwargs.get("diff_id")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(snapmod, "extract_layer", counting)
    with Snapshotter(store) as snaps:
        with snaps.mount(base_layers):
            pass
        assert len(calls) == 2
        first = snaps.get(base_layers[0].diff_id)
        with snaps.mount(base_layers):
            pass
        with snaps.mount(base_layers[:1]):
            pass
        assert len(calls) == 2
        again = snaps.get(base_layers[0].diff_id)
        assert first is not None and again is not None
        assert again.created == first.created
        assert again.source == base_layers[0].blob.digest  # type: ignore[union-attr]


_WORKER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {repo!r})
    from forklift.runtime import snapshots as S
    from forklift.store import Store
    from tests.runtime.layerkit import ref_from_json
    count_file, go_file, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    layers = [ref_from_json(a) for a in sys.argv[4:]]
    real = S.extract_layer
    def patched(*args, **kwargs):
        with open(count_file, "a") as f:
            f.write(str(os.getpid()) + "\\n")
        result = real(*args, **kwargs)
        if mode == "hang":
            open(count_file + ".ready", "w").close()
            time.sleep(120)
        return result
    S.extract_layer = patched
    while not os.path.exists(go_file):
        time.sleep(0.001)
    snaps = S.Snapshotter(Store.open())
    print(snaps.prepare(layers)[-1].created)
    """
)


def _worker(tmp_path: Path, home: Path, mode: str, layers: list[LayerRef]) -> subprocess.Popen[str]:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(repo=str(REPO)))
    return subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(tmp_path / "count"),
            str(tmp_path / "go"),
            mode,
            *(ref_to_json(r) for r in layers),
        ],
        env={**os.environ, "FORKLIFT_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _big_layer(store: Store) -> LayerRef:
    members = [Member("data/")]
    members += [Member(f"data/f{i}", os.urandom(64 * 1024)) for i in range(64)]
    return add_layer(store, members)


def test_concurrent_processes_unpack_once(tmp_path: Path, home: Path, store: Store) -> None:
    layer = _big_layer(store)
    workers = [_worker(tmp_path, home, "normal", [layer]) for _ in range(3)]
    time.sleep(0.3)  # let all three reach the start line
    (tmp_path / "go").touch()
    results = [w.communicate(timeout=120) for w in workers]
    outputs = [out.strip() for out, _ in results]
    assert [w.returncode for w in workers] == [0, 0, 0], [err for _, err in results]
    # One extraction in total, and every process got that one snapshot.
    extractions = (tmp_path / "count").read_text().split()
    assert len(extractions) == 1, (extractions, outputs, [err for _, err in results])
    assert len(set(outputs)) == 1, outputs
    snaps = Snapshotter(store)
    assert [s.chain_id for s in snaps.list_snapshots()] == [layer.diff_id]
    assert list((home / "snapshots" / "tmp").iterdir()) == []


def test_killed_unpack_leaves_nothing_visible(tmp_path: Path, home: Path, store: Store) -> None:
    layer = _big_layer(store)
    worker = _worker(tmp_path, home, "hang", [layer])
    (tmp_path / "go").touch()
    deadline = time.monotonic() + 60
    while not (tmp_path / "count.ready").exists():
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.01)
    # Everything is extracted into the staging dir; the process dies before the rename.
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    snaps = Snapshotter(store)
    assert snaps.get(layer.diff_id) is None
    assert not snaps.path_of(layer.diff_id).exists()
    assert list((home / "snapshots" / "tmp").iterdir()), "the staging dir should be left over"
    # A later prepare unpacks it properly; prune clears the debris.
    with snaps.mount([layer]) as m:
        assert len(list((m.rootfs / "data").iterdir())) == 64
    snaps.close()
    store.prune()  # no image references the layer: its snapshot goes too
    assert list((home / "snapshots" / "tmp").iterdir()) == []
    assert snaps.get(layer.diff_id) is None


def test_blob_with_other_bytes_is_refused_and_nothing_published(store: Store) -> None:
    layer = add_layer(store, [Member("f", b"content" * 1000)])
    assert layer.blob is not None
    # Same tar (so the diff ID still matches), other gzip bytes: only the blob digest differs.
    tar = layer_tar([Member("f", b"content" * 1000)])
    other = gzip.compress(tar, mtime=12345)
    store.blob_path(layer.blob.digest).write_bytes(other)
    snaps = Snapshotter(store)
    with pytest.raises(DigestMismatch) as info:
        snaps.prepare([layer])
    assert str(Digest.of(other)) in str(info.value)
    assert snaps.get(layer.diff_id) is None
    assert list((store.home / "snapshots" / "tmp").iterdir()) == []


def test_corrupt_gzip_is_a_clear_error(store: Store) -> None:
    layer = add_layer(store, [Member("f", b"content" * 1000)])
    assert layer.blob is not None
    path = store.blob_path(layer.blob.digest)
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # the gzip trailer's CRC
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="corrupt gzip"):
        Snapshotter(store).prepare([layer])
    assert Snapshotter(store).list_snapshots() == []


def test_wrong_diff_id_is_refused(store: Store) -> None:
    layer = add_layer(store, [Member("f", b"x")])
    wrong = LayerRef(layer.blob, Digest.of(b"not this"))
    snaps = Snapshotter(store)
    with pytest.raises(DigestMismatch, match="diff ID"):
        snaps.prepare([wrong])
    assert snaps.list_snapshots() == []


def test_missing_blob_is_a_clear_error(store: Store) -> None:
    layer = add_layer(store, [Member("f", b"x")])
    assert layer.blob is not None
    store.blob_path(layer.blob.digest).unlink()
    with pytest.raises(NotFound, match="not in the store"):
        Snapshotter(store).prepare([layer])
    with pytest.raises(NotFound, match="not unpacked"):
        Snapshotter(store).prepare([LayerRef(None, Digest.of(b"never seen"))])


def test_commit_turns_the_upper_dir_into_the_next_lower(
    store: Store, base_layers: list[LayerRef], tmp_path: Path
) -> None:
    with Snapshotter(store) as snaps:
        with snaps.mount(base_layers) as m:
            (m.rootfs / "a" / "file2").unlink()
            (m.rootfs / "c" / "new").write_text("rewritten")
            (m.rootfs / "e").mkdir()
            (m.rootfs / "e" / "f").write_text("made in RUN")
            m.unmount()
            with open(tmp_path / "layer.tar", "wb") as out:
                info = write_layer(out, m.upper, overlay=True, compression="")
            snap = m.commit(info.diff_id)
            assert not m.upper.exists()  # renamed, not copied
        parent = chain_id([r.diff_id for r in base_layers])
        assert snap.chain_id == next_chain_id(parent, info.diff_id)
        assert snap.parent == parent and snap.source is None
        # The new stack mounts without any blob for the committed layer.
        stacked = [*base_layers, LayerRef(None, info.diff_id)]
        with snaps.mount(stacked) as m2:
            tree = _tree(m2.rootfs)
        assert "a/file2" not in tree
        assert tree["c/new"] == "rewritten"
        assert tree["e/f"] == "made in RUN"
        assert tree["d"] == "added"


def test_commit_of_an_existing_chain_discards_the_upper(
    store: Store, base_layers: list[LayerRef], tmp_path: Path
) -> None:
    with Snapshotter(store) as snaps:
        with snaps.mount(base_layers[:1]) as m:
            (m.rootfs / "same").write_text("same")
            m.unmount()
            with open(tmp_path / "l1", "wb") as out:
                info = write_layer(out, m.upper, overlay=True)
            first = m.commit(info.diff_id)
        with snaps.mount(base_layers[:1]) as m:
            (m.rootfs / "same").write_text("same")
            second = m.commit(info.diff_id)
        assert second == first
        assert len(snaps.list_snapshots()) == 2  # the base layer and the one commit


def test_from_scratch(store: Store) -> None:
    with Snapshotter(store) as snaps, snaps.mount([]) as m:
        assert m.parent is None
        assert list(m.rootfs.iterdir()) == []
        (m.rootfs / "hello").write_text("hi")
        assert (m.upper / "hello").read_text() == "hi"
        assert stat.S_IMODE(os.stat(m.rootfs).st_mode) == 0o755


def test_a_hundred_and_thirty_layers(store: Store) -> None:
    layers = [add_layer(store, [Member(f"l{i:03d}", str(i).encode())]) for i in range(130)]
    layers.append(add_layer(store, [Member("l000", b"overridden")]))
    with Snapshotter(store) as snaps, snaps.mount(layers) as m:
        assert (m.rootfs / "l000").read_text() == "overridden"
        assert (m.rootfs / "l129").read_text() == "129"
        assert len(list(m.rootfs.iterdir())) == 130
        # Absolute paths would overflow the option page; the short fd form was used.
        info = Path("/proc/self/mountinfo").read_text()
        line = next(x for x in info.splitlines() if f" {m.rootfs} " in x)
        assert "lowerdir=/proc/self/fd/" in line


def test_exception_in_the_block_unmounts_and_cleans(
    store: Store, base_layers: list[LayerRef]
) -> None:
    from forklift.runtime import overlay

    with Snapshotter(store) as snaps:
        with pytest.raises(RuntimeError), snaps.mount(base_layers) as m:
            assert overlay.is_mounted(m.rootfs)
            raise RuntimeError("boom")
        assert not overlay.is_mounted(m.rootfs)
        assert not m.workspace.exists()


def test_prune_keeps_what_images_and_live_leases_use(
    store: Store, base_layers: list[LayerRef], busybox_image: str
) -> None:
    from forklift.runtime.snapshots import image_layers

    image = image_layers(store, store.resolve(busybox_image))
    holder = Snapshotter(store)
    holder.prepare(base_layers)  # held by this live lease
    with Snapshotter(store) as other, other.mount(image):
        pass
    stray = add_layer(store, [Member("stray", b"s")])
    with Snapshotter(store) as short_lived:
        short_lived.prepare([stray])  # its lease ends with the block
    store.prune()
    names = {s.chain_id for s in Snapshotter(store).list_snapshots()}
    assert image[0].diff_id in names  # an image in the store uses it
    assert chain_id([r.diff_id for r in base_layers]) in names  # leased
    assert stray.diff_id not in names
    holder.close()
    store.prune()
    names = {s.chain_id for s in Snapshotter(store).list_snapshots()}
    assert names == {image[0].diff_id}
    leases = list((store.home / "snapshots" / "leases").iterdir())
    assert leases == []


def test_prune_spares_live_workspaces_and_clears_dead_ones(
    store: Store, base_layers: list[LayerRef]
) -> None:
    active = store.home / "snapshots" / "active"
    dead = active / "m-999999999-0badcafe-abcdef"  # of a lease nobody holds any more
    legacy = active / "m-999999998-0-abcdef"  # named the way older versions did
    (dead / "upper").mkdir(parents=True)
    (legacy / "upper").mkdir(parents=True)
    with Snapshotter(store) as snaps, snaps.mount(base_layers) as m:
        (m.rootfs / "made").write_text("x")
        m.unmount()  # the upper dir is still needed (to write the layer from it)
        store.prune()
        assert (m.upper / "made").read_text() == "x"
        assert not dead.exists() and not legacy.exists()
    assert list(active.iterdir()) == []


def test_prune_keeps_a_chain_named_by_a_rooted_artifact(
    store: Store, base_layers: list[LayerRef]
) -> None:
    from forklift.oci import mediatypes as mt
    from forklift.oci.descriptor import Descriptor
    from forklift.oci.manifest import ImageManifest
    from forklift.runtime.snapshots import CHAIN_ANNOTATION

    with Snapshotter(store) as snaps:
        snaps.prepare(base_layers)
    top = chain_id([r.diff_id for r in base_layers])
    record = store.put_blob(b"{}")
    artifact = ImageManifest(
        config=Descriptor("application/vnd.example.record+json", record, 2),
        layers=(),
        annotations={CHAIN_ANNOTATION: str(top)},
    ).to_bytes()
    store.set_root(
        "example", "entry", Descriptor(mt.OCI_MANIFEST, store.put_blob(artifact), len(artifact))
    )
    store.prune()
    names = {s.chain_id for s in Snapshotter(store).list_snapshots()}
    assert names == {top, base_layers[0].diff_id}  # the named chain and what it stacks on
    stray = add_layer(store, [Member("stray", b"s")])
    with Snapshotter(store) as snaps:
        snaps.prepare([stray])
    store.prune()
    assert Snapshotter(store).get(stray.diff_id) is None
    store.delete_root("example", "entry")
    store.prune()
    assert Snapshotter(store).list_snapshots() == []


def test_implied_parent_directories_keep_the_lower_owner_and_mode(store: Store) -> None:
    """A layer naming only a file deep down must not reset its parents to root 0755."""
    from forklift.layers import EntryType, LayerItem
    from forklift.oci.descriptor import Descriptor

    def layer(items: list[LayerItem]) -> LayerRef:
        with store.blob_writer() as w:
            info = write_layer(w, items)
            w.commit()
        return LayerRef(Descriptor(info.media_type, info.digest, info.size), info.diff_id)

    lower = layer(
        [
            LayerItem("home", type=EntryType.DIR, mode=0o755),
            LayerItem("home/app", type=EntryType.DIR, uid=1000, gid=1000, mode=0o750),
        ]
    )
    upper = layer([LayerItem("home/app/file", b"data")])  # no parent entries at all
    with Snapshotter(store) as snaps, snaps.mount([lower, upper]) as m:
        st = os.stat(m.rootfs / "home" / "app")
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o750)
        assert (m.rootfs / "home" / "app" / "file").read_bytes() == b"data"
