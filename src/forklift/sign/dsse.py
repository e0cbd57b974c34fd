"""DSSE envelopes and in-toto statements (what attestations and cosign v3 signatures are).

A DSSE signature covers the pre-authentication encoding
``PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body``; the
envelope is ``{"payloadType", "payload" (base64), "signatures": [{"keyid", "sig"}]}``.
The statement inside is in-toto v1: ``_type``, ``subject`` (name + digest
map), ``predicateType``, ``predicate``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.oci.digest import Digest

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
#: the predicate of cosign v3's image signatures (a statement about the image digest)
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

#: cosign's --type shorthands
PREDICATE_TYPES = {
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
    "custom": "https://cosign.sigstore.dev/attestation/v1",
    "link": "https://in-toto.io/Link/v1",
}


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: the bytes a DSSE signature covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (keyid, signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": [
                {"keyid": k, "sig": base64.b64encode(s).decode()} for k, s in self.signatures
            ],
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        try:  # URL-safe alphabet, as some DSSE writers use
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{what}: not valid base64") from None


def parse_envelope(doc: Any, what: str = "DSSE envelope") -> Envelope:
    """An envelope from its JSON object (bytes are parsed first)."""
    if isinstance(doc, bytes | bytearray):
        doc = canonical.loads(bytes(doc), what)
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what}: expected an object")
    payload_type = doc.get("payloadType")
    if not isinstance(payload_type, str):
        raise InvalidInput(f"{what}: payloadType missing")
    sigs = doc.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise InvalidInput(f"{what}: no signatures")
    out = []
    for i, s in enumerate(sigs):
        if not isinstance(s, dict):
            raise InvalidInput(f"{what}: signatures[{i}] is not an object")
        keyid = s.get("keyid") or ""
        out.append((keyid if isinstance(keyid, str) else "", _b64(s.get("sig"), f"{what}: sig")))
    return Envelope(payload_type, _b64(doc.get("payload"), f"{what}: payload"), tuple(out))


@dataclass(frozen=True)
class Statement:
    """An in-toto statement: what it is about (digests), the predicate type and predicate."""

    type: str
    subjects: tuple[tuple[str, dict[str, str], dict[str, Any]], ...]  # name, digests, annotations
    predicate_type: str
    predicate: Any
    raw: bytes

    def names_digest(self, digest: Digest) -> bool:
        """True if a subject carries ``digest`` (same algorithm, same hex)."""
        return any(d.get(digest.algorithm) == digest.hex for _, d, _ in self.subjects)

    def annotations_for(self, digest: Digest) -> dict[str, Any]:
        for _, d, ann in self.subjects:
            if d.get(digest.algorithm) == digest.hex:
                return ann
        return {}


def parse_statement(raw: bytes, what: str = "in-toto statement") -> Statement:
    doc = canonical.loads(raw, what)
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what}: expected an object")
    kind = doc.get("_type")
    if kind not in (STATEMENT_V1, STATEMENT_V01):
        raise InvalidInput(f"{what}: _type is {kind!r}, not an in-toto statement")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise InvalidInput(f"{what}: no subject")
    parsed: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    for i, s in enumerate(subjects):
        if not isinstance(s, dict) or not isinstance(s.get("digest"), dict):
            raise InvalidInput(f"{what}: subject[{i}] has no digest")
        digests = {
            k: v for k, v in s["digest"].items() if isinstance(k, str) and isinstance(v, str)
        }
        raw_ann = s.get("annotations")
        ann: dict[str, Any] = dict(raw_ann) if isinstance(raw_ann, dict) else {}
        raw_name = s.get("name")
        name: str = raw_name if isinstance(raw_name, str) else ""
        parsed.append((name, digests, ann))
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str):
        raise InvalidInput(f"{what}: predicateType missing")
    return Statement(kind, tuple(parsed), predicate_type, doc.get("predicate"), bytes(raw))


def statement(
    subject_name: str,
    digest: Digest,
    predicate_type: str,
    predicate: Any,
    annotations: dict[str, Any] | None = None,
) -> bytes:
    """An in-toto v1 statement about one subject."""
    subject: dict[str, Any] = {"name": subject_name, "digest": {digest.algorithm: digest.hex}}
    if annotations:
        subject["annotations"] = dict(annotations)
    doc = {
        "_type": STATEMENT_V1,
        "subject": [subject],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def predicate_type(name: str) -> str:
    """cosign's ``--type`` names (``slsaprovenance``...) to URIs; a URI stays as it is."""
    if name in PREDICATE_TYPES:
        return PREDICATE_TYPES[name]
    if "://" in name:
        return name
    raise InvalidInput(
        f"unknown predicate type {name!r}: use one of {', '.join(sorted(PREDICATE_TYPES))} or a URI"
    )
