"""Where blob bytes live: the :class:`StorageDriver` interface and the filesystem driver.

A driver stores two kinds of byte streams: *blobs*, immutable and addressed by
digest, shared by every repository; and *uploads*, append-only files named by
an upload id that become a blob when the client finishes them. It knows
nothing about repositories, tags or manifests: that is the metadata store's
job. An S3-compatible driver implements the same methods (``local_path``
returns ``None`` there, so the app streams instead of using zero-copy).

Filesystem layout under the root::

    blobs/<algorithm>/<first two hex>/<hex>   committed blobs
    uploads/<upload id>                       uploads in progress (survive restarts)
    gc.lock                                   commit (shared) vs sweep (exclusive) lock
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from forklift.errors import ForkliftError, StoreError
from forklift.oci import Digest


class UploadWriter(Protocol):
    """Appends bytes to an upload; ``close`` flushes nothing durable (commit does)."""

    def write(self, data: bytes | memoryview) -> None: ...

    def close(self) -> None: ...


class StorageDriver(Protocol):
    """Byte storage for blobs and uploads in progress.

    Implementations must make ``commit_upload`` atomic (a blob is either absent
    or complete) and durable before it returns, and must tolerate concurrent
    readers of a blob while it is being deleted.
    """

    def local_path(self, digest: Digest) -> str | None:
        """A filesystem path of the blob for zero-copy sends, or None."""
        ...

    def blob_size(self, digest: Digest) -> int | None:
        """The stored size of a blob, or None if it is absent."""
        ...

    def open_blob(self, digest: Digest) -> BinaryIO:
        """Open a blob for reading (raises FileNotFoundError if absent)."""
        ...

    def create_upload(self, upload_id: str) -> None:
        """Start an empty upload."""
        ...

    def upload_size(self, upload_id: str) -> int | None:
        """Bytes received so far, or None if the upload does not exist."""
        ...

    def upload_writer(self, upload_id: str, offset: int) -> UploadWriter:
        """A writer that appends at ``offset`` (dropping anything after it)."""
        ...

    def truncate_upload(self, upload_id: str, size: int) -> None:
        """Cut an upload back to ``size`` bytes (undo a bad chunk)."""
        ...

    def open_upload(self, upload_id: str) -> BinaryIO:
        """Open an upload for reading (to re-hash it after a restart)."""
        ...

    def commit_upload(self, upload_id: str, digest: Digest) -> None:
        """Make the upload's bytes the blob ``digest``, atomically and durably."""
        ...

    def delete_upload(self, upload_id: str) -> None:
        """Remove an upload (no error if absent)."""
        ...

    def delete_blob(self, digest: Digest) -> None:
        """Remove a blob (no error if absent)."""
        ...

    def iter_blobs(self) -> Iterator[tuple[Digest, int, float]]:
        """Every stored blob as (digest, size, mtime)."""
        ...

    def iter_uploads(self) -> Iterator[tuple[str, int, float]]:
        """Every upload as (id, size, mtime)."""
        ...

    def commit_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) while a blob is committed and recorded."""
        ...

    def sweep_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held (exclusive) by garbage collection while it deletes blobs."""
        ...


class _FileWriter:
    __slots__ = ("_fd",)

    def __init__(self, path: Path, offset: int) -> None:
        self._fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(self._fd, offset)
            os.lseek(self._fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
            raise

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStorage:
    """The default driver: plain files under one root directory."""

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

    def open_blob(self, digest: Digest) -> BinaryIO:
        return open(self._blob(digest), "rb")

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
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        _fsync_dir(dst.parent)

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
