"""Crash safety: SIGKILL the server in the middle of uploads and manifest pushes, restart, check."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from forklift.registry.server.fsck import check_root
from tests.registry_server.oci_client import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    desc,
    digest,
    dumps,
    random_blob,
)
from tests.registry_server.servers import Server, start_forklift


def _pusher(url: str, worker: int, stop: threading.Event, done: dict[str, str]) -> None:
    """Push images (chunked layer uploads, then a tagged manifest) until the server dies."""
    n = 0
    with httpx.Client(base_url=url, timeout=10) as c:
        while not stop.is_set():
            try:
                name = f"crash/w{worker}"
                config = dumps({"architecture": "amd64", "os": "linux", "n": f"{worker}-{n}"})
                layers = [random_blob(150_000), random_blob(90_000)]
                for blob in (config, *layers):
                    r = c.post(f"/v2/{name}/blobs/uploads/")
                    loc = r.headers["location"]
                    for start in range(0, len(blob), 32_768):
                        part = blob[start : start + 32_768]
                        r = c.patch(
                            loc,
                            content=part,
                            headers={"content-range": f"{start}-{start + len(part) - 1}"},
                        )
                        loc = r.headers["location"]
                    r = c.put(loc, params={"digest": digest(blob)})
                    if r.status_code != 201:
                        raise RuntimeError(r.text)
                manifest = dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": desc(OCI_CONFIG, config),
                        "layers": [desc(OCI_LAYER, b) for b in layers],
                    }
                )
                tag = f"t{n}"
                r = c.put(
                    f"/v2/{name}/manifests/{tag}",
                    content=manifest,
                    headers={"content-type": OCI_MANIFEST},
                )
                if r.status_code == 201:
                    done[f"{name}:{tag}"] = digest(manifest)
                n += 1
            except (httpx.HTTPError, KeyError, RuntimeError):
                return  # the server was killed under us


def _abandoned_upload(url: str) -> None:
    """A streamed upload that is still sending when the server dies."""

    def body():
        for _ in range(200):
            yield random_blob(16_384)
            time.sleep(0.01)

    try:
        r = httpx.post(f"{url}/v2/crash/stream/blobs/uploads/")
        httpx.patch(str(httpx.URL(url).join(r.headers["location"])), content=body(), timeout=10)
    except httpx.HTTPError:
        pass


def test_sigkill_mid_push_leaves_a_consistent_store(tmp_path: Path) -> None:
    root = tmp_path / "root"
    pushed: dict[str, str] = {}
    for cycle in range(3):
        server: Server = start_forklift(root, "--gc-interval", "0", "--access-log", "")
        stop = threading.Event()
        threads = [
            threading.Thread(target=_pusher, args=(server.url, w, stop, pushed)) for w in range(4)
        ]
        threads.append(threading.Thread(target=_abandoned_upload, args=(server.url,)))
        for t in threads:
            t.start()
        time.sleep(1.0 + 0.4 * cycle)
        server.kill()  # SIGKILL: no shutdown code runs
        stop.set()
        for t in threads:
            t.join(15)
        assert pushed, "no push completed before the kill; the test proves nothing"
    server = start_forklift(root, "--gc-interval", "0", "--access-log", "")
    try:
        assert check_root(root) == []
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for ref, want in pushed.items():
                name, tag = ref.split(":")
                r = c.get(f"/v2/{name}/manifests/{tag}", headers={"accept": OCI_MANIFEST})
                assert r.status_code == 200, ref
                assert digest(r.content) == want
                for d in [desc_["digest"] for desc_ in [r.json()["config"], *r.json()["layers"]]]:
                    blob = c.get(f"/v2/{name}/blobs/{d}")
                    assert blob.status_code == 200
                    assert digest(blob.content) == d
    finally:
        server.stop()
