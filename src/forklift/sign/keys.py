"""Signing keys in cosign's formats.

The private key cosign (and containers/image, sigstore) write is a PEM block
``ENCRYPTED SIGSTORE PRIVATE KEY`` (older: ``ENCRYPTED COSIGN PRIVATE KEY``)
holding JSON::

    {"kdf": {"name": "scrypt", "params": {"N": 65536, "r": 8, "p": 1}, "salt": B64},
     "cipher": {"name": "nacl/secretbox", "nonce": B64},
     "ciphertext": B64}

The secretbox key is scrypt(password, salt, N, r, p) (32 bytes); the
plaintext is the PKCS#8 DER private key. The public key is a ``PUBLIC KEY``
PEM (SubjectPublicKeyInfo). Plain PEM private keys (PKCS#8, SEC1 ``EC PRIVATE
KEY``, PKCS#1 ``RSA PRIVATE KEY``) and ECDSA, Ed25519 and RSA public keys are
read too. ``cryptography`` and ``pynacl`` do the primitives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from forklift.errors import InvalidInput, UsageError, VerificationError

ENCRYPTED_SIGSTORE = "ENCRYPTED SIGSTORE PRIVATE KEY"
ENCRYPTED_COSIGN = "ENCRYPTED COSIGN PRIVATE KEY"
#: scrypt cost forklift writes (cosign's and containers/image's choice); it reads 2^15..2^17
SCRYPT_N = 1 << 16
_N_RANGE = (1 << 15, 1 << 17)

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class WrongPassword(VerificationError):
    """The password does not decrypt the private key."""


@dataclass(frozen=True)
class KeyPair:
    """A private key and the PEM files that hold it and its public half."""

    private_pem: bytes
    public_pem: bytes


# -- PEM --------------------------------------------------------------------------------------


def _pem_blocks(data: bytes, what: str) -> list[tuple[str, bytes]]:
    """(label, DER) of each PEM block in ``data``."""
    text = data.decode("ascii", errors="replace")
    blocks: list[tuple[str, bytes]] = []
    label: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            label = line[len("-----BEGIN ") : -5]
            body = []
        elif line.startswith("-----END ") and label is not None:
            if line[len("-----END ") : -5] != label:
                raise InvalidInput(f"{what}: PEM block {label!r} ends with {line!r}")
            try:
                blocks.append((label, base64.b64decode("".join(body), validate=True)))
            except binascii.Error:
                raise InvalidInput(f"{what}: PEM block {label!r} is not valid base64") from None
            label = None
        elif label is not None and line and ":" not in line:
            body.append(line)
    if label is not None:
        raise InvalidInput(f"{what}: PEM block {label!r} has no END line")
    return blocks


def _pem(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"
    ).encode()


# -- the encrypted format ---------------------------------------------------------------------


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    # libsodium's scrypt is the quickest here; hashlib's (OpenSSL) is the fallback
    try:
        from nacl.bindings import crypto_pwhash_scryptsalsa208sha256_ll

        return bytes(
            crypto_pwhash_scryptsalsa208sha256_ll(password, salt, n, r, p, dklen=32, maxmem=1 << 30)
        )
    except ImportError:  # pragma: no cover - pynacl is a dependency
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=1 << 30)


def encrypt_private_key(der: bytes, password: bytes, *, n: int = SCRYPT_N) -> bytes:
    """The ``ENCRYPTED SIGSTORE PRIVATE KEY`` PEM of the PKCS#8 DER key ``der``."""
    from nacl.secret import SecretBox

    salt = os.urandom(32)
    nonce = os.urandom(24)
    key = _scrypt(password, salt, n, 8, 1)
    sealed = SecretBox(key).encrypt(der, nonce).ciphertext
    doc = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": n, "r": 8, "p": 1},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed).decode(),
    }
    return _pem(ENCRYPTED_SIGSTORE, json.dumps(doc, separators=(",", ":")).encode())


def _field(doc: Any, path: str, kind: type, what: str) -> Any:
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise InvalidInput(f"{what}: the encrypted key has no {path}")
        value = value[part]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput(f"{what}: {path} of the encrypted key is not a {kind.__name__}")
    return value


