"""Blob uploads: monolithic for small blobs, resumable PATCH chunks for large ones.

Distribution spec flow: ``POST /v2/<name>/blobs/uploads/`` opens an upload
session (202 + ``Location``); a small blob then goes in one
``PUT <location>?digest=`` with the bytes; a large one goes in ``PATCH``
requests with ``Content-Range: <start>-<end>`` (each answer carries the next
``Location``), at least ``OCI-Chunk-Min-Length`` bytes each, then an empty
``PUT ?digest=`` closes it. When a connection breaks, ``GET <location>``
reports how much the registry kept (``Range: 0-<last>``) and the upload goes on
from there. The registry verifies the digest when the upload is closed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from forklift.errors import (
    DigestMismatch,
    ForkliftError,
    NotFound,
    RegistryError,
    SizeMismatch,
    TransportError,
)
from forklift.oci.digest import Digest
from forklift.transports.registry import httpclient as http
from forklift.transports.registry.auth import pull_scope, push_scope
from forklift.transports.registry.errors import RegistryStatusError, ServerError, Unreachable
from forklift.transports.registry.retry import Backoff, Deadline
from forklift.transports.registry.session import Session

PIECE = 1024 * 1024
_RANGE = re.compile(r"(?:bytes=)?(\d+)-(\d+)")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class UploadSession:
    """An open upload: where to send the next request, and the registry's minimum chunk."""

    location: str
    min_chunk: int = 0


def min_chunk(resp: http.Response) -> int:
    value = resp.headers.get("oci-chunk-min-length", "")
    return int(value) if value.isdigit() else 0


def start_upload(session: Session, repository: str, deadline: Deadline) -> UploadSession:
    """``POST /v2/<name>/blobs/uploads/``: open an upload session."""
    resp = session.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        what=f"start of an upload to {repository}",
        scopes=(push_scope(repository),),
        ok=(202,),
        deadline=deadline,
    )
    return UploadSession(_location(session, resp), min_chunk(resp))


def _location(session: Session, resp: http.Response) -> str:
    location = resp.headers.get("location")
    if not location:
        raise RegistryError(
            f"{session.registry}: the registry answered {resp.status_code} without a Location"
        )
    return session.follow(resp, location)


Reopen = Callable[[int], BinaryIO]


