"""Keyless (Fulcio + Rekor) signatures, checked offline against a trusted root.

A keyless signature comes with a short-lived certificate (Fulcio) naming who
signed (the SAN: an e-mail address or a URI such as a CI workflow) and which
OIDC issuer vouched for them (extension 1.3.6.1.4.1.57264.1.8, or the older
1.3.6.1.4.1.57264.1.1), and with a transparency-log (Rekor) entry proving
when it was made. Checking it means:

1. the certificate chains to a certificate authority of the trusted root that
   was valid then, is for code signing, and names the expected identity and issuer;
2. the log entry's signed entry timestamp (SET) verifies with a log key of the
   trusted root (and its inclusion proof and checkpoint, when present), and its
   body records this signature, this certificate and this payload's hash;
3. the entry's time lies within the certificate's validity (Fulcio
   certificates live ten minutes: an expired certificate needs this proof).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from forklift.errors import InvalidInput, VerificationError
from forklift.oci import canonical
from forklift.sign import keys
from forklift.sign.trustroot import TrustedRoot, decode_b64

OIDC_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OIDC_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
FULCIO_OTHERNAME_SAN = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


@dataclass(frozen=True)
class IdentityPolicy:
    """Who must have signed: certificate identity and OIDC issuer, exact or as regexps."""

    identity: str | None = None
    identity_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def describe(self) -> str:
        who = self.identity or (f"/{self.identity_regexp}/" if self.identity_regexp else "anyone")
        by = self.issuer or (f"/{self.issuer_regexp}/" if self.issuer_regexp else "any issuer")
        return f"{who} ({by})"


@dataclass(frozen=True)
class TlogEntry:
    """A transparency-log entry as a signature carries it."""

    log_index: int
    log_id: bytes
    integrated_time: int
    body: bytes
    signed_entry_timestamp: bytes | None
    inclusion_proof: dict[str, Any] | None = None


@dataclass(frozen=True)
class Signer:
    """What a verified certificate says about who signed, and when the log saw it."""

    identities: tuple[str, ...]
    issuer: str | None
    signed_at: dt.datetime | None


def load_certificate(data: bytes, what: str = "certificate") -> x509.Certificate:
    """A certificate from PEM or DER."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InvalidInput(f"{what}: not a certificate ({exc})") from None