def _b64(value: str, name: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise InvalidInput(f"{what}: {name} of the encrypted key is not valid base64") from None


def decrypt_private_key(body: bytes, password: bytes, what: str = "private key") -> bytes:
    """The PKCS#8 DER inside an encrypted key's JSON ``body`` (the PEM block's content)."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    from forklift.oci import canonical

    doc = canonical.loads(body, what)
    if _field(doc, "kdf.name", str, what) != "scrypt":
        raise InvalidInput(f"{what}: unsupported key derivation {doc['kdf']['name']!r}")
    if _field(doc, "cipher.name", str, what) != "nacl/secretbox":
        raise InvalidInput(f"{what}: unsupported cipher {doc['cipher']['name']!r}")
    n = _field(doc, "kdf.params.N", int, what)
    r = _field(doc, "kdf.params.r", int, what)
    p = _field(doc, "kdf.params.p", int, what)
    if not (_N_RANGE[0] <= n <= _N_RANGE[1]) or n & (n - 1):
        raise InvalidInput(f"{what}: scrypt N={n} is outside 2^15..2^17")
    if r != 8 or p != 1:
        raise InvalidInput(f"{what}: scrypt r={r}, p={p} (expected r=8, p=1)")
    salt = _b64(_field(doc, "kdf.salt", str, what), "salt", what)
    nonce = _b64(_field(doc, "cipher.nonce", str, what), "nonce", what)
    sealed = _b64(_field(doc, "ciphertext", str, what), "ciphertext", what)
    if len(nonce) != 24:
        raise InvalidInput(f"{what}: the nonce is {len(nonce)} bytes, not 24")
    key = _scrypt(password, salt, n, r, p)
    try:
        return bytes(SecretBox(key).decrypt(sealed, nonce))
    except CryptoError:
        raise WrongPassword(
            f"{what}: wrong password (the key does not decrypt)",
            hint="the password comes from COSIGN_PASSWORD or the prompt",
        ) from None


# -- loading ----------------------------------------------------------------------------------


def load_private_key(
    data: bytes, password: PasswordSource, what: str = "private key"
) -> PrivateKey:
    """A private key from PEM: cosign's encrypted formats or plain PKCS#8/SEC1/PKCS#1."""
    blocks = _pem_blocks(data, what)
    if not blocks:
        raise InvalidInput(f"{what}: no PEM block found")
    label, der = blocks[0]
    if label in (ENCRYPTED_SIGSTORE, ENCRYPTED_COSIGN):
        der = decrypt_private_key(der, password(), what)
        return _private_from_der(der, what)
    if label in ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidInput(f"{what}: not a usable private key ({exc})") from None
        return _check_private(key, what)
    if label == "ENCRYPTED PRIVATE KEY":
        try:
            key = serialization.load_pem_private_key(data, password=password())
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise WrongPassword(f"{what}: wrong password or unsupported encryption") from None
        return _check_private(key, what)
    raise InvalidInput(f"{what}: PEM block {label!r} is not a private key")


def _private_from_der(der: bytes, what: str) -> PrivateKey:
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"{what}: the decrypted key is not PKCS#8 ({exc})") from None
    return _check_private(key, what)


def _check_private(key: object, what: str) -> PrivateKey:
    if isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return key
    raise InvalidInput(f"{what}: {type(key).__name__} keys are not supported (ECDSA, Ed25519, RSA)")


def load_public_key(data: bytes, what: str = "public key") -> PublicKey:
    """A public key from a ``PUBLIC KEY`` PEM (ECDSA, Ed25519, RSA), or a certificate's."""
    blocks = _pem_blocks(data, what)
    if not blocks:
        raise InvalidInput(f"{what}: no PEM block found")
    label, der = blocks[0]
    try:
        if label == "CERTIFICATE":
            from cryptography import x509

            key: object = x509.load_der_x509_certificate(der).public_key()
        elif label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            key = serialization.load_pem_public_key(data)
        else:
            raise InvalidInput(f"{what}: PEM block {label!r} is not a public key")
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(f"{what}: not a usable public key ({exc})") from None
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        return key
    raise InvalidInput(f"{what}: {type(key).__name__} keys are not supported (ECDSA, Ed25519, RSA)")


def read_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """:func:`load_public_key` of a file, with the file named in errors."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read the public key ({exc.strerror})") from None
    return load_public_key(data, str(p))


def read_private_key(path: str | os.PathLike[str], password: PasswordSource) -> PrivateKey:
    """:func:`load_private_key` of a file, with the file named in errors."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read the private key ({exc.strerror})") from None
    return load_private_key(data, password, str(p))


def public_pem(key: PublicKey | PrivateKey) -> bytes:
    """The ``PUBLIC KEY`` PEM of a key (or of a private key's public half)."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex (how Rekor and trusted roots name keys)."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


# -- generating -------------------------------------------------------------------------------


def generate_key_pair(password: bytes) -> KeyPair:
    """A new ECDSA P-256 key pair: the encrypted private key and the public key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(encrypt_private_key(der, password), public_pem(key))


# -- signing and verifying --------------------------------------------------------------------


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data`` as cosign does: ECDSA over SHA-256 (ASN.1 DER), Ed25519, RSA PKCS#1 v1.5."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verify(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True if ``signature`` is ``key``'s signature of ``data``."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_ec_hash(key)))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _ec_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    # sigstore pairs each curve with its hash (P-384 with SHA-384 in Fulcio's and Rekor's keys)
    size = key.curve.key_size
    if size >= 521:
        return hashes.SHA512()
    if size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


# -- passwords --------------------------------------------------------------------------------


class PasswordSource:
    """Where a password comes from: ``COSIGN_PASSWORD`` (even empty), else a terminal prompt.

    Asked at most once (the answer is kept for a second key file). Without the
    variable and without a terminal it refuses, instead of hanging.
    """

    def __init__(self, value: bytes | None = None, *, confirm: bool = False) -> None:
        self._value = value
        self._confirm = confirm

    def __call__(self) -> bytes:
        if self._value is None:
            self._value = _ask(self._confirm)
        return self._value


def _ask(confirm: bool) -> bytes:
    env = os.environ.get("COSIGN_PASSWORD")
    if env is not None:
        return env.encode()
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(
            "a password is needed for the private key, and there is no terminal to ask on",
            hint="set COSIGN_PASSWORD (it may be empty)",
        )
    import getpass

    first = getpass.getpass("Enter password for private key: ")
    if confirm:
        again = getpass.getpass("Enter password for private key again: ")
        if again != first:
            raise UsageError("the passwords do not match")
    return first.encode()
