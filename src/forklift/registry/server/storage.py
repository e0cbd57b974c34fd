"""Where blob bytes live: the :class:`StorageDriver` interface and the filesystem driver.

A driver stores two kinds of byte streams: *blobs*, immutable and addressed by
digest, shared by every repository; and *uploads*, append-only byte streams
named by an upload id that become a blob when the client finishes them. It
knows nothing about repositories, tags or manifests: that is the metadata
store's job (:mod:`.metadata`), and the metadata store is the authority on
what exists: a blob whose bytes are stored but that has no metadata row is
garbage, never content.

What every driver must guarantee (an S3-compatible driver included):

- ``commit_upload`` is atomic and durable: before it returns, the blob is
  readable under its digest with exactly the upload's bytes, and stays so
  after a crash; a crash during the call leaves either no blob or the whole
  blob, never a partial one, and the upload may or may not still exist.
  Committing a digest that already exists replaces it with identical bytes.
- ``delete_blob`` and ``delete_upload`` are idempotent (absent is not an
  error). A reader that opened a blob before it was deleted may finish or
  fail; it never reads other bytes.
- Uploads are durable only at ``commit_upload``: after a crash an upload may
  have lost its last bytes; ``upload_size`` tells what is there, and the
  client resumes from that.
- No method may follow a name outside the driver's own namespace: digests and
  upload ids reach a driver validated (``algorithm:hex``, ``[A-Za-z0-9-]``).
- Methods block (disk or network); the app calls them from worker threads.

Optional capabilities, found with ``isinstance`` (all are ``runtime_checkable``):

- :class:`LocalBlobFiles` (``local_path``): blobs are plain files, so the HTTP
  server can send them itself (zero-copy). Without it the app streams
  ``open_blob``.
- :class:`SweepLocks` (``commit_lock``/``sweep_lock``): the lock pair garbage
  collection needs. A driver or a metadata store shared by several processes
  provides it (the filesystem driver uses flock(2) on ``gc.lock``); without
  either, :func:`sweep_locks` falls back to a lock inside this process, which
  is only correct when one process uses the storage.

Filesystem layout under the root::

    blobs/<algorithm>/<first two hex>/<hex>   committed blobs
    uploads/<upload id>                       uploads in progress (survive restarts)
    gc.lock                                   commit (shared) vs sweep (exclusive) lock
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from forklift.errors import ForkliftError, StoreError
from forklift.fsutil import fsync_dir
from forklift.oci import Digest
from forklift.writeback import WriteBehind


class UploadWriter(Protocol):
    """Appends bytes to an upload; ``close`` flushes nothing durable (commit does)."""

    def write(self, data: bytes | memoryview) -> None: ...

    def close(self) -> None: ...


class StorageDriver(Protocol):
    """Byte storage for blobs and uploads in progress (guarantees: see the module docstring)."""

    def blob_size(self, digest: Digest) -> int | None:
        """The stored size of a blob, or None if it is absent."""
        ...

    def open_blob(self, digest: Digest, offset: int = 0) -> BinaryIO:
        """A reader of a blob's bytes from ``offset`` to the end.

        Raises ``FileNotFoundError`` if the blob is absent.
        """
        ...

    def create_upload(self, upload_id: str) -> None:
        """Start an empty upload (``FileExistsError`` if the id is taken)."""
        ...

    def upload_size(self, upload_id: str) -> int | None:
        """Bytes received so far, or None if the upload does not exist."""
        ...

    def upload_writer(self, upload_id: str, offset: int) -> UploadWriter:
        """A writer that appends at ``offset``, dropping anything stored after it.

        The app serialises requests on one upload, so there is never more than
        one writer per upload.
        """
        ...

    def truncate_upload(self, upload_id: str, size: int) -> None:
        """Cut an upload back to ``size`` bytes (undo a bad chunk)."""
        ...

    def open_upload(self, upload_id: str) -> BinaryIO:
        """Open an upload for reading from its start (to re-hash it after a restart)."""
        ...

    def commit_upload(self, upload_id: str, digest: Digest) -> None:
        """Make the upload's bytes the blob ``digest``: atomic and durable when it returns.

        The upload no longer exists afterwards. The caller has verified the digest.
        """
        ...

    def delete_upload(self, upload_id: str) -> None:
        """Remove an upload (no error if absent)."""
        ...

    def delete_blob(self, digest: Digest) -> None:
        """Remove a blob (no error if absent)."""
        ...

    def iter_blobs(self) -> Iterator[tuple[Digest, int, float]]:
        """Every stored blob as (digest, size, mtime); may miss blobs committed meanwhile."""
        ...

    def iter_uploads(self) -> Iterator[tuple[str, int, float]]:
        """Every upload as (id, size, mtime); may miss uploads created meanwhile."""
        ...


@runtime_checkable
class LocalBlobFiles(Protocol):
    """Capability: blobs are files on this machine (lets the HTTP server send them itself)."""

    def local_path(self, digest: Digest) -> str | None:
        """The blob's file path, or None if it cannot be served as a file."""
        ...