class _Source:
    """The bytes of a blob being uploaded, re-readable from any confirmed offset.

    A seekable reader is re-read from the file. A stream that is not seekable
    but comes with ``reopen`` (another way to read the same bytes from an
    offset, e.g. the local file behind a verifying stream) is streamed as
    sent, and only bytes already taken from it are read again through
    ``reopen`` after a broken connection. Any other stream is read one chunk
    at a time into memory and the chunk is kept until the registry confirms
    it, so a resume never needs bytes older than the current chunk.
    """

    def __init__(self, reader: BinaryIO, size: int, reopen: Reopen | None = None) -> None:
        self.reader = reader
        self.size = size
        self.base: int | None = None
        try:
            if reader.seekable():
                self.base = reader.tell()
        except (OSError, ValueError, AttributeError):
            self.base = None
        self.reopen = reopen if self.base is None else None
        self.window_start = 0
        self.window = b""
        self.consumed = 0  # bytes taken from a non-seekable reader

    @property
    def seekable(self) -> bool:
        return self.base is not None

    def can_restart_at(self, offset: int) -> bool:
        if self.reopen is not None:
            return offset <= self.consumed
        return self.seekable or offset >= self.window_start

    def prepare(self, offset: int, length: int) -> None:
        """Make bytes [offset, offset+length) available (non-seekable: buffer them)."""
        if self.seekable or self.reopen is not None:
            return
        end = offset + length
        if offset >= self.window_start and end <= self.window_start + len(self.window):
            return
        if offset < self.window_start:
            raise TransportError("upload cannot rewind a stream that is not seekable")
        keep = (
            self.window[offset - self.window_start :]
            if offset < self.window_start + len(self.window)
            else b""
        )
        need = end - offset - len(keep)
        fresh = _read_exactly(self.reader, need, self.size, self.consumed)
        self.consumed += len(fresh)
        self.window = keep + fresh
        self.window_start = offset

    def pieces(self, offset: int, length: int) -> Iterator[bytes]:
        """Yield bytes [offset, offset+length) in pieces of at most 1 MiB."""
        if self.reopen is not None:
            yield from self._streamed(offset, offset + length)
            return
        if not self.seekable:
            view = memoryview(self.window)
            start = offset - self.window_start
            for pos in range(start, start + length, PIECE):
                yield bytes(view[pos : min(pos + PIECE, start + length)])
            return
        assert self.base is not None
        self.reader.seek(self.base + offset)
        left = length
        while left:
            piece = self.reader.read(min(PIECE, left))
            if not piece:
                raise SizeMismatch(
                    f"the blob being uploaded ended {left} bytes early (expected {self.size} bytes)"
                )
            left -= len(piece)
            yield piece

    def _streamed(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end): again through ``reopen`` up to what was consumed, then
        fresh from the stream (so every byte of the stream is read exactly once)."""
        assert self.reopen is not None
        pos = start
        if pos < self.consumed:
            stop = min(end, self.consumed)
            with self.reopen(pos) as again:
                while pos < stop:
                    piece = again.read(min(PIECE, stop - pos))
                    if not piece:
                        raise SizeMismatch(
                            f"the blob being uploaded could not be read again at byte {pos}"
                        )
                    pos += len(piece)
                    yield piece
        while pos < end:
            piece = self.reader.read(min(PIECE, end - pos))
            if not piece:
                raise SizeMismatch(
                    f"the blob being uploaded ended after {pos} bytes (expected {self.size} bytes)"
                )
            pos += len(piece)
            self.consumed = pos
            yield piece

    def check_end(self) -> None:
        """Fail if the source holds more than ``size`` bytes."""
        if self.seekable:
            assert self.base is not None
            self.reader.seek(self.base + self.size)
        if self.reader.read(1):
            raise SizeMismatch(f"the blob being uploaded is larger than {self.size} bytes")


def _read_exactly(reader: BinaryIO, n: int, size: int, already: int) -> bytes:
    buf = io.BytesIO()
    left = n
    while left:
        piece = reader.read(min(left, 4 * PIECE))
        if not piece:
            raise SizeMismatch(
                f"the blob being uploaded ended after {already + n - left} bytes "
                f"(expected {size} bytes)"
            )
        buf.write(piece)
        left -= len(piece)
    return buf.getvalue()


def upload_blob(
    session: Session,
    repository: str,
    reader: BinaryIO,
    digest: Digest,
    size: int,
    *,
    progress: Progress | None = None,
    deadline: Deadline | None = None,
    upload: UploadSession | None = None,
    what: str = "blob",
    reopen: Reopen | None = None,
) -> None:
    """Upload ``size`` bytes from ``reader`` as blob ``digest`` of ``repository``.

    Small blobs (``options.monolithic_max``) go in one PUT; larger ones in
    chunks that resume after broken connections. ``upload`` reuses an already
    open session (e.g. from a mount that fell back to an upload). ``reopen``
    (offset -> a stream of the same bytes from there) lets a non-seekable
    ``reader`` be streamed instead of buffered a chunk at a time. The
    registry checks the digest; a rejection raises :class:`DigestMismatch`.
    """
    deadline = session.deadline(deadline)
    if size < 0:
        raise SizeMismatch(f"negative size {size} for {what} {digest}")
    if size <= session.options.monolithic_max:
        data = _read_exactly(reader, size, size, 0)
        if reader.read(1):
            raise SizeMismatch(f"the {what} being uploaded is larger than {size} bytes")
        _upload_monolithic(session, repository, data, digest, progress, deadline, upload, what)
    else:
        _upload_chunked(
            session, repository, _Source(reader, size, reopen), digest, progress, deadline,
            upload, what,
        )  # fmt: skip


def _put_final(
    session: Session,
    location: str,
    digest: Digest,
    body: Callable[[], bytes] | None,
    length: int,
    deadline: Deadline,
    repository: str,
    what: str,
) -> http.Response:
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
    try:
        return session.request(
            "PUT",
            location,
            what=f"upload of {what} {digest}",
            scopes=(push_scope(repository),),
            params=[("digest", str(digest))],
            headers=headers,
            body=body or (lambda: b""),
            ok=(201, 204),
            retry=False,
            deadline=deadline,
        )
    except RegistryStatusError as exc:
        if exc.status == 400 and {"DIGEST_INVALID", "SIZE_INVALID"} & set(exc.codes):
            raise DigestMismatch(
                f"{session.registry} rejected {what} {digest}: the uploaded bytes do not match "
                "its digest"
            ) from None
        raise


def _retryable(exc: ForkliftError) -> bool:
    """Broken connections and server errors are worth a resume; an unreachable
    registry, auth and 4xx are not."""
    if isinstance(exc, TransportError) and not isinstance(exc, RegistryError | Unreachable):
        return True
    return isinstance(exc, ServerError)


def _exists(session: Session, repository: str, digest: Digest, deadline: Deadline) -> bool:
    try:
        resp = session.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            what=f"check of blob {digest}",
            scopes=(pull_scope(repository),),
            ok=(200,),
            follow_redirects=True,
            deadline=deadline,
        )
    except NotFound:
        return False
    return resp.status_code == 200


def _upload_monolithic(
    session: Session,
    repository: str,
    data: bytes,
    digest: Digest,
    progress: Progress | None,
    deadline: Deadline,
    upload: UploadSession | None,
    what: str,
) -> None:
    backoff = Backoff(session.options.backoff_base, session.options.backoff_max)
    attempt = 0
    while True:
        try:
            current = upload or start_upload(session, repository, deadline)
            upload = None
            _put_final(
                session,
                current.location,
                digest,
                lambda: data,
                len(data),
                deadline,
                repository,
                what,
            )
            break
        except ForkliftError as exc:
            if not _retryable(exc):
                raise
            attempt += 1
            # the PUT may have landed before the connection broke
            if _exists(session, repository, digest, deadline):
                break
            if attempt >= session.options.max_attempts:
                raise
            deadline.sleep(backoff.delay(attempt - 1), f"upload of {what} {digest}")
    if progress is not None:
        progress(len(data))


def _status(
    session: Session, location: str, repository: str, deadline: Deadline
) -> tuple[str, int | None]:
    """``GET <location>``: (next location, bytes the registry holds; None if ambiguous).

    distribution answers ``Range: 0-0`` both for an empty upload and for one
    holding a single byte, so that answer cannot be trusted.
    """
    resp = session.request(
        "GET",
        location,
        what="upload status",
        scopes=(push_scope(repository),),
        ok=(204, 200),
        deadline=deadline,
    )
    new_location = (
        session.follow(resp, resp.headers["location"]) if resp.headers.get("location") else location
    )
    m = _RANGE.fullmatch(resp.headers.get("range", "").strip())
    if m is None:
        return new_location, 0 if not resp.headers.get("range") else None
    start, end = int(m.group(1)), int(m.group(2))
    if start != 0:
        return new_location, None
    if end == 0:
        return new_location, None
    return new_location, end + 1


def _upload_chunked(
    session: Session,
    repository: str,
    source: _Source,
    digest: Digest,
    progress: Progress | None,
    deadline: Deadline,
    upload: UploadSession | None,
    what: str,
) -> None:
    size = source.size
    backoff = Backoff(session.options.backoff_base, session.options.backoff_max)
    current = upload or start_upload(session, repository, deadline)
    chunk = max(session.options.chunk_size, current.min_chunk, 1)
    location = current.location
    offset = 0
    failures = 0
    label = f"{what} {digest}"
    while offset < size:
        length = min(chunk, size - offset)
        source.prepare(offset, length)
        start = offset

        def body(start: int = start, length: int = length) -> Iterator[bytes]:
            pos = start
            for piece in source.pieces(start, length):
                yield piece
                pos += len(piece)
                if progress is not None:
                    progress(pos)

        try:
            resp = session.request(
                "PATCH",
                location,
                what=f"upload of {label}",
                scopes=(push_scope(repository),),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + length - 1}",
                    "Content-Length": str(length),
                },
                body=body,
                ok=(202,),
                retry=False,
                deadline=deadline,
            )
        except ForkliftError as exc:
            if not _retryable(exc) and not _range_rejected(exc):
                raise
            failures += 1
            if failures >= session.options.max_attempts:
                raise TransportError(
                    f"upload of {label} to {session.registry} failed at byte {offset}: "
                    f"{exc.message}"
                ) from None
            deadline.sleep(backoff.delay(failures - 1), f"upload of {label}")
            location, offset = _resume_point(session, repository, location, source, deadline, label)
            if offset < 0:
                # the session is gone or its state is ambiguous: start a new one
                current = start_upload(session, repository, deadline)
                location, offset = current.location, 0
            continue
        failures = 0
        location = _location(session, resp)
        confirmed = _confirmed(resp)
        offset = start + length if confirmed is None else confirmed
        if offset > size:
            raise RegistryError(
                f"{session.registry} reports {offset} bytes received for {label}, "
                f"more than its {size} bytes"
            )
    source.check_end()
    attempt = 0
    while True:
        try:
            _put_final(session, location, digest, None, 0, deadline, repository, what)
            break
        except ForkliftError as exc:
            if not _retryable(exc):
                raise
            # the PUT may have been applied before its answer was lost
            if _exists(session, repository, digest, deadline):
                break
            attempt += 1
            if attempt >= session.options.max_attempts:
                raise
            deadline.sleep(backoff.delay(attempt - 1), f"upload of {label}")
    if progress is not None:
        progress(size)


def _range_rejected(exc: ForkliftError) -> bool:
    # 416: the registry's offset differs from ours; ask it where it stands
    return isinstance(exc, RegistryStatusError) and exc.status == 416


def _confirmed(resp: http.Response) -> int | None:
    m = _RANGE.fullmatch(resp.headers.get("range", "").strip())
    if m is None or int(m.group(1)) != 0:
        return None
    return int(m.group(2)) + 1


def _resume_point(
    session: Session,
    repository: str,
    location: str,
    source: _Source,
    deadline: Deadline,
    label: str,
) -> tuple[str, int]:
    """Where to go on after a failed PATCH: (location, offset), or offset -1 to restart."""
    try:
        new_location, held = _status(session, location, repository, deadline)
    except NotFound:
        held = None
        new_location = location
    if held is None or not source.can_restart_at(held) or held > source.size:
        if not source.can_restart_at(0):
            raise TransportError(
                f"upload of {label} to {session.registry} cannot resume: the upload session "
                "was lost and the source stream cannot be read again"
            )
        return location, -1
    return new_location, held
