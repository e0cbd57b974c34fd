"""The local store: atomic verified blobs, tags, rmi, prune, fsck, concurrency."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from forklift.errors import Conflict, DigestMismatch, NotFound, SizeMismatch
from forklift.oci import mediatypes as mt
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest
from forklift.reference import parse_reference
from forklift.store import Store
from tests.helpers import assert_no_traceback


def make_image(
    store: Store, payload: bytes, name: str | None = None, created: str = "2024-01-01T00:00:00Z"
) -> Descriptor:
    """A one-'layer' image whose layer is ``payload`` (not a real tar: the store does not care)."""
    layer = store.put_blob(payload)
    config = ImageConfig(
        architecture="amd64", os="linux", diff_ids=(layer,), created=created
    ).to_bytes()
    cfg = store.put_blob(config)
    manifest = ImageManifest(
        config=Descriptor(mt.OCI_CONFIG, cfg, len(config)),
        layers=(Descriptor(mt.OCI_LAYER, layer, len(payload)),),
    ).to_bytes()
    desc = Descriptor(mt.OCI_MANIFEST, store.put_blob(manifest), len(manifest))
    store.add_image(desc, [parse_reference(name)] if name else [])
    return desc


def test_blob_is_verified_and_nothing_is_kept_on_mismatch(home: Path) -> None:
    store = Store.open()
    data = b"x" * 1000
    with pytest.raises(DigestMismatch), store.blob_writer(Digest.of(b"other")) as w:
        w.write(data)
        w.commit()
    assert not store.has_blob(Digest.of(data))
    assert not store.has_blob(Digest.of(b"other"))
    with pytest.raises(SizeMismatch), store.blob_writer(Digest.of(data), 999) as w:
        w.write(data)
    assert list(store.layout.tmp_dir.iterdir()) == []
    d = store.put_blob(data)
    assert store.read_blob(d) == data
    assert oct(store.blob_path(d).stat().st_mode & 0o777) == "0o644"


class _Pieces:
    """A reader whose readinto gives uneven pieces, as a socket does."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = memoryview(data)
        self._sizes = sizes
        self.calls = 0

    def readinto(self, buf: memoryview) -> int:
        size = self._sizes[self.calls % len(self._sizes)]
        self.calls += 1
        n = min(size, len(buf), len(self._data))
        buf[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_small_and_large_writes_land_in_order(home: Path) -> None:
    store = Store.open()
    data = os.urandom(5_000_000)
    sizes = [3, 70_000, 511, 2_000_000, 1, 65_535, 65_536, 4096]
    with store.blob_writer(Digest.of(data), len(data)) as w:
        pos = i = 0
        while pos < len(data):
            # bytes, bytearray and memoryview pieces, each below and above the direct size
            piece = data[pos : pos + sizes[i % len(sizes)]]
            w.write(piece if i % 3 == 0 else bytearray(piece) if i % 3 == 1 else memoryview(piece))
            pos += len(piece)
            i += 1
        assert w.commit() == Digest.of(data)
    assert store.read_blob(Digest.of(data)) == data
    # copy_from gathers a socket's uneven pieces in its buffer before writing
    other = os.urandom(3_000_000)
    source = _Pieces(other, [1000, 300_000, 7, 65_536])
    with store.blob_writer(Digest.of(other), len(other)) as w:
        w.copy_from(source)  # type: ignore[arg-type]
        w.commit()
    assert store.read_blob(Digest.of(other)) == other
    assert list(store.layout.tmp_dir.iterdir()) == []


def test_store_is_an_oci_layout(home: Path) -> None:
    store = Store.open()
    make_image(store, b"layer", "app:1")
    assert json.loads((home / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((home / "index.json").read_text())
    assert index["schemaVersion"] == 2
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names == ["docker.io/library/app:1"]


def test_tags_multiple_names_and_dangling_on_retag(home: Path) -> None:
    store = Store.open()
    first = make_image(store, b"one", "app:1")
    store.tag("app:1", "app:stable")
    store.tag("app:1", "registry.example.com/team/app")
    image = store.resolve("app:stable")
    assert image.digest == first.digest
    assert sorted(n.familiar() for n in image.names) == [
        "app:1",
        "app:stable",
        "registry.example.com/team/app:latest",
    ]
    # Moving app:1 to a new image keeps the old one under its other names.
    second = make_image(store, b"two", "app:1", created="2024-02-01T00:00:00Z")
    assert store.resolve("app:1").digest == second.digest
    assert store.resolve("app:stable").digest == first.digest
    # An image that loses its last name stays, dangling (like docker's <none>).
    third = make_image(store, b"three", "solo:1")
    make_image(store, b"four", "solo:1")
    dangling = [i for i in store.images() if i.digest == third.digest]
    assert dangling and dangling[0].names == ()


def test_resolve_by_id_prefix_digest_and_errors(home: Path) -> None:
    store = Store.open()
    d = make_image(store, b"a", "a:1")
    image = store.resolve("a:1")
    assert store.resolve(image.id.hex[:6]).digest == d.digest
    assert store.resolve(str(image.id)).digest == d.digest
    assert store.resolve(str(d.digest)).digest == d.digest
    assert store.resolve(f"a@{d.digest}").digest == d.digest
    with pytest.raises(NotFound) as info:
        store.resolve("nothere:1")
    assert "nothere:1 not in the local store" in str(info.value)
    # Two images whose IDs share a first character make a 1-char prefix ambiguous (if they do).
    for n in range(40):
        make_image(store, f"p{n}".encode(), f"p:{n}")
    ids = [i.id.hex for i in store.images()]
    shared = next(c for c in "0123456789abcdef" if sum(x.startswith(c) for x in ids) > 1)
    with pytest.raises(Conflict, match="ambiguous"):
        store.resolve(shared)


def test_rmi_semantics_like_docker(home: Path) -> None:
    store = Store.open()
    d = make_image(store, b"payload-1", "app:1")
    store.tag("app:1", "app:2")
    image = store.resolve("app:1")
    # By ID with two names: refused unless forced.
    with pytest.raises(Conflict, match="must be forced"):
        store.remove(image.id.hex[:12])
    # By name: only untags while another name remains; blobs stay.
    assert store.remove("app:1") == ["Untagged: app:1"]
    assert store.has_blob(d.digest)
    # Last name: the image and its blobs go.
    lines = store.remove("app:2")
    assert lines[0] == "Untagged: app:2"
    assert f"Deleted: {d.digest}" in lines
    assert not store.has_blob(d.digest)
    assert not store.has_blob(Digest.of(b"payload-1"))
    # Forced removal by ID removes every name.
    make_image(store, b"payload-2", "b:1")
    store.tag("b:1", "b:2")
    lines = store.remove(store.resolve("b:1").id.hex[:8], force=True)
    assert {"Untagged: b:1", "Untagged: b:2"} <= set(lines)
    assert store.images() == []


def test_rmi_keeps_blobs_shared_with_other_images(home: Path) -> None:
    store = Store.open()
    shared = b"shared layer"
    make_image(store, shared, "x:1")
    make_image(store, shared, "y:1", created="2024-03-01T00:00:00Z")
    store.remove("x:1")
    assert store.has_blob(Digest.of(shared))


def test_prune_removes_only_unreferenced_blobs(home: Path) -> None:
    store = Store.open()
    make_image(store, b"kept", "keep:1")
    orphan = store.put_blob(b"o" * 5000)
    # a killed writer's leftover
    store.layout.tmp_dir.mkdir(exist_ok=True)
    (store.layout.tmp_dir / "blob-dead.partial").write_bytes(b"junk")
    dry = store.prune(dry_run=True)
    assert dry.blobs_removed == 1 and dry.bytes_freed == 5000 and store.has_blob(orphan)
    report = store.prune()
    assert report.blobs_removed == 1 and report.bytes_freed == 5000
    assert not store.has_blob(orphan)
    assert store.has_blob(Digest.of(b"kept"))
    assert not store.layout.tmp_dir.exists()
    store.resolve("keep:1")


def test_prune_dangling_and_roots(home: Path) -> None:
    store = Store.open()
    old = make_image(store, b"old", "app:1")
    make_image(store, b"new", "app:1", created="2024-05-01T00:00:00Z")
    rooted = store.put_blob(b"cache entry")
    store.set_root("buildcache", "abc", Descriptor("application/octet-stream", rooted, 11))
    report = store.prune()
    assert store.has_blob(old.digest), "a dangling image is kept unless asked"
    assert store.has_blob(rooted), "a root keeps its blob alive"
    report = store.prune(dangling=True)
    assert str(old.digest) in report.images_removed
    assert not store.has_blob(old.digest)
    report = store.prune(cache=True)
    assert report.roots_removed == 1 and not store.has_blob(rooted)


def test_fsck_finds_flipped_and_missing_blobs(home: Path, cli) -> None:
    store = Store.open()
    make_image(store, b"A" * 10000, "good:1")
    bad = make_image(store, b"B" * 10000, "bad:1", created="2024-04-01T00:00:00Z")
    assert store.fsck().ok
    path = store.blob_path(Digest.of(b"B" * 10000))
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x01
    path.write_bytes(bytes(data))
    report = store.fsck()
    assert not report.ok
    [problem] = report.problems
    assert problem.kind == "corrupt" and problem.digest == str(Digest.of(b"B" * 10000))
    assert problem.images == ("docker.io/library/bad:1",)
    result = cli("fsck")
    assert result.returncode == 1
    assert "corrupt" in result.stdout and "bad:1" in result.stdout
    # Missing: a referenced blob deleted behind the store's back.
    store.blob_path(bad.digest).unlink()
    kinds = {p.kind for p in store.fsck().problems}
    assert "missing" in kinds
    repaired = store.fsck(repair=True)
    assert str(Digest.of(b"B" * 10000)) in repaired.repaired
    assert not path.exists()


def _writer(home: str, n: int, barrier) -> None:  # pragma: no cover - runs in a child process
    os.environ["FORKLIFT_HOME"] = home
    store = Store.open()
    barrier.wait()
    for i in range(30):
        with store.writing():
            make_image(store, b"same bytes for everyone" * 1000, f"shared:{i}")
            make_image(store, f"own {n} {i}".encode(), f"own{n}:{i}")


def test_concurrent_writers_end_consistent(home: Path) -> None:
    Store.open()
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_writer, args=(str(home), n, barrier)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = Store.open()
    names = {n.familiar() for i in store.images() for n in i.names}
    for n in range(3):
        for i in range(30):
            assert f"own{n}:{i}" in names
            assert f"shared:{i}" in names
    assert store.fsck().ok
    json.loads((home / "index.json").read_text())


def test_prune_waits_for_writers(home: Path) -> None:
    """A blob written under writing() survives a prune started before it is tagged."""
    import threading

    store = Store.open()
    started = threading.Event()
    release = threading.Event()
    result: dict[str, object] = {}

    def write() -> None:
        with store.writing():
            d = store.put_blob(b"in flight")
            started.set()
            release.wait(10)
            result["digest"] = d
            make_image(store, b"in flight", "flight:1")

    t = threading.Thread(target=write)
    t.start()
    started.wait(10)
    p = threading.Thread(target=lambda: result.setdefault("prune", store.prune()))
    p.start()
    p.join(0.5)
    assert p.is_alive(), "prune must wait for the writer"
    release.set()
    t.join(10)
    p.join(10)
    assert store.has_blob(Digest.of(b"in flight"))


def test_cli_errors_are_one_line(home: Path, cli) -> None:
    for args in (
        ["inspect", "nope:1"],
        ["rmi", "nope"],
        ["tag", "nope", "x"],
        ["history", "Bad:Name"],
    ):
        result = cli(*args)
        assert result.returncode != 0
        assert_no_traceback(result)
        assert len(result.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("where", ["forklift.store.layout.WriteBehind", "fcntl.flock"])
def test_a_cancel_while_a_blob_writer_is_made_leaves_no_partial_file(
    home: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # A SIGINT's Cancelled can arrive right after the temporary file exists and before
    # the writer is anyone's to abort (seen in tests/runtime/test_cancel.py under load).
    from forklift.cancel import Cancelled

    def interrupted(*args: object, **kwargs: object) -> None:
        raise Cancelled(2, "pull")

    store = Store.open()
    monkeypatch.setattr(where, interrupted)
    with pytest.raises(Cancelled):
        store.blob_writer()
    assert list((home / ".tmp").iterdir()) == []
