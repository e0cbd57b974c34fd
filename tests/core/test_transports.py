"""Transports and the copy engine: round trips, digests, hostile inputs."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from forklift.errors import DigestMismatch, InvalidInput, NotFound, UsageError
from forklift.oci import mediatypes as mt
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageIndex, ImageManifest, parse_manifest
from forklift.oci.platform import Platform
from forklift.store import OciLayout, Store
from forklift.transports import copy, open_source, parse_image_name
from tests.helpers import assert_no_traceback


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_layout_image(
    root: Path,
    ref: str | None,
    files: dict[str, bytes],
    *,
    arch: str = "amd64",
    docker_types: bool = False,
) -> Descriptor:
    """An OCI layout image with one gzip layer, written by hand (independent of forklift's writers)."""
    layout = OciLayout(root, create=True)
    plain = layer_tar(files)
    compressed = gzip.compress(plain, mtime=0)
    layer = layout.put_blob(compressed)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(plain))]},
            "config": {"Cmd": ["sh"]},
        }
    ).encode()
    cfg = layout.put_blob(config)
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST if docker_types else mt.OCI_MANIFEST,
        "config": {
            "mediaType": mt.DOCKER_CONFIG if docker_types else mt.OCI_CONFIG,
            "digest": str(cfg),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": mt.DOCKER_LAYER_GZIP if docker_types else mt.OCI_LAYER_GZIP,
                "digest": str(layer),
                "size": len(compressed),
            }
        ],
    }
    raw = json.dumps(doc, indent=2).encode()  # deliberately not canonical: bytes must be kept
    digest = layout.put_blob(raw)
    desc = Descriptor(doc["mediaType"], digest, len(raw), platform=Platform("linux", arch))
    entries = list(layout.read_index().manifests)
    annotations = {"org.opencontainers.image.ref.name": ref} if ref else {}
    entries.append(Descriptor(desc.media_type, digest, len(raw), annotations=annotations))
    layout.write_index(entries)
    return desc


def test_transport_names() -> None:
    assert parse_image_name("busybox").transport == "store"
    assert parse_image_name("localhost:5000/x:1").transport == "store"
    n = parse_image_name("oci:/tmp/dir:tag")
    assert (n.transport, n.path_and_ref()) == ("oci", ("/tmp/dir", "tag"))
    assert parse_image_name("docker://registry:5000/a/b:c").spec == "registry:5000/a/b:c"
    assert parse_image_name("docker-archive:/x.tar:a/b:c").path_and_ref() == ("/x.tar", "a/b:c")
    with pytest.raises(InvalidInput, match="not supported"):
        parse_image_name("containers-storage:x")
    with pytest.raises(InvalidInput, match="missing"):
        parse_image_name("oci:")


def test_oci_dir_into_store_keeps_manifest_digest(home: Path, tmp_path: Path) -> None:
    desc = write_layout_image(tmp_path / "layout", "v1", {"hello.txt": b"hi"})
    result = copy(f"oci:{tmp_path / 'layout'}:v1", "app:1")
    assert result.digest == desc.digest
    image = Store.open().resolve("app:1")
    assert image.digest == desc.digest
    assert Store.open().read_blob(desc.digest) == OciLayout(tmp_path / "layout").read_blob(
        desc.digest
    )
    # Copying again moves nothing.
    again = copy(f"oci:{tmp_path / 'layout'}:v1", "app:2")
    assert again.blobs_copied == 0 and again.blobs_skipped == 2


@pytest.mark.parametrize("fmt", ["oci", "oci-archive", "docker-archive"])
def test_round_trip_through_each_transport(home: Path, tmp_path: Path, fmt: str) -> None:
    write_layout_image(tmp_path / "src", "v1", {"a/b.txt": b"payload" * 100})
    copy(f"oci:{tmp_path / 'src'}:v1", "orig:1")
    target = {
        "oci": f"oci:{tmp_path / 'out'}:t",
        "oci-archive": f"oci-archive:{tmp_path / 'out.tar'}:t",
        "docker-archive": f"docker-archive:{tmp_path / 'out.tar'}:x/y:t",
    }[fmt]
    copy("orig:1", target)
    back = copy(target, "back:1")
    store = Store.open()
    orig, new = store.resolve("orig:1"), store.resolve("back:1")
    assert orig.config == new.config
    if fmt != "docker-archive":
        assert back.digest == orig.digest
    # The layer content (diff ID) survives even where compression changes (docker-archive).
    assert new.config is not None and new.config.diff_ids == orig.config.diff_ids  # type: ignore[union-attr]
    for layer in new.manifest.layers:  # type: ignore[union-attr]
        assert store.has_blob(layer.digest)


