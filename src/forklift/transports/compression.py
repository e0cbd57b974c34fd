"""Compression detection and decompressing readers for layer and archive streams."""

from __future__ import annotations

from typing import BinaryIO

from forklift.errors import InvalidInput

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def detect_compression(head: bytes) -> str:
    """'gzip', 'zstd' or '' (plain) from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return ""


def open_decompressed(stream: BinaryIO, compression: str) -> BinaryIO:
    """A reader of the decompressed bytes of ``stream``."""
    if compression == "":
        return stream
    if compression == "gzip":
        from isal import igzip

        return igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)  # type: ignore[return-value]
    raise InvalidInput(f"unsupported compression {compression!r}")
