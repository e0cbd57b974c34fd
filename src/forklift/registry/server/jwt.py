"""Minimal JSON Web Tokens (JWS compact form) for Docker token auth: ES256 and RS256.

Only what the Docker token spec needs: sign a claims set with the registry's
key, and verify a token against a set of trusted public keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from forklift.errors import InvalidInput
from forklift.oci import canonical

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class TokenInvalid(Exception):
    """A token that does not parse, verify or is expired (message says which)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public: PublicKey) -> str:
    """libtrust-style key id (what distribution's token verifier expects in ``kid``)."""
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(raw[i : i + 4] for i in range(0, 48, 4))


def _alg(key: PrivateKey | PublicKey) -> str:
    return "RS256" if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) else "ES256"


def load_or_create_key(path: Path) -> PrivateKey:
    """Load a PEM private key, creating a P-256 key (mode 0600) if the file is absent."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{path}: not a PEM private key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise InvalidInput(f"{path}: only EC P-256 and RSA keys can sign tokens")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o600)
    tmp.rename(path)
    return key


def load_public_key(path: Path) -> PublicKey:
    """Load a PEM public key or certificate of an external token issuer."""
    data = path.read_bytes()
    try:
        if b"CERTIFICATE" in data:
            from cryptography import x509

            pub: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            pub = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InvalidInput(f"{path}: not a PEM public key or certificate ({exc})") from None
    if not isinstance(pub, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise InvalidInput(f"{path}: only EC and RSA public keys are supported")
    return pub


def sign(claims: dict[str, Any], key: PrivateKey) -> str:
    """Encode and sign ``claims``."""
    alg = _alg(key)
    header = {"typ": "JWT", "alg": alg, "kid": key_id(key.public_key())}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    ).encode()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        size = (key.curve.key_size + 7) // 8
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return signing_input.decode() + "." + b64url(sig)


@dataclass(frozen=True)
class TrustedKey:
    """A public key whose tokens are accepted, and the issuer name they must carry."""

    issuer: str
    key: PublicKey


def verify(token: str, trusted: list[TrustedKey], audience: str, leeway: float = 60) -> dict:
    """Verify signature, issuer, audience and times; return the claims."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("malformed token")
    try:
        header = canonical.loads(b64url_decode(parts[0]), "token header")
        claims = canonical.loads(b64url_decode(parts[1]), "token claims")
        sig = b64url_decode(parts[2])
    except (ValueError, InvalidInput):
        raise TokenInvalid("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenInvalid("malformed token")
    alg = header.get("alg")
    signing_input = (parts[0] + "." + parts[1]).encode()
    for tk in trusted:
        if claims.get("iss") != tk.issuer or _alg(tk.key) != alg:
            continue
        try:
            if isinstance(tk.key, rsa.RSAPublicKey):
                tk.key.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
            else:
                size = (tk.key.curve.key_size + 7) // 8
                if len(sig) != 2 * size:
                    continue
                der = encode_dss_signature(
                    int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
                )
                tk.key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        break
    else:
        raise TokenInvalid("token signature not valid for any trusted issuer")
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + leeway < now:
        raise TokenInvalid("token expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf - leeway > now:
        raise TokenInvalid("token not valid yet")
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise TokenInvalid("token audience does not match this registry")
    return claims
