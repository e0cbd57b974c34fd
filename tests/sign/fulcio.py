"""A test Sigstore: a Fulcio-like CA and a Rekor-like log key, built with ``cryptography`` here.

Certificates carry Fulcio's extensions (SAN identity, OIDC issuer in
1.3.6.1.4.1.57264.1.8 as a DER UTF8String, code-signing EKU); log entries are
hashedrekord / dsse bodies signed the way Rekor signs SETs (RFC 8785 JSON of
body, integratedTime, logID, logIndex), written from Rekor's documentation.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

ISSUER_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test-sigstore"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class Sigstore:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey
    inter: x509.Certificate
    rekor_key: ec.EllipticCurvePrivateKey
    start: dt.datetime

    @classmethod
    def create(cls) -> Sigstore:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        root_key = ec.generate_private_key(ec.SECP384R1())
        root = (
            x509.CertificateBuilder()
            .subject_name(_name("test root"))
            .issuer_name(_name("test root"))
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(root_key, hashes.SHA384())
        )
        inter_key = ec.generate_private_key(ec.SECP384R1())
        inter = (
            x509.CertificateBuilder()
            .subject_name(_name("test intermediate"))
            .issuer_name(root.subject)
            .public_key(inter_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(root_key, hashes.SHA384())
        )
        return cls(root_key, root, inter_key, inter, ec.generate_private_key(ec.SECP256R1()), start)

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(spki(self.rekor_key.public_key())).digest()

    def trusted_root(self) -> bytes:
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        der = lambda c: c.public_bytes(serialization.Encoding.DER)  # noqa: E731
        start = self.start.strftime("%Y-%m-%dT%H:%M:%SZ")
        return json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [
                    {
                        "baseUrl": "https://rekor.test",
                        "hashAlgorithm": "SHA2_256",
                        "publicKey": {
                            "rawBytes": b64(spki(self.rekor_key.public_key())),
                            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                            "validFor": {"start": start},
                        },
                        "logId": {"keyId": b64(self.log_id)},
                    }
                ],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "test-sigstore", "commonName": "test"},
                        "uri": "https://fulcio.test",
                        "certChain": {
                            "certificates": [
                                {"rawBytes": b64(der(self.inter))},
                                {"rawBytes": b64(der(self.root))},
                            ]
                        },
                        "validFor": {"start": start},
                    }
                ],
                "ctlogs": [],
                "timestampAuthorities": [],
            }
        ).encode()

    def leaf(
        self,
        identity: str = "dev@example.com",
        issuer: str = "https://issuer.example",
        *,
        not_before: dt.datetime | None = None,
        minutes: int = 10,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        nb = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        san: x509.GeneralName = (
            x509.UniformResourceIdentifier(identity)
            if "://" in identity
            else x509.RFC822Name(identity)
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.inter.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(nb)
            .not_valid_after(nb + dt.timedelta(minutes=minutes))
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(ISSUER_OID, _der_utf8(issuer)), critical=False
            )
            .sign(self.inter_key, hashes.SHA384())
        )
        return key, cert

    def hashedrekord(self, payload: bytes, signature: bytes, cert: x509.Certificate) -> bytes:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return json.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {
                        "hash": {
                            "algorithm": "sha256",
                            "value": hashlib.sha256(payload).hexdigest(),
                        }
                    },
                    "signature": {
                        "content": base64.b64encode(signature).decode(),
                        "publicKey": {"content": base64.b64encode(pem).decode()},
                    },
                },
            }
        ).encode()

    def dsse_body(
        self, payload: bytes, envelope: bytes, signature: bytes, cert: x509.Certificate
    ) -> bytes:
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return json.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(envelope).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [
                        {
                            "signature": base64.b64encode(signature).decode(),
                            "verifier": base64.b64encode(pem).decode(),
                        }
                    ],
                },
            }
        ).encode()

    def set_for(self, body: bytes, integrated_time: int, log_index: int) -> bytes:
        doc = {
            "body": base64.b64encode(body).decode(),
            "integratedTime": integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": log_index,
        }
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        return self.rekor_key.sign(canonical, ec.ECDSA(hashes.SHA256()))

    def checkpoint(self, size: int, root_hash: bytes) -> str:
        body = f"rekor.test - 1\n{size}\n{base64.b64encode(root_hash).decode()}\n"
        sig = self.rekor_key.sign(body.encode(), ec.ECDSA(hashes.SHA256()))
        hint = hashlib.sha256(spki(self.rekor_key.public_key())).digest()[:4]
        return body + "\n" + f"\u2014 rekor.test {base64.b64encode(hint + sig).decode()}\n"