def test_docker_archive_is_what_docker_save_writes(home: Path, tmp_path: Path) -> None:
    write_layout_image(tmp_path / "src", "v1", {"f": b"x" * 3000})
    copy(f"oci:{tmp_path / 'src'}:v1", "orig:1")
    copy("orig:1", f"docker-archive:{tmp_path / 'd.tar'}:team/app:2")
    with tarfile.open(tmp_path / "d.tar") as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        [item] = manifest
        assert item["RepoTags"] == ["team/app:2"]
        config = json.load(tf.extractfile(item["Config"]))  # type: ignore[arg-type]
        # layers are stored uncompressed and hash to the config's diff IDs
        for layer_name, diff_id in zip(item["Layers"], config["rootfs"]["diff_ids"], strict=True):
            data = tf.extractfile(layer_name).read()  # type: ignore[union-attr]
            assert str(Digest.of(data)) == diff_id
        repositories = json.load(tf.extractfile("repositories"))  # type: ignore[arg-type]
        assert "team/app" in repositories


def test_docker_manifest_is_converted_for_oci_layouts(home: Path, tmp_path: Path) -> None:
    desc = write_layout_image(tmp_path / "src", "v1", {"f": b"1"}, docker_types=True)
    copy(f"oci:{tmp_path / 'src'}:v1", "dock:1")
    assert Store.open().resolve("dock:1").digest == desc.digest  # the store keeps it as is
    copy("dock:1", f"oci:{tmp_path / 'out'}:v1")
    layout = OciLayout(tmp_path / "out")
    [entry] = layout.read_index().manifests
    assert entry.media_type == mt.OCI_MANIFEST
    m = parse_manifest(layout.read_blob(entry.digest))
    assert isinstance(m, ImageManifest)
    assert m.config.media_type == mt.OCI_CONFIG
    assert [x.media_type for x in m.layers] == [mt.OCI_LAYER_GZIP]


def test_multi_platform_index_pick_and_all(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "multi"
    amd = write_layout_image(root, None, {"arch": b"amd64"}, arch="amd64")
    arm = write_layout_image(root, None, {"arch": b"arm64"}, arch="arm64")
    layout = OciLayout(root)
    index = ImageIndex(
        manifests=(
            Descriptor(amd.media_type, amd.digest, amd.size, platform=Platform("linux", "amd64")),
            Descriptor(
                arm.media_type, arm.digest, arm.size, platform=Platform("linux", "arm64", "v8")
            ),
        )
    )
    raw = index.to_bytes()
    d = layout.put_blob(raw)
    layout.write_index(
        [
            Descriptor(
                mt.OCI_INDEX,
                d,
                len(raw),
                annotations={"org.opencontainers.image.ref.name": "multi"},
            )
        ]
    )
    r = copy(f"oci:{root}:multi", "one:arm", platform=Platform.parse("linux/arm64"))
    assert r.digest == arm.digest
    with pytest.raises(NotFound, match="no image for platform linux/s390x"):
        copy(f"oci:{root}:multi", "one:s390x", platform=Platform.parse("linux/s390x"))
    r = copy(f"oci:{root}:multi", "all:1", all_platforms=True)
    assert r.digest == d
    assert Store.open().resolve("all:1").is_index
    with pytest.raises(UsageError, match="multi-platform"):
        copy("all:1", f"docker-archive:{tmp_path / 'x.tar'}:a:b", all_platforms=True)
    # Without --all-platforms the host's image is picked from the index.
    out = copy(
        "all:1", f"docker-archive:{tmp_path / 'y.tar'}:a:b", platform=Platform.parse("linux/amd64")
    )
    assert out.blobs_copied == 2


def test_blob_that_does_not_match_its_digest_is_not_stored(home: Path, tmp_path: Path) -> None:
    desc = write_layout_image(tmp_path / "evil", "v1", {"f": b"honest bytes" * 50})
    layout = OciLayout(tmp_path / "evil")
    m = parse_manifest(layout.read_blob(desc.digest))
    assert isinstance(m, ImageManifest)
    path = layout.blob_path(m.layers[0].digest)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DigestMismatch, match=str(m.layers[0].digest)):
        copy(f"oci:{tmp_path / 'evil'}:v1", "evil:1")
    store = Store.open()
    assert not store.has_blob(m.layers[0].digest)
    assert not list(store.layout.tmp_dir.glob("*")) if store.layout.tmp_dir.exists() else True
    with pytest.raises(NotFound):
        store.resolve("evil:1")


