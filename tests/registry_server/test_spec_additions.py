"""What the unreleased distribution spec adds, and what the first server left partial.

Tagging by query parameter (``OCI-Tag``), sha512 manifests, referrers pages,
multi-range ``Range``, the opt-in sparse mode, and the answers for references
that cannot exist. Expected values come from the spec text (end-7b, Range per
RFC 9110), never from the server's code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.registry_server.oci_client import (
    OCI_CONFIG,
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
from tests.registry_server.servers import Server, start_forklift


@pytest.fixture
def reg(module_registry: Server) -> Iterator[Reg]:
    r = Reg(module_registry.url)
    yield r
    r.close()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


# -- references that cannot exist ------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    [
        ".INVALID_MANIFEST_NAME",
        "v1\n",
        "-lead",
        "x" * 129,
        "sha256:abc",
        "sha256:" + "0" * 64 + "\n",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_impossible_reference_is_not_found(reg: Reg, method: str, ref: str) -> None:
    r = reg.req(method, f"/v2/team/app/manifests/{quote(ref, safe=':')}")
    assert r.status_code == 404
    if method != "HEAD":
        assert error_codes(r) == ["MANIFEST_UNKNOWN"]


@pytest.mark.parametrize("tag", ["v1%0a", "v1%0A", ".hidden", "%0av1", "a" * 129])
def test_put_with_an_invalid_tag_is_tag_invalid_and_stores_nothing(reg: Reg, tag: str) -> None:
    _, manifest, _ = reg.push_image("team/newline", None)
    r = reg.req(
        "PUT",
        f"/v2/team/newline/manifests/{tag}",
        content=manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 400
    assert error_codes(r) == ["TAG_INVALID"]
    listed = reg.req("GET", "/v2/team/newline/tags/list").json()["tags"]
    assert not any(t.strip() != t or t.startswith(".") for t in listed)


def test_digest_with_a_trailing_newline_is_refused(reg: Reg) -> None:
    _, manifest, _ = reg.push_image("team/nl", None)
    r = reg.req(
        "PUT",
        f"/v2/team/nl/manifests/{digest(manifest)}%0a",
        content=manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
    data = random_blob(64)
    r = reg.req("POST", f"/v2/team/nl/blobs/uploads/?digest={digest(data)}%0a", content=data)
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_repository_name_with_a_trailing_newline_is_invalid(reg: Reg) -> None:
    r = reg.req("GET", "/v2/team/app%0a/tags/list")
    assert r.status_code in (400, 404)
    assert error_codes(r)[0] in ("NAME_INVALID", "NOT_FOUND")


# -- tagging by query parameter (spec end-7b) ---------------------------------------------


def test_put_by_digest_with_tag_parameters(reg: Reg) -> None:
    d, manifest, _ = reg.push_image("team/tp", None)
    r = reg.req(
        "PUT",
        f"/v2/team/tp/manifests/{d}?tag=1.2.3&tag=1.2&tag=latest",
        content=manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 201
    announced = [t.strip() for v in r.headers.get_list("oci-tag") for t in v.split(",")]
    assert sorted(announced) == ["1.2", "1.2.3", "latest"]
    assert r.headers["docker-content-digest"] == d
    assert sorted(reg.req("GET", "/v2/team/tp/tags/list").json()["tags"]) == [
        "1.2",
        "1.2.3",
        "latest",
    ]
    for tag in ("1.2", "latest"):
        got = reg.req("GET", f"/v2/team/tp/manifests/{tag}")
        assert got.content == manifest and got.headers["docker-content-digest"] == d


def test_one_bad_tag_parameter_stores_nothing(reg: Reg) -> None:
    d, manifest, _ = reg.push_image("team/tp-bad", None)
    r = reg.req(
        "PUT",
        f"/v2/team/tp-bad/manifests/{d}?tag=good&tag=.bad",
        content=manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]
    assert reg.req("GET", "/v2/team/tp-bad/manifests/good").status_code == 404


# -- sha512 manifests ------------------------------------------------------------------------


def _sha512_image(reg: Reg, name: str) -> bytes:
    config = dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    layer = random_blob(300)
    for blob in (config, layer):
        r = reg.req("POST", f"/v2/{name}/blobs/uploads/?digest={sha512(blob)}", content=blob)
        assert r.status_code == 201 and r.headers["docker-content-digest"] == sha512(blob)
    return dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha512(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha512(layer), "size": len(layer)}],
        }
    )


def test_sha512_manifest_by_digest_and_tag_parameter(reg: Reg) -> None:
    manifest = _sha512_image(reg, "team/s512")
    d = sha512(manifest)
    r = reg.req(
        "PUT",
        f"/v2/team/s512/manifests/{d}?tag=v512",
        content=manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 201 and r.headers["docker-content-digest"] == d
    assert r.headers["oci-tag"] == "v512"
    for ref in (d, "v512"):
        got = reg.req("GET", f"/v2/team/s512/manifests/{ref}")
        assert got.status_code == 200 and got.content == manifest
        assert got.headers["docker-content-digest"] == d
        head = reg.req("HEAD", f"/v2/team/s512/manifests/{ref}")
        assert head.headers["docker-content-digest"] == d


def test_sha512_manifest_pushed_by_tag_with_a_digest_algorithm(reg: Reg) -> None:
    manifest = _sha512_image(reg, "team/s512tag")
    r = reg.req(
        "PUT",
        "/v2/team/s512tag/manifests/v1?digest-algorithm=sha512",
        content=manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 201
    assert r.headers["docker-content-digest"] == sha512(manifest)
    got = reg.req("GET", "/v2/team/s512tag/manifests/v1")
    assert got.headers["docker-content-digest"] == sha512(manifest)
    r = reg.req(
        "PUT",
        "/v2/team/s512tag/manifests/v2?digest-algorithm=md5",
        content=manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]


def test_sha512_chunked_upload_announced_at_post(reg: Reg) -> None:
    data = random_blob(3000)
    r = reg.req("POST", "/v2/team/s512c/blobs/uploads/?digest-algorithm=sha512")
    assert r.status_code == 202
    location = reg.location(r)
    r = reg.http.patch(location, content=data[:1000], headers={"content-range": "0-999"})
    assert r.status_code == 202
    r = reg.http.patch(reg.location(r), content=data[1000:], headers={"content-range": "1000-2999"})
    assert r.status_code == 202
    r = reg.http.put(reg.location(r, digest=sha512(data)))
    assert r.status_code == 201
    assert reg.req("GET", f"/v2/team/s512c/blobs/{sha512(data)}").content == data


# -- referrers pagination -----------------------------------------------------------------


def test_referrers_are_paginated_with_link_headers(reg: Reg) -> None:
    subject, subject_manifest, _ = reg.push_image("team/refs", "base")
    reg.push_blob("team/refs", b"{}")
    made = set()
    for i in range(7):
        art = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.example.sig" if i % 2 else "application/x.sbom",
                "config": desc("application/vnd.oci.empty.v1+json", b"{}"),
                "layers": [desc("application/vnd.oci.empty.v1+json", b"{}")],
                "subject": desc(OCI_MANIFEST, subject_manifest),
                "annotations": {"n": str(i)},
            }
        )
        assert reg.push_manifest("team/refs", digest(art), art).status_code == 201
        made.add(digest(art))
    seen: list[str] = []
    url = f"/v2/team/refs/referrers/{subject}?n=3"
    pages = 0
    while url:
        r = reg.req("GET", url)
        assert r.status_code == 200
        assert r.headers["content-type"] == OCI_INDEX
        doc = r.json()
        assert len(doc["manifests"]) <= 3
        seen += [m["digest"] for m in doc["manifests"]]
        pages += 1
        link = r.headers.get("link")
        url = link[link.index("<") + 1 : link.index(">")] if link else ""
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7 and set(seen) == made
    # filtered and paginated: the filter survives into the next page's link
    r = reg.req(
        "GET", f"/v2/team/refs/referrers/{subject}?n=2&artifactType=application/vnd.example.sig"
    )
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert "artifactType=application%2Fvnd.example.sig" in r.headers["link"]
    first = [m["digest"] for m in r.json()["manifests"]]
    link = r.headers["link"]
    rest = reg.req("GET", link[link.index("<") + 1 : link.index(">")]).json()["manifests"]
    assert all(m["artifactType"] == "application/vnd.example.sig" for m in rest)
    assert len(first) + len(rest) == 3


# -- Range ---------------------------------------------------------------------------------


@pytest.fixture
def blob(reg: Reg) -> tuple[str, bytes]:
    data = random_blob(1000)
    return reg.push_blob("team/ranges", data), data


def _parts(r: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Range, body) of each part of a multipart/byteranges answer."""
    raw = f"Content-Type: {r.headers['content-type']}\r\n\r\n".encode() + r.content
    message = BytesParser(policy=HTTP).parsebytes(raw)
    assert message.is_multipart()
    return [(part["content-range"], part.get_payload(decode=True)) for part in message.iter_parts()]


