"""Conformance, push workflow (OCI Distribution Spec v1.1 "Push"), against forklift and distribution."""

from __future__ import annotations

import pytest

from tests.registry_server.conftest import distribution_fails
from tests.registry_server.oci_client import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Reg,
    desc,
    digest,
    dumps,
    error_codes,
    random_blob,
)

NAME = "conformance/push"


def _start(reg: Reg, name: str = NAME) -> str:
    r = reg.req("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202
    assert r.headers["location"]
    return reg.location(r)


def _blob_is(reg: Reg, name: str, data: bytes) -> None:
    r = reg.req("GET", f"/v2/{name}/blobs/{digest(data)}")
    assert r.status_code == 200
    assert r.content == data


def test_post_then_put_monolithic(target: Reg) -> None:
    data = random_blob(3000)
    r = target.http.put(
        target.location(target.req("POST", f"/v2/{NAME}/blobs/uploads/"), digest=digest(data)),
        content=data,
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 201
    assert r.headers["location"]
    assert r.headers["docker-content-digest"] == digest(data)
    _blob_is(target, NAME, data)


def test_post_with_digest_is_a_single_request_upload(target: Reg) -> None:
    data = random_blob(777)
    r = target.req(
        "POST",
        f"/v2/{NAME}/blobs/uploads/",
        params={"digest": digest(data)},
        content=data,
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code in (201, 202)
    assert r.headers["location"]
    if r.status_code == 202:  # the registry may decline and open a session instead
        r = target.http.put(target.location(r, digest=digest(data)), content=data)
        assert r.status_code == 201
    _blob_is(target, NAME, data)


def test_streamed_patch_then_put(target: Reg) -> None:
    data = random_blob(200_000)

    def gen():  # no Content-Length: chunked transfer encoding
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    loc = _start(target)
    r = target.http.patch(loc, content=gen(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 202
    assert r.headers["range"] == f"0-{len(data) - 1}"
    r = target.http.put(target.location(r, digest=digest(data)))
    assert r.status_code == 201
    _blob_is(target, NAME, data)


def test_chunked_upload_with_status_and_final_chunk(target: Reg) -> None:
    data = random_blob(10_000)
    a, b, c = data[:4000], data[4000:9000], data[9000:]
    loc = _start(target)
    r = target.http.patch(
        loc,
        content=a,
        headers={"content-type": "application/octet-stream", "content-range": "0-3999"},
    )
    assert r.status_code == 202
    assert r.headers["range"] == "0-3999"
    loc = target.location(r)
    r = target.http.get(loc)
    assert r.status_code == 204
    assert r.headers["range"] == "0-3999"
    assert r.headers["location"]
    r = target.http.patch(
        target.location(r),
        content=b,
        headers={"content-type": "application/octet-stream", "content-range": "4000-8999"},
    )
    assert r.status_code == 202
    assert r.headers["range"] == "0-8999"
    r = target.http.put(
        target.location(r, digest=digest(data)),
        content=c,
        headers={"content-type": "application/octet-stream", "content-range": "9000-9999"},
    )
    assert r.status_code == 201
    _blob_is(target, NAME, data)


def test_out_of_order_chunk_is_416(target: Reg, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "accepts an out-of-order chunk instead of 416")
    loc = _start(target)
    r = target.http.patch(
        loc,
        content=b"x" * 100,
        headers={"content-type": "application/octet-stream", "content-range": "100-199"},
    )
    assert r.status_code == 416


def test_chunk_overlapping_received_bytes_is_416(
    target: Reg, request: pytest.FixtureRequest
) -> None:
    distribution_fails(request, target, "accepts a chunk that does not start at the upload's end")
    loc = _start(target)
    r = target.http.patch(loc, content=b"a" * 50, headers={"content-range": "0-49"})
    assert r.status_code == 202
    r = target.http.patch(target.location(r), content=b"b" * 50, headers={"content-range": "10-59"})
    assert r.status_code == 416
    assert r.headers["range"] == "0-49"  # tells the client where to resume


def test_cancel_upload(target: Reg) -> None:
    loc = _start(target)
    r = target.http.delete(loc)
    assert r.status_code == 204
    r = target.http.get(loc)
    assert r.status_code == 404
    assert error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]


def test_put_with_wrong_digest_is_rejected_and_nothing_kept(target: Reg) -> None:
    data = random_blob(500)
    wrong = digest(b"something else")
    r = target.http.put(
        target.location(target.req("POST", f"/v2/{NAME}/blobs/uploads/"), digest=wrong),
        content=data,
    )
    assert r.status_code == 400
    assert error_codes(r) == ["DIGEST_INVALID"]
    assert target.req("HEAD", f"/v2/{NAME}/blobs/{wrong}").status_code == 404
    assert target.req("HEAD", f"/v2/{NAME}/blobs/{digest(data)}").status_code == 404


def test_cross_repository_mount(target: Reg) -> None:
    data = random_blob(1234)
    target.push_blob("conformance/source", data)
    r = target.req(
        "POST",
        f"/v2/{NAME}-mounted/blobs/uploads/",
        params={"mount": digest(data), "from": "conformance/source"},
    )
    assert r.status_code == 201
    assert r.headers["location"]
    assert r.headers["docker-content-digest"] == digest(data)
    _blob_is(target, f"{NAME}-mounted", data)


def test_mount_of_missing_blob_falls_back_to_upload(target: Reg) -> None:
    r = target.req(
        "POST",
        f"/v2/{NAME}/blobs/uploads/",
        params={"mount": digest(b"never uploaded"), "from": "conformance/source"},
    )
    assert r.status_code == 202
    assert r.headers["location"]


def test_manifest_put_by_tag_and_digest(target: Reg) -> None:
    d, body, _ = target.push_image(NAME, "tagged", layers=2)
    r = target.req("GET", f"/v2/{NAME}/manifests/tagged", headers={"accept": OCI_MANIFEST})
    assert r.content == body
    # the same bytes again, by digest: 201 with the digest in Location
    r = target.push_manifest(NAME, d, body)
    assert r.status_code == 201
    assert r.headers["location"].endswith(d)
    assert r.headers["docker-content-digest"] == d


def test_manifest_without_layers(target: Reg) -> None:
    target.push_blob(NAME, EMPTY := b"{}")
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_EMPTY, EMPTY),
            "layers": [],
        }
    )
    r = target.push_manifest(NAME, "nolayers", manifest)
    assert r.status_code == 201


def test_manifest_with_missing_blob_is_rejected(target: Reg) -> None:
    config = dumps({"architecture": "amd64", "os": "linux"})
    target.push_blob(NAME, config)
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, config),
            "layers": [desc(OCI_LAYER, b"a layer nobody uploaded")],
        }
    )
    r = target.push_manifest(NAME, "broken", manifest)
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert target.req("GET", f"/v2/{NAME}/manifests/broken").status_code == 404