def test_manifest_with_unknown_media_type_is_rejected(home: Path, tmp_path: Path, cli) -> None:
    layout = OciLayout(tmp_path / "odd", create=True)
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.example.thing+json",
            "config": {},
            "layers": [],
        }
    ).encode()
    d = layout.put_blob(raw)
    layout.write_index(
        [
            Descriptor(
                "application/vnd.example.thing+json",
                d,
                len(raw),
                annotations={"org.opencontainers.image.ref.name": "x"},
            )
        ]
    )
    result = cli("copy", f"oci:{tmp_path / 'odd'}:x", "odd:1")
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "unknown manifest media type" in result.stderr


def test_import_gzip_and_truncated_gzip(
    home: Path, tmp_path: Path, busybox_rootfs_tar: Path, cli
) -> None:
    gz = tmp_path / "rootfs.tar.gz"
    gz.write_bytes(gzip.compress(busybox_rootfs_tar.read_bytes()))
    result = cli("import", str(gz), "fromgz:1")
    assert result.returncode == 0, result.stderr
    image = Store.open().resolve("fromgz:1")
    assert image.config is not None
    # The compressed bytes are kept; the diff ID is the hash of the plain tar.
    assert image.config.diff_ids == (Digest.of(busybox_rootfs_tar.read_bytes()),)
    assert image.manifest.layers[0].digest == Digest.of(gz.read_bytes())  # type: ignore[union-attr]
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) // 2])
    result = cli("import", str(truncated), "trunc:1")
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "trunc.tar.gz" in result.stderr
    assert "trunc:1" not in cli("images").stdout
    garbage = tmp_path / "notatar"
    garbage.write_bytes(b"\x00hello" * 100)
    result = cli("import", str(garbage), "garbage:1")
    assert result.returncode == 1
    assert_no_traceback(result)


def test_import_sets_platform_history_and_epoch(home: Path, busybox_rootfs_tar: Path, cli) -> None:
    result = cli(
        "import",
        str(busybox_rootfs_tar),
        "bb:epoch",
        "-m",
        "base",
        env={"SOURCE_DATE_EPOCH": "1700000000"},
    )
    assert result.returncode == 0, result.stderr
    image = Store.open().resolve("bb:epoch")
    assert image.config is not None
    assert image.config.created == "2023-11-14T22:13:20Z"
    assert image.config.history[0].comment == "base"
    assert str(image.id) == result.stdout.strip()


def test_load_from_stdin_and_compressed(
    home: Path, tmp_path: Path, busybox_image: str, cli
) -> None:
    out = tmp_path / "saved.tar"
    assert cli("save", "-o", str(out), busybox_image).returncode == 0
    assert cli("rmi", busybox_image).returncode == 0
    result = cli("load", input=gzip.compress(out.read_bytes()))
    assert result.returncode == 0, result.stderr
    assert "Loaded image: busybox:latest" in result.stdout
    assert cli("inspect", "busybox:latest").returncode == 0
    bad = cli("load", "-i", str(tmp_path / "missing.tar"))
    assert bad.returncode == 1
    assert_no_traceback(bad)


def test_save_to_stdout_and_refuses_terminal(home: Path, busybox_image: str, cli) -> None:
    result = cli("save", busybox_image)
    assert result.returncode == 0
    # stdout was a pipe: the archive came through it
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "forklift", "save", busybox_image], capture_output=True
    )
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tf:
        assert "manifest.json" in tf.getnames()


def test_source_open_errors(home: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        open_source(f"oci:{tmp_path / 'nothing'}")
    (tmp_path / "f.tar").write_bytes(b"not a tar at all" * 64)
    with pytest.raises(InvalidInput):
        open_source(f"docker-archive:{tmp_path / 'f.tar'}")


def test_image_config_from_import_parses(home: Path, busybox_image: str) -> None:
    image = Store.open().resolve(busybox_image)
    assert isinstance(image.config, ImageConfig)
    assert image.config.os == "linux"
