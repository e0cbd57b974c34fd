"""``forklift load``: every image of a docker-archive or OCI archive into the store."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from forklift.errors import ForkliftError, InvalidInput, InvalidReference, NotFound
from forklift.layers.compression import detect_compression, open_layer
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest
from forklift.reference import Reference, parse_reference
from forklift.store.layout import REF_NAME
from forklift.store.store import Store, StoredImage
from forklift.transports.archive import (
    DockerArchiveSource,
    OciArchiveSource,
    read_docker_manifest,
    read_oci_index,
)
from forklift.transports.copy import copy_image
from forklift.transports.layout import CONTAINERD_NAME, StoreDestination
from forklift.transports.tarball import TarIndex

_BUFSIZE = 1 << 20


def _plain_tar(path: str, tmp_dir: Path) -> tuple[Path, bool]:
    """A path to an uncompressed tar of the input; True if it is a temporary file."""
    source: BinaryIO
    if path == "-":
        source = sys.stdin.buffer
    else:
        try:
            source = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise NotFound(f"{path}: no such file") from None
    with source:
        head = source.peek(8)[:8] if hasattr(source, "peek") else b""
        compressed = detect_compression(head) != ""
        if path != "-" and not compressed:
            return Path(path), False
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="load-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as out:
                reader = open_layer(source, path) if compressed else source
                try:
                    while chunk := reader.read(_BUFSIZE):
                        out.write(chunk)
                except (EOFError, OSError) as exc:
                    raise InvalidInput(
                        f"{path}: corrupt or truncated compressed archive: {exc}"
                    ) from None
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp), True


def _oci_names(annotations: dict[str, str]) -> tuple[Reference, ...]:
    for key in (CONTAINERD_NAME, REF_NAME):
        value = annotations.get(key, "")
        # A bare tag ("latest") names no repository: such an image loads untagged.
        if value and ("/" in value or ":" in value or key == CONTAINERD_NAME):
            with contextlib.suppress(InvalidReference):
                return (parse_reference(value),)
    return ()


def _stored_image_with_config(store: Store, config: Digest) -> StoredImage | None:
    """A complete image in the store whose image ID (config digest) is ``config``.

    The config names every layer by its uncompressed digest (``rootfs.diff_ids``), so
    an image with the same config is the same image, whatever its manifest.
    """
    try:
        found = store.resolve_all(str(config))
    except ForkliftError:
        return None
    for image in found:
        manifest = image.manifest
        if (
            isinstance(manifest, ImageManifest)
            and image.id == config
            and all(
                store.has_blob(d.digest)
                for d in (image.descriptor, manifest.config, *manifest.layers)
            )
        ):
            return image
    return None


def load_archive(store: Store, path: str, *, progress: Any = None) -> list[str]:
    """Load every image of the archive at ``path`` (``-`` = stdin); returns docker-like lines."""
    tar_path, temporary = _plain_tar(path, store.layout.tmp_dir)
    lines: list[str] = []
    try:
        index = TarIndex(tar_path)
        try:
            is_docker = "manifest.json" in index
            is_oci = "index.json" in index and "oci-layout" in index
            items = read_docker_manifest(index, path) if is_docker else []
            entries = read_oci_index(index, path) if is_oci and not is_docker else []
        finally:
            index.close()
        if is_docker:
            for i in range(len(items)):
                with DockerArchiveSource(str(tar_path), position=i) as src:
                    names = tuple(parse_reference(t) for t in src.repo_tags)
                    # As docker does: an image whose ID the store has is not loaded again,
                    # only named. (A docker-archive carries no manifest of its own, so
                    # loading it would add an uncompressed copy beside the image.)
                    with store.writing():
                        existing = _stored_image_with_config(store, src.config_digest)
                        if existing is not None:
                            store.add_image(existing.descriptor, names)
                    if existing is None:
                        with StoreDestination(store, names) as dst:
                            copy_image(src, dst, progress=progress)
                            dst.commit()
                    lines += [f"Loaded image: {n.familiar()}" for n in names]
                    if not names:
                        lines.append(f"Loaded image ID: {src.config_digest}")
        elif is_oci:
            for entry in entries:
                names = _oci_names(entry.annotations)
                with (
                    OciArchiveSource(str(tar_path), None, top=entry) as src,
                    StoreDestination(store, names) as dst,
                ):
                    result = copy_image(src, dst, progress=progress, all_platforms=True)
                    dst.commit()
                lines += [f"Loaded image: {n.familiar()}" for n in names]
                if not names:
                    lines.append(f"Loaded image: {result.digest}")
        else:
            raise InvalidInput(
                f"{path}: neither a docker-archive (manifest.json) nor an OCI archive"
            )
    finally:
        if temporary:
            with contextlib.suppress(FileNotFoundError):
                tar_path.unlink()
    return lines