def test_index_with_missing_child_is_rejected(target: Reg) -> None:
    child = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_EMPTY, b"{}"),
            "layers": [],
            "annotations": {"never": "pushed"},
        }
    )
    index = dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc(OCI_MANIFEST, child)]}
    )
    r = target.push_manifest(NAME, "brokenindex", index, OCI_INDEX)
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]


def test_manifest_digest_reference_must_match_body(target: Reg) -> None:
    _, body, _ = target.push_image(NAME, "digestcheck")
    r = target.push_manifest(NAME, digest(b"other bytes"), body)
    assert r.status_code == 400
    assert error_codes(r) == ["DIGEST_INVALID"]


def test_invalid_manifest_is_rejected(target: Reg) -> None:
    r = target.push_manifest(NAME, "garbage", b'{"schemaVersion": 2, "config": ')
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_INVALID"]


def test_manifest_with_subject_answers_oci_subject(
    target: Reg, request: pytest.FixtureRequest
) -> None:
    distribution_fails(request, target, "no OCI-Subject header (no referrers support)")
    subject, _, _ = target.push_image(NAME, "subject")
    target.push_blob(NAME, b"{}")
    sig = random_blob(100)
    target.push_blob(NAME, sig)
    referrer = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": desc(OCI_EMPTY, b"{}"),
            "layers": [desc("application/octet-stream", sig)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 0},
        }
    )
    r = target.push_manifest(NAME, digest(referrer), referrer)
    assert r.status_code == 201
    assert r.headers.get("oci-subject") == subject
