"""Tarball transports: ``oci-archive:FILE[:REF]`` and ``docker-archive:FILE[:NAME[:TAG]]``.

A docker-archive is what ``docker save`` writes: ``manifest.json`` (a list of
``{Config, RepoTags, Layers}``), the config files and *uncompressed* layer tars.
Reading one synthesises an OCI manifest for it; writing one decompresses
layers on the way and checks their diff IDs against the config.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any, BinaryIO, cast

from forklift.copyrange import SMALL, FileExtent
from forklift.errors import InvalidInput, NotFound
from forklift.layers.compression import detect_compression, open_layer
from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, Hasher
from forklift.oci.manifest import ImageIndex, ImageManifest, parse_manifest
from forklift.reference import Reference, parse_reference
from forklift.store.layout import REF_NAME
from forklift.transports.base import ImageSource, LocalDestination
from forklift.transports.layout import CONTAINERD_NAME
from forklift.transports.tarball import TarIndex, TarWriter

# ----------------------------------------------------------------------------------
# OCI archive


def read_oci_index(tar: TarIndex, where: str) -> list[Descriptor]:
    """The entries of an OCI archive's ``index.json``."""
    if "oci-layout" not in tar or "index.json" not in tar:
        raise InvalidInput(f"{where}: not an OCI archive (no oci-layout or index.json)")
    index = parse_manifest(tar.read("index.json"), mt.OCI_INDEX, what=f"{where} index.json")
    if not isinstance(index, ImageIndex):
        raise InvalidInput(f"{where}: index.json is not an image index")
    return list(index.manifests)


class OciArchiveSource(ImageSource):
    """One image of a tarred OCI layout: named by ``ref``, or given as the entry ``top``."""

    def __init__(self, path: str, ref: str | None, *, top: Descriptor | None = None) -> None:
        self.tar = TarIndex(path)
        self.description = f"oci-archive:{path}"
        try:
            self.top = top or _select_entry(read_oci_index(self.tar, path), ref, self.description)
        except BaseException:
            self.tar.close()
            raise

    def _blob_name(self, digest: Digest) -> str:
        return f"blobs/{digest.algorithm}/{digest.encoded}"

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        want = digest or self.top.digest
        try:
            raw = self.tar.read(self._blob_name(want))
        except NotFound:
            raise NotFound(
                f"{self.description}: manifest {want} is missing from the archive"
            ) from None
        want.verify(raw, f"manifest in {self.description}")
        if digest is None:
            return raw, self.top.media_type
        return raw, parse_manifest(raw, what=f"manifest {digest}").media_type

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        try:
            return self.tar.open(self._blob_name(desc.digest))
        except NotFound:
            raise NotFound(
                f"{self.description}: blob {desc.digest} is missing from the archive"
            ) from None

    def blob_extent(self, desc: Descriptor) -> FileExtent | None:
        try:
            return self.tar.extent(self._blob_name(desc.digest))
        except NotFound:
            return None

    def close(self) -> None:
        self.tar.close()


def _select_entry(entries: list[Descriptor], ref: str | None, where: str) -> Descriptor:
    if ref:
        for e in entries:
            if ref in (e.annotations.get(REF_NAME), e.annotations.get(CONTAINERD_NAME)):
                return Descriptor(e.media_type, e.digest, e.size, platform=e.platform)
        raise NotFound(f"{where}: no image named {ref!r}")
    if len(entries) == 1:
        e = entries[0]
        return Descriptor(e.media_type, e.digest, e.size, platform=e.platform)
    if not entries:
        raise NotFound(f"{where}: the archive holds no images")
    raise InvalidInput(f"{where}: holds {len(entries)} images; name one ({where}:NAME)")


class OciArchiveDestination(LocalDestination):
    """Writes an OCI layout as a tar file (atomically, on :meth:`commit`)."""

    requires_oci = True

    def __init__(self, path: str, ref: str | None) -> None:
        super().__init__()
        self.description = f"oci-archive:{path}"
        self.ref = ref
        self.tar = TarWriter(path)
        self._lock = threading.Lock()
        self._entries: list[Descriptor] = []
        self.tar.add_dir("blobs")
        self.tar.add_dir("blobs/sha256")

    def _name(self, digest: Digest) -> str:
        return f"blobs/{digest.algorithm}/{digest.encoded}"

    def has_blob(self, desc: Descriptor) -> bool:
        return self._name(desc.digest) in self.tar

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        extent = self.take_extent(desc)
        name = self._name(desc.digest)
        with self._lock:
            if name in self.tar:
                return
            if extent is None or desc.size < SMALL:
                self.tar.add_stream(name, stream, desc.size)
                return
            offset = self.tar.reserve(name, desc.size)
        # outside the lock: the blobs of one image are copied (and hashed) at once
        self.tar.fill(offset, desc.size, extent, stream)

    def put_manifest(
        self,
        raw: bytes,
        media_type: str,
        *,
        top_level: bool,
        names: tuple[Reference, ...] | None = None,
    ) -> None:
        digest = Digest.of(raw)
        with self._lock:
            if self._name(digest) not in self.tar:
                self.tar.add_bytes(self._name(digest), raw)
        if not top_level:
            return
        pairs: list[dict[str, str]] = []
        if names:
            pairs = [{REF_NAME: n.tag or str(n), CONTAINERD_NAME: str(n)} for n in names]
        elif self.ref:
            pairs = [{REF_NAME: self.ref}]
        for entry_annotations in pairs or [{}]:
            self._entries.append(
                Descriptor(media_type, digest, len(raw), annotations=entry_annotations)
            )

    def commit(self) -> None:
        index = ImageIndex(manifests=tuple(self._entries))
        self.tar.add_bytes("oci-layout", canonical.dumps({"imageLayoutVersion": "1.0.0"}))
        self.tar.add_bytes("index.json", canonical.dumps(index.to_json()))
        self.tar.commit()

    def abort(self) -> None:
        self.tar.abort()

    def close(self) -> None:
        self.tar.abort()  # no-op after commit