def test_multi_range_is_answered_with_multipart_byteranges(
    reg: Reg, blob: tuple[str, bytes]
) -> None:
    d, data = blob
    r = reg.req("GET", f"/v2/team/ranges/blobs/{d}", headers={"range": "bytes=0-9, 100-109, -5"})
    assert r.status_code == 206
    assert r.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert int(r.headers["content-length"]) == len(r.content)
    assert _parts(r) == [
        ("bytes 0-9/1000", data[0:10]),
        ("bytes 100-109/1000", data[100:110]),
        ("bytes 995-999/1000", data[995:]),
    ]


def test_overlapping_ranges_are_merged(reg: Reg, blob: tuple[str, bytes]) -> None:
    d, data = blob
    r = reg.req("GET", f"/v2/team/ranges/blobs/{d}", headers={"range": "bytes=10-19,15-29,30-39"})
    # one merged range: a plain 206
    assert r.status_code == 206
    assert r.headers["content-range"] == "bytes 10-39/1000"
    assert r.content == data[10:40]


def test_head_of_a_multi_range_sends_no_body(reg: Reg, blob: tuple[str, bytes]) -> None:
    d, _ = blob
    r = reg.req("HEAD", f"/v2/team/ranges/blobs/{d}", headers={"range": "bytes=0-1,5-6"})
    assert r.status_code == 206 and r.content == b""
    assert int(r.headers["content-length"]) > 4


