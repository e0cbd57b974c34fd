"""Conformance, content discovery (tags list, referrers, catalog), against forklift and distribution."""

from __future__ import annotations

import pytest

from tests.registry_server.conftest import distribution_fails
from tests.registry_server.oci_client import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Reg,
    desc,
    digest,
    dumps,
    random_blob,
)

NAME = "conformance/discovery"
TAGS = ["a1", "b2", "c3", "d4", "e5"]
TYPE_A = "application/vnd.example.sbom"
TYPE_B = "application/vnd.example.signature"


@pytest.fixture(scope="module")
def tagged(target: Reg) -> str:
    d, body, _ = target.push_image(NAME, TAGS[0])
    for tag in TAGS[1:]:
        assert target.push_manifest(NAME, tag, body).status_code == 201
    return d


def _referrer(subject: str, artifact_type: str, note: str, via_config: bool = False) -> bytes:
    blob = note.encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(artifact_type if via_config else OCI_EMPTY, b"{}"),
        "layers": [desc("application/octet-stream", blob)],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
        "annotations": {"note": note},
    }
    if not via_config:
        doc["artifactType"] = artifact_type
    return dumps(doc)


@pytest.fixture(scope="module")
def referrers(target: Reg, tagged: str) -> dict[str, bytes]:
    target.push_blob(NAME, b"{}")
    out = {}
    for i, (atype, via_config) in enumerate([(TYPE_A, False), (TYPE_A, True), (TYPE_B, False)]):
        note = f"ref{i}"
        target.push_blob(NAME, note.encode())
        body = _referrer(tagged, atype, note, via_config)
        r = target.push_manifest(NAME, digest(body), body)
        assert r.status_code == 201, r.text
        out[digest(body)] = body
    return out


def _tags(r) -> list[str]:
    assert r.status_code == 200
    return r.json()["tags"]


def test_list_tags(target: Reg, tagged: str, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "tags are not returned in lexical order")
    r = target.req("GET", f"/v2/{NAME}/tags/list")
    assert r.json()["name"] == NAME
    assert _tags(r) == TAGS


def test_tags_limited_by_n(target: Reg, tagged: str, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "tag pagination ignored: `n` does not limit the list")
    r = target.req("GET", f"/v2/{NAME}/tags/list", params={"n": 2})
    assert _tags(r) == TAGS[:2]
    assert r.headers["link"].startswith(f"</v2/{NAME}/tags/list?")
    assert 'rel="next"' in r.headers["link"]


def test_tags_continue_after_last(target: Reg, tagged: str, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "tag pagination ignores `last` when `n` is given")
    r = target.req("GET", f"/v2/{NAME}/tags/list", params={"n": 2, "last": "b2"})
    assert _tags(r) == ["c3", "d4"]


def test_tags_follow_link_to_the_end(
    target: Reg, tagged: str, request: pytest.FixtureRequest
) -> None:
    distribution_fails(
        request, target, "tag pagination ignores `last`, so following Link never ends"
    )
    seen: list[str] = []
    url = f"/v2/{NAME}/tags/list?n=2"
    for _ in range(10):
        r = target.req("GET", url)
        seen += r.json()["tags"]
        if "link" not in r.headers:
            break
        url = r.headers["link"].split(";")[0].strip("<>")
    assert seen == TAGS


def test_tags_n_zero_is_empty(target: Reg, tagged: str, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "n=0 returns every tag")
    r = target.req("GET", f"/v2/{NAME}/tags/list", params={"n": 0})
    assert _tags(r) == []


def test_tags_of_unknown_repository(target: Reg) -> None:
    r = target.req("GET", "/v2/conformance/nothing-here/tags/list")
    assert r.status_code == 404


def test_referrers_of_unknown_digest_is_empty_index(
    target: Reg, request: pytest.FixtureRequest
) -> None:
    distribution_fails(request, target, "no referrers API")
    r = target.req("GET", f"/v2/{NAME}/referrers/{digest(b'no such subject')}")
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    doc = r.json()
    assert doc["schemaVersion"] == 2
    assert doc["manifests"] == []


