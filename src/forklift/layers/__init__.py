"""Tar layers: deterministic writing, OCI whiteouts, compression, safe extraction.

Writing::

    info = write_layer(out, "rootfs/", compression="gzip",
                       normalize=Normalize(fixed_mtime=source_date_epoch))
    info.diff_id, info.digest, info.size   # config diff_id; manifest descriptor

    write_layer(out, upper_dir, overlay=True)          # overlayfs upper dir -> OCI diff
    write_layer(out, [LayerItem("app/main.py", "src/main.py", uid=0, gid=0)])

Reading and applying::

    for entry in iter_entries(blob):                   # no extraction
        ...
    extract_layer(blob, rootfs)                        # whiteouts applied, safe
    extract_layer(blob, snapshot_dir, overlay=True)    # whiteouts as overlayfs whiteouts
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

# name -> the module defining it, imported on first use (PEP 562): a step that only
# needs LayerItem does not load the compressors, the tar reader and the extractor.
_EXPORTS: dict[str, str] = {
    "DEFAULT_GZIP_LEVEL": "compression",
    "DEFAULT_ZSTD_LEVEL": "compression",
    "ENCODER_ANNOTATION": "compression",
    "GZIP": "compression",
    "GZIP_BACKEND": "compression",
    "NONE": "compression",
    "ZSTD": "compression",
    "LayerStream": "compression",
    "detect_compression": "compression",
    "encoder_id": "compression",
    "normalize_compression": "compression",
    "open_layer": "compression",
    "describe_layer": "describe",
    "OPAQUE_WHITEOUT": "entry",
    "WHITEOUT_PREFIX": "entry",
    "EntryType": "entry",
    "LayerEntry": "entry",
    "clean_path": "entry",
    "ExtractResult": "extract",
    "extract_layer": "extract",
    "LAYER_XATTRS": "source",
    "LayerItem": "source",
    "Normalize": "source",
    "TarReader": "tarformat",
    "LayerInfo": "writer",
    "write_layer": "writer",
    "write_layer_file": "writer",
}

if TYPE_CHECKING:  # what type checkers and IDEs see
    from forklift.layers.compression import (
        DEFAULT_GZIP_LEVEL,
        DEFAULT_ZSTD_LEVEL,
        ENCODER_ANNOTATION,
        GZIP,
        GZIP_BACKEND,
        NONE,
        ZSTD,
        LayerStream,
        detect_compression,
        encoder_id,
        normalize_compression,
        open_layer,
    )
    from forklift.layers.describe import describe_layer
    from forklift.layers.entry import (
        OPAQUE_WHITEOUT,
        WHITEOUT_PREFIX,
        EntryType,
        LayerEntry,
        clean_path,
    )
    from forklift.layers.extract import ExtractResult, extract_layer
    from forklift.layers.source import LAYER_XATTRS, LayerItem, Normalize
    from forklift.layers.tarformat import TarReader
    from forklift.layers.writer import LayerInfo, write_layer, write_layer_file


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def open_tar(stream: BinaryIO, label: str = "layer") -> TarReader:
    """A :class:`TarReader` over a layer blob of any supported compression.

    Iterate it for entries; while an entry is current, ``reader.read()`` gives its data.
    """
    from forklift.layers.compression import open_layer
    from forklift.layers.tarformat import TarReader

    return TarReader(open_layer(stream, label), label)


def iter_entries(stream: BinaryIO, label: str = "layer") -> Iterator[LayerEntry]:
    """The entries of a layer blob (gzip, zstd or plain), without extracting anything."""
    return iter(open_tar(stream, label))


def is_tar_archive(stream: BinaryIO) -> bool:
    """Whether ``stream`` starts a tar archive, plain or compressed (gzip, zstd, bzip2, xz).

    The compression is told by :func:`detect_compression`'s magic bytes and the
    first header must be a real one (checksum included), as BuildKit decides
    whether ``ADD`` unpacks a local file: a gzipped text file is not an archive.
    """
    from forklift.errors import ForkliftError
    from forklift.layers.compression import open_layer
    from forklift.layers.tarformat import BLOCK, header_checksum_ok

    try:
        head = open_layer(stream, "archive").read(BLOCK)
    except (ForkliftError, OSError, ValueError, EOFError):
        return False
    return header_checksum_ok(head)


__all__ = [
    "DEFAULT_GZIP_LEVEL",
    "DEFAULT_ZSTD_LEVEL",
    "ENCODER_ANNOTATION",
    "GZIP",
    "GZIP_BACKEND",
    "LAYER_XATTRS",
    "NONE",
    "OPAQUE_WHITEOUT",
    "WHITEOUT_PREFIX",
    "ZSTD",
    "EntryType",
    "ExtractResult",
    "LayerEntry",
    "LayerInfo",
    "LayerItem",
    "LayerStream",
    "Normalize",
    "TarReader",
    "clean_path",
    "describe_layer",
    "detect_compression",
    "encoder_id",
    "extract_layer",
    "is_tar_archive",
    "iter_entries",
    "normalize_compression",
    "open_layer",
    "open_tar",
    "write_layer",
    "write_layer_file",
]