@pytest.mark.parametrize("header", ["bytes=500-0", "bytes=abc", "bytes=2000-3000", "bytes=1000-"])
def test_unsatisfiable_or_invalid_ranges_are_416(
    reg: Reg, blob: tuple[str, bytes], header: str
) -> None:
    d, _ = blob
    r = reg.req("GET", f"/v2/team/ranges/blobs/{d}", headers={"range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */1000"


def test_too_many_pieces_get_the_whole_blob(reg: Reg, blob: tuple[str, bytes]) -> None:
    d, data = blob
    many = ",".join(f"{i}-{i}" for i in range(0, 400, 4))  # 100 separate single bytes
    r = reg.req("GET", f"/v2/team/ranges/blobs/{d}", headers={"range": f"bytes={many}"})
    assert r.status_code == 200 and r.content == data


def test_other_range_units_are_ignored(reg: Reg, blob: tuple[str, bytes]) -> None:
    d, data = blob
    r = reg.req("GET", f"/v2/team/ranges/blobs/{d}", headers={"range": "items=0-3"})
    assert r.status_code == 200 and r.content == data


# -- sparse mode -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sparse_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("sparse")
    (base / "sparse.yaml").write_text("storage:\n  sparse_index: true\n")
    server = start_forklift(
        base / "root", "--config", str(base / "sparse.yaml"), "--gc-interval", "0"
    )
    yield server
    server.stop()


def _index_with_a_missing_child(reg: Reg, name: str) -> tuple[bytes, str]:
    _, present_manifest, _ = reg.push_image(name, None)
    absent = dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "never": "pushed"})
    index = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **desc(OCI_MANIFEST, present_manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    **desc(OCI_MANIFEST, absent),
                    "platform": {"os": "linux", "architecture": "arm64"},
                },
            ],
        }
    )
    return index, digest(absent)


