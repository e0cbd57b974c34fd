"""The client against CNCF distribution without auth: manifests, blobs, tags, mounts, deletes.

Expected digests come from hashlib over the bytes the test built (images.py),
and registry state is cross-checked with plain urllib requests.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from forklift.errors import NotFound, SizeMismatch
from forklift.oci import Digest
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.reference import parse_reference
from forklift.registry.client import ClientOptions, RegistryClient, bounded_map

from .images import Image, busybox_rootfs_tar, make_image, random_bytes, sha256
from .servers import Distribution, http_get

Make = Callable[..., RegistryClient]


def push_image(client: RegistryClient, repo: str, image: Image, tag: str) -> Digest:
    for blob in (*image.layers, image.config):
        client.push_blob(
            repo, Digest.parse(blob.digest), len(blob.data), lambda b=blob: io.BytesIO(b.data)
        )
    manifest_type = json.loads(image.manifest)["mediaType"]
    return client.put_manifest(repo, tag, image.manifest, manifest_type).digest


def test_push_then_pull_round_trip(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    image = make_image([busybox_rootfs_tar(), random_bytes(300_000, seed=1)])
    digest = push_image(client, repo_name, image, "v1")
    assert str(digest) == image.manifest_digest

    # what the registry holds, read without the client
    status, body = http_get(
        f"{registry.url}/v2/{repo_name}/manifests/v1", {"Accept": mt.OCI_MANIFEST}
    )
    assert status == 200 and body == image.manifest

    got = client.get_manifest(repo_name, "v1")
    assert got.data == image.manifest
    assert got.media_type == mt.OCI_MANIFEST
    assert str(got.digest) == image.manifest_digest
    parsed = got.parse()
    assert [str(d.digest) for d in parsed.layers] == [b.digest for b in image.layers]  # type: ignore[union-attr]

    by_digest = client.resolve(
        parse_reference(f"{registry.host}/{repo_name}@{image.manifest_digest}")
    )
    assert by_digest.data == image.manifest

    head = client.head_manifest(repo_name, "v1")
    assert head == Descriptor(
        mt.OCI_MANIFEST, Digest.parse(image.manifest_digest), len(image.manifest)
    )

    for blob in image.layers:
        sink = io.BytesIO()
        n = client.get_blob(repo_name, Digest.parse(blob.digest), sink, size=len(blob.data))
        assert n == len(blob.data) and sink.getvalue() == blob.data
    config = client.fetch_blob_bytes(repo_name, Digest.parse(image.config.digest))
    assert config == image.config.data


def test_docker_schema2_media_type_is_kept(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    image = make_image([b"docker layer"], docker=True)
    push_image(client, repo_name, image, "d")
    got = client.get_manifest(repo_name, "d")
    assert got.media_type == mt.DOCKER_MANIFEST and got.data == image.manifest


def test_large_blob_goes_in_chunks_and_small_in_one_put(
    registry: Distribution, make_client: Make, repo_name: str, tmp_path: Path
) -> None:
    options = ClientOptions(monolithic_max=64 * 1024, chunk_size=256 * 1024)
    client = make_client(registry.host, options=options)
    big = random_bytes(1_000_003, seed=2)
    digest = Digest.parse(sha256(big))
    seen: list[int] = []
    client.upload_blob(repo_name, io.BytesIO(big), digest, len(big), progress=seen.append)
    assert seen[-1] == len(big) and seen == sorted(seen)
    # a non-seekable source (a pipe-like reader) goes through the chunk buffer
    other = random_bytes(700_001, seed=3)

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._b = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buf: Any) -> int:
            data = self._b.read(min(len(buf), 10_000))
            buf[: len(data)] = data
            return len(data)

    client.upload_blob(
        repo_name, io.BufferedReader(Pipe(other)), Digest.parse(sha256(other)), len(other)
    )
    for data in (big, other):
        status, body = http_get(f"{registry.url}/v2/{repo_name}/blobs/{sha256(data)}")
        assert status == 200 and body == data
    out = tmp_path / "blob"
    assert client.download_blob(repo_name, digest, out) == len(big)
    assert out.read_bytes() == big


def test_size_lies_are_caught(registry: Distribution, make_client: Make, repo_name: str) -> None:
    client = make_client(registry.host)
    data = b"twelve bytes"
    with pytest.raises(SizeMismatch):
        client.upload_blob(repo_name, io.BytesIO(data), Digest.parse(sha256(data)), len(data) + 5)
    with pytest.raises(SizeMismatch):
        client.upload_blob(repo_name, io.BytesIO(data), Digest.parse(sha256(data)), len(data) - 1)
    client.upload_blob(repo_name, io.BytesIO(data), Digest.parse(sha256(data)), len(data))
    with pytest.raises(SizeMismatch):
        client.get_blob(repo_name, Digest.parse(sha256(data)), io.BytesIO(), size=len(data) - 2)


def test_upload_with_wrong_digest_is_rejected_by_the_registry(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    from forklift.errors import DigestMismatch

    client = make_client(registry.host)
    data = b"real content"
    wrong = Digest.parse(sha256(b"other content"))
    with pytest.raises(DigestMismatch) as info:
        client.upload_blob(repo_name, io.BytesIO(data), wrong, len(data))
    assert str(wrong) in str(info.value)
    assert not client.has_blob(repo_name, wrong)


def test_not_found_messages(registry: Distribution, make_client: Make, repo_name: str) -> None:
    client = make_client(registry.host)
    with pytest.raises(NotFound) as info:
        client.get_manifest(repo_name, "nope")
    assert str(info.value) == f"{repo_name}:nope not found in {registry.host}"
    missing = Digest.parse(sha256(b"missing"))
    assert client.head_manifest(repo_name, "nope") is None
    assert client.stat_blob(repo_name, missing) is None
    with pytest.raises(NotFound) as info:
        client.get_blob(repo_name, missing, io.BytesIO(), what="layer")
    assert f"layer {missing} not found" in str(info.value)


def test_push_blob_exists_mounted_uploaded(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    data = random_bytes(50_000, seed=4)
    digest = Digest.parse(sha256(data))
    opened: list[int] = []

    def opener() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(data)

    first = client.push_blob(f"{repo_name}/a", digest, len(data), opener)
    assert first.how == "uploaded" and len(opened) == 1
    again = client.push_blob(f"{repo_name}/a", digest, len(data), opener)
    assert again.how == "exists" and len(opened) == 1
    # the client remembered where the blob lives, so another repository mounts it
    other = client.push_blob(f"{repo_name}/b", digest, len(data), opener)
    assert (other.how, other.mounted_from) == ("mounted", f"{repo_name}/a")
    assert len(opened) == 1
    status, body = http_get(f"{registry.url}/v2/{repo_name}/b/blobs/{digest}")
    assert status == 200 and body == data


def test_remembered_locations_persist_across_clients(
    registry: Distribution, make_client: Make, repo_name: str, tmp_path: Path
) -> None:
    from forklift.registry.client import BlobLocations

    data = random_bytes(20_000, seed=5)
    digest = Digest.parse(sha256(data))
    db = tmp_path / "shared-locations.db"
    c1 = make_client(registry.host, blob_locations=BlobLocations(db))
    c1.upload_blob(f"{repo_name}/src", io.BytesIO(data), digest, len(data))
    c1.blob_locations.close()
    c2 = make_client(registry.host, blob_locations=BlobLocations(db))
    result = c2.push_blob(f"{repo_name}/dst", digest, len(data), lambda: io.BytesIO(data))
    assert result.how == "mounted"


def test_mount_falls_back_to_upload_when_source_lacks_the_blob(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    data = b"never pushed to the source"
    digest = Digest.parse(sha256(data))
    session = client.mount_blob(f"{repo_name}/dst", digest, f"{repo_name}/empty-source")
    assert session is not None and session.location.startswith(registry.url)
    # the 202 fallback is an ordinary upload session: the blob can go into it
    client.upload_blob(f"{repo_name}/dst", io.BytesIO(data), digest, len(data), into=session)
    assert client.has_blob(f"{repo_name}/dst", digest)
    # push_blob through a stale remembered location still ends with the blob uploaded
    client.blob_locations.remember(client.registry, f"{repo_name}/stale", [str(digest)])
    result = client.push_blob(f"{repo_name}/dst2", digest, len(data), lambda: io.BytesIO(data))
    assert result.how == "uploaded"
    assert f"{repo_name}/stale" not in client.blob_locations.repositories(
        client.registry, str(digest)
    )


def test_delete_manifest_and_blob(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    image = make_image([b"to be deleted"])
    digest = push_image(client, repo_name, image, "gone")
    client.delete_manifest(repo_name, digest)
    assert http_get(f"{registry.url}/v2/{repo_name}/manifests/{digest}")[0] == 404
    layer = Digest.parse(image.layers[0].digest)
    client.delete_blob(repo_name, layer)
    assert http_get(f"{registry.url}/v2/{repo_name}/blobs/{layer}")[0] == 404
    with pytest.raises(NotFound):
        client.delete_manifest(repo_name, digest)


def test_catalog_follows_link_pagination(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    image = make_image([b"catalog"])
    names = [f"{repo_name}/r{i}" for i in range(5)]
    for name in names:
        push_image(client, name, image, "x")
    listed = list(client.catalog(page_size=2))
    assert set(names) <= set(listed)
    assert len(listed) == len(set(listed))


class _PagingRegistry(BaseHTTPRequestHandler):
    """Tags with ``n``/``last`` pagination and RFC 8288 Link headers, as the spec describes.

    The packaged distribution 2.8 ignores ``n`` on tags/list, so paging is
    exercised against this small spec-following server.
    """

    tags = sorted(f"t{i:02d}" for i in range(7))
    requests: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        parts = urlsplit(self.path)
        if parts.path == "/v2/":
            body, link = b"{}", None
        else:
            q = parse_qs(parts.query)
            n = int(q.get("n", ["100"])[0])
            last = q.get("last", [""])[0]
            rest = [t for t in self.tags if t > last]
            page = rest[:n]
            body = json.dumps({"name": "p", "tags": page}).encode()
            link = f'</v2/p/tags/list?n={n}&last={page[-1]}>; rel="next"' if len(rest) > n else None
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(body)


def test_tags_follow_link_pagination(make_client: Make) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PagingRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = make_client(f"127.0.0.1:{server.server_address[1]}")
        assert list(client.list_tags("p", page_size=3)) == _PagingRegistry.tags
        tag_requests = [r for r in _PagingRegistry.requests if "tags" in r]
        assert len(tag_requests) == 3  # 3 + 3 + 1
        assert list(client.list_tags("p", page_size=3, last="t04")) == ["t05", "t06"]
    finally:
        server.shutdown()
        server.server_close()


def test_tags_against_distribution(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    image = make_image([b"tags"])
    for tag in ("a", "b", "c"):
        push_image(client, repo_name, image, tag)
    assert sorted(client.list_tags(repo_name)) == ["a", "b", "c"]
    with pytest.raises(NotFound):
        list(client.list_tags(f"{repo_name}-does-not-exist"))


def test_referrers_tag_schema_fallback(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(registry.host)
    image = make_image([b"subject"])
    subject = push_image(client, repo_name, image, "subj")
    assert client.referrers(repo_name, subject).manifests == ()
    # an artifact manifest pointing at the subject, published through the tag schema
    empty = b"{}"
    client.upload_blob(repo_name, io.BytesIO(empty), Digest.parse(sha256(empty)), 2)
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": {"mediaType": mt.OCI_EMPTY, "digest": sha256(empty), "size": 2},
            "layers": [{"mediaType": mt.OCI_EMPTY, "digest": sha256(empty), "size": 2}],
            "subject": {
                "mediaType": mt.OCI_MANIFEST,
                "digest": str(subject),
                "size": len(image.manifest),
            },
        }
    ).encode()
    pushed = client.put_manifest(
        repo_name, Digest.parse(sha256(artifact)), artifact, mt.OCI_MANIFEST
    )
    assert pushed.subject_processed is False  # distribution 2.8 has no referrers API
    desc = Descriptor(
        mt.OCI_MANIFEST, pushed.digest, len(artifact), artifact_type="application/vnd.example.sig"
    )
    client.add_referrer_to_tag_index(repo_name, subject, desc)
    client.add_referrer_to_tag_index(repo_name, subject, desc)  # idempotent
    got = client.referrers(repo_name, subject)
    assert got.from_fallback_tag and [d.digest for d in got.manifests] == [pushed.digest]
    assert client.referrers(repo_name, subject, artifact_type="application/other").manifests == ()
    tag = f"sha256-{subject.hex}"
    status, body = http_get(
        f"{registry.url}/v2/{repo_name}/manifests/{tag}", {"Accept": mt.OCI_INDEX}
    )
    assert status == 200 and json.loads(body)["manifests"][0]["digest"] == str(pushed.digest)


def test_one_client_shared_by_threads(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    client = make_client(
        registry.host, options=ClientOptions(monolithic_max=100_000, chunk_size=200_000)
    )
    blobs = [random_bytes(150_000 + i * 1000, seed=100 + i) for i in range(8)]

    def push(data: bytes) -> str:
        return client.push_blob(
            repo_name, Digest.parse(sha256(data)), len(data), lambda: io.BytesIO(data)
        ).how

    assert bounded_map(push, blobs, limit=4) == ["uploaded"] * 8

    def pull(data: bytes) -> bytes:
        sink = io.BytesIO()
        client.get_blob(repo_name, Digest.parse(sha256(data)), sink)
        return sink.getvalue()

    assert bounded_map(pull, blobs, limit=4) == blobs


def test_put_manifest_by_digest_checks_the_digest(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    from forklift.errors import DigestMismatch

    client = make_client(registry.host)
    image = make_image([b"by digest"])
    push_image(client, repo_name, image, "t")
    with pytest.raises(DigestMismatch):
        client.put_manifest(repo_name, Digest.parse(sha256(b"x")), image.manifest, mt.OCI_MANIFEST)
    pushed = client.put_manifest(
        repo_name, Digest.parse(image.manifest_digest), image.manifest, mt.OCI_MANIFEST
    )
    assert str(pushed.digest) == image.manifest_digest
