"""Blob downloads: hashed while streamed, resumed with ``Range`` after a broken connection."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx

from forklift.errors import DigestMismatch, RegistryError, SizeMismatch, TransportError
from forklift.oci.digest import Digest, Hasher
from forklift.transports.registry.auth import pull_scope
from forklift.transports.registry.retry import Backoff, Deadline
from forklift.transports.registry.session import Session

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")

Progress = Callable[[int], None]


class BlobWriter(Protocol):
    """Where blob bytes go: anything with ``write``."""

    def write(self, data: bytes, /) -> object: ...


def mismatch(what: str, digest: Digest, got: Digest) -> DigestMismatch:
    """The error for bytes from a registry that do not hash to ``digest``."""
    return DigestMismatch(
        f"digest mismatch for {what} {digest}: the registry sent different bytes (got {got})"
    )


def blob_chunks(
    session: Session,
    repository: str,
    digest: Digest,
    *,
    size: int | None = None,
    progress: Progress | None = None,
    what: str = "blob",
    deadline: Deadline | None = None,
    verify: bool = True,
) -> Iterator[bytes]:
    """The bytes of blob ``digest`` of ``repository``, as they arrive, verified at the end.

    A connection that breaks mid-blob is resumed with ``Range: bytes=N-`` (if
    the registry ignores the range, the first N bytes of its answer are
    skipped). When ``size`` is known, more or fewer bytes are an error. The
    digest is checked after the last chunk and before the generator finishes:
    a consumer sees :class:`DigestMismatch` instead of the end of the stream,
    so it never mistakes bad bytes for a complete blob. ``progress`` is called
    with the running byte count.
    """
    deadline = session.deadline(deadline)
    hasher = Hasher(digest.algorithm) if verify else None
    received = 0
    failures = 0
    backoff = Backoff(session.options.backoff_base, session.options.backoff_max)
    path = f"/v2/{repository}/blobs/{digest}"
    label = f"{what} {digest}"
    while True:
        headers = {"Range": f"bytes={received}-"} if received else None
        resp = session.request(
            "GET",
            path,
            what=f"download of {label}",
            scopes=(pull_scope(repository),),
            headers=headers,
            ok=(200, 206),
            stream=True,
            follow_redirects=True,
            deadline=deadline,
            not_found=f"{label} not found in {session.registry}/{repository}",
        )
        progressed = False
        try:
            skip = _check_response(resp, received, size, label)
            for chunk in resp.iter_raw():
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk = chunk[skip:]
                    skip = 0
                received += len(chunk)
                if size is not None and received > size:
                    raise SizeMismatch(
                        f"size mismatch for {label}: the registry sent more than {size} bytes"
                    )
                if hasher is not None:
                    hasher.update(chunk)
                progressed = True
                yield chunk
                if progress is not None:
                    progress(received)
                deadline.check(f"download of {label}")
            if size is not None and received < size:
                # the server closed "normally" but early (e.g. a proxy cut a chunked body)
                raise httpx.RemoteProtocolError("connection closed before the end of the blob")
            break
        except httpx.TransportError as exc:
            failures = 1 if progressed else failures + 1
            if failures >= session.options.max_attempts:
                raise TransportError(
                    f"download of {label} from {session.registry} failed after "
                    f"{received} bytes: {exc or type(exc).__name__}"
                ) from None
            deadline.sleep(backoff.delay(failures - 1), f"download of {label}")
        finally:
            resp.close()
    if hasher is not None:
        got = hasher.digest()
        if got != digest:
            raise mismatch(what, digest, got)


def fetch_blob(
    session: Session,
    repository: str,
    digest: Digest,
    writer: BlobWriter,
    *,
    size: int | None = None,
    progress: Progress | None = None,
    what: str = "blob",
    deadline: Deadline | None = None,
) -> int:
    """Stream blob ``digest`` of ``repository`` into ``writer``; return its size.

    See :func:`blob_chunks`. If the digest does not match,
    :class:`DigestMismatch` is raised after the last byte: the writer has then
    received bad data and the caller must discard it (:func:`download_blob`
    does that for files).
    """
    n = 0
    for chunk in blob_chunks(
        session, repository, digest, size=size, progress=progress, what=what, deadline=deadline
    ):
        writer.write(chunk)
        n += len(chunk)
    return n


class BlobReader(io.RawIOBase):
    """A blob of a registry as a readable stream: resumed, and verified before EOF.

    ``read``/``readinto`` return the blob's bytes; the read that would return
    the end of the stream raises :class:`DigestMismatch` instead if the bytes
    did not hash to the digest (so a consumer that reads to EOF and then
    commits never commits bad bytes). Close it when done (it is a context
    manager) to release the connection.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        while not self._pending:
            if self._eof:
                return 0
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                self._eof = True
                return 0
        n = min(len(out), len(self._pending))
        out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()  # stops the generator, which closes its response
        super().close()


def _check_response(resp: httpx.Response, offset: int, size: int | None, label: str) -> int:
    """How many leading bytes of ``resp`` to skip to continue at ``offset``."""
    if resp.status_code == 206:
        m = _CONTENT_RANGE.fullmatch(resp.headers.get("content-range", "").strip())
        if m is None or int(m.group(1)) != offset:
            raise RegistryError(
                f"download of {label}: the registry answered a resume at byte {offset} with "
                f"Content-Range {resp.headers.get('content-range')!r}"
            )
        return 0
    length = resp.headers.get("content-length")
    if size is not None and length is not None and length.isdigit() and int(length) != size:
        raise SizeMismatch(
            f"size mismatch for {label}: the registry announced {length} bytes, expected {size}"
        )
    return offset


def download_blob(
    session: Session,
    repository: str,
    digest: Digest,
    path: Path,
    *,
    size: int | None = None,
    progress: Progress | None = None,
    what: str = "blob",
    deadline: Deadline | None = None,
) -> int:
    """Download a blob to ``path`` atomically: the file appears only if the digest matched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            n = fetch_blob(
                session,
                repository,
                digest,
                f,
                size=size,
                progress=progress,
                what=what,
                deadline=deadline,
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return n
