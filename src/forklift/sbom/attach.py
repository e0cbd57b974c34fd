"""An SBOM kept with its image: an OCI 1.1 artifact whose ``subject`` is the image.

The document is the artifact's one layer (media type ``application/spdx+json``
or ``application/vnd.cyclonedx+json``, also its ``artifactType``), the config
is the empty descriptor the image spec recommends for artifacts. The store
records it as an attachment of the image, so ``push`` and ``copy`` carry it
and a registry's referrers API lists it (what ``docker buildx --sbom`` and
``oras attach`` produce is found the same way).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.manifest import ImageManifest

if TYPE_CHECKING:
    from forklift.store.store import Store

#: artifact (and layer) media types per format
MEDIA_TYPES = {
    "spdx-json": "application/spdx+json",
    "cyclonedx-json": "application/vnd.cyclonedx+json",
}
EMPTY_CONFIG = b"{}"


@dataclass(frozen=True)
class AttachedSbom:
    """What :func:`attach_sbom` stored."""

    manifest_digest: str
    document: str  # the SBOM text
    packages: int


def sbom_artifact(
    subject: Descriptor, document: bytes, fmt: str
) -> tuple[bytes, tuple[bytes, ...]]:
    """The artifact manifest for ``document`` about ``subject``, and the blobs it needs."""
    media_type = MEDIA_TYPES[fmt]
    layer = Descriptor.of(
        media_type,
        document,
        annotations={"org.opencontainers.image.title": f"sbom.{fmt.split('-')[0]}.json"},
    )
    config = Descriptor.of(mt.OCI_EMPTY, EMPTY_CONFIG)
    manifest = ImageManifest(
        config=config,
        layers=(layer,),
        media_type=mt.OCI_MANIFEST,
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=media_type,
    )
    return canonical.dumps(manifest.to_json()), (EMPTY_CONFIG, document)


def attach_sbom(
    store: Store, image: str, fmt: str = "spdx-json", *, name: str | None = None
) -> AttachedSbom:
    """Inventory the stored ``image``, write the SBOM in ``fmt`` and attach it to the image.

    ``name`` is what the document calls the image (default: ``image``).
    """
    from forklift.sbom.formats import render
    from forklift.sbom.inventory import inventory

    if fmt not in MEDIA_TYPES:
        from forklift.errors import UsageError

        raise UsageError(f"an attached SBOM is spdx-json or cyclonedx-json, not {fmt!r}")
    stored = store.resolve(image)
    inv = inventory(str(stored.digest), store=store)
    if name:
        inv = replace(inv, target=name)
    text = render(inv, fmt)
    raw, blobs = sbom_artifact(stored.descriptor, text.encode("utf-8"), fmt)
    with store.writing():
        for blob in blobs:
            store.put_blob(blob)
        att = store.attach(stored.digest, raw)
    return AttachedSbom(str(att.digest), text, len(inv.packages))
