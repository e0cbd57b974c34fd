"""The image a signing verb works on: in the local store or in a registry.

``docker://REF`` is a registry, ``store:NAME`` the store; a plain name is the
stored image of that name when there is one, else the registry image (so
``forklift sign reg.example/app:1`` works like cosign's). Reading goes through
the transports' :class:`~forklift.transports.base.ImageSource` (signatures are
attachments like any other), writing through the store's ``attach`` or the
registry client's attachment push.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from forklift.errors import InvalidInput, NotFound
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import parse_manifest
from forklift.oci.referrers import Attachment, describe_manifest
from forklift.reference import Reference, parse_reference
from forklift.store.store import Store
from forklift.transports.base import ImageSource

_MAX_BLOB = 8 * 1024 * 1024


@dataclass
class Target:
    """An image to sign or verify: where it is, its digest, the name it was given by."""

    source: ImageSource
    digest: Digest
    descriptor: Descriptor
    reference: Reference | None
    where: str  # "store" | "registry"
    store: Store | None = None

    @property
    def repository_identity(self) -> str | None:
        """``registry/repository`` of the name (None for an image named only by digest)."""
        return self.reference.name if self.reference is not None else None

    def read_blob(self, desc: Descriptor) -> bytes:
        """A small blob (a payload, an envelope, a bundle), verified against its digest."""
        if desc.size > _MAX_BLOB:
            raise InvalidInput(f"{desc.digest} is {desc.size} bytes, too large for a signature")
        with self.source.open_blob(desc) as f:
            data = f.read(desc.size + 1)
        if len(data) != desc.size or Digest.of(data, desc.digest.algorithm) != desc.digest:
            raise InvalidInput(f"blob {desc.digest} does not match its digest")
        return data

    def manifest(self, digest: Digest) -> Any:
        raw, media_type = self.source.get_manifest(digest)
        digest.verify(raw, "manifest")
        return parse_manifest(raw, media_type, what=f"manifest {digest}"), raw

    def attachments(self, tags: tuple[str, ...] | None = None) -> list[Attachment]:
        return self.source.list_attachments(self.digest, tags=tags)

    def attach(self, raw: bytes, blobs: tuple[bytes, ...], tag: str | None) -> Attachment:
        """Store a signature/attestation manifest (and its blobs) next to the image."""
        if self.where == "store":
            assert self.store is not None
            with self.store.writing():
                for blob in blobs:
                    self.store.put_blob(blob)
                return self.store.attach(self.digest, raw, tag=tag)
        from forklift.registry.client.attachments import push_attachment
        from forklift.registry.client.transport import RegistrySource

        assert isinstance(self.source, RegistrySource)
        client, repo = self.source.client, self.source.repository
        for blob in blobs:
            client.push_blob(
                repo, Digest.of(blob), len(blob), _reader(blob), deadline=self.source.deadline
            )
        parsed = parse_manifest(raw)
        att = Attachment(self.digest, describe_manifest(parsed, raw), tag)
        return push_attachment(client, repo, att, raw, deadline=self.source.deadline)


def _reader(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _registry_target(text: str, **client: Any) -> Target:
    from forklift.registry.client.transport import RegistrySource

    ref = parse_reference(text)
    src = RegistrySource(ref, **client)
    top = src.top()
    return Target(src, top.digest, top.descriptor(), ref, "registry")


@contextmanager
def open_target(
    text: str, store: Store | None = None, *, prefer_store: bool = True, **client: Any
) -> Iterator[Target]:
    """Resolve ``text`` to an image (see the module doc); the source is closed afterwards."""
    target: Target | None = None
    if text.startswith("docker://"):
        target = _registry_target(text[len("docker://") :], **client)
    else:
        name = text.removeprefix("store:")
        store = store or Store.open()
        if prefer_store or text.startswith("store:"):
            try:
                image = store.resolve(name)
            except NotFound:
                if text.startswith("store:"):
                    raise
            else:
                from forklift.transports.layout import StoreSource

                ref = None
                try:
                    ref = parse_reference(name)
                except InvalidInput:
                    ref = image.names[0] if image.names else None
                if ref is not None and ref.digest is not None and image.names:
                    ref = next((n for n in image.names if n.name == ref.name), ref)
                src = StoreSource(store, name)
                desc = Descriptor(image.descriptor.media_type, image.digest, image.descriptor.size)
                target = Target(src, image.digest, desc, ref, "store", store)
        if target is None:
            target = _registry_target(name, **client)
    try:
        yield target
    finally:
        target.source.close()