# ----------------------------------------------------------------------------------
# docker-archive


def _repo_tags(item: dict[str, Any]) -> list[str]:
    tags = item.get("RepoTags") or []
    return [t for t in tags if isinstance(t, str)]


def read_docker_manifest(tar: TarIndex, where: str) -> list[dict[str, Any]]:
    """The parsed ``manifest.json`` of a docker-archive, checked for shape."""
    try:
        doc = canonical.loads(tar.read("manifest.json"), f"{where}: manifest.json")
    except InvalidInput as exc:
        raise InvalidInput(exc.message) from None
    if not isinstance(doc, list) or not all(isinstance(i, dict) for i in doc):
        raise InvalidInput(f"{where}: manifest.json must be a list of objects")
    for n, item in enumerate(doc):
        if not isinstance(item.get("Config"), str):
            raise InvalidInput(f"{where}: manifest.json[{n}].Config missing")
        layers = item.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidInput(f"{where}: manifest.json[{n}].Layers must be a list of paths")
    return doc


class DockerArchiveSource(ImageSource):
    """One image of a ``docker save`` tarball."""

    def __init__(self, path: str, name: str | None = None, *, position: int | None = None) -> None:
        self.tar = TarIndex(path)
        self.description = f"docker-archive:{path}"
        try:
            if "manifest.json" not in self.tar:
                raise InvalidInput(f"{path}: not a docker-archive (no manifest.json)")
            items = read_docker_manifest(self.tar, self.description)
            self.item = self._choose(items, name, position)
            self.repo_tags = _repo_tags(self.item)
            self._build()
        except BaseException:
            self.tar.close()
            raise

    def _choose(
        self, items: list[dict[str, Any]], name: str | None, position: int | None
    ) -> dict[str, Any]:
        if position is not None:
            if not 0 <= position < len(items):
                raise NotFound(f"{self.description}: no image at position {position}")
            return items[position]
        if name:
            want = str(parse_reference(name))
            for item in items:
                for tag in _repo_tags(item):
                    with contextlib.suppress(InvalidInput):
                        if str(parse_reference(tag)) == want:
                            return item
            raise NotFound(f"{self.description}: no image named {name}")
        if len(items) != 1:
            raise InvalidInput(
                f"{self.description}: holds {len(items)} images; name one "
                f"({self.description}:NAME:TAG)"
            )
        return items[0]

    def _build(self) -> None:
        config_name = self.item["Config"]
        self.config_raw = self.tar.read(config_name)
        config_digest = self.config_digest = Digest.of(self.config_raw)
        stem = Path(config_name).name.removesuffix(".json")
        if (
            len(stem) == 64
            and all(c in "0123456789abcdef" for c in stem)
            and stem != config_digest.hex
        ):
            raise InvalidInput(
                f"{self.description}: config {config_name} does not match its name "
                f"(hashes to {config_digest})"
            )
        config = ImageConfig.parse(self.config_raw)
        layer_names: list[str] = self.item["Layers"]
        if len(config.diff_ids) != len(layer_names):
            raise InvalidInput(
                f"{self.description}: config lists {len(config.diff_ids)} layers, "
                f"manifest.json {len(layer_names)}"
            )
        self._blobs: dict[Digest, str] = {config_digest: config_name}
        layers: list[Descriptor] = []
        for member, diff_id in zip(layer_names, config.diff_ids, strict=True):
            with self.tar.open(member) as f:
                compression = detect_compression(f.read(8))
            size = self.tar.size(member)
            if compression not in ("", "gzip", "zstd"):
                raise InvalidInput(
                    f"{self.description}: layer {member} is {compression}-compressed, which images cannot use"
                )
            if compression == "":
                digest = diff_id  # an uncompressed layer's digest is its diff ID (verified on copy)
                media_type = mt.OCI_LAYER
            else:
                h = Hasher()
                with self.tar.open(member) as f:
                    h.consume(f)
                digest = h.digest()
                media_type = mt.oci_layer_type(compression)
            self._blobs[digest] = member
            layers.append(Descriptor(media_type, digest, size))
        # Synthesised as OCI: what docker stores is a Docker config, which is a valid OCI config.
        manifest = ImageManifest(
            config=Descriptor(mt.OCI_CONFIG, config_digest, len(self.config_raw)),
            layers=tuple(layers),
        )
        self.manifest_raw = canonical.dumps(manifest.to_json())

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        if digest is not None and digest != Digest.of(self.manifest_raw):
            raise NotFound(f"{self.description}: no manifest {digest}")
        return self.manifest_raw, mt.OCI_MANIFEST

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        member = self._blobs.get(desc.digest)
        if member is None:
            raise NotFound(f"{self.description}: no blob {desc.digest}")
        return self.tar.open(member)

    def blob_extent(self, desc: Descriptor) -> FileExtent | None:
        member = self._blobs.get(desc.digest)
        return self.tar.extent(member) if member is not None else None

    def close(self) -> None:
        self.tar.close()


