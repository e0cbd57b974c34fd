"""Image IDs are config digests, as in docker: the same image stored as two manifests (a
docker-archive and an OCI archive of it) keeps one ID that always resolves."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from forklift.errors import Conflict
from forklift.store.store import Store
from tests.helpers import Result, run_cli


def fl(home: Path, *args: str, check: bool = True) -> Result:
    return run_cli(*args, env={"FORKLIFT_HOME": str(home)}, check=check)


@pytest.fixture
def two_manifests(busybox_image: str, home: Path, tmp_path: Path) -> tuple[Path, str, set[str]]:
    """A fresh store holding busybox twice: from a docker-archive and from an OCI archive."""
    fl(home, "save", "-o", str(tmp_path / "docker.tar"), busybox_image)
    fl(home, "save", "--format", "oci", "-o", str(tmp_path / "oci.tar"), busybox_image)
    fresh = tmp_path / "fresh-home"
    fl(fresh, "load", "-i", str(tmp_path / "docker.tar"))
    fl(fresh, "load", "-i", str(tmp_path / "oci.tar"))
    images = json.loads(fl(fresh, "images", "--format", "json", "--no-trunc").stdout)
    ids = {i["ID"] for i in images}
    assert len(images) == 2 and len(ids) == 1, images  # two rows, one image ID
    (image_id,) = ids
    digests = {i["Digest"] for i in images}
    assert len(digests) == 2
    return fresh, image_id, digests


def test_a_shared_id_resolves_and_says_which_manifest(two_manifests) -> None:  # type: ignore[no-untyped-def]
    fresh, image_id, digests = two_manifests
    hex_id = image_id.removeprefix("sha256:")
    for text in (image_id, hex_id, hex_id[:12], hex_id[:4]):
        r = fl(fresh, "inspect", text)
        (doc,) = json.loads(r.stdout)
        assert doc["Id"] == image_id
        assert doc["Digest"] in digests
        # the note names the manifest it used, and the same one every time
        assert f"using manifest {doc['Digest']}" in r.stderr, r.stderr
    picks = {json.loads(fl(fresh, "inspect", hex_id[:8]).stdout)[0]["Digest"] for _ in range(3)}
    assert len(picks) == 1
    # the tagged manifest is preferred over the dangling one
    tagged = json.loads(fl(fresh, "inspect", "busybox:latest").stdout)[0]["Digest"]
    assert picks == {tagged}
    assert fl(fresh, "history", hex_id[:12]).returncode == 0
    # a manifest digest still names exactly that manifest, silently
    other = (digests - {tagged}).pop()
    r = fl(fresh, "inspect", other)
    assert json.loads(r.stdout)[0]["Digest"] == other and "Warning" not in r.stderr


def test_rmi_by_id_removes_every_manifest_and_refuses_two_names(two_manifests) -> None:  # type: ignore[no-untyped-def]
    fresh, image_id, _ = two_manifests
    hex_id = image_id.removeprefix("sha256:")
    rows = json.loads(fl(fresh, "images", "--format", "json").stdout)
    (dangling,) = [r["Digest"] for r in rows if r["Tag"] == "<none>"]
    fl(fresh, "tag", dangling, "copy:1")  # now each manifest of the ID has a name
    refused = fl(fresh, "rmi", hex_id, check=False)
    assert refused.returncode != 0
    assert "must be forced" in refused.stderr and "Traceback" not in refused.stderr
    assert len(json.loads(fl(fresh, "images", "--format", "json").stdout)) == 2
    removed = fl(fresh, "rmi", "-f", hex_id[:12])
    assert "Untagged: busybox:latest" in removed.stdout and "Untagged: copy:1" in removed.stdout
    assert json.loads(fl(fresh, "images", "--format", "json").stdout) == []
    assert fl(fresh, "prune").returncode == 0
    blobs = list((fresh / "blobs" / "sha256").iterdir())
    assert blobs == [], blobs


def test_rmi_by_id_with_one_name_needs_no_force(two_manifests) -> None:  # type: ignore[no-untyped-def]
    fresh, image_id, _ = two_manifests
    r = fl(fresh, "rmi", image_id)
    assert r.stdout.splitlines()[0] == "Untagged: busybox:latest"
    assert json.loads(fl(fresh, "images", "--format", "json").stdout) == []


def test_library_resolve_all_and_ambiguity(two_manifests, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fresh, image_id, digests = two_manifests
    store = Store(fresh)
    group = store.resolve_all(image_id)
    assert {str(i.digest) for i in group} == digests
    assert group[0].names and not group[1].names  # tagged first
    one = sorted(digests)[1]
    assert [str(i.digest) for i in store.resolve_all(one)] == [one]
    # prefixes shared by different images stay ambiguous, with advice that can work
    other = tmp_path / "other"
    other.mkdir()
    for n in range(40):
        (other / "f").write_text(str(n))
        tar = tmp_path / f"r{n}.tar"
        with tarfile.open(tar, "w") as tf:
            tf.add(other / "f", arcname="f")
        fl(fresh, "import", str(tar), f"p:{n}")
    ids = [i.id.hex for i in store.images()]
    shared = next(c for c in "0123456789abcdef" if len({x for x in ids if x.startswith(c)}) > 1)
    with pytest.raises(Conflict, match="different images; give more characters"):
        store.resolve(shared)


def test_loading_an_image_the_store_has_only_names_it(
    busybox_image: str, home: Path, tmp_path: Path
) -> None:
    # docker load of an image whose ID is there adds nothing; a docker-archive carries no
    # manifest, so loading it again used to add an uncompressed copy and move the tag to it
    archive = tmp_path / "docker.tar"
    fl(home, "save", "-o", str(archive), busybox_image)
    before = json.loads(fl(home, "images", "--format", "json", "--no-trunc").stdout)
    blobs = sorted(p.name for p in (home / "blobs" / "sha256").iterdir())
    fl(home, "tag", busybox_image, "kept:1")
    fl(home, "rmi", busybox_image)
    loaded = fl(home, "load", "-i", str(archive))
    assert "Loaded image: busybox:latest" in loaded.stdout
    after = json.loads(fl(home, "images", "--format", "json", "--no-trunc").stdout)
    assert {(i["Repository"], i["Digest"]) for i in after} == {
        ("busybox", before[0]["Digest"]),
        ("kept", before[0]["Digest"]),
    }
    assert sorted(p.name for p in (home / "blobs" / "sha256").iterdir()) == blobs


def test_an_image_missing_a_layer_is_loaded_again(
    busybox_image: str, home: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "docker.tar"
    fl(home, "save", "-o", str(archive), busybox_image)
    (doc,) = json.loads(fl(home, "inspect", busybox_image).stdout)
    store = Store.open()
    manifest = store.resolve(busybox_image).manifest
    layer = manifest.layers[0].digest  # type: ignore[union-attr]
    store.blob_path(layer).unlink()
    fl(home, "load", "-i", str(archive))
    (again,) = json.loads(fl(home, "inspect", busybox_image).stdout)
    assert again["Id"] == doc["Id"]  # the same image ID, now complete again
    store = Store.open()
    image = store.resolve(busybox_image)
    assert all(store.has_blob(d.digest) for d in image.manifest.layers)  # type: ignore[union-attr]
