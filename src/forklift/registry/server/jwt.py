"""Minimal JSON Web Tokens (JWS compact form) for Docker token auth.

Only what the Docker token spec needs: sign a claims set with the registry's
key, and verify a token against a set of trusted public keys. The algorithms
are distribution's: ES256/ES384/ES512 (EC keys on P-256/P-384/P-521) and
RS256/RS384/RS512 (RSA keys). A token's ``alg`` is checked against the key
that verifies it (curve and key type), never used to pick how to read the key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
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


_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
#: the ``alg`` values accepted in tokens
ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512")


def _alg(key: PrivateKey | PublicKey) -> str:
    """The algorithm ``key`` signs with: the curve decides for EC keys, RS256 for RSA."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    alg = _EC_ALGS.get(key.curve.name)
    if alg is None:
        raise InvalidInput(f"EC curve {key.curve.name} cannot sign tokens (P-256, P-384, P-521)")
    return alg


def _fits(alg: object, key: PublicKey) -> bool:
    """True if a token signed with ``alg`` can be verified with ``key``."""
    if alg not in ALGORITHMS:
        return False
    assert isinstance(alg, str)
    if isinstance(key, rsa.RSAPublicKey):
        return alg.startswith("RS")
    return _EC_ALGS.get(key.curve.name) == alg


def load_or_create_key(path: Path) -> PrivateKey:
    """Load a PEM private key, creating a P-256 key if the file is absent.

    A new key is written to a temporary file created with mode 0600 (never
    readable by others, not even for an instant), synced, then renamed.
    """
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{path}: not a PEM private key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise InvalidInput(f"{path}: only EC (P-256/384/521) and RSA keys can sign tokens")
        _alg(key)  # an unusable curve fails now, not at the first token
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)  # mkstemp already uses 0600; say it
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    from forklift.fsutil import fsync_dir

    fsync_dir(path.parent)
    return key


def load_public_key(path: Path) -> PublicKey:
    """Load a PEM public key or certificate of an external token issuer."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read token issuer key {path}: {exc.strerror}") from None
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
    if isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name not in _EC_ALGS:
        raise InvalidInput(f"{path}: EC curve {pub.curve.name} is not supported (P-256/384/521)")
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
    digest = _HASHES[alg[2:]]()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signing_input, padding.PKCS1v15(), digest)
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
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
        if claims.get("iss") != tk.issuer or not _fits(alg, tk.key):
            continue
        assert isinstance(alg, str)
        digest = _HASHES[alg[2:]]()
        try:
            if isinstance(tk.key, rsa.RSAPublicKey):
                tk.key.verify(sig, signing_input, padding.PKCS1v15(), digest)
            else:
                size = (tk.key.curve.key_size + 7) // 8
                if len(sig) != 2 * size:
                    continue
                der = encode_dss_signature(
                    int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
                )
                tk.key.verify(der, signing_input, ec.ECDSA(digest))
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
