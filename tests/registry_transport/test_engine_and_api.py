"""The copy engine's registry hooks (reuse_blob, verifying streams used as they are) with
in-memory sources and destinations, and the library API the builder uses (pull/push)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import pytest

from forklift.errors import DigestMismatch
from forklift.oci import Digest
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import VerifyingReader
from forklift.reference import Reference, parse_reference
from forklift.registry.client.images import pull, push
from forklift.store.store import Store
from forklift.transports.base import ImageDestination, ImageSource
from forklift.transports.copy import copy_image
from tests.registry_client.images import sha256

from .conftest import Fk, load_into_store
from .images import SampleImage, make_test_image


class MemorySource(ImageSource):
    def __init__(self, image: SampleImage, *, verifying: bool = False, corrupt: bool = False):
        self.image = image
        self.verifying = verifying
        self.corrupt = corrupt
        self.opened: list[str] = []
        blobs = [*image.image.layers, image.image.config]
        self.blobs = {b.digest: b.data for b in blobs}

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        return self.image.image.manifest, "application/vnd.oci.image.manifest.v1+json"

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        self.opened.append(str(desc.digest))
        data = self.blobs[str(desc.digest)]
        if self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        raw = io.BytesIO(data)
        if self.verifying:
            return VerifyingReader(raw, desc.digest, desc.size, "layer")  # type: ignore[return-value]
        return raw


class MemoryDestination(ImageDestination):
    def __init__(self, reusable: dict[str, str]) -> None:
        self.reusable = reusable
        self.streams: dict[str, object] = {}
        self.stored: dict[str, bytes] = {}

    def reuse_blob(self, desc: Descriptor, source: ImageSource) -> str | None:
        return self.reusable.get(str(desc.digest))

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        self.streams[str(desc.digest)] = stream
        self.stored[str(desc.digest)] = stream.read()
        assert stream.read() == b""

    def put_manifest(self, raw: bytes, media_type: str, **kwargs: object) -> None:
        self.stored["manifest"] = raw


class Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.skipped: list[str] = []

    def blob_started(self, desc: Descriptor, *, skipped: bool) -> None:
        if skipped:
            self.skipped.append(str(desc.digest))

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None:
        pass

    def blob_finished(self, desc: Descriptor) -> None:
        pass

    def message(self, text: str) -> None:
        self.lines.append(text)


def test_reused_blobs_are_never_opened_and_mounts_are_counted() -> None:
    image = make_test_image((1000, 2000, 3000), seed=61)
    layers = [b.digest for b in image.image.layers]
    src = MemorySource(image)
    dst = MemoryDestination({layers[0]: "exists", layers[1]: "mounted from team/base"})
    progress = Messages()
    result = copy_image(src, dst, progress=progress, jobs=2)
    assert sorted(src.opened) == sorted([image.image.config.digest, layers[2]])
    assert (result.blobs_copied, result.blobs_skipped, result.blobs_mounted) == (2, 2, 1)
    assert progress.skipped == [layers[0]]
    assert progress.lines == [f"Layer {layers[1]}: mounted from team/base"]
    assert dst.stored[layers[2]] == image.image.layers[2].data


def test_a_sources_verifying_stream_is_used_as_is() -> None:
    image = make_test_image((5000,), seed=62)
    dst = MemoryDestination({})
    copy_image(MemorySource(image, verifying=True), dst)
    layer = image.image.layers[0].digest
    # no second VerifyingReader around it (hashing once is the point)
    stream = dst.streams[layer]
    assert isinstance(stream, VerifyingReader) and not isinstance(stream._raw, VerifyingReader)
    assert stream.verified
    with pytest.raises(DigestMismatch):
        copy_image(MemorySource(image, verifying=True, corrupt=True), MemoryDestination({}))


def test_library_pull_and_push(
    registry, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    """What the builder calls: push(image, dest) and pull(ref, store) -> StoredImage."""
    load_into_store(tmp_path, "app:1", [small_image])
    result = push("app:1", f"docker://{registry.host}/{repo_name}:lib")
    assert str(result.digest) == small_image.manifest_digest
    assert str(result.pinned) == f"{registry.host}/{repo_name}@{small_image.manifest_digest}"
    assert result.copy.blobs_copied == 3

    store = Store(tmp_path / "builder-home")
    stored = pull(f"{registry.host}/{repo_name}:lib", store)
    assert str(stored.digest) == small_image.manifest_digest
    assert stored.names == (parse_reference(f"{registry.host}/{repo_name}:lib"),)
    assert stored.config is not None
    assert [str(d) for d in stored.config.diff_ids] == list(small_image.diff_ids)
    # the same again: nothing to download, the same image
    again = pull(Reference(registry.host, repo_name, "lib"), store)
    assert again.digest == stored.digest
    assert sha256(store.read_blob(stored.digest)) == small_image.manifest_digest
