"""umoci (a peer OCI tool) unpacks our layers, and we apply the layers umoci writes.

Both directions compare whole trees: what umoci unpacks from forklift's layers
must equal what forklift's own extraction gives, and forklift applying
umoci's layers (whiteouts included) must give umoci's own bundle rootfs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from forklift.layers import EntryType, LayerItem, extract_layer, iter_entries, write_layer_file
from tests.layers.trees import IS_ROOT, make_sample_tree, snapshot

pytestmark = pytest.mark.skipif(
    shutil.which("umoci") is None or not IS_ROOT, reason="needs umoci and root (owners, devices)"
)


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_layout(layout: Path, build) -> None:  # type: ignore[no-untyped-def]
    """An OCI image layout (tag "t") whose layers ``build(path)`` writes one by one."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layers, diff_ids = [], []
    for i, source in enumerate(build):
        tmp = layout / f"layer{i}"
        info = write_layer_file(tmp, source)
        target = layout / "blobs" / "sha256" / info.digest.hex
        tmp.rename(target)
        layers.append({"mediaType": info.media_type, "digest": str(info.digest), "size": info.size})
        diff_ids.append(str(info.diff_id))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    cfg = _blob(layout, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
        "layers": layers,
    }
    man = _blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **man,
                "annotations": {"org.opencontainers.image.ref.name": "t"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))


def umoci(*args: str, cwd: Path) -> None:
    subprocess.run(["umoci", *args], cwd=cwd, check=True, capture_output=True)


def test_umoci_unpacks_our_layers_like_we_do(tmp_path: Path) -> None:
    base = make_sample_tree(tmp_path / "base")
    (base / "control.sock").unlink()
    (base / "var" / "lib").mkdir(parents=True)
    (base / "var" / "lib" / "state").write_text("lower")
    (base / "var" / "lib" / "more").write_text("lower")
    new_conf = tmp_path / "new.conf"
    new_conf.write_text("new")
    diff = [
        LayerItem("etc/.wh.hostname", b""),  # delete a file of the base
        LayerItem("data/.wh.random.bin", b""),
        LayerItem("var/lib", type=EntryType.DIR, mtime=1_700_000_000),
        LayerItem("var/lib/.wh..wh..opq", b""),  # hide everything the base had there
        LayerItem("var/lib/fresh", new_conf, mtime=1_700_000_000),
    ]
    layout = tmp_path / "layout"
    make_layout(layout, [base, diff])
    umoci("unpack", "--image", f"{layout}:t", "bundle", cwd=tmp_path)

    ours = tmp_path / "ours"
    manifest_digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest[7:]).read_bytes())
    for layer in manifest["layers"]:
        with (layout / "blobs" / "sha256" / layer["digest"][7:]).open("rb") as f:
            extract_layer(f, ours)
    theirs = snapshot(tmp_path / "bundle" / "rootfs")
    mine = snapshot(ours)
    assert "var/lib/state" not in mine and "etc/hostname" not in mine
    assert mine == theirs


def test_we_apply_layers_umoci_wrote(tmp_path: Path) -> None:
    layout = tmp_path / "L"
    umoci("init", "--layout", str(layout), cwd=tmp_path)
    umoci("new", "--image", f"{layout}:t", cwd=tmp_path)
    umoci("unpack", "--image", f"{layout}:t", "B", cwd=tmp_path)
    rootfs = tmp_path / "B" / "rootfs"
    make_sample_tree(rootfs / "sample")
    (rootfs / "sample" / "control.sock").unlink()
    (rootfs / "etc" / "conf.d").mkdir(parents=True)
    (rootfs / "etc" / "conf.d" / "a").write_text("a")
    (rootfs / "etc" / "passwd").write_text("root")
    umoci("repack", "--image", f"{layout}:t", "B", cwd=tmp_path)
    shutil.rmtree(tmp_path / "B")
    umoci("unpack", "--image", f"{layout}:t", "B", cwd=tmp_path)
    (rootfs / "etc" / "passwd").unlink()
    shutil.rmtree(rootfs / "sample" / "data")
    (rootfs / "etc" / "conf.d" / "new").write_text("new")
    os.chmod(rootfs / "sample" / "etc", 0o700)
    umoci("repack", "--image", f"{layout}:t", "B", cwd=tmp_path)
    shutil.rmtree(tmp_path / "B")
    umoci("unpack", "--image", f"{layout}:t", "B", cwd=tmp_path)
    want = snapshot(rootfs)

    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest[7:]).read_bytes())
    assert len(manifest["layers"]) == 2
    ours = tmp_path / "ours"
    whiteouts = 0
    for layer in manifest["layers"]:
        path = layout / "blobs" / "sha256" / layer["digest"][7:]
        with path.open("rb") as f:
            whiteouts += sum(1 for e in iter_entries(f) if e.is_whiteout)
        with path.open("rb") as f:
            extract_layer(f, ours)
    assert whiteouts >= 2  # umoci wrote whiteouts for passwd and sample/data
    assert snapshot(ours) == want