def test_sparse_index_only_in_sparse_mode(sparse_registry: Server, module_registry: Server) -> None:
    sparse, strict = Reg(sparse_registry.url), Reg(module_registry.url)
    try:
        index, absent = _index_with_a_missing_child(strict, "team/mirror")
        r = strict.push_manifest("team/mirror", "multi", index, OCI_INDEX)
        assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
        assert absent in json.dumps(r.json())
        index, _ = _index_with_a_missing_child(sparse, "team/mirror")
        r = sparse.push_manifest("team/mirror", "multi", index, OCI_INDEX)
        assert r.status_code == 201
        assert sparse.req("GET", "/v2/team/mirror/manifests/multi").content == index
        assert sparse.req("GET", f"/v2/team/mirror/manifests/{absent}").status_code == 404
    finally:
        sparse.close()
        strict.close()


def test_sparse_mode_accepts_absent_layers_but_not_an_absent_config(
    sparse_registry: Server,
) -> None:
    reg = Reg(sparse_registry.url)
    try:
        config = dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
        missing = random_blob(100)
        reg.push_blob("team/thin", config)
        body = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc(OCI_CONFIG, config),
                "layers": [desc(OCI_LAYER, missing)],
            }
        )
        assert reg.push_manifest("team/thin", "v1", body).status_code == 201
        assert reg.req("GET", f"/v2/team/thin/blobs/{digest(missing)}").status_code == 404
        no_config = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc(OCI_CONFIG, b'{"other": 1}'),
                "layers": [],
            }
        )
        r = reg.push_manifest("team/thin", "v2", no_config)
        assert r.status_code == 400 and error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    finally:
        reg.close()


def test_sparse_registry_is_consistent_for_fsck(sparse_registry: Server, tmp_path: Path) -> None:
    from forklift.registry.server.fsck import check_root

    reg = Reg(sparse_registry.url)
    try:
        index, _ = _index_with_a_missing_child(reg, "team/fsck")
        assert reg.push_manifest("team/fsck", "multi", index, OCI_INDEX).status_code == 201
    finally:
        reg.close()
    assert check_root(sparse_registry.root, sparse=True) == []


def test_tag_parameters_cannot_bypass_a_signature_policy(tmp_path: Path) -> None:
    """A protected repository refuses an unsigned image tagged by ?tag= as by a tag PUT."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pub = tmp_path / "k.pub"
    pub.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "default": [{"type": "insecureAcceptAnything"}],
                "transports": {
                    "docker": {
                        "secure": [
                            {
                                "type": "sigstoreSigned",
                                "keyPath": str(pub),
                                "signedIdentity": {"type": "matchRepository"},
                            }
                        ]
                    }
                },
            }
        )
    )
    server = start_forklift(
        tmp_path / "root", "--signature-policy", str(policy), "--gc-interval", "0"
    )
    reg = Reg(server.url)
    try:
        d, manifest, _ = reg.push_image("secure/app", None)  # by digest, untagged: allowed
        for path in (f"{d}?tag=v1", "v1"):
            r = reg.req(
                "PUT",
                f"/v2/secure/app/manifests/{path}",
                content=manifest,
                headers={"content-type": OCI_MANIFEST},
            )
            assert r.status_code == 403 and error_codes(r) == ["DENIED"], path
        assert reg.req("GET", "/v2/secure/app/tags/list").json()["tags"] == []
    finally:
        reg.close()
        server.stop()
