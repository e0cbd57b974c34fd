"""``forklift sign`` and ``forklift attest``: make a signature or attestation and store it.

A signature is over the simple-signing payload naming the image's digest; it
goes under cosign's ``sha256-<hex>.sig`` tag (appended to the signatures
already there) and, with ``referrers``, also as an OCI 1.1 referrer. An
attestation is an in-toto v1 statement in a DSSE envelope, under ``.att`` and
as a referrer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forklift.errors import UsageError
from forklift.oci.digest import Digest
from forklift.oci.referrers import Attachment
from forklift.sign import dsse, keys, layout, payload
from forklift.sign.targets import Target


@dataclass(frozen=True)
class SignResult:
    """What was signed and where the signature went."""

    digest: Digest
    identity: str
    payload: bytes
    stored: tuple[Attachment, ...]


def _identity(target: Target) -> str:
    """The docker-reference a signature names: the reference as given (tag included)."""
    ref = target.reference
    if ref is None:
        raise UsageError(
            f"{target.digest} has no name to sign it for; give the image by name "
            "(REGISTRY/REPOSITORY[:TAG])"
        )
    if ref.digest is not None:
        return ref.name
    return str(ref)


def _check_layouts(tag_layout: bool, referrers: bool) -> None:
    if not tag_layout and not referrers:
        raise UsageError("nothing to store the signature in: keep the tag layout or add referrers")


def sign_image(
    target: Target,
    key: keys.PrivateKey,
    *,
    annotations: dict[str, str] | None = None,
    tag_layout: bool = True,
    referrers: bool = False,
    identity: str | None = None,
) -> SignResult:
    """Sign ``target``'s digest with ``key`` and store the signature next to the image."""
    _check_layouts(tag_layout, referrers)
    who = identity or _identity(target)
    body = payload.build(who, target.digest, dict(annotations or {}) or None)
    signature = keys.sign(key, body)
    layer = layout.signature_layer(body, signature)
    stored = []
    if tag_layout:
        built = layout.tag_manifest((layer,), (body,))
        stored.append(target.attach(built.raw, built.blobs, "sig"))
    if referrers:
        built = layout.referrer_manifest(
            target.descriptor, layout.SIG_ARTIFACT, (layer,), (body,), cosign_config=True
        )
        stored.append(target.attach(built.raw, built.blobs, None))
    return SignResult(target.digest, who, body, tuple(stored))


def attest_image(
    target: Target,
    key: keys.PrivateKey,
    predicate: Any,
    predicate_type: str,
    *,
    tag_layout: bool = True,
    referrers: bool = True,
) -> SignResult:
    """Attest ``predicate`` about ``target`` (in-toto v1 statement in a DSSE envelope)."""
    _check_layouts(tag_layout, referrers)
    name = target.repository_identity or str(target.digest)
    statement = dsse.statement(name, target.digest, predicate_type, predicate)
    signature = keys.sign(key, dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, statement))
    envelope = dsse.Envelope(dsse.INTOTO_PAYLOAD_TYPE, statement, (("", signature),)).to_bytes()
    # the signature is inside the envelope; cosign still writes the (empty) annotation
    layer = layout.signature_layer(
        envelope,
        b"",
        media_type=layout.DSSE_ENVELOPE,
        extra={layout.PREDICATE_TYPE: predicate_type},
    )
    stored = []
    if tag_layout:
        built = layout.tag_manifest((layer,), (envelope,))
        stored.append(target.attach(built.raw, built.blobs, "att"))
    if referrers:
        built = layout.referrer_manifest(
            target.descriptor,
            layout.ATT_ARTIFACT,
            (layer,),
            (envelope,),
            annotations={layout.BUNDLE_PREDICATE: predicate_type},
            cosign_config=True,
        )
        stored.append(target.attach(built.raw, built.blobs, None))
    return SignResult(target.digest, name, statement, tuple(stored))
