"""Digests and sizes of a layer blob that already exists (e.g. a tarball to import)."""

from __future__ import annotations

from typing import Any, BinaryIO

from forklift.errors import InvalidInput
from forklift.layers.compression import NONE, open_layer
from forklift.layers.tarformat import TarReader
from forklift.layers.writer import LayerInfo
from forklift.oci import mediatypes
from forklift.oci.digest import Hasher


class _Counting:
    """Pass-through reader that hashes and counts what is read."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.hasher = Hasher()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hasher.update(data)
        return data

    def readinto(self, buf: Any) -> int:
        readinto = getattr(self._raw, "readinto", None)
        if readinto is None:
            data = self._raw.read(len(buf))
            buf[: len(data)] = data
            n = len(data)
        else:
            n = readinto(buf) or 0
        self.hasher.update(memoryview(buf)[:n])
        return n


def describe_layer(stream: BinaryIO, label: str = "layer") -> LayerInfo:
    """Read a layer blob once: check it is a well-formed tar and return its digests and sizes.

    The compression (gzip, zstd or none) is detected from the content; a blob in
    any other format is :class:`InvalidInput`, since OCI layers cannot use it.
    """
    blob = _Counting(stream)
    layer = open_layer(blob, label)  # type: ignore[arg-type]
    if layer.compression not in mediatypes.LAYER_COMPRESSION.values():
        raise InvalidInput(
            f"{label}: {layer.compression} compression is not allowed for OCI layers "
            "(use gzip, zstd or an uncompressed tar)"
        )
    tar = _Counting(layer)
    reader = TarReader(tar, label)  # type: ignore[arg-type]
    for _ in reader:
        pass
    if tar.hasher.size == 0:
        raise InvalidInput(f"{label}: empty blob, not a tar archive")
    reader.drain()
    compression = layer.compression or NONE
    return LayerInfo(
        diff_id=tar.hasher.digest(),
        digest=blob.hasher.digest(),
        size=blob.hasher.size,
        uncompressed_size=tar.hasher.size,
        media_type=mediatypes.oci_layer_type(compression),
        compression=compression,
    )
