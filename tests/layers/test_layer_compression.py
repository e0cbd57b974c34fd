"""Compression: deterministic gzip per RFC 1952, zstd, detection, and broken streams."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import subprocess
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.errors import InvalidInput, UsageError
from forklift.layers import compression as comp
from forklift.layers import detect_compression, normalize_compression, open_layer

TEXT = b"".join(b"line %d of some text-like content\n" % i for i in range(20000))


def compress_all(c: comp.Compressor, data: bytes, chunk: int = 65536) -> bytes:
    out = [c.compress(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(out) + c.flush()


def test_gzip_header_is_fixed_per_rfc1952() -> None:
    blob = compress_all(comp.GzipCompressor(), TEXT)
    assert blob[0:2] == b"\x1f\x8b"  # ID1 ID2
    assert blob[2] == 8  # CM = deflate
    assert blob[3] == 0  # FLG: no name, comment, extra or header CRC
    assert blob[4:8] == b"\0\0\0\0"  # MTIME = 0: no clock in the digest
    assert blob[9] == 255  # OS = unknown, whatever the host
    # Trailer: CRC-32 and ISIZE of the uncompressed data, little-endian.
    assert int.from_bytes(blob[-8:-4], "little") == zlib.crc32(TEXT)
    assert int.from_bytes(blob[-4:], "little") == len(TEXT) % 2**32


@pytest.mark.parametrize("level", [0, 1, 2, 6, 9])
def test_gzip_output_is_read_by_gzip_and_python(level: int) -> None:
    blob = compress_all(comp.GzipCompressor(level), TEXT)
    assert gzip.decompress(blob) == TEXT
    out = subprocess.run(["gzip", "-dc"], input=blob, capture_output=True, check=True).stdout
    assert out == TEXT


def test_gzip_is_deterministic_whatever_the_chunking() -> None:
    a = compress_all(comp.GzipCompressor(), TEXT, chunk=1 << 20)
    b = compress_all(comp.GzipCompressor(), TEXT, chunk=1 << 20)
    assert a == b


def test_zlib_fallback_writes_valid_gzip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comp, "_fast_zlib", None)
    blob = compress_all(comp.GzipCompressor(6), TEXT)
    assert gzip.decompress(blob) == TEXT
    assert open_layer(io.BytesIO(blob)).read() == TEXT


def test_empty_input_still_gives_a_valid_gzip() -> None:
    blob = comp.GzipCompressor().flush()
    assert gzip.decompress(blob) == b""


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd command-line tool not installed")
def test_zstd_output_is_read_by_zstd_cli() -> None:
    blob = compress_all(comp.ZstdCompressor(), TEXT)
    out = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True, check=True).stdout
    assert out == TEXT


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"\x28\xb5\x2f\xfd\x00", "zstd"),
        (b"\x50\x2a\x4d\x18\x00", "zstd"),  # skippable frame (zstd:chunked)
        (b"\x5f\x2a\x4d\x18\x00", "zstd"),
        (b"BZh91AY", "bzip2"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"etc/passwd\x00", ""),
        (b"", ""),
        (b"\x1f", ""),
    ],
)
def test_detect_compression(head: bytes, kind: str) -> None:
    assert detect_compression(head) == kind


def test_normalize_compression_names() -> None:
    assert [normalize_compression(n) for n in ("GZIP", "gz", "zstd", "none", "", None)] == [
        "gzip",
        "gzip",
        "zstd",
        "",
        "",
        "",
    ]
    with pytest.raises(UsageError, match="unknown compression 'lz4'"):
        normalize_compression("lz4")


@pytest.mark.parametrize(
    "make",
    [
        lambda d: gzip.compress(d, mtime=0),
        lambda d: zstandard.ZstdCompressor().compress(d),
        lambda d: bz2.compress(d),
        lambda d: lzma.compress(d),
        lambda d: d,
    ],
    ids=["gzip", "zstd", "bzip2", "xz", "plain"],
)
def test_open_layer_decodes_every_format(make) -> None:  # type: ignore[no-untyped-def]
    stream = open_layer(io.BytesIO(make(TEXT)))
    assert stream.read() == TEXT


def test_concatenated_members_and_trailing_zeros() -> None:
    half = len(TEXT) // 2
    blob = gzip.compress(TEXT[:half], mtime=0) + gzip.compress(TEXT[half:], mtime=0) + bytes(700)
    assert open_layer(io.BytesIO(blob)).read() == TEXT
    z = zstandard.ZstdCompressor()
    frames = z.compress(TEXT[:half]) + z.compress(TEXT[half:])
    assert open_layer(io.BytesIO(frames)).read() == TEXT


def test_garbage_after_the_stream_is_invalid_input() -> None:
    blob = gzip.compress(TEXT, mtime=0) + b"not gzip at all"
    with pytest.raises(InvalidInput, match="garbage after the gzip data"):
        open_layer(io.BytesIO(blob), "blob X").read()


GZ = gzip.compress(os.urandom(50_000) + TEXT, mtime=0)
ZS = zstandard.ZstdCompressor(write_checksum=True).compress(os.urandom(50_000) + TEXT)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=2, max_value=len(GZ) - 1))  # the magic survives
def test_truncated_gzip_is_invalid_input(cut: int) -> None:
    with pytest.raises(InvalidInput, match=r"layer sha256:x: (truncated|corrupt) gzip"):
        open_layer(io.BytesIO(GZ[:cut]), "layer sha256:x").read()


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=4, max_value=len(ZS) - 1))
def test_truncated_zstd_is_invalid_input(cut: int) -> None:
    with pytest.raises(InvalidInput, match=r"(truncated|corrupt) zstd"):
        open_layer(io.BytesIO(ZS[:cut])).read()


def test_corrupt_crc_is_invalid_input() -> None:
    bad = bytearray(GZ)
    bad[-6] ^= 0xFF
    with pytest.raises(InvalidInput, match="corrupt gzip data"):
        open_layer(io.BytesIO(bytes(bad))).read()


def test_pipe_like_short_reads_work() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            n = min(3, len(b), len(self.data))
            b[:n] = self.data[:n]
            self.data = self.data[n:]
            return n

    assert open_layer(Trickle(gzip.compress(TEXT[:5000], mtime=0))).read() == TEXT[:5000]  # type: ignore[arg-type]


def test_bad_levels_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        comp.GzipCompressor(10)
    with pytest.raises(UsageError):
        comp.ZstdCompressor(0)


def test_zstd_output_does_not_depend_on_the_worker_count() -> None:
    one = compress_all(comp.ZstdCompressor(workers=1), TEXT * 20)
    two = compress_all(comp.ZstdCompressor(workers=2), TEXT * 20)
    assert one == two
    assert zstandard.ZstdDecompressor().decompressobj().decompress(one) == TEXT * 20


def test_zstd_frame_is_what_libzstd_multithreaded_mode_writes() -> None:
    data = TEXT * 10
    ours = compress_all(comp.ZstdCompressor(), data, chunk=1 << 20)
    reference = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=1).compressobj()
    expected = reference.compress(data) + reference.flush()
    assert ours == expected
