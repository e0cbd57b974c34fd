"""Layer compression: gzip (isal, zlib fallback), zstd, and plain tar; detection by magic.

Compressors turn a stream of tar chunks into the blob. The gzip compressor
writes its own fixed 10-byte header (no name, mtime 0, OS 255 "unknown") and
raw deflate, so the blob depends only on the input, the level and the deflate
implementation; isal and zlib produce different (both valid) deflate streams,
which is why :data:`GZIP_BACKEND` is exposed.

Decompression (:func:`open_layer`) detects the format from the first bytes,
bounds memory per read, accepts concatenated gzip members / zstd frames and
trailing zero padding, and turns every decoder failure (truncation, bad CRC,
garbage) into :class:`InvalidInput` rather than a library exception.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

import zstandard

from forklift.errors import InvalidInput, UsageError

try:  # python-isal: C (ISA-L) deflate, 3-5x faster than zlib and releases the GIL
    from isal import isal_zlib as _fast_zlib

    GZIP_BACKEND = "isal"
except ImportError:  # pragma: no cover - isal is a declared dependency
    _fast_zlib = None  # type: ignore[assignment]
    GZIP_BACKEND = "zlib"

GZIP = "gzip"
ZSTD = "zstd"
NONE = ""
COMPRESSIONS = (GZIP, ZSTD, NONE)

#: Default gzip level (zlib's 1-9 scale), chosen with bench/layers_create.py on the
#: 364 MB text-like tree: ISA-L level 1 (this) 3.614:1, level 2 (gzip 2-6) 3.650:1
#: for 0-7% more CPU, level 3 (gzip 7-9) 3.779:1 for ~45% more CPU. Level 1 makes
#: layers at ~250-340 MB/s on two cores (target: 150), 2.4x `tar | pigz -1`.
DEFAULT_GZIP_LEVEL = 1
DEFAULT_ZSTD_LEVEL = 3

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
# mtime 0, XFL 0, OS 255: the same for every backend and every run.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

_READ_SIZE = 1 << 20
# zstd's decompressobj has no output limit, and one RLE block of 128 KiB costs
# ~4 input bytes; feeding 4 KiB at a time bounds one call's output (~128 MiB
# worst case) at a measured cost of ~10% throughput.
_ZSTD_FEED = 4096


def normalize_compression(name: str | None) -> str:
    """Map a user's compression name (``gzip``, ``zstd``, ``none``...) to ``gzip``/``zstd``/``""``."""
    key = (name or "").strip().lower()
    if key in ("", "none", "uncompressed", "tar", "identity"):
        return NONE
    if key in ("gzip", "gz"):
        return GZIP
    if key in ("zstd", "zst", "zstandard"):
        return ZSTD
    raise UsageError(f"unknown compression {name!r} (use gzip, zstd or none)")


def detect_compression(head: bytes) -> str:
    """``gzip``/``zstd``/``bzip2``/``xz`` from a blob's first bytes, ``""`` for anything else."""
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZSTD_MAGIC) or (
        len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50
    ):  # a zstd frame, or a zstd skippable frame (zstd:chunked puts metadata in those)
        return ZSTD
    if head.startswith(_BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    return NONE


# --------------------------------------------------------------------------- compressors


class Compressor(Protocol):
    """Turns tar bytes into blob bytes, chunk by chunk."""

    def compress(self, data: bytes | bytearray | memoryview) -> bytes: ...

    def flush(self) -> bytes: ...


class GzipCompressor:
    """Deterministic gzip (RFC 1952): fixed header, raw deflate, CRC-32 + size trailer."""

    def __init__(self, level: int = DEFAULT_GZIP_LEVEL) -> None:
        if not 0 <= level <= 9:
            raise UsageError(f"gzip level must be 0-9, not {level}")
        if _fast_zlib is not None and level > 0:
            # ISA-L has levels 0-3 on its own scale; level 0 there still compresses,
            # so gzip level 0 ("store") stays with zlib.
            backend: Any = _fast_zlib
            native = 1 if level == 1 else 2 if level <= 6 else 3
        else:
            backend, native = zlib, level
        self._deflate = backend.compressobj(native, zlib.DEFLATED, -15)
        self._crc32: Callable[[Any, int], int] = backend.crc32
        self._crc = 0
        self._size = 0
        self._started = False

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        self._crc = self._crc32(data, self._crc)
        self._size += len(data)
        out = self._deflate.compress(data)
        if not self._started:
            self._started = True
            return _GZIP_HEADER + out
        return out

    def flush(self) -> bytes:
        head = b"" if self._started else _GZIP_HEADER
        self._started = True
        trailer = (self._crc & 0xFFFFFFFF).to_bytes(4, "little") + (
            self._size & 0xFFFFFFFF
        ).to_bytes(4, "little")
        return head + self._deflate.flush() + trailer


class ZstdCompressor:
    """One zstd frame with a content checksum, compressed by libzstd's own worker thread.

    Next to a busy Python thread, python-zstandard's single-threaded
    ``compress`` was measured several times slower (it gives the GIL back and
    waits to get it again many times per call); in libzstd's multi-threaded
    mode the work runs in a C thread and suffers much less. That mode's output
    does not depend on the number of workers (it does differ from
    single-threaded mode), so layers stay byte-identical on any machine.
    """

    def __init__(self, level: int = DEFAULT_ZSTD_LEVEL, workers: int = 1) -> None:
        if not 1 <= level <= 22:
            raise UsageError(f"zstd level must be 1-22, not {level}")
        params = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=max(1, workers))
        # A 4 MiB output buffer: the compressor gives the GIL back and takes it
        # again each time its output buffer fills, and that hand-off is what a
        # busy producer thread makes slow. Same bytes as compressobj().
        self._chunker = params.chunker(chunk_size=4 << 20)

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return b"".join(self._chunker.compress(data))

    def flush(self) -> bytes:
        return b"".join(self._chunker.finish())


