"""Keyless signatures against a trusted root made in the test (tests.sign.fulcio).

A good signature verifies; a wrong identity, a wrong issuer, an expired
certificate without a valid timestamp and a tampered log entry are each
refused with their own message. Both cosign's annotation layout and a Sigstore
bundle v0.3 (cosign v3's DSSE image signature, with an inclusion proof) are checked.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from forklift.oci.digest import Digest
from forklift.store.store import Store
from tests.helpers import assert_no_traceback, run_cli

from .fulcio import Sigstore
from .images import OCI_MANIFEST, Doc, add_image, desc, put

NAME = "reg.example.com/keyless/app:1"
IDENTITY = "dev@example.com"
ISSUER = "https://issuer.example"


@pytest.fixture(scope="module")
def sigstore() -> Sigstore:
    return Sigstore.create()


@pytest.fixture
def root_file(sigstore: Sigstore, tmp_path: Path) -> Path:
    path = tmp_path / "trusted_root.json"
    path.write_bytes(sigstore.trusted_root())
    return path


def _payload(digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": NAME},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def _attach_sig(store: Store, subject: str, payload: bytes, annotations: dict[str, str]) -> None:
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = desc(
        "application/vnd.dev.cosign.simplesigning.v1+json", payload, annotations=annotations
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", config),
            "layers": [layer],
        }
    ).encode()
    with store.writing():
        put(store, Doc(manifest, (config, payload)))
    store.attach(Digest.parse(subject), manifest, tag="sig")


def _sign(
    sigstore: Sigstore,
    *,
    identity: str = IDENTITY,
    issuer: str = ISSUER,
    expired: bool = False,
    with_log: bool = True,
    tamper: str = "",
) -> str:
    store = Store.open()
    image = add_image(store, NAME)
    payload = _payload(image.digest)
    not_before = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2) if expired else None
    key, cert = sigstore.leaf(identity, issuer, not_before=not_before)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    annotations = {
        "dev.cosignproject.cosign/signature": base64.b64encode(signature).decode(),
        "dev.sigstore.cosign/certificate": pem.decode(),
        "dev.sigstore.cosign/chain": (
            sigstore.inter.public_bytes(serialization.Encoding.PEM)
            + sigstore.root.public_bytes(serialization.Encoding.PEM)
        ).decode(),
    }
    if with_log:
        body = sigstore.hashedrekord(payload, signature, cert)
        integrated = int(cert.not_valid_before_utc.timestamp()) + 30
        set_sig = sigstore.set_for(body, integrated, 42)
        if tamper == "time":
            integrated += 1  # the SET no longer covers it
        if tamper == "body":
            body = sigstore.hashedrekord(payload + b" ", signature, cert)
            set_sig = sigstore.set_for(
                body, integrated, 42
            )  # validly signed, but for other content
        annotations["dev.sigstore.cosign/bundle"] = json.dumps(
            {
                "SignedEntryTimestamp": base64.b64encode(set_sig).decode(),
                "Payload": {
                    "body": base64.b64encode(body).decode(),
                    "integratedTime": integrated,
                    "logIndex": 42,
                    "logID": sigstore.log_id.hex(),
                },
            }
        )
    _attach_sig(store, image.digest, payload, annotations)
    return image.digest


def _verify(root_file: Path, identity: str = IDENTITY, issuer: str = ISSUER) -> object:
    return run_cli(
        "verify",
        "--trusted-root", str(root_file),
        "--certificate-identity", identity,
        "--certificate-oidc-issuer", issuer,
        f"store:{NAME}",
    )  # fmt: skip


def test_a_good_keyless_signature_verifies(sigstore: Sigstore, root_file: Path) -> None:
    _sign(sigstore)
    result = _verify(root_file)
    assert result.returncode == 0, result.stderr
    assert IDENTITY in result.stdout
    regexp = run_cli(
        "verify",
        "--trusted-root", str(root_file),
        "--certificate-identity-regexp", r".*@example\.com",
        "--certificate-oidc-issuer-regexp", r"https://issuer\..*",
        f"store:{NAME}",
    )  # fmt: skip
    assert regexp.returncode == 0, regexp.stderr


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("identity", "certificate identity dev@example.com is not someone@else.com"),
        ("issuer", "OIDC issuer https://issuer.example is not https://other.example"),
        ("expired", "expired at"),
        ("tampered-time", "signed entry timestamp does not verify"),
        ("tampered-body", "for other content"),
        ("other-ca", "does not chain to a certificate authority"),
    ],
)
def test_bad_keyless_signatures_are_refused(
    sigstore: Sigstore, root_file: Path, case: str, message: str
) -> None:
    if case == "expired":
        _sign(sigstore, expired=True, with_log=False)
    elif case.startswith("tampered"):
        _sign(sigstore, tamper=case.split("-")[1])
    elif case == "other-ca":
        # another CA, the trusted log: only the certificate chain is wrong
        stranger = Sigstore.create()
        stranger.rekor_key = sigstore.rekor_key
        _sign(stranger)
    else:
        _sign(sigstore)
    result = _verify(
        root_file,
        identity="someone@else.com" if case == "identity" else IDENTITY,
        issuer="https://other.example" if case == "issuer" else ISSUER,
    )
    assert result.returncode == 1
    assert_no_traceback(result)
    assert message in result.stderr, result.stderr


def test_a_sigstore_bundle_with_an_inclusion_proof_verifies(
    sigstore: Sigstore, root_file: Path
) -> None:
    """cosign v3's layout: a bundle v0.3 referrer holding a DSSE in-toto statement."""
    store = Store.open()
    image = add_image(store, NAME)
    hexd = image.digest.split(":")[1]
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "", "digest": {"sha256": hexd}}],
            "predicateType": "https://sigstore.dev/cosign/sign/v1",
            "predicate": {},
        }
    ).encode()
    ptype = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(statement), statement)
    key, cert = sigstore.leaf()
    signature = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    envelope = {
        "payload": base64.b64encode(statement).decode(),
        "payloadType": ptype.decode(),
        "signatures": [{"sig": base64.b64encode(signature).decode()}],
    }
    body = sigstore.dsse_body(statement, json.dumps(envelope).encode(), signature, cert)
    integrated = int(cert.not_valid_before_utc.timestamp()) + 20
    leaf_hash = hashlib.sha256(b"\x00" + body).digest()
    sibling = hashlib.sha256(b"\x00other entry").digest()
    root_hash = hashlib.sha256(b"\x01" + leaf_hash + sibling).digest()  # a tree of two, ours first
    bundle = json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {
                    "rawBytes": base64.b64encode(
                        cert.public_bytes(serialization.Encoding.DER)
                    ).decode()
                },
                "tlogEntries": [
                    {
                        "logIndex": "0",
                        "logId": {"keyId": base64.b64encode(sigstore.log_id).decode()},
                        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                        "integratedTime": str(integrated),
                        "inclusionPromise": {
                            "signedEntryTimestamp": base64.b64encode(
                                sigstore.set_for(body, integrated, 0)
                            ).decode()
                        },
                        "inclusionProof": {
                            "logIndex": "0",
                            "rootHash": base64.b64encode(root_hash).decode(),
                            "treeSize": "2",
                            "hashes": [base64.b64encode(sibling).decode()],
                            "checkpoint": {"envelope": sigstore.checkpoint(2, root_hash)},
                        },
                        "canonicalizedBody": base64.b64encode(body).decode(),
                    }
                ],
            },
            "dsseEnvelope": envelope,
        }
    ).encode()
    bundle_type = "application/vnd.dev.sigstore.bundle.v0.3+json"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": bundle_type,
            "config": desc("application/vnd.oci.empty.v1+json", b"{}"),
            "layers": [desc(bundle_type, bundle)],
            "subject": desc(OCI_MANIFEST, image.raw),
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
            },
        }
    ).encode()
    with store.writing():
        put(store, Doc(manifest, (b"{}", bundle)))
    store.attach(Digest.parse(image.digest), manifest)
    result = _verify(root_file)
    assert result.returncode == 0, result.stderr
    assert "bundle" in result.stdout
    # a proof that does not lead to the checkpoint's root is refused
    broken = bundle.replace(
        base64.b64encode(sibling).decode().encode(),
        base64.b64encode(b"\x00" * 32).decode().encode(),
    )
    manifest2 = manifest.replace(
        hashlib.sha256(bundle).hexdigest().encode(), hashlib.sha256(broken).hexdigest().encode()
    )
    store.detach(Digest.parse(image.digest), Digest.of(manifest))
    with store.writing():
        put(store, Doc(manifest2, (b"{}", broken)))
    store.attach(Digest.parse(image.digest), manifest2)
    refused = _verify(root_file)
    assert refused.returncode == 1 and "inclusion proof" in refused.stderr, refused.stderr