@runtime_checkable
class SweepLocks(Protocol):
    """Capability: the lock pair that keeps blob commits and garbage collection apart.

    ``commit_lock`` is shared: many commits hold it at once, each from before
    ``commit_upload`` until the blob's metadata row is written.
    ``sweep_lock`` is exclusive: it waits for every commit lock and blocks new
    ones, in *every process* that uses the same storage, and is held while a
    collector deletes a blob's row and then its bytes. Without this, a commit
    of the same digest could land between those two steps and be recorded as
    present while its bytes are deleted. Neither is held across a client's
    request body, so holders never wait on the network. A crashed holder must
    release its lock (flock does; a database lock dies with its session).
    """

    def commit_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) while a blob is committed and recorded."""
        ...

    def sweep_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held (exclusive) by garbage collection while it deletes blobs."""
        ...


class ProcessSweepLocks:
    """:class:`SweepLocks` within one process (a shared/exclusive lock on a condition)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.contextmanager
    def commit_lock(self) -> Iterator[None]:
        with self._cond:
            # writers first: a steady stream of commits must not starve a sweep
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def sweep_lock(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


_process_locks: dict[int, ProcessSweepLocks] = {}


def sweep_locks(storage: object, meta: object) -> SweepLocks:
    """The lock pair for ``storage``: its own, else the metadata store's, else in-process."""
    for candidate in (storage, meta):
        if isinstance(candidate, SweepLocks):
            return candidate
    return _process_locks.setdefault(id(storage), ProcessSweepLocks())


class _FileWriter:
    __slots__ = ("_behind", "_fd")

    def __init__(self, path: Path, offset: int) -> None:
        self._fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(self._fd, offset)
            os.lseek(self._fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
            raise
        # the disk starts on each few megabytes at once, so the commit's fsync waits less
        self._behind = WriteBehind(self._fd, offset)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self._behind.wrote(n)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class FilesystemStorage:
    """The default driver: plain files under one root directory.

    Also :class:`LocalBlobFiles` and :class:`SweepLocks` (flock on ``gc.lock``,
    so a ``forklift serve gc`` in another process excludes the server's commits).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._uploads = self.root / "uploads"
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._uploads.mkdir(parents=True, exist_ok=True)
            self._lock_path = self.root / "gc.lock"
            self._lock_path.touch(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot use registry root {self.root}: {exc.strerror}") from None

    def _blob(self, digest: Digest) -> Path:
        return self._blobs / digest.algorithm / digest.hex[:2] / digest.hex

    def _upload(self, upload_id: str) -> Path:
        # upload ids are validated by the app ([A-Za-z0-9-]), never a path
        return self._uploads / upload_id

    def local_path(self, digest: Digest) -> str | None:
        return str(self._blob(digest))

    def blob_size(self, digest: Digest) -> int | None:
        try:
            return self._blob(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open_blob(self, digest: Digest, offset: int = 0) -> BinaryIO:
        f = open(self._blob(digest), "rb")  # noqa: SIM115 - the caller closes it
        if offset:
            f.seek(offset)
        return f

    def create_upload(self, upload_id: str) -> None:
        fd = os.open(self._upload(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)

    def upload_size(self, upload_id: str) -> int | None:
        try:
            return self._upload(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    def upload_writer(self, upload_id: str, offset: int) -> UploadWriter:
        return _FileWriter(self._upload(upload_id), offset)

    def truncate_upload(self, upload_id: str, size: int) -> None:
        os.truncate(self._upload(upload_id), size)

    def open_upload(self, upload_id: str) -> BinaryIO:
        return open(self._upload(upload_id), "rb")

    def commit_upload(self, upload_id: str, digest: Digest) -> None:
        src = self._upload(upload_id)
        fd = os.open(src, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dst = self._blob(digest)
        if not dst.parent.is_dir():
            dst.parent.mkdir(parents=True, exist_ok=True)
            # a new shard directory must itself survive a crash
            fsync_dir(dst.parent.parent)
            fsync_dir(self._blobs)
        os.rename(src, dst)
        fsync_dir(dst.parent)

    def delete_upload(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._upload(upload_id).unlink()

    def delete_blob(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._blob(digest).unlink()

    def iter_blobs(self) -> Iterator[tuple[Digest, int, float]]:
        for algo_dir in sorted(self._blobs.iterdir()):
            for shard in sorted(algo_dir.iterdir()):
                for entry in os.scandir(shard):
                    try:
                        digest = Digest(algo_dir.name, entry.name)
                        st = entry.stat()
                    except (ForkliftError, OSError):
                        continue
                    yield digest, st.st_size, st.st_mtime

    def iter_uploads(self) -> Iterator[tuple[str, int, float]]:
        for entry in os.scandir(self._uploads):
            try:
                st = entry.stat()
            except OSError:
                continue
            yield entry.name, st.st_size, st.st_mtime

    @contextlib.contextmanager
    def _flock(self, mode: int) -> Iterator[None]:
        # A fresh open file description per holder: flock() then excludes
        # other threads of this process as well as other processes (gc CLI).
        fd = os.open(self._lock_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def commit_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._flock(fcntl.LOCK_SH)

    def sweep_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._flock(fcntl.LOCK_EX)