class IdentityCompressor:
    """No compression: the blob is the tar."""

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        return bytes(data)

    def flush(self) -> bytes:
        return b""


#: the layer descriptor annotation that says how a blob was compressed
ENCODER_ANNOTATION = "dev.forklift.layer.encoder"


def encoder_id(compression: str, level: int | None = None) -> str:
    """What decides a compressed layer's bytes: format, level and compressor family.

    ``gzip;level=1;deflate=isal``, ``gzip;level=1;deflate=zlib``,
    ``zstd;level=3;libzstd=1.5.7``; ``""`` for an uncompressed layer. Within
    the dependency ranges pyproject.toml pins, equal ids give equal bytes for
    equal input: python-isal 1.6 to 1.9 (ISA-L 2.31-2.32) all deflate alike,
    while zstd output changed with libzstd 1.5.7, so the libzstd version is
    part of the id (tests/layers/test_reproducible_bytes.py checks both).
    """
    if compression == GZIP:
        lvl = DEFAULT_GZIP_LEVEL if level is None else level
        deflate = GZIP_BACKEND if lvl > 0 else "zlib"  # level 0 (stored) is always zlib
        return f"gzip;level={lvl};deflate={deflate}"
    if compression == ZSTD:
        lvl = DEFAULT_ZSTD_LEVEL if level is None else level
        return f"zstd;level={lvl};libzstd={'.'.join(map(str, zstandard.ZSTD_VERSION))}"
    return ""


def make_compressor(compression: str, level: int | None = None) -> Compressor:
    """A fresh compressor for ``gzip``/``zstd``/``""``; ``level`` None means the default."""
    if compression == GZIP:
        return GzipCompressor(DEFAULT_GZIP_LEVEL if level is None else level)
    if compression == ZSTD:
        return ZstdCompressor(DEFAULT_ZSTD_LEVEL if level is None else level)
    if compression == NONE:
        return IdentityCompressor()
    raise UsageError(f"unknown compression {compression!r}")


# --------------------------------------------------------------------------- decompression


