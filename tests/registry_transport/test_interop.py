"""Interop with real clients: what forklift pushes, skopeo and podman read; what skopeo
pushes (OCI or converted to Docker schema 2), forklift pulls and checks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import Podman

from .conftest import Fk, load_into_store, parse_push
from .images import SampleImage, make_test_image, write_layout


def skopeo(*args: str) -> str:
    proc = subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_skopeo_and_podman_read_what_forklift_pushed(
    registry, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage, podman: Podman
) -> None:
    load_into_store(tmp_path, "app:1", [small_image])
    ref = f"{registry.host}/{repo_name}:1"
    digest, _ = parse_push(fk("push", "app:1", ref, check=True).stdout)

    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    assert raw.encode() == small_image.image.manifest
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))
    assert info["Digest"] == digest
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Layers"] == [b.digest for b in small_image.image.layers]

    podman("pull", "--tls-verify=false", ref)
    got = podman("image", "inspect", ref).stdout
    doc = json.loads(got)[0]
    assert doc["Id"] == small_image.image.config.digest.split(":")[1]
    assert doc["Digest"] == digest
    assert doc["RootFS"]["Layers"] == list(small_image.diff_ids)


def _check_pulled(fk: Fk, ref: str, image: SampleImage, media_type: str) -> None:
    fk("pull", "-q", ref, check=True)
    doc = json.loads(fk("inspect", ref, check=True).stdout)[0]
    # skopeo may rewrite the manifest (schema 2 conversion), never the config or layers
    assert doc["Id"] == image.image.config.digest
    assert doc["RootFS"]["Layers"] == list(image.diff_ids)
    assert [x["Digest"] for x in doc["Layers"]] == [b.digest for b in image.image.layers]
    assert doc["MediaType"] == media_type
    assert fk("fsck").returncode == 0


def test_forklift_pulls_what_skopeo_pushed(
    registry, fk: Fk, repo_name: str, tmp_path: Path
) -> None:
    image = make_test_image((150_000, 90_000), seed=41)
    layout = write_layout(tmp_path / "layout", "1", [image])
    oci_ref = f"{registry.host}/{repo_name}:oci"
    docker_ref = f"{registry.host}/{repo_name}:v2s2"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{oci_ref}")
    skopeo(
        "copy", "--dest-tls-verify=false", "--format", "v2s2",
        f"oci:{layout}:1", f"docker://{docker_ref}",
    )  # fmt: skip
    _check_pulled(fk, oci_ref, image, "application/vnd.oci.image.manifest.v1+json")
    _check_pulled(fk, docker_ref, image, "application/vnd.docker.distribution.manifest.v2+json")
    # the digest forklift prints is the one skopeo sees
    want = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{docker_ref}"))["Digest"]
    assert fk("pull", "-q", docker_ref, check=True).stdout.strip() == want
