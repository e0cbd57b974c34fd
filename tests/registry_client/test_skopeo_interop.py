"""Interop with skopeo over a real distribution: what skopeo pushes the client reads, and back."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from forklift.oci import Digest
from forklift.oci import mediatypes as mt
from forklift.registry.client import RegistryClient

from .images import busybox_rootfs_tar, make_image, write_layout
from .servers import Distribution
from .test_client_ops import push_image

Make = Callable[..., RegistryClient]


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_client_reads_what_skopeo_pushed(
    registry: Distribution, make_client: Make, repo_name: str, tmp_path: Path
) -> None:
    image = make_image([busybox_rootfs_tar()])
    layout = write_layout(image, tmp_path / "layout", "1.0")
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{layout}:1.0",
        f"docker://{registry.host}/{repo_name}:1.0",
    )

    client = make_client(registry.host)
    got = client.get_manifest(repo_name, "1.0")
    # skopeo may rewrite the manifest (it keeps OCI here); verify against what the
    # registry itself says, then walk the image it describes
    doc = json.loads(got.data)
    assert str(got.digest) == "sha256:" + hashlib.sha256(got.data).hexdigest()
    assert got.media_type == mt.OCI_MANIFEST
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{repo_name}:1.0"
    ).stdout
    assert raw.encode() == got.data
    config = client.fetch_blob_bytes(
        repo_name, Digest.parse(doc["config"]["digest"]), what="config"
    )
    assert config == image.config.data
    assert [layer["digest"] for layer in doc["layers"]] == [b.digest for b in image.layers]
    for layer in doc["layers"]:
        sink = io.BytesIO()
        client.get_blob(
            repo_name, Digest.parse(layer["digest"]), sink, size=layer["size"], what="layer"
        )
        assert sink.getvalue() == image.layers[0].data


def test_skopeo_reads_what_the_client_pushed(
    registry: Distribution, make_client: Make, repo_name: str, tmp_path: Path
) -> None:
    image = make_image([busybox_rootfs_tar(), b"second layer" * 1000], docker=True)
    client = make_client(registry.host)
    digest = push_image(client, repo_name, image, "pushed")
    info = json.loads(
        skopeo(
            "inspect", "--tls-verify=false", f"docker://{registry.host}/{repo_name}:pushed"
        ).stdout
    )
    assert info["Digest"] == str(digest)
    assert info["Layers"] == [b.digest for b in image.layers]
    out = tmp_path / "copied"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{registry.host}/{repo_name}:pushed",
        f"dir:{out}",
    )
    for blob in image.layers:
        assert (out / blob.digest.split(":", 1)[1]).read_bytes() == blob.data
