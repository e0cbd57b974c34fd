"""Where signatures and attestations sit in manifests, in each of cosign's layouts.

* Tag layout (``sha256-<hex>.sig`` / ``.att``): an OCI manifest, one layer per
  signature. A signature layer is the simple-signing payload
  (``application/vnd.dev.cosign.simplesigning.v1+json``) with annotations
  ``dev.cosignproject.cosign/signature`` (base64), and for keyless signatures
  ``dev.sigstore.cosign/certificate``, ``/chain`` and ``/bundle`` (the Rekor
  entry). An attestation layer is a DSSE envelope
  (``application/vnd.dsse.envelope.v1+json``, annotation ``predicateType``).
* Referrers: the same manifests with a ``subject`` and an ``artifactType``
  (cosign's ``application/vnd.dev.cosign.artifact.sig.v1+json``), or a
  Sigstore bundle v0.3 (``application/vnd.dev.sigstore.bundle.v0.3+json``: one
  layer holding the bundle, empty config), which is what cosign v3 writes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest, Manifest
from forklift.oci.referrers import (
    DSSE_ENVELOPE,
    SIGSTORE_BUNDLE_V03,
    SIMPLESIGNING,
    cosign_artifact_type,
    tag_layout_config,
)

SIGNATURE = "dev.cosignproject.cosign/signature"
CERTIFICATE = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"
BUNDLE = "dev.sigstore.cosign/bundle"
PREDICATE_TYPE = "predicateType"
BUNDLE_CONTENT = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE = "dev.sigstore.bundle.predicateType"
EMPTY_CONFIG = b"{}"
SIG_ARTIFACT = cosign_artifact_type("sig")
ATT_ARTIFACT = cosign_artifact_type("att")


@dataclass(frozen=True)
class Entry:
    """One signature or attestation found in a manifest, still to be verified.

    ``blob`` is the signed content's descriptor (a simple-signing payload, a DSSE
    envelope, or a Sigstore bundle, by ``kind``); the annotations carry the
    signature and, for keyless ones, certificate, chain and log entry.
    """

    kind: str  # "simplesigning" | "dsse" | "bundle"
    blob: Descriptor
    manifest: Digest
    layout: str  # "tag" | "referrer"
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def signature(self) -> bytes | None:
        value = self.annotations.get(SIGNATURE)
        if not value:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return None


def entries_in(manifest: Manifest, digest: Digest, layout: str) -> list[Entry]:
    """Every signature / attestation / bundle a manifest holds."""
    if not isinstance(manifest, ImageManifest):
        return []
    out = []
    bundle_manifest = manifest.artifact_type == SIGSTORE_BUNDLE_V03
    for layer in manifest.layers:
        media = layer.media_type
        if media == SIMPLESIGNING:
            kind = "simplesigning"
        elif media == DSSE_ENVELOPE:
            kind = "dsse"
        elif media.startswith("application/vnd.dev.sigstore.bundle") or bundle_manifest:
            kind = "bundle"
        else:
            continue
        out.append(Entry(kind, layer, digest, layout, dict(layer.annotations)))
    return out


def signature_layer(
    payload: bytes,
    signature: bytes,
    *,
    media_type: str = SIMPLESIGNING,
    certificate: bytes | None = None,
    chain: bytes | None = None,
    bundle: str | None = None,
    extra: dict[str, str] | None = None,
) -> Descriptor:
    """The layer descriptor of one signature (``payload`` is its blob)."""
    annotations = {SIGNATURE: base64.b64encode(signature).decode() if signature else ""}
    if certificate:
        annotations[CERTIFICATE] = certificate.decode()
    if chain:
        annotations[CHAIN] = chain.decode()
    if bundle:
        annotations[BUNDLE] = bundle
    annotations.update(extra or {})
    return Descriptor.of(media_type, payload, annotations=annotations)


@dataclass(frozen=True)
class Built:
    """A manifest to store and the blobs it needs (config and layers)."""

    raw: bytes
    blobs: tuple[bytes, ...]


def tag_manifest(layers: tuple[Descriptor, ...], blobs: tuple[bytes, ...]) -> Built:
    """A tag-layout manifest (what goes under ``sha256-<hex>.sig``)."""
    config = tag_layout_config(layers)
    manifest = ImageManifest(
        config=Descriptor.of(mt.OCI_CONFIG, config), layers=layers, media_type=mt.OCI_MANIFEST
    )
    return Built(canonical.dumps(manifest.to_json()), (config, *blobs))


def referrer_manifest(
    subject: Descriptor,
    artifact_type: str,
    layers: tuple[Descriptor, ...],
    blobs: tuple[bytes, ...],
    *,
    annotations: dict[str, str] | None = None,
    cosign_config: bool = False,
) -> Built:
    """A manifest whose ``subject`` is the image (an OCI 1.1 referrer).

    ``cosign_config`` writes the config as cosign's OCI 1.1 signature mode does
    (the tag-layout config, typed with the artifact type); otherwise the empty
    descriptor the image spec recommends for artifacts.
    """
    if cosign_config:
        config_bytes = tag_layout_config(layers)
        config = Descriptor.of(artifact_type, config_bytes)
    else:
        config_bytes = EMPTY_CONFIG
        config = Descriptor.of(mt.OCI_EMPTY, config_bytes)
    plain_subject = Descriptor(subject.media_type, subject.digest, subject.size)
    manifest = ImageManifest(
        config=config,
        layers=layers,
        media_type=mt.OCI_MANIFEST,
        subject=plain_subject,
        annotations=dict(annotations or {}),
        artifact_type=artifact_type,
    )
    return Built(canonical.dumps(manifest.to_json()), (config_bytes, *blobs))


def bundle_layer(bundle: bytes) -> Descriptor:
    digest = Digest.of(bundle)
    return Descriptor.of(
        SIGSTORE_BUNDLE_V03,
        bundle,
        annotations={"org.opencontainers.image.title": f"sha256-{digest.hex}.sigstore.json"},
    )


def cosign_bundle_annotation(
    set_b64: str, body_b64: str, integrated_time: int, log_index: int, log_id_hex: str
) -> str:
    """The ``dev.sigstore.cosign/bundle`` annotation for a Rekor entry."""
    return json.dumps(
        {
            "SignedEntryTimestamp": set_b64,
            "Payload": {
                "body": body_b64,
                "integratedTime": integrated_time,
                "logIndex": log_index,
                "logID": log_id_hex,
            },
        },
        separators=(",", ":"),
    )
