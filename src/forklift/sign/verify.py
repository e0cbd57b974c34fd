"""``forklift verify`` and ``verify-attestation``: find every signature of an image and check it.

Signatures are looked for in every layout (cosign's ``.sig`` tag, referrers
with cosign's signature artifact type, Sigstore bundles as referrers). Each is
checked over its exact payload with the given keys, or, keyless, against a
trusted root (:mod:`.keyless`); then the payload must name the image's digest,
the expected identity and the ``-a`` annotations. An image passes when at
least one signature passes; otherwise the error gives the reason of the most
promising failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import ForkliftError, InvalidInput, VerificationError
from forklift.oci import canonical
from forklift.oci.referrers import SIGSTORE_BUNDLE_V03, Attachment
from forklift.reference import parse_reference
from forklift.sign import dsse, keys, layout, payload
from forklift.sign.targets import Target

# how promising a failure is, for choosing the one reason to report
_RANK = {"digest": 3, "identity": 3, "annotation": 3, "keyless": 2, "signature": 1, "format": 0}


@dataclass(frozen=True)
class VerifyOptions:
    """What a signature must satisfy.

    ``keys``: any of these public keys. Without keys, ``trusted_root`` (keyless:
    Fulcio certificate + Rekor entry) with ``certificate`` naming the signer.
    ``identity``: the exact docker-reference the payload must name (default: a
    reference in the image's repository). ``annotations``: ``optional`` entries
    the payload must carry.
    """

    keys: tuple[keys.PublicKey, ...] = ()
    trusted_root: Any = None  # forklift.sign.trustroot.TrustedRoot
    certificate: Any = None  # forklift.sign.keyless.IdentityPolicy
    identity: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    #: accept a payload naming another repository (only the digest is checked)
    any_repository: bool = False
    #: a policy's identity rule instead of the above: the payload's docker-reference in,
    #: None (accepted) or the reason out
    identity_check: Callable[[str], str | None] | None = None

    def describe(self) -> str:
        if self.keys:
            return f"{len(self.keys)} key(s)" if len(self.keys) > 1 else "the key"
        if self.certificate is not None:
            return self.certificate.describe()
        return "nothing"


@dataclass(frozen=True)
class Verified:
    """A signature (or attestation) that passed every check."""

    layout: str  # "tag" | "referrer" | "bundle"
    manifest: str
    payload: bytes  # the signed payload (simple signing) or the in-toto statement
    identity: str | None  # the docker-reference it names (None for bundles)
    signer: str  # "key <id>" or the certificate identity
    issuer: str | None = None
    predicate_type: str | None = None

    def payload_json(self) -> Any:
        return canonical.loads(self.payload, "payload")


class _Failed(Exception):
    def __init__(self, rank: str, message: str) -> None:
        super().__init__(message)
        self.rank = rank
        self.message = message


def _check_options(options: VerifyOptions) -> None:
    if not options.keys and options.trusted_root is None:
        raise InvalidInput("nothing to verify with: give --key, or --trusted-root for keyless")
    if not options.keys and options.certificate is None:
        raise InvalidInput(
            "keyless verification needs --certificate-identity (or -regexp) and "
            "--certificate-oidc-issuer (or -regexp)"
        )


def _signed_by_key(options: VerifyOptions, signature: bytes, signed: bytes) -> str:
    for key in options.keys:
        if keys.verify(key, signature, signed):
            return f"key {keys.key_id(key)[:16]}"
    raise _Failed("signature", "the signature does not verify with the given key")


def _keyless(
    options: VerifyOptions,
    cert_pem: bytes,
    signature: bytes,
    signed: bytes,
    signed_hash: bytes,
    entries: list[Any],
) -> tuple[str, str | None]:
    from forklift.sign import keyless

    try:
        cert = keyless.load_certificate(cert_pem)
        signer = keyless.verify_keyless(
            certificate=cert,
            signature=signature,
            signed=signed,
            signed_hash=signed_hash,
            entries=entries,
            root=options.trusted_root,
            identity=options.certificate,
        )
    except ForkliftError as exc:
        raise _Failed("keyless", exc.message) from None
    return (signer.identities[0] if signer.identities else "certificate"), signer.issuer


def _check_identity(options: VerifyOptions, target: Target, named: str) -> None:
    if options.identity_check is not None:
        reason = options.identity_check(named)
        if reason is not None:
            raise _Failed("identity", reason)
        return
    if options.identity is not None:
        if _norm(named) != _norm(options.identity):
            raise _Failed("identity", f"the signature is for {named}, not for {options.identity}")
        return
    if options.any_repository or target.repository_identity is None:
        return
    try:
        repo = parse_reference(_legacy(named)).name
    except InvalidInput:
        raise _Failed(
            "identity", f"the signature names {named!r}, not an image reference"
        ) from None
    if repo != target.repository_identity:
        raise _Failed(
            "identity", f"the signature is for {repo}, not for {target.repository_identity}"
        )


def _legacy(name: str) -> str:
    # cosign spells Docker Hub index.docker.io
    return (
        "docker.io/" + name[len("index.docker.io/") :]
        if name.startswith("index.docker.io/")
        else name
    )


def _norm(name: str) -> str:
    try:
        return str(parse_reference(_legacy(name), default_tag=False))
    except (InvalidInput, TypeError):
        return name


def _check_annotations(options: VerifyOptions, optional: dict[str, Any]) -> None:
    for k, v in options.annotations.items():
        got = optional.get(k)
        if got is None or str(got) != v:
            raise _Failed(
                "annotation",
                f"the signature's annotation {k} is {got!r}, not {v!r}"
                if got is not None
                else f"the signature has no annotation {k}",
            )


def _simple(target: Target, options: VerifyOptions, entry: layout.Entry) -> Verified:
    body = target.read_blob(entry.blob)
    signature = entry.signature
    if signature is None:
        raise _Failed("format", f"layer {entry.blob.digest} has no {layout.SIGNATURE} annotation")
    issuer = None
    if options.keys:
        signer = _signed_by_key(options, signature, body)
    else:
        cert = entry.annotations.get(layout.CERTIFICATE)
        if not cert:
            raise _Failed("signature", "the signature has no certificate (keyless needs one)")
        from forklift.sign import keyless

        tlog = []
        if entry.annotations.get(layout.BUNDLE):
            try:
                tlog.append(keyless.entry_from_cosign_bundle(entry.annotations[layout.BUNDLE]))
            except ForkliftError as exc:
                raise _Failed("keyless", exc.message) from None
        signer, issuer = _keyless(
            options, cert.encode(), signature, body, hashlib.sha256(body).digest(), tlog
        )
    try:
        parsed = payload.parse(body)
    except ForkliftError as exc:
        raise _Failed("format", exc.message) from None
    if parsed.type not in (payload.COSIGN_TYPE, payload.ATOMIC_TYPE):
        raise _Failed("format", f"the payload's type is {parsed.type!r}")
    if parsed.manifest_digest != target.digest:
        raise _Failed(
            "digest",
            f"the signature is for another image ({parsed.manifest_digest}), "
            f"not for {target.digest}",
        )
    _check_identity(options, target, parsed.docker_reference)
    _check_annotations(options, parsed.optional)
    return Verified(
        entry.layout, str(entry.manifest), body, parsed.docker_reference, signer, issuer
    )


def _envelope_and_material(
    target: Target, entry: layout.Entry
) -> tuple[dsse.Envelope, bytes | None, list[Any]]:
    """The DSSE envelope of an entry, its certificate (PEM or DER) and log entries."""
    blob = target.read_blob(entry.blob)
    if entry.kind == "dsse":
        env = dsse.parse_envelope(blob)
        cert = entry.annotations.get(layout.CERTIFICATE)
        tlog = []
        if entry.annotations.get(layout.BUNDLE):
            from forklift.sign import keyless

            tlog.append(keyless.entry_from_cosign_bundle(entry.annotations[layout.BUNDLE]))
        return env, cert.encode() if cert else None, tlog
    doc = canonical.loads(blob, "Sigstore bundle")
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(
        "application/vnd.dev.sigstore.bundle"
    ):
        raise _Failed("format", "not a Sigstore bundle")
    if "dsseEnvelope" not in doc:
        raise _Failed("format", "a message-signature bundle signs a blob, not an image")
    env = dsse.parse_envelope(doc["dsseEnvelope"], "bundle dsseEnvelope")
    vm = doc.get("verificationMaterial") or {}
    cert_der = None
    if isinstance(vm.get("certificate"), dict):
        cert_der = _raw(vm["certificate"].get("rawBytes"))
    elif isinstance(vm.get("x509CertificateChain"), dict):
        certs = vm["x509CertificateChain"].get("certificates") or []
        if certs and isinstance(certs[0], dict):
            cert_der = _raw(certs[0].get("rawBytes"))
    tlog = []
    if vm.get("tlogEntries"):
        from forklift.sign import keyless

        tlog = [
            keyless.entry_from_sigstore_bundle(e) for e in vm["tlogEntries"] if isinstance(e, dict)
        ]
    return env, cert_der, tlog


def _raw(value: Any) -> bytes:
    import base64

    if not isinstance(value, str):
        raise _Failed("format", "the bundle's certificate is not base64")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise _Failed("format", "the bundle's certificate is not base64") from None


def _statement_entry(
    target: Target, options: VerifyOptions, entry: layout.Entry, want_predicate: str | None
) -> Verified:
    try:
        env, cert, tlog = _envelope_and_material(target, entry)
    except ForkliftError as exc:
        raise _Failed("format", exc.message) from None
    if env.payload_type != dsse.INTOTO_PAYLOAD_TYPE:
        raise _Failed(
            "format", f"the envelope holds {env.payload_type!r}, not an in-toto statement"
        )
    signed = dsse.pae(env.payload_type, env.payload)
    issuer = None
    signer = ""
    failure: _Failed | None = None
    for _, signature in env.signatures:
        try:
            if options.keys:
                signer = _signed_by_key(options, signature, signed)
            else:
                if cert is None:
                    raise _Failed(
                        "signature", "the attestation has no certificate (keyless needs one)"
                    )
                signer, issuer = _keyless(
                    options, cert, signature, signed, hashlib.sha256(env.payload).digest(), tlog
                )
            failure = None
            break
        except _Failed as exc:
            failure = exc
    if failure is not None:
        raise failure
    try:
        statement = dsse.parse_statement(env.payload)
    except ForkliftError as exc:
        raise _Failed("format", exc.message) from None
    if not statement.names_digest(target.digest):
        names = ", ".join(
            f"{alg}:{hexd}" for _, d, _ in statement.subjects for alg, hexd in d.items()
        )
        raise _Failed(
            "digest", f"the statement is about another image ({names}), not {target.digest}"
        )
    if want_predicate is not None and statement.predicate_type != want_predicate:
        raise _Failed(
            "format", f"the predicate is {statement.predicate_type}, not {want_predicate}"
        )
    if (
        options.identity is not None or options.identity_check is not None
    ) and want_predicate == dsse.COSIGN_SIGN_PREDICATE:
        raise _Failed("identity", "a Sigstore bundle signature names no image reference to match")
    _check_annotations(options, statement.annotations_for(target.digest))
    layout_name = "bundle" if entry.kind == "bundle" else entry.layout
    return Verified(
        layout_name,
        str(entry.manifest),
        env.payload,
        None,
        signer,
        issuer,
        statement.predicate_type,
    )


def _entries(target: Target, attachments: Iterable[Attachment]) -> list[layout.Entry]:
    out: list[layout.Entry] = []
    for att in attachments:
        try:
            manifest, _ = target.manifest(att.digest)
        except ForkliftError:
            continue
        out.extend(layout.entries_in(manifest, att.digest, "tag" if att.tag else "referrer"))
    return out


def _is_signature(att: Attachment) -> bool:
    if att.tag is not None:
        return att.tag == "sig"
    if att.artifact_type == layout.SIG_ARTIFACT:
        return True
    if att.artifact_type == SIGSTORE_BUNDLE_V03:
        predicate = att.descriptor.annotations.get(layout.BUNDLE_PREDICATE)
        return predicate in (None, dsse.COSIGN_SIGN_PREDICATE)
    return False


def _is_attestation(att: Attachment) -> bool:
    if att.tag is not None:
        return att.tag == "att"
    if att.artifact_type == layout.ATT_ARTIFACT:
        return True
    if att.artifact_type == SIGSTORE_BUNDLE_V03:
        predicate = att.descriptor.annotations.get(layout.BUNDLE_PREDICATE)
        return predicate != dsse.COSIGN_SIGN_PREDICATE
    return False


def _decide(
    target: Target, passed: list[Verified], failures: list[_Failed], what: str
) -> list[Verified]:
    if passed:
        # the same signature stored in two layouts (tag and referrer) is one signature
        unique: dict[tuple[bytes, str], Verified] = {}
        for v in passed:
            unique.setdefault((v.payload, v.signer), v)
        return list(unique.values())
    where = str(target.reference.name if target.reference else target.digest)
    if not failures:
        raise VerificationError(f"no {what}s found for {where}@{target.digest}")
    best = max(failures, key=lambda f: _RANK.get(f.rank, 0))
    more = f" ({len(failures)} {what}s checked)" if len(failures) > 1 else ""
    raise VerificationError(f"no {what} of {where}@{target.digest} verifies: {best.message}{more}")


def verify_image(target: Target, options: VerifyOptions) -> list[Verified]:
    """Every signature of ``target`` that passes; raises VerificationError if none does."""
    _check_options(options)
    attachments = [a for a in target.attachments(tags=("sig",)) if _is_signature(a)]
    passed: list[Verified] = []
    failures: list[_Failed] = []
    for entry in _entries(target, attachments):
        try:
            if entry.kind == "simplesigning":
                passed.append(_simple(target, options, entry))
            elif entry.kind == "bundle":
                passed.append(_statement_entry(target, options, entry, dsse.COSIGN_SIGN_PREDICATE))
        except _Failed as exc:
            failures.append(exc)
        except ForkliftError as exc:
            failures.append(_Failed("format", exc.message))
    return _decide(target, passed, failures, "signature")


def verify_attestations(
    target: Target, options: VerifyOptions, predicate_type: str | None = None
) -> list[Verified]:
    """Every attestation of ``target`` (of ``predicate_type``, if given) that passes."""
    _check_options(options)
    attachments = [a for a in target.attachments(tags=("att",)) if _is_attestation(a)]
    passed: list[Verified] = []
    failures: list[_Failed] = []
    for entry in _entries(target, attachments):
        if entry.kind not in ("dsse", "bundle"):
            continue
        try:
            passed.append(_statement_entry(target, options, entry, predicate_type))
        except _Failed as exc:
            failures.append(exc)
        except ForkliftError as exc:
            failures.append(_Failed("format", exc.message))
    return _decide(target, passed, failures, "attestation")
