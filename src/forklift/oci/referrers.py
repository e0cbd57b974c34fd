"""Artifacts attached to an image: signatures, attestations, SBOMs.

Two ways of attaching exist side by side, and forklift reads and writes both:

* **referrers** (OCI 1.1): a manifest whose ``subject`` names the image. A
  registry with the referrers API lists them at ``/v2/<repo>/referrers/<digest>``;
  one without it keeps an index tagged ``sha256-<hex>`` (the distribution
  spec's referrers tag schema) that clients update.
* **cosign's tag layout**: a manifest with *no* subject, tagged
  ``sha256-<hex>.sig`` (``.att``, ``.sbom``) in the image's repository; the
  image it belongs to is known only from the tag. Each layer is one signature
  (or attestation), so a second signature is appended as another layer.

An :class:`Attachment` is either, seen from the image: the attached
manifest's descriptor, the subject digest, and the tag suffix for the tag
layout (``None`` for a referrer). Pure data; no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest, Manifest

#: cosign's tag-layout suffixes: signatures, attestations, SBOMs
TAG_SUFFIXES = ("sig", "att", "sbom")
#: tag-layout kinds whose manifests grow a layer per entry (merged, never replaced)
APPENDING_SUFFIXES = frozenset({"sig", "att"})
_ATTACHMENT_TAG = re.compile(r"^(sha256|sha512)-([a-f0-9]{64,128})\.([a-z0-9]{1,16})\Z")


@dataclass(frozen=True)
class Attachment:
    """A manifest attached to the image ``subject``.

    ``descriptor`` describes the attached manifest (its ``artifact_type`` is
    the manifest's ``artifactType``, else its config media type, and its
    annotations are the manifest's, as a referrers index lists them).
    ``tag`` is the cosign tag-layout suffix (``sig``, ``att``, ``sbom``) for a
    manifest without a subject, ``None`` for an OCI 1.1 referrer.
    """

    subject: Digest
    descriptor: Descriptor
    tag: str | None = None

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest

    @property
    def artifact_type(self) -> str | None:
        return self.descriptor.artifact_type

    @property
    def tag_name(self) -> str | None:
        """The tag the tag layout stores this under (``sha256-<hex>.sig``), or None."""
        return attachment_tag(self.subject, self.tag) if self.tag else None

    def kind(self) -> str:
        """A short word for messages: ``signature``, ``attestation``, ``sbom`` or the type."""
        return describe(self)


def referrers_tag(subject: Digest) -> str:
    """The referrers tag schema's fallback tag: ``<alg>-<hex>`` (at most 128 characters)."""
    return f"{subject.algorithm}-{subject.hex}"[:128]


def attachment_tag(subject: Digest, suffix: str) -> str:
    """cosign's tag for attachments of ``subject``: ``sha256-<hex>.<suffix>``."""
    return f"{subject.algorithm}-{subject.hex}.{suffix}"


def parse_attachment_tag(tag: str) -> tuple[Digest, str] | None:
    """``sha256-<hex>.sig`` -> (digest, ``"sig"``); None for any other tag."""
    m = _ATTACHMENT_TAG.match(tag)
    if m is None:
        return None
    try:
        return Digest.parse(f"{m.group(1)}:{m.group(2)}"), m.group(3)
    except InvalidInput:
        return None


def artifact_type_of(manifest: Manifest) -> str | None:
    """What a manifest is, as the referrers API reports it: artifactType, else config type."""
    if manifest.artifact_type:
        return manifest.artifact_type
    if isinstance(manifest, ImageManifest):
        return manifest.config.media_type
    return None


def describe_manifest(manifest: Manifest, raw: bytes) -> Descriptor:
    """The descriptor a referrers index lists for ``manifest``."""
    return Descriptor(
        manifest.media_type,
        Digest.of(raw),
        len(raw),
        annotations=dict(manifest.annotations),
        artifact_type=artifact_type_of(manifest),
    )


# -- kinds, for messages and filters ------------------------------------------------------------

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


def cosign_artifact_type(suffix: str) -> str:
    """The artifactType cosign gives a tag-layout kind stored as a referrer (``sig`` -> ...)."""
    return f"application/vnd.dev.cosign.artifact.{suffix}.v1+json"


_KINDS = {
    "sig": "signature",
    "att": "attestation",
    "sbom": "sbom",
    cosign_artifact_type("sig"): "signature",
    cosign_artifact_type("att"): "attestation",
    cosign_artifact_type("sbom"): "sbom",
    SIGSTORE_BUNDLE_V03: "sigstore bundle",
}


def describe(att: Attachment) -> str:
    if att.tag:
        return _KINDS.get(att.tag, att.tag)
    at = att.artifact_type or ""
    if at in _KINDS:
        return _KINDS[at]
    if "spdx" in at or "cyclonedx" in at:
        return "sbom"
    return at or "artifact"


# -- the tag layout: one manifest, one layer per entry ------------------------------------------


@dataclass(frozen=True)
class MergedManifest:
    """A tag-layout manifest after appending layers: its bytes and the config blob it needs."""

    raw: bytes
    config: bytes | None = None
    added: int = 0
    layers: tuple[Descriptor, ...] = field(default=())


def _layer_key(desc: Descriptor) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return (str(desc.digest), desc.media_type, tuple(sorted(desc.annotations.items())))


def tag_layout_config(layers: tuple[Descriptor, ...]) -> bytes:
    """The image config cosign writes for a tag-layout manifest: the layers as its rootfs."""
    doc = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [str(layer.digest) for layer in layers]},
        "config": {},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def tag_layout_manifest(layers: tuple[Descriptor, ...]) -> tuple[bytes, bytes]:
    """A new tag-layout manifest holding ``layers``: (manifest bytes, config bytes)."""
    config = tag_layout_config(layers)
    manifest = ImageManifest(
        config=Descriptor.of(mt.OCI_CONFIG, config), layers=layers, media_type=mt.OCI_MANIFEST
    )
    return canonical.dumps(manifest.to_json()), config


def merge_tag_manifests(existing: ImageManifest | None, new: ImageManifest) -> MergedManifest:
    """Append ``new``'s layers that ``existing`` lacks (same blob, type and annotations).

    With nothing to add, ``existing`` stays as it is (``added`` = 0, ``raw`` its
    bytes). Otherwise the result is a new manifest with a regenerated config
    (returned too, so the caller stores it before the manifest).
    """
    if existing is None:
        return MergedManifest(new.to_bytes(), None, len(new.layers), new.layers)
    have = {_layer_key(d) for d in existing.layers}
    extra = tuple(d for d in new.layers if _layer_key(d) not in have)
    if not extra:
        return MergedManifest(existing.to_bytes(), None, 0, existing.layers)
    layers = existing.layers + extra
    raw, config = tag_layout_manifest(layers)
    return MergedManifest(raw, config, len(extra), layers)


def with_subject(att: Attachment, subject: Digest) -> Attachment:
    """The same attachment recorded for another subject digest."""
    return replace(att, subject=subject)
