"""API details and hostile input against a real `forklift serve`: names, digests, sizes, resume,
shutdown, operations endpoints."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.registry_server.oci_client import (
    OCI_CONFIG,
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
def reg(module_registry: Server):
    r = Reg(module_registry.url)
    yield r
    r.close()


def _raw(server: Server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """A request whose path is sent exactly as written (no client-side normalisation)."""
    host, port = server.host.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


@pytest.mark.parametrize(
    "path",
    [
        "/v2/../../etc/manifests/latest",
        "/v2/a/../../b/manifests/latest",
        "/v2/%2e%2e/%2e%2e/etc/tags/list",
        "/v2/UPPER/manifests/latest",
        "/v2/a//b/manifests/latest",
        "/v2/-lead/tags/list",
        "/v2/a/blobs/uploads/..%2F..%2Fescape",
        "/v2/" + "x" * 300 + "/tags/list",
    ],
)
def test_hostile_names_never_leave_the_root(module_registry: Server, path: str) -> None:
    status, body = _raw(module_registry, "GET", path)
    assert status in (400, 404)
    codes = [e["code"] for e in json.loads(body)["errors"]]
    assert codes[0] in ("NAME_INVALID", "BLOB_UPLOAD_UNKNOWN", "NOT_FOUND", "NAME_UNKNOWN")
    # nothing was created next to or under the root
    assert sorted(p.name for p in module_registry.root.iterdir()) <= sorted(
        ["blobs", "uploads", "gc.lock", "metadata.db", "metadata.db-wal", "metadata.db-shm"]
    )


@pytest.mark.parametrize(
    "ref",
    [
        "sha256:xyz",
        "sha256:" + "A" * 64,
        "md5:" + "0" * 32,
        "sha256:" + "0" * 63,
        "nocolon" + "0" * 64 + ":",
    ],
)
def test_bad_digests(reg: Reg, ref: str) -> None:
    r = reg.req("GET", f"/v2/hostile/blobs/{ref}")
    assert r.status_code == 400
    assert error_codes(r) == ["DIGEST_INVALID"]
    loc = reg.location(reg.req("POST", "/v2/hostile/blobs/uploads/"), digest=ref)
    r = reg.http.put(loc, content=b"abc")
    assert r.status_code == 400
    assert error_codes(r) == ["DIGEST_INVALID"]


def test_sha512_blobs(reg: Reg) -> None:
    import hashlib

    data = random_blob(4096)
    d = "sha512:" + hashlib.sha512(data).hexdigest()
    r = reg.http.put(
        reg.location(reg.req("POST", "/v2/hostile/blobs/uploads/"), digest=d), content=data
    )
    assert r.status_code == 201
    assert reg.req("GET", f"/v2/hostile/blobs/{d}").content == data


def test_huge_manifest_is_413(reg: Reg) -> None:
    big = b'{"schemaVersion":2,"annotations":{"x":"' + b"a" * (5 * 1024 * 1024) + b'"}}'
    r = reg.push_manifest("hostile", "huge", big)
    assert r.status_code == 413
    assert error_codes(r) == ["SIZE_INVALID"]

    def chunks():  # no Content-Length: the limit still holds while streaming
        for i in range(0, len(big), 1 << 16):
            yield big[i : i + (1 << 16)]

    r = reg.req(
        "PUT",
        "/v2/hostile/manifests/huge2",
        content=chunks(),
        headers={"content-type": OCI_MANIFEST},
    )
    assert r.status_code == 413


def test_manifest_with_wrong_blob_size_is_rejected(reg: Reg) -> None:
    config = dumps({"architecture": "amd64", "os": "linux", "x": 1})
    layer = random_blob(100)
    reg.push_blob("hostile", config)
    reg.push_blob("hostile", layer)
    m = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, config),
            "layers": [{"mediaType": OCI_LAYER, "digest": digest(layer), "size": 99}],
        }
    )
    r = reg.push_manifest("hostile", "badsize", m)
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_INVALID"]


def test_blob_of_another_repository_is_not_visible(reg: Reg) -> None:
    data = random_blob(64)
    reg.push_blob("private/one", data)
    assert reg.req("HEAD", f"/v2/private/two/blobs/{digest(data)}").status_code == 404
    config = dumps({"architecture": "amd64", "os": "linux"})
    reg.push_blob("private/two", config)
    m = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, config),
            "layers": [desc(OCI_LAYER, data)],
        }
    )
    r = reg.push_manifest("private/two", "steal", m)
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_BLOB_UNKNOWN"]


def test_schema1_and_mismatched_media_type_rejected(reg: Reg) -> None:
    r = reg.push_manifest(
        "hostile", "v1", dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []})
    )
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_INVALID"]
    index_like = dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }
    )
    r = reg.push_manifest("hostile", "liar", index_like, OCI_MANIFEST)
    assert r.status_code == 400


def test_wrong_bytes_leave_nothing_on_disk(reg: Reg, module_registry: Server) -> None:
    data = random_blob(70_000)
    claimed = digest(b"the bytes the client promised")
    loc = reg.location(reg.req("POST", "/v2/hostile/blobs/uploads/"))
    r = reg.http.patch(loc, content=data)
    assert r.status_code == 202
    r = reg.http.put(reg.location(r, digest=claimed))
    assert r.status_code == 400
    assert error_codes(r) == ["DIGEST_INVALID"]
    hexes = {p.name for p in (module_registry.root / "blobs").rglob("*") if p.is_file()}
    assert claimed.split(":")[1] not in hexes
    assert digest(data).split(":")[1] not in hexes
    upload_id = loc.rsplit("/", 1)[1]
    assert not (module_registry.root / "uploads" / upload_id).exists()
    assert reg.http.get(loc).status_code == 404


def test_chunk_length_must_match_content_range(reg: Reg) -> None:
    loc = reg.location(reg.req("POST", "/v2/hostile/blobs/uploads/"))
    r = reg.http.patch(loc, content=b"x" * 10, headers={"content-range": "0-19"})
    assert r.status_code in (400, 416)
    # nothing of the bad chunk was kept
    assert reg.http.get(loc).headers["range"] == "0-0"
    r = reg.http.patch(loc, content=b"y" * 10, headers={"content-range": "0-9"})
    assert r.status_code == 202


def test_upload_belongs_to_its_repository(reg: Reg) -> None:
    loc = reg.location(reg.req("POST", "/v2/hostile/a/blobs/uploads/"))
    other = loc.replace("/hostile/a/", "/hostile/b/")
    assert reg.http.get(other).status_code == 404
    assert error_codes(reg.http.patch(other, content=b"x")) == ["BLOB_UPLOAD_UNKNOWN"]


def test_upload_resumes_after_restart(tmp_path: Path) -> None:
    root = tmp_path / "root"
    server = start_forklift(root, "--gc-interval", "0")
    data = random_blob(3 * 1024 * 1024 + 17)
    reg = Reg(server.url)
    loc = reg.location(reg.req("POST", "/v2/resume/blobs/uploads/"))
    first = 2 * 1024 * 1024
    r = reg.http.patch(loc, content=data[:first], headers={"content-range": f"0-{first - 1}"})
    assert r.status_code == 202
    reg.close()
    assert server.stop() == 0
    server = start_forklift(root, "--gc-interval", "0")
    try:
        reg = Reg(server.url)
        path = httpx.URL(loc).raw_path.decode()
        r = reg.req("GET", path)
        assert r.status_code == 204
        assert r.headers["range"] == f"0-{first - 1}"
        r = reg.req(
            "PATCH",
            path,
            content=data[first:],
            headers={"content-range": f"{first}-{len(data) - 1}"},
        )
        assert r.status_code == 202
        r = reg.http.put(reg.location(r, digest=digest(data)))
        assert r.status_code == 201
        assert reg.req("GET", f"/v2/resume/blobs/{digest(data)}").content == data
        reg.close()
    finally:
        server.stop()


def test_delete_disabled(tmp_path: Path) -> None:
    server = start_forklift(tmp_path / "root", "--delete-disabled", "--gc-interval", "0")
    try:
        reg = Reg(server.url)
        d, _, blobs = reg.push_image("nodelete", "v1")
        r = reg.req("DELETE", f"/v2/nodelete/manifests/{d}")
        assert r.status_code == 405
        assert error_codes(r) == ["UNSUPPORTED"]
        assert reg.req("DELETE", f"/v2/nodelete/blobs/{digest(blobs[0])}").status_code == 405
        assert reg.req("GET", "/v2/nodelete/manifests/v1").status_code == 200
        reg.close()
    finally:
        server.stop()


def test_healthz_metrics_and_access_log(registry: Server) -> None:
    reg = Reg(registry.url)
    assert reg.req("GET", "/healthz").json() == {"status": "ok"}
    reg.push_image("ops/app", "v1", layers=2)
    reg.req("GET", "/v2/ops/app/manifests/v1")
    reg.req("GET", "/v2/ops/app/manifests/nope")
    text = reg.req("GET", "/metrics").text
    lines = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert (
        lines['forklift_registry_requests_total{method="GET",route="manifest",status="200"}'] >= 1
    )
    assert (
        lines['forklift_registry_requests_total{method="PUT",route="manifest",status="201"}'] == 1
    )
    assert (
        lines['forklift_registry_requests_total{method="GET",route="manifest",status="404"}'] == 1
    )
    assert lines["forklift_registry_received_bytes_total"] > 0
    assert lines["forklift_registry_blobs"] == 3
    assert lines["forklift_registry_storage_bytes"] > 0
    reg.close()
    entries = [
        json.loads(line) for line in registry.log_text().splitlines() if line.startswith("{")
    ]
    puts = [e for e in entries if e["method"] == "PUT" and e["route"] == "manifest"]
    assert puts and puts[0]["status"] == 201 and puts[0]["path"] == "/v2/ops/app/manifests/v1"
    assert all(
        {"ts", "remote", "status", "ms", "bytes_in", "bytes_out"} <= e.keys() for e in entries
    )


def test_graceful_shutdown_finishes_in_flight_upload(registry: Server) -> None:
    reg = Reg(registry.url)
    loc = reg.location(reg.req("POST", "/v2/graceful/blobs/uploads/"))
    data = random_blob(1 << 20)
    result: dict[str, object] = {}

    def slow_body():
        for i in range(0, len(data), 1 << 16):
            yield data[i : i + (1 << 16)]
            time.sleep(0.05)

    def upload() -> None:
        try:
            result["resp"] = httpx.patch(loc, content=slow_body(), timeout=30)
        except httpx.HTTPError as exc:
            result["error"] = exc

    t = threading.Thread(target=upload)
    t.start()
    time.sleep(0.3)
    registry.proc.send_signal(signal.SIGTERM)
    t.join(30)
    assert "error" not in result, result
    resp = result["resp"]
    assert isinstance(resp, httpx.Response)
    assert resp.status_code == 202
    assert resp.headers["range"] == f"0-{len(data) - 1}"
    assert registry.proc.wait(20) == 0
    upload_id = loc.rsplit("/", 1)[1]
    assert (registry.root / "uploads" / upload_id).stat().st_size == len(data)
