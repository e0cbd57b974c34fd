"""Conformance, pull workflow (OCI Distribution Spec v1.1 "Pull"), against forklift and distribution."""

from __future__ import annotations

import pytest

from tests.registry_server.conftest import distribution_fails
from tests.registry_server.oci_client import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Reg,
    desc,
    digest,
    dumps,
    error_codes,
)

NAME = "conformance/pull"


@pytest.fixture(scope="module")
def image(target: Reg) -> tuple[str, bytes, list[bytes]]:
    return target.push_image(NAME, "pulltag", layers=2)


def test_base_endpoint(target: Reg) -> None:
    r = target.req("GET", "/v2/")
    assert r.status_code == 200
    assert r.headers.get("docker-distribution-api-version") == "registry/2.0"


def test_head_manifest_by_tag(target: Reg, image: tuple[str, bytes, list[bytes]]) -> None:
    d, body, _ = image
    r = target.req("HEAD", f"/v2/{NAME}/manifests/pulltag", headers={"accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert r.headers["docker-content-digest"] == d
    assert int(r.headers["content-length"]) == len(body)
    assert r.content == b""


def test_get_manifest_by_tag_returns_exact_bytes(
    target: Reg, image: tuple[str, bytes, list[bytes]]
) -> None:
    d, body, _ = image
    r = target.req("GET", f"/v2/{NAME}/manifests/pulltag", headers={"accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert r.content == body
    assert r.headers["content-type"] == OCI_MANIFEST
    assert r.headers["docker-content-digest"] == d


def test_get_manifest_by_digest(target: Reg, image: tuple[str, bytes, list[bytes]]) -> None:
    d, body, _ = image
    r = target.req("GET", f"/v2/{NAME}/manifests/{d}", headers={"accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert r.content == body
    assert digest(r.content) == d


def test_missing_manifest_is_404(target: Reg) -> None:
    r = target.req("GET", f"/v2/{NAME}/manifests/nosuchtag")
    assert r.status_code == 404
    assert error_codes(r) == ["MANIFEST_UNKNOWN"]
    r = target.req("HEAD", f"/v2/{NAME}/manifests/{digest(b'nothing')}")
    assert r.status_code == 404


def test_head_and_get_blob(target: Reg, image: tuple[str, bytes, list[bytes]]) -> None:
    _, _, blobs = image
    layer = blobs[1]
    r = target.req("HEAD", f"/v2/{NAME}/blobs/{digest(layer)}")
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(layer)
    assert r.headers["docker-content-digest"] == digest(layer)
    r = target.req("GET", f"/v2/{NAME}/blobs/{digest(layer)}")
    assert r.status_code == 200
    assert r.content == layer


def test_missing_blob_is_404(target: Reg) -> None:
    r = target.req("GET", f"/v2/{NAME}/blobs/{digest(b'not pushed')}")
    assert r.status_code == 404
    assert error_codes(r) == ["BLOB_UNKNOWN"]
    r = target.req("HEAD", f"/v2/{NAME}/blobs/{digest(b'not pushed')}")
    assert r.status_code == 404


def test_blob_range_request(target: Reg, image: tuple[str, bytes, list[bytes]]) -> None:
    layer = image[2][1]
    r = target.req("GET", f"/v2/{NAME}/blobs/{digest(layer)}", headers={"range": "bytes=10-99"})
    assert r.status_code == 206
    assert r.content == layer[10:100]
    assert r.headers["content-range"] == f"bytes 10-99/{len(layer)}"
    r = target.req("GET", f"/v2/{NAME}/blobs/{digest(layer)}", headers={"range": "bytes=-16"})
    assert r.status_code == 206
    assert r.content == layer[-16:]


def test_blob_range_not_satisfiable(
    target: Reg, image: tuple[str, bytes, list[bytes]], request: pytest.FixtureRequest
) -> None:
    distribution_fails(
        request, target, "416 sent with the blob's Content-Length and a short body (broken message)"
    )
    layer = image[2][1]
    r = target.req(
        "GET", f"/v2/{NAME}/blobs/{digest(layer)}", headers={"range": f"bytes={len(layer) + 5}-"}
    )
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(layer)}"


def test_pull_from_unknown_repository(target: Reg) -> None:
    r = target.req("GET", "/v2/conformance/never-pushed/manifests/latest")
    assert r.status_code == 404
    assert set(error_codes(r)) <= {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"}


def test_docker_schema2_manifest_and_list_round_trip(target: Reg) -> None:
    name = "conformance/docker"
    config = dumps(
        {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    layer = b"\x1f\x8b" + b"docker layer bytes"
    target.push_blob(name, config)
    target.push_blob(name, layer)
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": desc(DOCKER_CONFIG, config),
            "layers": [desc(DOCKER_LAYER, layer)],
        }
    )
    r = target.push_manifest(name, "arm", manifest, DOCKER_MANIFEST)
    assert r.status_code == 201, r.text
    lst = dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                desc(DOCKER_MANIFEST, manifest, platform={"architecture": "arm64", "os": "linux"})
            ],
        }
    )
    r = target.push_manifest(name, "multi", lst, DOCKER_LIST)
    assert r.status_code == 201, r.text
    r = target.req(
        "GET",
        f"/v2/{name}/manifests/multi",
        headers={"accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == DOCKER_LIST
    assert r.content == lst
    r = target.req("GET", f"/v2/{name}/manifests/arm", headers={"accept": DOCKER_MANIFEST})
    assert r.headers["content-type"] == DOCKER_MANIFEST
    assert r.content == manifest


def test_oci_index_round_trip(target: Reg) -> None:
    name = "conformance/index"
    children = [target.push_image(name, None, layers=1)[:2] for _ in range(2)]
    index = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                desc(OCI_MANIFEST, body, platform={"architecture": arch, "os": "linux"})
                for (_, body), arch in zip(children, ("amd64", "arm64"), strict=True)
            ],
        }
    )
    r = target.push_manifest(name, "multi", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    r = target.req("GET", f"/v2/{name}/manifests/multi", headers={"accept": OCI_INDEX})
    assert r.status_code == 200
    assert r.content == index
    assert r.headers["content-type"] == OCI_INDEX


def test_error_bodies_use_spec_codes(target: Reg, request: pytest.FixtureRequest) -> None:
    """Every error a client can provoke here carries a code from the spec's table."""
    bad = [
        target.req("GET", f"/v2/{NAME}/manifests/nosuch"),
        target.req("GET", f"/v2/{NAME}/blobs/{digest(b'x')}"),
        target.req("GET", f"/v2/{NAME}/blobs/uploads/00000000-0000-0000-0000-000000000000"),
        target.req(
            "PUT",
            f"/v2/{NAME}/manifests/x",
            content=b"not json",
            headers={"content-type": OCI_MANIFEST},
        ),
    ]
    from tests.registry_server.oci_client import SPEC_CODES

    for r in bad:
        assert r.status_code >= 400
        codes = error_codes(r)
        assert codes, r.text
        assert set(codes) <= SPEC_CODES, codes
