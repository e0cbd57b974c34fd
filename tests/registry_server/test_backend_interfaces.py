"""The storage and metadata interfaces hold without the filesystem-only capabilities.

A driver that keeps blobs in memory implements only :class:`StorageDriver`
(no ``local_path``, no locks) - the shape an S3 driver will have. The app
must stream blobs from it, keep commits and sweeps apart with its fallback
lock, and ``check_consistency`` must verify it through the interfaces. S3
itself cannot run here (no object store on this machine); this driver stands
in for it, and is itself checked against the written guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from forklift.oci import Digest
from forklift.registry.server import RegistryApp, ServerConfig
from forklift.registry.server.fsck import check_consistency
from forklift.registry.server.gc import collect
from forklift.registry.server.metadata import SQLiteMetadata
from forklift.registry.server.storage import (
    LocalBlobFiles,
    ProcessSweepLocks,
    StorageDriver,
    SweepLocks,
    sweep_locks,
)
from tests.registry_server.oci_client import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, desc, dumps


class _Writer:
    def __init__(self, store: MemoryStorage, upload_id: str, offset: int) -> None:
        self.store, self.upload_id = store, upload_id
        with store.lock:
            del store.uploads[upload_id][offset:]

    def write(self, data: bytes | memoryview) -> None:
        with self.store.lock:
            self.store.uploads[self.upload_id] += bytes(data)

    def close(self) -> None:
        pass


class MemoryStorage:
    """Blobs and uploads in dictionaries: the StorageDriver protocol and nothing more."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blobs: dict[str, tuple[bytes, float]] = {}
        self.uploads: dict[str, bytearray] = {}
        self.opened: int = 0

    def blob_size(self, digest: Digest) -> int | None:
        entry = self.blobs.get(str(digest))
        return None if entry is None else len(entry[0])

    def open_blob(self, digest: Digest, offset: int = 0) -> BinaryIO:
        entry = self.blobs.get(str(digest))
        if entry is None:
            raise FileNotFoundError(str(digest))
        self.opened += 1
        f = io.BytesIO(entry[0])
        f.seek(offset)
        return f

    def create_upload(self, upload_id: str) -> None:
        with self.lock:
            if upload_id in self.uploads:
                raise FileExistsError(upload_id)
            self.uploads[upload_id] = bytearray()

    def upload_size(self, upload_id: str) -> int | None:
        data = self.uploads.get(upload_id)
        return None if data is None else len(data)

    def upload_writer(self, upload_id: str, offset: int) -> _Writer:
        return _Writer(self, upload_id, offset)

    def truncate_upload(self, upload_id: str, size: int) -> None:
        with self.lock:
            del self.uploads[upload_id][size:]

    def open_upload(self, upload_id: str) -> BinaryIO:
        return io.BytesIO(bytes(self.uploads[upload_id]))

    def commit_upload(self, upload_id: str, digest: Digest) -> None:
        with self.lock:
            self.blobs[str(digest)] = (bytes(self.uploads.pop(upload_id)), time.time())

    def delete_upload(self, upload_id: str) -> None:
        with self.lock:
            self.uploads.pop(upload_id, None)

    def delete_blob(self, digest: Digest) -> None:
        with self.lock:
            self.blobs.pop(str(digest), None)

    def iter_blobs(self) -> Iterator[tuple[Digest, int, float]]:
        for key, (data, mtime) in list(self.blobs.items()):
            yield Digest.parse(key), len(data), mtime

    def iter_uploads(self) -> Iterator[tuple[str, int, float]]:
        for key, data in list(self.uploads.items()):
            yield key, len(data), time.time()


