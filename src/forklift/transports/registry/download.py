"""Blob downloads: hashed while streamed, resumed with ``Range`` after a broken connection."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from forklift.errors import DigestMismatch, RegistryError, SizeMismatch, TransportError
from forklift.oci.digest import Digest, Hasher
from forklift.transports.registry import httpclient as http
from forklift.transports.registry.auth import pull_scope
from forklift.transports.registry.body import Body, open_body
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


class BlobDownload:
    """One blob's bytes from a registry, read into the caller's buffer, resumed and verified.

    :meth:`readinto` returns the blob's bytes as they arrive (read straight
    from the socket where :mod:`~forklift.transports.registry.body` can) and 0
    at its end. A connection that breaks mid-blob is resumed with
    ``Range: bytes=N-`` (if the registry ignores the range, the first N bytes
    of its answer are skipped). When ``size`` is known, more or fewer bytes
    are an error. With ``verify``, the digest is checked before the read that
    would return the end: a consumer gets :class:`DigestMismatch` instead, so
    it never mistakes bad bytes for a complete blob. ``progress`` is called
    with the running byte count. Close it (or read it to the end) to release
    the connection.
    """

    def __init__(
        self,
        session: Session,
        repository: str,
        digest: Digest,
        *,
        size: int | None = None,
        progress: Progress | None = None,
        what: str = "blob",
        deadline: Deadline | None = None,
        verify: bool = True,
    ) -> None:
        self._session = session
        self._repository = repository
        self.digest = digest
        self.size = size
        self._progress = progress
        self._what = what
        self._deadline = session.deadline(deadline)
        self._hasher = Hasher(digest.algorithm) if verify else None
        self._label = f"{what} {digest}"
        self._backoff = Backoff(session.options.backoff_base, session.options.backoff_max)
        self.received = 0
        self._failures = 0
        self._resp: http.Response | None = None
        self._body: Body | None = None
        self._skip = 0
        self._progressed = False
        self._done = False

    @property
    def direct(self) -> bool:
        """True while the current response's body is read from the socket directly."""
        return self._body is not None and self._body.direct

    def _open(self) -> Body:
        received = self.received
        headers = {"Range": f"bytes={received}-"} if received else None
        resp = self._session.request(
            "GET",
            f"/v2/{self._repository}/blobs/{self.digest}",
            what=f"download of {self._label}",
            scopes=(pull_scope(self._repository),),
            headers=headers,
            ok=(200, 206),
            stream=True,
            follow_redirects=True,
            deadline=self._deadline,
            not_found=f"{self._label} not found in {self._session.registry}/{self._repository}",
        )
        self._resp = resp
        self._progressed = False
        try:
            self._skip = _check_response(resp, received, self.size, self._label)
            self._body = open_body(resp)
        except BaseException:
            self._close_response()
            raise
        return self._body

    def _close_response(self) -> None:
        self._body = None
        if self._resp is not None:
            resp, self._resp = self._resp, None
            resp.close()

    def _broken(self, exc: Exception) -> None:
        """The connection broke: give up after too many failures, else wait to resume."""
        self._close_response()
        self._failures = 1 if self._progressed else self._failures + 1
        if self._failures >= self._session.options.max_attempts:
            raise TransportError(
                f"download of {self._label} from {self._session.registry} failed after "
                f"{self.received} bytes: {exc or type(exc).__name__}"
            ) from None
        self._deadline.sleep(self._backoff.delay(self._failures - 1), f"download of {self._label}")

    def readinto(self, buf: bytearray | memoryview) -> int:
        """Read the next bytes of the blob into ``buf``; 0 at the (verified) end."""
        view = buf if isinstance(buf, memoryview) else memoryview(buf)
        if not len(view):
            return 0  # (a read of 0 bytes is not the end of the blob)
        while not self._done:
            body = self._body if self._body is not None else self._open()
            try:
                n = body.readinto(view)
                while n and self._skip:  # a registry that ignored Range: drop what we have
                    if n <= self._skip:
                        self._skip -= n
                        n = body.readinto(view)
                        continue
                    view[: n - self._skip] = bytes(view[self._skip : n])
                    n -= self._skip
                    self._skip = 0
                if n == 0 and self.size is not None and self.received < self.size:
                    # the server closed "normally" but early (e.g. a proxy cut a chunked body)
                    raise http.RemoteProtocolError("connection closed before the end of the blob")
            except http.HTTP_ERRORS as exc:
                self._broken(exc)
                continue
            except BaseException:
                self._close_response()
                raise
            if n == 0:
                self._close_response()
                self._done = True
                if self._hasher is not None:
                    got = self._hasher.digest()
                    if got != self.digest:
                        raise mismatch(self._what, self.digest, got)
                return 0
            self.received += n
            if self.size is not None and self.received > self.size:
                self._close_response()
                raise SizeMismatch(
                    f"size mismatch for {self._label}: the registry sent more than {self.size} bytes"
                )
            if self._hasher is not None:
                self._hasher.update(view[:n])
            self._progressed = True
            if self._progress is not None:
                self._progress(self.received)
            self._deadline.check(f"download of {self._label}")
            return n
        return 0

    def close(self) -> None:
        """Release the connection (a body not read to its end closes it)."""
        self._close_response()
        self._done = True


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
    chunk_size: int = 1 << 20,
) -> Iterator[bytes]:
    """The bytes of blob ``digest`` of ``repository``, as they arrive, verified at the end.

    A generator over :class:`BlobDownload` (see there for resumes, sizes and
    the digest check, which happens before the generator finishes).
    """
    download = BlobDownload(
        session,
        repository,
        digest,
        size=size,
        progress=progress,
        what=what,
        deadline=deadline,
        verify=verify,
    )
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    try:
        while n := download.readinto(view):
            yield bytes(view[:n])
    finally:
        download.close()


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

    See :class:`BlobDownload`. If the digest does not match,
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
    commits never commits bad bytes). ``readinto`` fills the caller's buffer
    from the socket without copies in between (see :class:`BlobDownload`).
    ``on_end`` is called once after the last byte was read and verified.
    Close it when done (it is a context manager) to release the connection.
    """

    def __init__(self, download: BlobDownload, on_end: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.download = download
        self._on_end = on_end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self.download.readinto(view)
        if n == 0 and self._on_end is not None:
            on_end, self._on_end = self._on_end, None
            on_end()
        return n

    def close(self) -> None:
        if not self.closed:
            self.download.close()
        super().close()


def _check_response(resp: http.Response, offset: int, size: int | None, label: str) -> int:
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
        download = BlobDownload(
            session,
            repository,
            digest,
            size=size,
            progress=progress,
            what=what,
            deadline=deadline,
        )
        n = 0
        with os.fdopen(fd, "wb", buffering=0) as f, contextlib.closing(download):
            buf = memoryview(bytearray(1 << 20))
            while got := download.readinto(buf):
                write_all(f, buf[:got])
                n += got
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return n


def write_all(f: BinaryIO, data: memoryview) -> None:
    """Write all of ``data`` to the unbuffered file ``f`` (a raw write may be partial)."""
    while data:
        n = f.write(data)
        data = data[n:]