class DockerArchiveDestination(LocalDestination):
    """Writes a ``docker save``-style tarball that docker, podman and skopeo load."""

    supports_index = False

    def __init__(self, path: str, name: Reference | None = None) -> None:
        super().__init__()
        self.description = f"docker-archive:{path}"
        self.default_names = (name,) if name else ()
        self.tar = TarWriter(path)
        self._lock = threading.Lock()
        self._diff_ids: dict[Digest, Digest] = {}  # blob digest -> diff ID
        self._configs: dict[Digest, bytes] = {}
        self._items: list[dict[str, Any]] = []
        self._repositories: dict[str, dict[str, str]] = {}

    def has_blob(self, desc: Descriptor) -> bool:
        return desc.digest in self._diff_ids or desc.digest in self._configs

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        if desc.media_type in mt.CONFIGS:
            data = stream.read()
            stream.read()  # EOF: lets a verifying stream check the digest
            self._configs[desc.digest] = data
            return
        compression = mt.layer_compression(desc.media_type)
        if compression == "":
            # Already a plain tar: its digest is its diff ID (the stream verifies it).
            name = f"{desc.digest.encoded}.tar"
            extent = self.take_extent(desc)
            with self._lock:
                if desc.digest in self._diff_ids:
                    return
                self._diff_ids[desc.digest] = desc.digest
                if extent is None or desc.size < SMALL:
                    self.tar.add_stream(name, stream, desc.size)
                    return
                offset = self.tar.reserve(name, desc.size)
            # outside the lock: the layers of one image are copied (and hashed) at once
            self.tar.fill(offset, desc.size, extent, stream)
            return
        with self._lock:
            if desc.digest in self._diff_ids:
                return
            hasher = Hasher()
            tee = _HashingReader(open_layer(stream, f"layer {desc.digest}"), hasher)
            # The member is named after its diff ID, known only at the end: the header is patched.
            self.tar.add_stream(
                f"{desc.digest.encoded}.tar",
                cast(BinaryIO, tee),
                final_name=lambda: f"{hasher.digest().encoded}.tar",
            )
            # The stream must be read to EOF for the caller's verification to run.
            while stream.read(1 << 16):
                pass
            self._diff_ids[desc.digest] = hasher.digest()

    def put_manifest(
        self,
        raw: bytes,
        media_type: str,
        *,
        top_level: bool,
        names: tuple[Reference, ...] | None = None,
    ) -> None:
        manifest = parse_manifest(raw, media_type)
        if not isinstance(manifest, ImageManifest):
            raise InvalidInput(
                "docker-archive cannot hold a multi-platform index: pick one platform with --platform"
            )
        config_raw = self._configs.get(manifest.config.digest)
        if config_raw is None:
            raise InvalidInput(
                f"{self.description}: config {manifest.config.digest} was not written"
            )
        config = ImageConfig.parse(config_raw)
        diff_ids = [self._diff_ids[layer.digest] for layer in manifest.layers]
        if diff_ids != list(config.diff_ids):
            raise InvalidInput(
                f"{self.description}: the layers' content does not match the config's diff IDs "
                "(the image is corrupt: run forklift fsck)"
            )
        config_name = f"{manifest.config.digest.encoded}.json"
        with self._lock:
            if config_name not in self.tar:
                self.tar.add_bytes(config_name, config_raw)
        tags = [n.familiar() for n in (names if names is not None else self.default_names) if n.tag]
        self._items.append(
            {
                "Config": config_name,
                "RepoTags": tags or None,
                "Layers": [f"{d.encoded}.tar" for d in diff_ids],
            }
        )
        for n in names if names is not None else self.default_names:
            if n.tag and diff_ids:
                self._repositories.setdefault(n.familiar_name, {})[n.tag] = diff_ids[-1].encoded

    def commit(self) -> None:
        self.tar.add_bytes("manifest.json", json.dumps(self._items, separators=(",", ":")).encode())
        if self._repositories:
            self.tar.add_bytes("repositories", json.dumps(self._repositories).encode())
        self.tar.commit()

    def abort(self) -> None:
        self.tar.abort()

    def close(self) -> None:
        self.tar.abort()


class _HashingReader:
    def __init__(self, raw: BinaryIO, hasher: Hasher) -> None:
        self._raw = raw
        self._hasher = hasher

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._hasher.update(data)
        return data
