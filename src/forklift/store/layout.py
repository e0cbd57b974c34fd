"""An OCI image layout directory: ``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``.

Blobs are written to a temporary file next to their final place, hashed while
written, fsynced and renamed into place only if their digest (and size) is
what was promised: a reader never sees a partial or wrong blob.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from forklift import cancel
from forklift.copyrange import SMALL, FileExtent, copy_while_draining
from forklift.errors import DigestMismatch, InvalidInput, NotFound, SizeMismatch, StoreError
from forklift.fsutil import atomic_write, fsync_dir, mkstemp_locked
from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import ALGORITHMS, Digest, Hasher, VerifyingReader
from forklift.oci.manifest import ImageIndex, parse_manifest
from forklift.writeback import STEP as WRITEBACK_STEP
from forklift.writeback import WriteBehind

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"
_BUFSIZE = 1 << 20
# writes at least this large skip BlobWriter's gathering buffer
_DIRECT_MIN = 64 << 10


class BlobWriter:
    """A blob being written: ``write()`` bytes, then ``commit()`` to make it visible.

    Used as a context manager, an exception (or leaving without ``commit``)
    discards the temporary file.
    """

    def __init__(
        self,
        blobs_dir: Path,
        tmp_dir: Path,
        expected: Digest | None,
        size: int | None,
        verified_by: VerifyingReader | None = None,
    ) -> None:
        self._blobs_dir = blobs_dir
        self.expected = expected
        self.expected_size = size
        # When the bytes come through a VerifyingReader of the same digest, hashing them
        # again here would only double the CPU cost: commit then requires its verdict.
        self._verified_by = (
            verified_by if verified_by is not None and expected == verified_by.expected else None
        )
        self._hasher = Hasher(expected.algorithm if expected else "sha256")
        self._count = 0
        tmp_dir.mkdir(parents=True, exist_ok=True)
        # Locked while written: recovery removes only partial blobs nobody holds.
        fd, self._tmp = mkstemp_locked(tmp_dir, "blob-", ".partial")
        try:
            # Unbuffered: large writes go to the kernel from the caller's buffer as they are
            # (a BufferedWriter would copy every byte into its own buffer first); small ones
            # are gathered in ``_small`` so a tar writer's 512-byte headers are not a
            # syscall each.
            self._file: BinaryIO = os.fdopen(fd, "wb", buffering=0)
            self._small = bytearray()
            # the disk starts on each few megabytes at once, so commit's fsync waits less
            self._behind = WriteBehind(fd)
            self._pending = 0  # bytes written since the last hand-over to WriteBehind
            self.digest: Digest | None = None
            self._done = False
            # A cancelled command may exit while this writer's thread is still blocked
            # reading its source: the partial file goes at once, not at the next recovery.
            self._on_cancel = cancel.TOKEN.add(self._discard)
        except BaseException:
            # e.g. Cancelled raised by a SIGINT that arrived right after the file was made:
            # nobody would hold this writer to abort it
            opened = self.__dict__.get("_file")
            with contextlib.suppress(OSError):
                if opened is not None:
                    opened.close()  # (closes fd, once)
                else:
                    os.close(fd)
            self._discard()
            raise

    @property
    def size(self) -> int:
        return self._count

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._verified_by is None:
            self._hasher.update(data)
        self._count += len(data)
        if self.expected_size is not None and self._count > self.expected_size:
            raise SizeMismatch(
                f"size mismatch for blob {self.expected}: more than the {self.expected_size} "
                "bytes promised"
            )
        n = len(data)
        if n >= _DIRECT_MIN:
            self._flush_small()
            self._write_out(data)
        else:
            self._small += data
            if len(self._small) >= _BUFSIZE:
                self._flush_small()
        return n

    def _flush_small(self) -> None:
        if self._small:
            self._write_out(self._small)
            self._small = bytearray()

    def _write_out(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) :]
        self._pending += len(data)
        if self._pending >= WRITEBACK_STEP:
            self._behind.wrote(self._pending)
            self._pending = 0

    def copy_extent(self, extent: FileExtent, stream: BinaryIO) -> None:
        """Let the kernel copy the blob from ``extent`` while ``stream`` (the verifying
        reader this writer trusts) is read to its end to check the same bytes."""
        size = self.expected_size
        if self._verified_by is None or size is None or size < SMALL:
            self.copy_from(stream)
            return
        self._flush_small()
        start = self._file.tell()
        copy_while_draining(extent, self._file.fileno(), start, size, stream)
        self._file.seek(start + size)
        self._count += size
        self._behind = WriteBehind(self._file.fileno(), start + size)
        self._pending = 0

    def copy_from(self, src: BinaryIO) -> None:
        """Write everything readable from ``src``."""
        buf = bytearray(_BUFSIZE)
        view = memoryview(buf)
        readinto = getattr(src, "readinto", None)
        if readinto is not None:
            # A socket's reads come in whatever pieces arrived: gather them in the
            # buffer and write it whole (one write per megabyte, no copy on the way).
            filled = 0
            while n := readinto(view[filled:]):
                filled += n
                if filled == len(view):
                    self.write(view)
                    filled = 0
            if filled:
                self.write(view[:filled])
        else:
            while chunk := src.read(_BUFSIZE):
                self.write(chunk)

    def commit(self) -> Digest:
        """Verify, fsync and move the blob into place; returns its digest."""
        if self._done:
            raise StoreError("blob writer already finished")
        if self._verified_by is not None:
            if not self._verified_by.verified:
                self.abort()
                raise DigestMismatch(f"blob {self.expected} was not read to its end and verified")
            assert self.expected is not None
            digest = self.expected
        else:
            digest = self._hasher.digest()
        try:
            if self.expected_size is not None and self.size != self.expected_size:
                raise SizeMismatch(
                    f"size mismatch for blob {self.expected}: got {self.size} bytes, "
                    f"expected {self.expected_size}"
                )
            if self.expected is not None and digest != self.expected:
                raise DigestMismatch(
                    f"digest mismatch for blob {self.expected}: the content hashes to {digest}"
                )
            self._flush_small()
            os.fsync(self._file.fileno())
            self._file.close()
            final_dir = self._blobs_dir / digest.algorithm
            final_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self._tmp, 0o644)
            # rename over an existing copy is fine: same digest, same bytes.
            os.replace(self._tmp, final_dir / digest.encoded)
            fsync_dir(final_dir)
        except BaseException:
            self.abort()
            raise
        self._done = True
        cancel.TOKEN.remove(self._on_cancel)
        self.digest = digest
        return digest

    def abort(self) -> None:
        """Discard the temporary file."""
        if self._done:
            return
        self._done = True
        cancel.TOKEN.remove(self._on_cancel)
        with contextlib.suppress(Exception):
            self._file.close()
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.abort()


class OciLayout:
    """Read and write an OCI image layout directory."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise InvalidInput(f"{self.root}: not a directory")
        marker = self.root / "oci-layout"
        if not marker.exists():
            if not create:
                raise NotFound(f"{self.root}: not an OCI image layout (no oci-layout file)")
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(marker, canonical.dumps({"imageLayoutVersion": LAYOUT_VERSION}))
        else:
            try:
                version = canonical.loads(marker.read_bytes()).get("imageLayoutVersion")
            except (InvalidInput, AttributeError):
                raise InvalidInput(f"{marker}: not valid JSON") from None
            if not isinstance(version, str) or not version.startswith("1."):
                raise InvalidInput(f"{marker}: unsupported imageLayoutVersion {version!r}")
        (self.root / "blobs").mkdir(exist_ok=True)
        if not (self.root / "index.json").exists():
            if not create:
                raise NotFound(f"{self.root}: not an OCI image layout (no index.json)")
            self.write_index([])

    # -- blobs ---------------------------------------------------------------

    @property
    def tmp_dir(self) -> Path:
        """Where partial blobs are staged (same filesystem as blobs/)."""
        return self.root / ".tmp"

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.encoded

    def has_blob(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: Digest) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in {self.root}") from None

    def open_blob(self, digest: Digest) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in {self.root}") from None

    def read_blob(self, digest: Digest, *, verify: bool = True) -> bytes:
        """Read a (small) blob whole; with ``verify`` its digest is checked."""
        with self.open_blob(digest) as f:
            data = f.read()
        if verify:
            digest.verify(data, f"blob in {self.root}")
        return data

    def blob_writer(
        self,
        expected: Digest | None = None,
        size: int | None = None,
        verified_by: VerifyingReader | None = None,
    ) -> BlobWriter:
        """Start writing a blob; see :class:`BlobWriter`."""
        return BlobWriter(self.root / "blobs", self.tmp_dir, expected, size, verified_by)

    def put_blob(self, data: bytes, expected: Digest | None = None) -> Digest:
        """Store ``data`` as a blob (atomically); returns its digest."""
        digest = Digest.of(data, expected.algorithm if expected else "sha256")
        if expected is not None and digest != expected:
            raise DigestMismatch(
                f"digest mismatch for blob {expected}: the content hashes to {digest}"
            )
        if self.has_blob(digest):
            return digest
        with self.blob_writer(digest, len(data)) as w:
            w.write(data)
            return w.commit()

    def delete_blob(self, digest: Digest) -> int:
        """Remove a blob; returns the bytes freed (0 if it was not there)."""
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def iter_blobs(self) -> Iterator[tuple[str, str, Path]]:
        """Every file under blobs/ as (algorithm, encoded name, path), valid names or not."""
        blobs = self.root / "blobs"
        for alg_dir in sorted(blobs.iterdir()):
            if not alg_dir.is_dir():
                continue
            for entry in os.scandir(alg_dir):
                if entry.is_file(follow_symlinks=False):
                    yield alg_dir.name, entry.name, Path(entry.path)

    @staticmethod
    def digest_for_name(algorithm: str, encoded: str) -> Digest | None:
        if algorithm not in ALGORITHMS:
            return None
        try:
            return Digest(algorithm, encoded)
        except InvalidInput:
            return None

    # -- index.json ------------------------------------------------------------

    def read_index(self) -> ImageIndex:
        path = self.root / "index.json"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{self.root}: no index.json") from None
        index = parse_manifest(raw, mt.OCI_INDEX, what=str(path))
        if not isinstance(index, ImageIndex):
            raise InvalidInput(f"{path}: not an image index")
        return index

    def write_index(
        self, manifests: list[Descriptor], annotations: dict[str, str] | None = None
    ) -> None:
        index = ImageIndex(manifests=tuple(manifests), annotations=annotations or {})
        atomic_write(self.root / "index.json", _pretty(index.to_json()))

    def find(self, ref_name: str | None) -> list[Descriptor]:
        """Descriptors in index.json whose ref name is ``ref_name`` (all when None)."""
        entries = self.read_index().manifests
        if ref_name is None:
            return list(entries)
        return [d for d in entries if d.annotations.get(REF_NAME) == ref_name]

    def read_manifest(self, digest: Digest, media_type: str | None = None) -> tuple[bytes, str]:
        """Manifest bytes (verified) and media type."""
        raw = self.read_blob(digest)
        return raw, parse_manifest(raw, media_type, what=f"manifest {digest}").media_type


def _pretty(doc: object) -> bytes:
    # index.json is the one file people read by hand; keep it stable and legible.
    return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
