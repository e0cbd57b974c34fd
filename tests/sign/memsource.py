"""An in-memory image source for feeding exact corpus bytes to forklift's verifier."""

from __future__ import annotations

import io
from typing import BinaryIO

from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.referrers import Attachment
from forklift.reference import parse_reference
from forklift.sign.targets import Target
from forklift.transports.base import ImageSource

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class MemorySource(ImageSource):
    """Manifests and blobs by digest; one ``.sig`` tag-layout manifest per subject."""

    description = "memory"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.sig_tags: dict[str, str] = {}

    def add(self, data: bytes) -> str:
        digest = str(Digest.of(data))
        self.blobs[digest] = data
        return digest

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        assert digest is not None
        return self.blobs[str(digest)], OCI_MANIFEST

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return io.BytesIO(self.blobs[str(desc.digest)])

    def list_attachments(
        self, subject: Digest, *, tags: tuple[str, ...] | None = None
    ) -> list[Attachment]:
        sig = self.sig_tags.get(str(subject))
        if sig is None or (tags is not None and "sig" not in tags):
            return []
        raw = self.blobs[sig]
        return [Attachment(subject, Descriptor(OCI_MANIFEST, Digest.parse(sig), len(raw)), "sig")]


def target_for(source: MemorySource, image_manifest: bytes, reference: str) -> Target:
    digest = Digest.of(image_manifest)
    desc = Descriptor(OCI_MANIFEST, digest, len(image_manifest))
    return Target(source, digest, desc, parse_reference(reference), "registry")
