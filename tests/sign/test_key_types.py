"""Plain PEM keys (PKCS#8, SEC1 EC, Ed25519, RSA) and cosign v3's key-based bundle signatures."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from forklift.oci.digest import Digest
from forklift.store.store import Store
from tests.helpers import run_cli

from .images import OCI_MANIFEST, Doc, add_image, desc, put


def _write(
    tmp_path: Path, name: str, key: object, fmt: serialization.PrivateFormat
) -> tuple[Path, Path]:
    private = tmp_path / f"{name}.pem"
    public = tmp_path / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())  # type: ignore[attr-defined]
    )
    public.write_bytes(
        key.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@pytest.mark.parametrize(
    ("name", "make", "fmt"),
    [
        (
            "ec-pkcs8",
            lambda: ec.generate_private_key(ec.SECP256R1()),
            serialization.PrivateFormat.PKCS8,
        ),
        (
            "ec-sec1",
            lambda: ec.generate_private_key(ec.SECP256R1()),
            serialization.PrivateFormat.TraditionalOpenSSL,
        ),
        ("ed25519", ed25519.Ed25519PrivateKey.generate, serialization.PrivateFormat.PKCS8),
        ("rsa", lambda: rsa.generate_private_key(65537, 2048), serialization.PrivateFormat.PKCS8),
    ],
)
def test_plain_pem_keys_sign_and_verify(
    tmp_path: Path, name: str, make: object, fmt: serialization.PrivateFormat
) -> None:
    private, public = _write(tmp_path, name, make(), fmt)  # type: ignore[operator]
    add_image(Store.open(), "example.com/keys:1")
    run_cli("sign", "--key", str(private), "example.com/keys:1", check=True)
    run_cli("verify", "--key", str(public), "example.com/keys:1", check=True)
    _, other = _write(
        tmp_path,
        "other",
        ec.generate_private_key(ec.SECP256R1()),
        serialization.PrivateFormat.PKCS8,
    )
    assert run_cli("verify", "--key", str(other), "example.com/keys:1").returncode == 1


def test_a_key_based_sigstore_bundle_verifies(tmp_path: Path) -> None:
    """cosign v3 with --key: a bundle v0.3 referrer, DSSE over a cosign/sign/v1 statement."""
    key = ec.generate_private_key(ec.SECP256R1())
    _, public = _write(tmp_path, "v3", key, serialization.PrivateFormat.PKCS8)
    store = Store.open()
    image = add_image(store, "example.com/v3:1")

    def bundle_for(digest_hex: str) -> bytes:
        statement = json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"digest": {"sha256": digest_hex}}],
                "predicateType": "https://sigstore.dev/cosign/sign/v1",
                "predicate": {},
            }
        ).encode()
        ptype = b"application/vnd.in-toto+json"
        pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(statement), statement)
        from cryptography.hazmat.primitives import hashes

        sig = key.sign(pae, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {"publicKey": {"hint": "k"}},
                "dsseEnvelope": {
                    "payload": base64.b64encode(statement).decode(),
                    "payloadType": ptype.decode(),
                    "signatures": [{"sig": base64.b64encode(sig).decode()}],
                },
            }
        ).encode()

    def attach(bundle: bytes) -> None:
        kind = "application/vnd.dev.sigstore.bundle.v0.3+json"
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": kind,
                "config": desc("application/vnd.oci.empty.v1+json", b"{}"),
                "layers": [desc(kind, bundle)],
                "subject": desc(OCI_MANIFEST, image.raw),
            }
        ).encode()
        with store.writing():
            put(store, Doc(manifest, (b"{}", bundle)))
        store.attach(Digest.parse(image.digest), manifest)

    # a bundle about another digest is refused ...
    attach(bundle_for("0" * 64))
    refused = run_cli("verify", "--key", str(public), "example.com/v3:1")
    assert refused.returncode == 1 and "about another image" in refused.stderr
    # ... one about this image verifies
    attach(bundle_for(image.digest.split(":")[1]))
    out = run_cli("verify", "--key", str(public), "example.com/v3:1", check=True)
    assert "bundle" in out.stdout