def test_referrers_list(
    target: Reg, tagged: str, referrers: dict[str, bytes], request: pytest.FixtureRequest
) -> None:
    distribution_fails(request, target, "no referrers API")
    r = target.req("GET", f"/v2/{NAME}/referrers/{tagged}")
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    got = {m["digest"]: m for m in r.json()["manifests"]}
    assert set(got) == set(referrers)
    for d, body in referrers.items():
        assert got[d]["size"] == len(body)
        assert got[d]["mediaType"] == OCI_MANIFEST
        assert got[d]["annotations"]["note"].startswith("ref")
        # artifactType: the manifest's, or its config media type when it has none
        assert got[d]["artifactType"] in (TYPE_A, TYPE_B)


def test_referrers_filtered_by_artifact_type(
    target: Reg, tagged: str, referrers: dict[str, bytes], request: pytest.FixtureRequest
) -> None:
    distribution_fails(request, target, "no referrers API")
    r = target.req("GET", f"/v2/{NAME}/referrers/{tagged}", params={"artifactType": TYPE_A})
    assert r.status_code == 200
    assert r.headers["oci-filters-applied"] == "artifactType"
    entries = r.json()["manifests"]
    assert len(entries) == 2
    assert all(m["artifactType"] == TYPE_A for m in entries)


def test_referrers_of_a_subject_not_pushed(target: Reg, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "no referrers API")
    missing = digest(b"a manifest pushed later, or never")
    target.push_blob(NAME, b"{}")
    target.push_blob(NAME, b"orphan")
    body = _referrer(missing, TYPE_B, "orphan")
    assert target.push_manifest(NAME, digest(body), body).status_code == 201
    r = target.req("GET", f"/v2/{NAME}/referrers/{missing}")
    assert [m["digest"] for m in r.json()["manifests"]] == [digest(body)]


def test_catalog(target: Reg, tagged: str) -> None:
    target.push_image(f"{NAME}-second", "x")
    r = target.req("GET", "/v2/_catalog")
    assert r.status_code == 200
    assert {NAME, f"{NAME}-second"} <= set(r.json()["repositories"])
    r = target.req("GET", "/v2/_catalog", params={"n": 1})
    assert len(r.json()["repositories"]) == 1
    assert 'rel="next"' in r.headers.get("link", "")


def test_index_referrer(target: Reg, tagged: str, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "no OCI-Subject header / referrers API")
    child = random_blob(10)
    target.push_blob(NAME, child)
    target.push_blob(NAME, b"{}")
    m = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_EMPTY, b"{}"),
            "layers": [desc("application/octet-stream", child)],
        }
    )
    assert target.push_manifest(NAME, digest(m), m).status_code == 201
    index = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": "application/vnd.example.bundle",
            "manifests": [desc(OCI_MANIFEST, m)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": tagged, "size": 1},
        }
    )
    r = target.push_manifest(NAME, digest(index), index, OCI_INDEX)
    assert r.status_code == 201
    assert r.headers.get("oci-subject") == tagged
    r = target.req(
        "GET",
        f"/v2/{NAME}/referrers/{tagged}",
        params={"artifactType": "application/vnd.example.bundle"},
    )
    assert [e["digest"] for e in r.json()["manifests"]] == [digest(index)]


def test_tags_are_case_insensitively_ordered(target: Reg, request: pytest.FixtureRequest) -> None:
    distribution_fails(request, target, "tags are not returned in lexical order")
    name = f"{NAME}-case"
    _, body, _ = target.push_image(name, "Beta")
    for tag in ("alpha", "Gamma", "delta"):
        assert target.push_manifest(name, tag, body).status_code == 201
    assert _tags(target.req("GET", f"/v2/{name}/tags/list")) == ["alpha", "Beta", "delta", "Gamma"]