def test_memory_driver_has_only_the_base_protocol() -> None:
    store: StorageDriver = MemoryStorage()
    assert not isinstance(store, LocalBlobFiles)
    assert not isinstance(store, SweepLocks)
    locks = sweep_locks(store, object())
    assert isinstance(locks, ProcessSweepLocks)
    assert sweep_locks(store, object()) is locks  # one lock pair per storage


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _exercise(app: RegistryApp) -> dict[str, object]:
    transport = httpx.ASGITransport(app=app)
    out: dict[str, object] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
        config = dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}, "pad": "x" * 200}
        )
        layer = bytes(range(256)) * 40
        for blob in (config, layer):
            r = await c.post("/v2/mem/app/blobs/uploads/")
            location = r.headers["location"]
            r = await c.patch(location, content=blob[:100], headers={"content-range": "0-99"})
            assert r.status_code == 202
            r = await c.put(
                f"{location}?digest={_sha(blob)}",
                content=blob[100:],
                headers={"content-range": f"100-{len(blob) - 1}"},
            )
            assert r.status_code == 201, r.text
        manifest = dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc(OCI_CONFIG, config),
                "layers": [desc(OCI_LAYER, layer)],
            }
        )
        r = await c.put(
            "/v2/mem/app/manifests/v1", content=manifest, headers={"content-type": OCI_MANIFEST}
        )
        assert r.status_code == 201
        whole = await c.get(f"/v2/mem/app/blobs/{_sha(layer)}")
        part = await c.get(f"/v2/mem/app/blobs/{_sha(layer)}", headers={"range": "bytes=1000-1999"})
        multi = await c.get(
            f"/v2/mem/app/blobs/{_sha(layer)}", headers={"range": "bytes=0-1,5000-5001"}
        )
        out.update(layer=layer, whole=whole, part=part, multi=multi)
        out["orphan"] = _sha(b"orphan")
        r = await c.post(
            f"/v2/mem/other/blobs/uploads/?digest={_sha(b'orphan')}", content=b"orphan"
        )
        assert r.status_code == 201
    return out


def test_app_on_a_driver_without_local_files(tmp_path: Path) -> None:
    storage = MemoryStorage()
    meta = SQLiteMetadata(tmp_path / "meta.db")
    app = RegistryApp(ServerConfig(root=tmp_path / "root"), storage=storage, meta=meta)
    got = asyncio.run(_exercise(app))
    layer = got["layer"]
    assert isinstance(layer, bytes)
    whole, part, multi = got["whole"], got["part"], got["multi"]
    assert isinstance(whole, httpx.Response) and whole.content == layer
    assert isinstance(part, httpx.Response) and part.status_code == 206
    assert part.content == layer[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(layer)}"
    assert isinstance(multi, httpx.Response) and multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges")
    assert storage.opened >= 3  # streamed through open_blob, no file path anywhere
    # nothing was written to the app's root but the token-free defaults
    assert not (tmp_path / "root" / "blobs").exists()
    # consistency, through the interfaces only
    assert check_consistency(storage, meta) == []
    storage.blobs[_sha(layer)] = (layer[:-1] + b"!", time.time())
    assert check_consistency(storage, meta) == [
        f"blob {_sha(layer)}: content does not hash to its digest"
    ]
    storage.blobs[_sha(layer)] = (layer, time.time())
    # GC through the interfaces: the unreferenced blob goes, the image stays
    report = collect(storage, meta, grace=0, upload_ttl=3600, now=time.time() + 1)
    assert report.blobs == [got["orphan"]]
    assert str(got["orphan"]) not in storage.blobs
    assert check_consistency(storage, meta) == []
    meta.close()


def test_process_sweep_lock_excludes_commits() -> None:
    """The fallback lock pair: a sweep waits for commits and blocks new ones."""
    locks = ProcessSweepLocks()
    events: list[str] = []
    in_commit = threading.Event()
    release = threading.Event()

    def commit() -> None:
        with locks.commit_lock():
            events.append("commit")
            in_commit.set()
            release.wait(30)
        events.append("commit done")

    def sweep() -> None:
        with locks.sweep_lock():
            events.append("sweep")

    c = threading.Thread(target=commit)
    c.start()
    assert in_commit.wait(30)
    s = threading.Thread(target=sweep)
    s.start()
    s.join(0.2)
    assert s.is_alive()  # waiting for the commit
    release.set()
    c.join(30)
    s.join(30)
    assert events.index("sweep") > events.index("commit done")


@pytest.mark.parametrize("n", [1, 4])
def test_process_sweep_lock_lets_commits_share(n: int) -> None:
    locks = ProcessSweepLocks()
    with contextlib.ExitStack() as stack:
        for _ in range(n):
            stack.enter_context(locks.commit_lock())
        # all held at once: shared
    with locks.sweep_lock():
        pass
