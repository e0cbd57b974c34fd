"""push, pull, inspect --remote, tags and delete through the real CLI, on three registry kinds:
CNCF distribution without auth, distribution with htpasswd, ``forklift serve`` with token auth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import assert_no_traceback
from tests.registry_client.conftest import USERS
from tests.registry_client.proxies import HttpFaultProxy
from tests.registry_server.servers import Server

from .conftest import Fk, Target, load_into_store, parse_push, store_blob_files
from .images import SampleImage, make_test_image


def test_push_then_pull_round_trip(
    target: Target,
    fk: Fk,
    repo_name: str,
    tmp_path: Path,
    small_image: SampleImage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_into_store(tmp_path, "app:1.0", [small_image])
    dest = f"{target.host}/{repo_name}:1.0"
    pushed = fk("push", "app:1.0", dest, check=True)
    digest, pinned = parse_push(pushed.stdout)
    # the digest is the manifest's own (computed here with hashlib, not by forklift)
    assert digest == small_image.manifest_digest
    assert pinned == f"{target.host}/{repo_name}@{digest}"
    assert "2 blobs uploaded" in pushed.stderr or "3 blobs uploaded" in pushed.stderr

    # a second machine: an empty store, the same credentials
    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "other-home"))
    pulled = fk("pull", dest, check=True)
    assert f"Digest: {digest}" in pulled.stdout
    store = store_blob_files(tmp_path / "other-home")
    image = small_image.image
    assert store[small_image.manifest_digest] == image.manifest
    assert store[image.config.digest] == image.config.data
    for layer in image.layers:
        assert store[layer.digest] == layer.data
    inspected = json.loads(fk("inspect", dest, check=True).stdout)[0]
    assert inspected["Id"] == image.config.digest
    assert inspected["RootFS"]["Layers"] == list(small_image.diff_ids)
    assert inspected["RepoTags"] == [dest]
    assert fk("fsck").returncode == 0

    # pulled again: nothing to download, same answer
    again = fk("pull", dest, check=True)
    assert "Image is up to date" in again.stdout


def test_push_defaults_to_the_images_own_name_and_pull_by_digest(
    target2: Target,
    fk: Fk,
    repo_name: str,
    tmp_path: Path,
    small_image: SampleImage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"{target2.host}/{repo_name}:v2"
    load_into_store(tmp_path, name, [small_image])
    digestfile = tmp_path / "digest.txt"
    pushed = fk("push", "-q", "--digestfile", str(digestfile), name, check=True)
    # -q: only the pinned reference
    assert pushed.stdout.strip() == f"{target2.host}/{repo_name}@{small_image.manifest_digest}"
    assert pushed.stderr == ""
    assert digestfile.read_text() == small_image.manifest_digest + "\n"

    monkeypatch.setenv("FORKLIFT_HOME", str(tmp_path / "by-digest"))
    pinned = pushed.stdout.strip()
    out = fk("pull", "-q", pinned, check=True)
    assert out.stdout.strip() == small_image.manifest_digest
    listed = json.loads(fk("images", "--format", "json", check=True).stdout)
    assert [(r["Repository"], r["Tag"], r["Digest"]) for r in listed] == [
        (f"{target2.host}/{repo_name}", "<none>", small_image.manifest_digest)
    ]
    # the stored image is found by the reference it was pulled by
    assert json.loads(fk("inspect", pinned, check=True).stdout)[0]["Id"] == (
        small_image.image.config.digest
    )


def test_inspect_remote_reads_manifest_and_config_only(
    target2: Target, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    load_into_store(tmp_path, "app:1", [small_image])
    ref = f"{target2.host}/{repo_name}:1"
    fk("push", "-q", "app:1", ref, check=True)
    doc = json.loads(fk("inspect", "--remote", ref, check=True).stdout)[0]
    image = small_image.image
    assert doc["Digest"] == small_image.manifest_digest
    assert doc["Id"] == image.config.digest
    assert doc["Architecture"] == "amd64" and doc["Os"] == "linux"
    assert doc["Config"]["Cmd"] == ["/bin/sh"]
    assert doc["RootFS"]["Layers"] == list(small_image.diff_ids)
    assert [x["Digest"] for x in doc["Layers"]] == [b.digest for b in image.layers]
    assert doc["RepoTags"] == [ref]
    assert doc["Name"] == f"{target2.host}/{repo_name}"
    assert doc["Size"] == len(image.manifest) + len(image.config.data) + sum(
        len(b.data) for b in image.layers
    )
    raw = fk("inspect", "--remote", "--raw", f"docker://{ref}", check=True)
    assert raw.stdout.encode() == image.manifest  # byte for byte, no added newline
    config = fk("inspect", "--remote", "--config", ref, check=True)
    assert config.stdout.encode() == image.config.data


def test_tags_lists_every_page(
    target2: Target, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    load_into_store(tmp_path, "app:1", [small_image])
    tags = ["a1", "b2", "c3", "d4", "e5"]
    fk("push", "-q", "app:1", f"{target2.host}/{repo_name}:a1", check=True)
    target2.add_tags(repo_name, "a1", tags[1:])
    listed = fk("tags", "-n", "2", f"{target2.host}/{repo_name}", check=True).stdout.split()
    as_json = json.loads(fk("tags", "--format", "json", f"{target2.host}/{repo_name}").stdout)
    assert as_json["Repository"] == f"{target2.host}/{repo_name}"
    if target2.kind == "forklift-token":
        # pages of 2, in lexical order, as the spec asks
        assert listed == tags and as_json["Tags"] == tags
    else:
        # distribution 2.8 ignores n and answers in directory order: all of them, once
        assert sorted(listed) == tags and sorted(as_json["Tags"]) == tags


def test_tags_follows_link_pages(
    token_registry: Server, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    """Count the tag-list requests at a proxy: n=2 over 5 tags is 3 pages, each followed."""
    target = Target("forklift-token", token_registry.host, "alice", USERS["alice"])
    target.login(fk)
    load_into_store(tmp_path, "app:1", [small_image])
    fk("push", "-q", "app:1", f"{token_registry.host}/{repo_name}:p1", check=True)
    target.add_tags(repo_name, "p1", ["p2", "p3", "p4", "p5"])
    proxy = HttpFaultProxy(target.port, [])
    try:
        Target("forklift-token", proxy.host, "alice", USERS["alice"]).login(fk)
        listed = fk("tags", "-n", "2", f"{proxy.host}/{repo_name}", check=True)
    finally:
        proxy.stop()
    assert listed.stdout.split() == ["p1", "p2", "p3", "p4", "p5"]
    pages = [t for m, t in proxy.seen if m == "GET" and "/tags/list" in t]
    assert len(pages) == 3, pages


def test_delete_by_tag_and_by_digest(
    target2: Target, fk: Fk, repo_name: str, tmp_path: Path
) -> None:
    first = make_test_image((50_000,), seed=1)
    second = make_test_image((60_000,), seed=2)
    load_into_store(tmp_path, "one:1", [first])
    load_into_store(tmp_path, "two:1", [second])
    base = f"{target2.host}/{repo_name}"
    fk("push", "-q", "one:1", f"{base}:one", check=True)
    target2.add_tags(repo_name, "one", ["also-one"])
    fk("push", "-q", "two:1", f"{base}:two", check=True)

    gone = fk("delete", f"{base}:one", check=True)
    assert first.manifest_digest in gone.stdout
    left = fk("tags", base, check=True).stdout.split()
    if target2.kind == "forklift-token":
        # OCI 1.1: the tag alone goes; the manifest stays under its other tag
        assert "Deleted tag" in gone.stdout
        assert left == ["also-one", "two"]
    else:
        # distribution 2.x cannot delete a tag: the manifest goes, with all its tags
        assert "Deleted manifest" in gone.stdout
        assert "every tag" in gone.stderr
        assert left == ["two"]
    fk("delete", f"{base}@{second.manifest_digest}", check=True)
    missing = fk("pull", f"{base}:two")
    assert missing.returncode != 0
    assert_no_traceback(missing)
    assert missing.stderr.splitlines()[0] == f"Error: {repo_name}:two not found in {target2.host}"
