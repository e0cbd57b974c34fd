"""Only missing blobs move: re-push sends no blob bytes, copies within a registry mount,
pushes to a sibling repository mount what forklift saw there. Bytes are counted at a TCP
proxy between the CLI and the registry, so the numbers are what went over the wire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.registry_client.proxies import DOWN, UP, TcpProxy

from .conftest import Fk, Target, load_into_store, parse_push
from .images import SampleImage, index_bytes, make_test_image, write_layout

# requests and manifests only: far below one layer of the test images (300 kB + 700 kB)
NO_BLOB_BYTES = 25_000


@pytest.fixture(params=["distribution", "forklift-token"])
def proxied(request: pytest.FixtureRequest, fk: Fk) -> tuple[Target, TcpProxy]:
    """A byte-counting proxy in front of a registry; logged in through it where needed."""
    from tests.registry_client.conftest import USERS

    if request.param == "distribution":
        reg = request.getfixturevalue("registry")
        proxy = TcpProxy(reg.port)
        target = Target("distribution", proxy.host)
    else:
        reg = request.getfixturevalue("token_registry")
        proxy = TcpProxy(int(reg.host.rsplit(":", 1)[1]))
        target = Target("forklift-token", proxy.host, "alice", USERS["alice"])
    request.addfinalizer(proxy.stop)
    target.login(fk)
    return target, proxy


def _sizes(image: SampleImage) -> int:
    return sum(len(b.data) for b in image.image.layers)


def test_repush_uploads_no_blob_bytes(
    proxied: tuple[Target, TcpProxy],
    fk: Fk,
    repo_name: str,
    tmp_path: Path,
    small_image: SampleImage,
) -> None:
    target, proxy = proxied
    load_into_store(tmp_path, "app:1", [small_image])
    dest = f"{target.host}/{repo_name}:1"
    first = fk("push", "app:1", dest, check=True)
    assert proxy.relayed[UP] > _sizes(small_image)
    assert "0 already there" in first.stderr

    before = dict(proxy.relayed)
    again = fk("push", "app:1", dest, check=True)
    sent = proxy.relayed[UP] - before[UP]
    assert sent < NO_BLOB_BYTES, sent
    assert "0 blobs uploaded" in again.stderr and "3 already there" in again.stderr
    assert parse_push(again.stdout)[0] == small_image.manifest_digest


def test_copy_within_one_registry_mounts_every_blob(
    proxied: tuple[Target, TcpProxy],
    fk: Fk,
    repo_name: str,
    tmp_path: Path,
    small_image: SampleImage,
) -> None:
    target, proxy = proxied
    load_into_store(tmp_path, "app:1", [small_image])
    fk("push", "-q", "app:1", f"{target.host}/{repo_name}/a:1", check=True)
    before = dict(proxy.relayed)
    # a fresh home remembers no blob locations: the mount source must be the copy's source
    copied = fk(
        "copy", f"docker://{target.host}/{repo_name}/a:1", f"docker://{target.host}/{repo_name}/b:2",
        env={"FORKLIFT_HOME": str(tmp_path / "fresh-home")}, check=True,
    )  # fmt: skip
    up = proxy.relayed[UP] - before[UP]
    down = proxy.relayed[DOWN] - before[DOWN]
    assert up < NO_BLOB_BYTES and down < NO_BLOB_BYTES, (up, down)
    assert copied.stderr.count(f"mounted from {repo_name}/a") == 3
    # the summary counts each blob once: 3 mounted, none both "present" and "mounted"
    assert "Copied 0 blobs (0 already present, 3 mounted)" in copied.stderr, copied.stderr
    raw = fk("inspect", "--remote", "--raw", f"{target.host}/{repo_name}/b:2", check=True)
    assert raw.stdout.encode() == small_image.image.manifest


def test_push_to_a_sibling_repository_mounts_what_it_saw(
    proxied: tuple[Target, TcpProxy],
    fk: Fk,
    repo_name: str,
    tmp_path: Path,
    small_image: SampleImage,
) -> None:
    target, proxy = proxied
    load_into_store(tmp_path, "app:1", [small_image])
    fk("push", "-q", "app:1", f"{target.host}/{repo_name}/first:1", check=True)
    before = proxy.relayed[UP]
    second = fk("push", "app:1", f"{target.host}/{repo_name}/second:1", check=True)
    assert proxy.relayed[UP] - before < NO_BLOB_BYTES
    assert "3 mounted" in second.stderr
    assert f"mounted from {repo_name}/first" in second.stderr


def test_pull_by_digest_rejects_a_tampered_manifest(
    registry, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    load_into_store(tmp_path, "app:1", [small_image])
    ref = f"{registry.host}/{repo_name}"
    fk("push", "-q", "app:1", f"{ref}:1", check=True)
    # Change the stored manifest's bytes without changing its meaning (same length, valid
    # JSON): only a digest check can tell. distribution serves the file it has.
    hexd = small_image.manifest_digest.split(":", 1)[1]
    path = registry.root / "data/docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    original = path.read_bytes()
    tampered = original.replace(b'"schemaVersion": 2', b'"schemaVersion":2 ', 1)
    assert tampered != original and json.loads(tampered) == json.loads(original)
    path.write_bytes(tampered)

    home = tmp_path / "pull-home"
    env = {"FORKLIFT_HOME": str(home)}
    by_digest = fk("pull", f"{ref}@{small_image.manifest_digest}", env=env)
    assert by_digest.returncode != 0
    assert by_digest.stderr.startswith(
        f"Error: digest mismatch for manifest {small_image.manifest_digest}"
    ), by_digest.stderr
    by_tag = fk("pull", f"{ref}:1", env=env)
    assert by_tag.returncode != 0 and "digest mismatch for manifest" in by_tag.stderr
    assert json.loads(fk("images", "--format", "json", env=env).stdout) == []
    blobs = home / "blobs" / "sha256"
    assert not blobs.exists() or not any(blobs.iterdir())


def test_multi_platform_round_trip(
    registry, fk: Fk, repo_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    amd = make_test_image((200_000,), seed=31, architecture="amd64")
    arm = make_test_image((210_000,), seed=32, architecture="arm64", variant="v8")
    index = index_bytes([amd, arm])
    from tests.registry_client.images import sha256

    index_digest = sha256(index)
    load_into_store(tmp_path, "multi:1", [amd, arm], index)
    ref = f"{registry.host}/{repo_name}:multi"

    pushed = fk("push", "multi:1", ref, check=True)
    assert parse_push(pushed.stdout)[0] == index_digest
    # the index's images are in the repository by digest
    from tests.registry_client.servers import http_get

    for child in (amd, arm):
        url = f"{registry.url}/v2/{repo_name}/manifests/{child.manifest_digest}"
        status, body = http_get(url, {"Accept": "application/vnd.oci.image.manifest.v1+json"})
        assert (status, body) == (200, child.image.manifest)

    # all platforms: the index itself, byte for byte
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "all"))
    out = fk("pull", "-q", "--all-platforms", ref, check=True)
    assert out.stdout.strip() == index_digest
    listed = json.loads(fk("images", "--format", "json", check=True).stdout)
    assert [r["Digest"] for r in listed] == [index_digest]
    stored = tmp_path / "all" / "blobs" / "sha256"
    for child in (amd, arm):
        for blob in child.image.layers:
            assert (stored / blob.digest.split(":")[1]).read_bytes() == blob.data

    # one platform: the arm64 image, named by the tag; nothing of amd64 is downloaded
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "arm"))
    out = fk("pull", "--platform", "linux/arm64", ref, check=True)
    assert f"Digest: {index_digest}" in out.stdout
    listed = json.loads(fk("images", "--format", "json", check=True).stdout)
    assert [r["Digest"] for r in listed] == [arm.manifest_digest]
    assert not (tmp_path / "arm" / "blobs" / "sha256" / amd.image.layers[0].digest[7:]).exists()
    doc = json.loads(
        fk("inspect", "--remote", "--platform", "linux/arm64/v8", ref, check=True).stdout
    )[0]
    assert doc["Architecture"] == "arm64" and doc["Variant"] == "v8"
    assert doc["Digest"] == arm.manifest_digest and doc["Index"]["Digest"] == index_digest
    missing = fk("pull", "--platform", "linux/s390x", ref)
    assert missing.returncode != 0 and "no image for platform linux/s390x" in missing.stderr

    # push one image of the index: just that manifest goes
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "forklift-home"))
    one = fk("push", "--platform", "linux/arm64", "multi:1", f"{registry.host}/{repo_name}:arm")
    assert one.returncode == 0, one.stderr
    assert parse_push(one.stdout)[0] == arm.manifest_digest


def test_copy_between_a_registry_and_files(
    registry, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    """docker:// on either side of forklift copy, with the file transports on the other."""
    from tests.registry_client.images import sha256

    layout = write_layout(tmp_path / "in", "1", [small_image])
    ref = f"docker://{registry.host}/{repo_name}:from-oci"
    fk("copy", "-q", f"oci:{layout}:1", ref, check=True)
    out = tmp_path / "out"
    fk("copy", "-q", ref, f"oci:{out}:copied", check=True)
    index = json.loads((out / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == small_image.manifest_digest
    manifest = (out / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes()
    assert manifest == small_image.image.manifest
    archive = tmp_path / "image.tar"
    fk("copy", "-q", ref, f"docker-archive:{archive}:app:1", check=True)
    back = f"docker://{registry.host}/{repo_name}:from-archive"
    fk("copy", "-q", f"docker-archive:{archive}", back, check=True)
    raw = fk("inspect", "--remote", "--raw", back, check=True).stdout.encode()
    # docker save's format keeps layers as plain tars: they come back by their diff IDs,
    # under the same config
    doc = json.loads(raw)
    assert doc["config"]["digest"] == small_image.image.config.digest
    assert [x["digest"] for x in doc["layers"]] == list(small_image.diff_ids)
    assert sha256(raw) == fk("pull", "-q", back, check=True).stdout.strip()
