"""A tiny spec-level HTTP client for the conformance tests (httpx, no registry library)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EMPTY_JSON = b"{}"

SPEC_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def random_blob(n: int = 1024) -> bytes:
    return os.urandom(n)


def error_codes(resp: httpx.Response) -> list[str]:
    """The spec error codes in a response body ([] if it has none)."""
    try:
        doc = resp.json()
    except ValueError:
        return []
    return [e.get("code") for e in doc.get("errors", [])] if isinstance(doc, dict) else []


class Reg:
    """Requests against one registry, relative to /v2/<name>/."""

    def __init__(self, base: str, **client_kw: Any) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30, **client_kw)

    def close(self) -> None:
        self.http.close()

    def req(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, **kw)

    def location(self, resp: httpx.Response, **params: str) -> str:
        """The Location header resolved against the registry (it may be relative),
        with ``params`` added to the query it already has (distribution keeps state there)."""
        url = httpx.URL(self.base).join(resp.headers["location"])
        for k, v in params.items():
            url = url.copy_add_param(k, v)
        return str(url)

    def push_blob(self, name: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT); returns the digest."""
        d = digest(data)
        r = self.req("POST", f"/v2/{name}/blobs/uploads/")
        assert r.status_code == 202, r.text
        r = self.http.put(
            self.location(r, digest=d),
            content=data,
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        return d

    def push_manifest(
        self, name: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST
    ) -> httpx.Response:
        return self.req(
            "PUT", f"/v2/{name}/manifests/{ref}", content=body, headers={"content-type": media_type}
        )

    def push_image(
        self, name: str, tag: str | None, layers: int = 1, config: bytes | None = None, **extra: Any
    ) -> tuple[str, bytes, list[bytes]]:
        """Push config + layers + an OCI manifest; returns (manifest digest, manifest, blobs)."""
        config = config or dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
                "n": os.urandom(4).hex(),
            }
        )
        blobs = [random_blob(512 + i) for i in range(layers)]
        self.push_blob(name, config)
        for b in blobs:
            self.push_blob(name, b)
        manifest = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc(OCI_CONFIG, config),
                "layers": [desc(OCI_LAYER, b) for b in blobs],
                **extra,
            }
        )
        r = self.push_manifest(name, tag or digest(manifest), manifest)
        assert r.status_code == 201, r.text
        return digest(manifest), manifest, [config, *blobs]