class _Decoder(Protocol):
    eof: bool

    def take(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        """Decode some of ``data``; return (output of at most ``limit`` bytes, input left)."""
        ...

    def unused(self) -> bytes: ...


class _ZlibDecoder:
    def __init__(self) -> None:
        backend: Any = _fast_zlib if _fast_zlib is not None else zlib
        self._d = backend.decompressobj(16 + 15)
        self._errors: tuple[type[BaseException], ...] = (zlib.error, backend.error)
        self.eof = False

    def take(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        try:
            out = self._d.decompress(data, limit)
        except self._errors as exc:
            raise ValueError(str(exc)) from None
        self.eof = self._d.eof
        return out, self._d.unconsumed_tail

    def unused(self) -> bytes:
        return self._d.unused_data


class _ZstdDecoder:
    def __init__(self) -> None:
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self.eof = False

    def take(self, data: Any, limit: int) -> tuple[bytes, Any]:
        view = memoryview(data)  # slicing a view is O(1); slicing bytes would copy the tail
        try:
            out = self._d.decompress(view[:_ZSTD_FEED])
        except zstandard.ZstdError as exc:
            raise ValueError(str(exc)) from None
        self.eof = self._d.eof
        return out, view[_ZSTD_FEED:]

    def unused(self) -> bytes:
        return self._d.unused_data


class _StdlibDecoder:
    """bz2 / lzma decompressors (they buffer unconsumed input themselves)."""

    def __init__(self, factory: Callable[[], Any], errors: tuple[type[BaseException], ...]):
        self._d = factory()
        self._errors = errors
        self.eof = False

    def take(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        if not data and self._d.needs_input:
            return b"", b""
        try:
            out = self._d.decompress(data, limit)
        except self._errors as exc:
            raise ValueError(str(exc)) from None
        self.eof = self._d.eof
        return out, b""

    def unused(self) -> bytes:
        return self._d.unused_data


def _decoder(kind: str) -> _Decoder:
    if kind == GZIP:
        return _ZlibDecoder()
    if kind == ZSTD:
        return _ZstdDecoder()
    if kind == "bzip2":
        return _StdlibDecoder(bz2.BZ2Decompressor, (OSError, ValueError))
    return _StdlibDecoder(lzma.LZMADecompressor, (lzma.LZMAError,))


class _DecompressingRaw(io.RawIOBase):
    """A raw stream of the decompressed bytes of ``source`` (one or more members)."""

    def __init__(self, source: BinaryIO, kind: str, head: bytes, label: str) -> None:
        self._src = source
        self._kind = kind
        self._label = label
        self._in = head
        self._dec: _Decoder | None = _decoder(kind)
        self._done = False
        self._pending = memoryview(b"")  # decoded bytes beyond what the last read wanted

    def readable(self) -> bool:
        return True

    def _more_input(self) -> bytes:
        return self._src.read(_READ_SIZE)

    def _next_member(self) -> None:
        """After a member ends: another member, zero padding up to EOF, or garbage."""
        assert self._dec is not None
        rest = bytes(self._dec.unused()) + bytes(self._in)
        self._in = b""
        zeros = False
        while True:
            if not rest:
                rest = self._more_input()
                if not rest:
                    self._dec = None
                    self._done = True
                    return
            stripped = rest.lstrip(b"\x00")
            if not stripped:  # zero padding after the last member is tolerated, like gzip(1)
                zeros, rest = True, b""
                continue
            if zeros or len(stripped) != len(rest):
                raise InvalidInput(f"{self._label}: garbage after the {self._kind} data")
            if len(rest) < 6 and (more := self._more_input()):
                rest += more
                continue
            if detect_compression(rest) != self._kind:
                raise InvalidInput(f"{self._label}: garbage after the {self._kind} data")
            self._dec = _decoder(self._kind)
            self._in = rest
            return

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        limit = len(view)
        if limit == 0:
            return 0
        if self._pending:
            n = min(limit, len(self._pending))
            view[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        while not self._done:
            assert self._dec is not None
            if self._dec.eof:
                self._next_member()
                continue
            try:
                out, self._in = self._dec.take(self._in, limit)
            except ValueError as exc:
                raise InvalidInput(f"{self._label}: corrupt {self._kind} data: {exc}") from None
            if out:
                n = min(len(out), limit)
                view[:n] = memoryview(out)[:n]
                if n < len(out):  # zstd cannot be told to stop early
                    self._pending = memoryview(out)[n:]
                return n
            if self._dec.eof:
                continue
            if not self._in:
                self._in = self._more_input()
                if not self._in:
                    raise InvalidInput(
                        f"{self._label}: truncated {self._kind} data (the stream ends early)"
                    )
        return 0


class LayerStream(io.BufferedReader):
    """A readable stream of a layer's uncompressed tar; ``compression`` says what it was."""

    compression: str


def open_layer(stream: BinaryIO, label: str = "layer") -> LayerStream:
    """Open a layer blob with its compression detected from magic bytes.

    Returns a buffered reader of the uncompressed tar. ``stream`` only needs
    ``read``; nothing is seeked. ``label`` names the blob in error messages.
    """
    head = stream.read(6)
    while 0 < len(head) < 6:  # short reads from pipes: get enough for the longest magic
        more = stream.read(6 - len(head))
        if not more:
            break
        head += more
    kind = detect_compression(head)
    raw: io.RawIOBase
    if kind == NONE:
        raw = _PrefixedRaw(head, stream)
    else:
        raw = _DecompressingRaw(stream, kind, head, label)
    reader = LayerStream(raw, buffer_size=_READ_SIZE)
    reader.compression = kind
    return reader


class _PrefixedRaw(io.RawIOBase):
    """``head`` followed by the rest of ``source`` (to give back the sniffed bytes)."""

    def __init__(self, head: bytes, source: BinaryIO) -> None:
        self._head = head
        self._src = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            return readinto(view) or 0
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)