def load_pem_chain(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


def _utc(cert_time: dt.datetime) -> dt.datetime:
    return cert_time if cert_time.tzinfo else cert_time.replace(tzinfo=dt.UTC)


def _der_utf8(value: bytes) -> str:
    """The string in a DER UTF8String (tag 0x0C), or the raw bytes as text (the v1 extension)."""
    if len(value) >= 2 and value[0] == 0x0C:
        length = value[1]
        offset = 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(value[2 : 2 + n], "big")
            offset = 2 + n
        return value[offset : offset + length].decode("utf-8", errors="replace")
    return value.decode("utf-8", errors="replace")


def certificate_identities(cert: x509.Certificate) -> tuple[str, ...]:
    """The SAN values a Fulcio certificate names the signer with (e-mail, URI, username)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    out: list[str] = []
    out += san.get_values_for_type(x509.RFC822Name)
    out += san.get_values_for_type(x509.UniformResourceIdentifier)
    out += san.get_values_for_type(x509.DNSName)
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == FULCIO_OTHERNAME_SAN:
            out.append(_der_utf8(other.value))
    return tuple(out)


def certificate_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer Fulcio recorded in the certificate."""
    for oid in (OIDC_ISSUER_V2, OIDC_ISSUER_V1):
        try:
            ext = cert.extensions.get_extension_for_oid(oid).value
        except x509.ExtensionNotFound:
            continue
        raw = getattr(ext, "value", b"")
        return _der_utf8(raw) if oid == OIDC_ISSUER_V2 else raw.decode("utf-8", errors="replace")
    return None


def check_identity(
    cert: x509.Certificate, policy: IdentityPolicy
) -> tuple[tuple[str, ...], str | None]:
    """Raise unless the certificate names the wanted identity and issuer."""
    identities = certificate_identities(cert)
    issuer = certificate_issuer(cert)
    if policy.identity is not None and policy.identity not in identities:
        raise VerificationError(
            f"certificate identity {', '.join(identities) or '(none)'} is not {policy.identity}"
        )
    if policy.identity_regexp is not None and not any(
        re.fullmatch(policy.identity_regexp, i) for i in identities
    ):
        raise VerificationError(
            f"certificate identity {', '.join(identities) or '(none)'} does not match "
            f"/{policy.identity_regexp}/"
        )
    if policy.issuer is not None and issuer != policy.issuer:
        raise VerificationError(
            f"certificate OIDC issuer {issuer or '(none)'} is not {policy.issuer}"
        )
    if policy.issuer_regexp is not None and not (
        issuer and re.fullmatch(policy.issuer_regexp, issuer)
    ):
        raise VerificationError(
            f"certificate OIDC issuer {issuer or '(none)'} does not match /{policy.issuer_regexp}/"
        )
    return identities, issuer


def check_chain(cert: x509.Certificate, root: TrustedRoot, when: dt.datetime) -> None:
    """Raise unless ``cert`` is a code-signing certificate issued by a trusted CA valid at ``when``."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise VerificationError("the signing certificate is not for code signing")
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise VerificationError("the signing certificate is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    reasons = []
    for ca in root.certificate_authorities:
        if not ca.valid.contains(when):
            reasons.append(f"{ca.uri or 'a CA'} was not valid then")
            continue
        chain = [x509.load_der_x509_certificate(d) for d in ca.chain]
        try:
            current = cert
            for issuer in chain:
                current.verify_directly_issued_by(issuer)
                if not (
                    _utc(issuer.not_valid_before_utc) <= when <= _utc(issuer.not_valid_after_utc)
                ):
                    raise VerificationError(
                        f"CA certificate {issuer.subject.rfc4514_string()} was not valid then"
                    )
                current = issuer
            current.verify_directly_issued_by(current)  # the root signs itself
            return
        except (ValueError, TypeError, VerificationError) as exc:
            reasons.append(str(exc) or type(exc).__name__)
        except Exception as exc:  # cryptography raises InvalidSignature for a bad signature
            reasons.append(type(exc).__name__)
    raise VerificationError(
        "the signing certificate does not chain to a certificate authority of the trusted root"
        + (f" ({'; '.join(reasons[:2])})" if reasons else "")
    )


# -- the transparency log ---------------------------------------------------------------------


def _int(value: Any, what: str) -> int:
    # protobuf JSON writes int64 as strings
    if isinstance(value, bool):
        raise InvalidInput(f"{what}: expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise InvalidInput(f"{what}: expected an integer")


def entry_from_cosign_bundle(raw: str | bytes) -> TlogEntry:
    """The ``dev.sigstore.cosign/bundle`` annotation: ``{"SignedEntryTimestamp", "Payload"}``."""
    doc = canonical.loads(raw.encode() if isinstance(raw, str) else raw, "cosign bundle")
    if not isinstance(doc, dict) or not isinstance(doc.get("Payload"), dict):
        raise InvalidInput("cosign bundle: no Payload")
    p = doc["Payload"]
    log_id = p.get("logID")
    try:
        log_id_bytes = bytes.fromhex(log_id) if isinstance(log_id, str) else b""
    except ValueError:
        raise InvalidInput("cosign bundle: logID is not hex") from None
    return TlogEntry(
        _int(p.get("logIndex"), "cosign bundle: logIndex"),
        log_id_bytes,
        _int(p.get("integratedTime"), "cosign bundle: integratedTime"),
        decode_b64(p.get("body"), "cosign bundle: body"),
        decode_b64(doc.get("SignedEntryTimestamp"), "cosign bundle: SignedEntryTimestamp"),
    )


def entry_from_sigstore_bundle(doc: dict[str, Any]) -> TlogEntry:
    """A ``tlogEntries[]`` item of a Sigstore bundle."""
    promise = doc.get("inclusionPromise")
    set_bytes = (
        decode_b64(promise.get("signedEntryTimestamp"), "inclusionPromise")
        if isinstance(promise, dict)
        else None
    )
    log_id = doc.get("logId")
    proof = doc.get("inclusionProof")
    return TlogEntry(
        _int(doc.get("logIndex"), "tlogEntries.logIndex"),
        decode_b64(log_id.get("keyId") if isinstance(log_id, dict) else None, "tlogEntries.logId"),
        _int(doc.get("integratedTime"), "tlogEntries.integratedTime"),
        decode_b64(doc.get("canonicalizedBody"), "tlogEntries.canonicalizedBody"),
        set_bytes,
        proof if isinstance(proof, dict) else None,
    )


def set_payload(entry: TlogEntry) -> bytes:
    """The bytes a Rekor SET signs: RFC 8785 JSON of body, integratedTime, logID, logIndex."""
    doc = {
        "body": base64.b64encode(entry.body).decode(),
        "integratedTime": entry.integrated_time,
        "logID": entry.log_id.hex(),
        "logIndex": entry.log_index,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def verify_entry(entry: TlogEntry, root: TrustedRoot) -> dt.datetime:
    """Check the entry's SET (and inclusion proof) with the trusted root; its verified time."""
    log = root.tlog(entry.log_id)
    if log is None:
        raise VerificationError(
            f"the transparency-log entry comes from a log the trusted root does not list "
            f"({entry.log_id.hex()[:16]}...)"
        )
    when = dt.datetime.fromtimestamp(entry.integrated_time, dt.UTC)
    if not log.valid.contains(when):
        raise VerificationError("the transparency log's key was not valid at the entry's time")
    key = serialization.load_der_public_key(log.public_key_der)
    if entry.signed_entry_timestamp is None:
        raise VerificationError("the transparency-log entry has no signed entry timestamp")
    if not keys.verify(key, entry.signed_entry_timestamp, set_payload(entry)):  # type: ignore[arg-type]
        raise VerificationError(
            "the transparency-log entry's signed entry timestamp does not verify"
        )
    if entry.inclusion_proof is not None:
        _verify_inclusion(entry, key)
    return when


def _verify_inclusion(entry: TlogEntry, key: Any) -> None:
    proof = entry.inclusion_proof or {}
    index = _int(proof.get("logIndex"), "inclusionProof.logIndex")
    size = _int(proof.get("treeSize"), "inclusionProof.treeSize")
    root_hash = decode_b64(proof.get("rootHash"), "inclusionProof.rootHash")
    hashes = [decode_b64(h, "inclusionProof.hashes") for h in proof.get("hashes") or []]
    leaf = hashlib.sha256(b"\x00" + entry.body).digest()
    if not merkle_root_matches(leaf, index, size, hashes, root_hash):
        raise VerificationError(
            "the transparency-log inclusion proof does not lead to its root hash"
        )
    checkpoint = proof.get("checkpoint")
    envelope = checkpoint.get("envelope") if isinstance(checkpoint, dict) else None
    if isinstance(envelope, str) and envelope:
        _verify_checkpoint(envelope, key, size, root_hash)


def merkle_root_matches(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does the audit path lead from ``leaf`` to ``root``?"""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def _verify_checkpoint(envelope: str, key: Any, size: int, root_hash: bytes) -> None:
    """A signed note: body lines (origin, size, root hash), a blank line, signature lines."""
    body, sep, sigs = envelope.partition("\n\n")
    if not sep:
        raise VerificationError("the transparency-log checkpoint is not a signed note")
    lines = body.split("\n")
    if len(lines) < 3 or lines[1] != str(size) or decode_b64(lines[2], "checkpoint") != root_hash:
        raise VerificationError(
            "the transparency-log checkpoint is for another tree than the proof"
        )
    signed = (body + "\n").encode()
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or not parts[0].startswith("\u2014"):
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            continue
        if len(blob) > 4 and keys.verify(key, blob[4:], signed):
            return
    raise VerificationError("the transparency-log checkpoint's signature does not verify")


def check_body(
    entry: TlogEntry,
    *,
    signature: bytes,
    signed_hash: bytes | None = None,
    certificate: x509.Certificate | None = None,
    public_key_pem: bytes | None = None,
) -> None:
    """Raise unless the log entry records this signature over this content by this signer.

    ``signed_hash`` is SHA-256 of the signed bytes (the payload, or for DSSE the
    envelope's payload). Entry kinds: ``hashedrekord``, ``dsse`` and ``intoto``.
    """
    doc = canonical.loads(entry.body, "transparency-log entry body")
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        raise VerificationError("the transparency-log entry body has no spec")
    kind, spec = doc.get("kind"), doc["spec"]
    signer_pem = (
        certificate.public_bytes(serialization.Encoding.PEM)
        if certificate is not None
        else public_key_pem
    )
    recorded_hashes: list[str] = []
    recorded_sigs: list[bytes] = []
    recorded_signers: list[bytes] = []
    if kind == "hashedrekord":
        recorded_hashes.append(str(_dig(spec, "data", "hash", "value")))
        sig = _dig(spec, "signature")
        recorded_sigs.append(decode_b64(_dig(sig, "content"), "hashedrekord signature"))
        recorded_signers.append(decode_b64(_dig(sig, "publicKey", "content"), "hashedrekord key"))
    elif kind == "dsse":
        recorded_hashes.append(str(_dig(spec, "payloadHash", "value")))
        for s in _dig(spec, "signatures") or []:
            recorded_sigs.append(decode_b64(_dig(s, "signature"), "dsse signature"))
            recorded_signers.append(decode_b64(_dig(s, "verifier"), "dsse verifier"))
    elif kind == "intoto":
        content = _dig(spec, "content")
        recorded_hashes.append(str(_dig(content, "payloadHash", "value")))
        for s in _dig(content, "envelope", "signatures") or []:
            raw = decode_b64(_dig(s, "sig"), "intoto signature")
            recorded_sigs.append(raw)
            try:  # intoto 0.0.2 base64-encodes the signature twice
                recorded_sigs.append(base64.b64decode(raw, validate=True))
            except binascii.Error:
                pass
            pk = _dig(s, "publicKey")
            if pk:
                recorded_signers.append(decode_b64(pk, "intoto public key"))
    else:
        raise VerificationError(f"unsupported transparency-log entry kind {kind!r}")
    if signed_hash is not None and signed_hash.hex() not in recorded_hashes:
        raise VerificationError(
            "the transparency-log entry is for other content than this signature"
        )
    if signature not in recorded_sigs:
        raise VerificationError("the transparency-log entry records another signature")
    if (
        signer_pem is not None
        and recorded_signers
        and not any(_same_pem(signer_pem, r) for r in recorded_signers)
    ):
        raise VerificationError("the transparency-log entry records another signer")


def _same_pem(a: bytes, b: bytes) -> bool:
    def norm(x: bytes) -> bytes:
        return b"".join(line.strip() for line in x.strip().splitlines())

    return norm(a) == norm(b)


def _dig(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            raise VerificationError(f"the transparency-log entry body has no {'.'.join(path)}")
        doc = doc[key]
    return doc


def verify_keyless(
    *,
    certificate: x509.Certificate,
    signature: bytes,
    signed: bytes,
    signed_hash: bytes,
    entries: list[TlogEntry],
    root: TrustedRoot,
    identity: IdentityPolicy,
) -> Signer:
    """Verify a certificate-based signature of ``signed`` completely (see the module doc)."""
    if not keys.verify(certificate.public_key(), signature, signed):  # type: ignore[arg-type]
        raise VerificationError("the signature does not verify with the certificate's key")
    identities, issuer = check_identity(certificate, identity)
    when: dt.datetime | None = None
    errors: list[str] = []
    for entry in entries:
        try:
            t = verify_entry(entry, root)
            check_body(entry, signature=signature, signed_hash=signed_hash, certificate=certificate)
        except VerificationError as exc:
            errors.append(exc.message)
            continue
        when = t
        break
    not_before = _utc(certificate.not_valid_before_utc)
    not_after = _utc(certificate.not_valid_after_utc)
    if when is None:
        now = dt.datetime.now(dt.UTC)
        if errors:
            raise VerificationError(errors[0])
        if now > not_after:
            raise VerificationError(
                f"the certificate expired at {not_after:%Y-%m-%dT%H:%M:%SZ} and no valid "
                "transparency-log timestamp shows the signature was made before"
            )
        raise VerificationError(
            "a keyless signature needs a transparency-log entry (none came with it)"
        )
    if not (not_before <= when <= not_after):
        raise VerificationError(
            f"the certificate was not valid when the log recorded the signature "
            f"({when:%Y-%m-%dT%H:%M:%SZ}; valid {not_before:%Y-%m-%dT%H:%M:%SZ} to "
            f"{not_after:%Y-%m-%dT%H:%M:%SZ})"
        )
    check_chain(certificate, root, when)
    return Signer(identities, issuer, when)
