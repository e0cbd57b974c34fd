"""Conformance, content management (deletion), against forklift and distribution."""

from __future__ import annotations

import pytest

from tests.registry_server.conftest import distribution_fails
from tests.registry_server.oci_client import OCI_MANIFEST, Reg, digest, error_codes, random_blob

NAME = "conformance/management"


def test_delete_tag(target: Reg, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "DELETE by tag answers a non-UNSUPPORTED error")
    d, body, _ = target.push_image(NAME, "deltag")
    assert target.push_manifest(NAME, "keeptag", body).status_code == 201
    r = target.req("DELETE", f"/v2/{NAME}/manifests/deltag")
    assert r.status_code == 202
    assert target.req("GET", f"/v2/{NAME}/manifests/deltag").status_code == 404
    # only the tag went away: the manifest and its other tag remain
    r = target.req("GET", f"/v2/{NAME}/manifests/{d}", headers={"accept": OCI_MANIFEST})
    assert r.status_code == 200
    assert "keeptag" in target.req("GET", f"/v2/{NAME}/tags/list").json()["tags"]


def test_delete_manifest_by_digest(target: Reg) -> None:
    d, _, _ = target.push_image(NAME, "byd1")
    r = target.req("DELETE", f"/v2/{NAME}/manifests/{d}")
    assert r.status_code == 202
    r = target.req("GET", f"/v2/{NAME}/manifests/{d}", headers={"accept": OCI_MANIFEST})
    assert r.status_code == 404
    assert "byd1" not in (target.req("GET", f"/v2/{NAME}/tags/list").json()["tags"] or [])


def test_delete_missing_manifest(target: Reg) -> None:
    target.push_image(NAME, "exists")
    r = target.req("DELETE", f"/v2/{NAME}/manifests/{digest(b'never pushed')}")
    assert r.status_code == 404
    assert error_codes(r) == ["MANIFEST_UNKNOWN"]


def test_delete_blob(target: Reg) -> None:
    data = random_blob(300)
    target.push_blob(NAME, data)
    r = target.req("DELETE", f"/v2/{NAME}/blobs/{digest(data)}")
    assert r.status_code == 202
    assert target.req("GET", f"/v2/{NAME}/blobs/{digest(data)}").status_code == 404


def test_delete_missing_blob(target: Reg) -> None:
    r = target.req("DELETE", f"/v2/{NAME}/blobs/{digest(b'not here')}")
    assert r.status_code == 404
    assert error_codes(r) == ["BLOB_UNKNOWN"]
