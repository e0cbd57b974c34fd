"""Blob uploads: chunks appended to disk and hashed as they arrive, then verified and committed.

The hash state of each active upload is kept in memory next to the byte count
it covers. After a restart (or if the state was evicted) the bytes already on
disk are re-hashed once, so a client can resume an upload across a server
restart. A finished upload whose bytes do not hash to the digest the client
named is deleted, never committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from forklift.oci import Digest
from forklift.registry.server import apierrors
from forklift.registry.server.metadata import MetadataStore
from forklift.registry.server.storage import StorageDriver, sweep_locks

# Hand bytes to a worker thread in batches this big: large enough that the
# thread hop costs nothing, small enough to bound memory per upload.
_BATCH = 4 << 20
_MAX_STATES = 256


@dataclass
class _HashState:
    size: int
    algorithm: str = "sha256"
    h: hashlib._Hash = field(default_factory=lambda: hashlib.sha256())


class UploadEngine:
    """Appends, resumes, verifies and commits uploads for the app."""

    def __init__(self, storage: StorageDriver, meta: MetadataStore) -> None:
        self.storage = storage
        self.meta = meta
        self._states: OrderedDict[str, _HashState] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        # the algorithm a client announced (POST ?digest-algorithm=); sha256 otherwise
        self._algorithms: dict[str, str] = {}
        self._sweep = sweep_locks(storage, meta)

    def set_algorithm(self, upload_id: str, algorithm: str) -> None:
        """Hash this upload with ``algorithm`` as it arrives (its final digest will use it)."""
        if algorithm != "sha256":
            self._algorithms[upload_id] = algorithm

    def lock(self, upload_id: str) -> asyncio.Lock:
        """The lock serialising requests on one upload."""
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = self._locks[upload_id] = asyncio.Lock()
        return lock

    def forget(self, upload_id: str) -> None:
        """Drop in-memory state of a finished or cancelled upload."""
        self._states.pop(upload_id, None)
        self._locks.pop(upload_id, None)
        self._algorithms.pop(upload_id, None)

    def _new_state(self, upload_id: str) -> _HashState:
        algorithm = self._algorithms.get(upload_id, "sha256")
        return _HashState(0, algorithm, hashlib.new(algorithm))

    def _rehash(self, upload_id: str) -> _HashState:
        state = self._new_state(upload_id)
        with self.storage.open_upload(upload_id) as f:
            while chunk := f.read(_BATCH):
                state.h.update(chunk)
                state.size += len(chunk)
        return state

    async def _state(self, upload_id: str, size: int) -> _HashState:
        state = self._states.get(upload_id)
        if state is None or state.size != size:
            # nothing on disk yet: nothing to re-hash, no thread hop
            state = (
                self._new_state(upload_id)
                if size == 0
                else await asyncio.to_thread(self._rehash, upload_id)
            )
        self._states[upload_id] = state
        self._states.move_to_end(upload_id)
        while len(self._states) > _MAX_STATES:
            self._states.popitem(last=False)
        return state

    async def append(
        self, upload_id: str, start: int, body: AsyncIterator[bytes], limit: int | None
    ) -> int:
        """Append ``body`` at ``start`` (the current size); return bytes written.

        ``limit`` is the number of bytes the client announced (Content-Range or
        Content-Length); more or fewer is an invalid chunk and is undone.
        """
        state = await self._state(upload_id, start)
        writer = self.storage.upload_writer(upload_id, start)
        buf = bytearray()
        written = 0
        pending: asyncio.Future[None] | None = None

        def flush(data: bytes) -> None:
            writer.write(data)
            state.h.update(data)
            state.size += len(data)

        try:
            async for chunk in body:
                buf += chunk
                if len(buf) >= _BATCH:
                    written += len(buf)
                    if limit is not None and written > limit:
                        break
                    data = bytes(buf)
                    buf.clear()
                    # write + hash the previous batch while this one arrives
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(asyncio.to_thread(flush, data))
            if pending is not None:
                await pending
                pending = None
            if buf and (limit is None or written + len(buf) <= limit):
                data = bytes(buf)
                written += len(data)
                if len(data) >= 65536:
                    await asyncio.to_thread(flush, data)
                else:
                    flush(data)
            elif buf:
                written += len(buf)
        except BaseException:
            # the client went away mid-chunk: keep what reached the disk, the
            # client resumes from the size the status endpoint reports
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await pending
            writer.close()
            self._states.pop(upload_id, None)
            raise
        writer.close()
        if limit is not None and written != limit:
            await asyncio.to_thread(self.storage.truncate_upload, upload_id, start)
            self._states.pop(upload_id, None)
            raise apierrors.blob_upload_invalid(
                f"chunk length {written} does not match the announced length {limit}"
            )
        return written

    async def finish(self, repo: str, upload_id: str, digest: Digest, size: int) -> int:
        """Verify the upload against ``digest``, commit it as a blob and record it."""
        state = await self._state(upload_id, size)
        if digest.algorithm == state.algorithm:
            got = state.h.copy().hexdigest()
        else:

            def hash_other() -> str:
                h = hashlib.new(digest.algorithm)
                with self.storage.open_upload(upload_id) as f:
                    while chunk := f.read(_BATCH):
                        h.update(chunk)
                return h.hexdigest()

            got = await asyncio.to_thread(hash_other)
        if got != digest.hex:
            await self.cancel(upload_id)
            raise apierrors.digest_invalid(
                f"upload content does not match digest {digest}: got {digest.algorithm}:{got}"
            )

        def commit() -> None:
            with self._sweep.commit_lock():
                self.storage.commit_upload(upload_id, digest)
                self.meta.add_blob(repo, str(digest), size)
                self.meta.delete_upload(upload_id)

        await asyncio.to_thread(commit)
        self.forget(upload_id)
        return size

    async def cancel(self, upload_id: str) -> None:
        """Delete an upload's bytes and record."""
        await asyncio.to_thread(self.storage.delete_upload, upload_id)
        await asyncio.to_thread(self.meta.delete_upload, upload_id)
        self.forget(upload_id)
