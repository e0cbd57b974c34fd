"""Sigstore's ``trusted_root.json``: the CAs, transparency logs and timestamp authorities to trust.

The file is the protobuf-JSON form of ``dev.sigstore.trustroot.v1.TrustedRoot``::

    {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
     "tlogs": [{"baseUrl", "hashAlgorithm", "publicKey": {"rawBytes": B64 DER SPKI,
                "keyDetails", "validFor": {"start", "end"}}, "logId": {"keyId": B64}}],
     "certificateAuthorities": [{"subject", "uri", "certChain": {"certificates":
                [{"rawBytes": B64 DER}]}, "validFor": {...}}],
     "ctlogs": [...like tlogs], "timestampAuthorities": [...like CAs]}

Parsed here (a few dozen lines) rather than with the ``sigstore`` package, which
would bring a dozen dependencies and its start-up time to every ``verify``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical


@dataclass(frozen=True)
class Window:
    """A validity period; ``end`` None means still valid."""

    start: dt.datetime | None
    end: dt.datetime | None

    def contains(self, when: dt.datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when <= self.end)


@dataclass(frozen=True)
class LogKey:
    """A transparency (Rekor) or certificate-transparency log's key."""

    base_url: str
    key_id: bytes  # sha256 of the DER SubjectPublicKeyInfo, as logs name themselves
    public_key_der: bytes
    valid: Window


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA (Fulcio) or timestamp authority: its chain, leaf-most first, root last (DER)."""

    uri: str
    chain: tuple[bytes, ...]
    valid: Window


@dataclass(frozen=True)
class TrustedRoot:
    tlogs: tuple[LogKey, ...]
    certificate_authorities: tuple[CertificateAuthority, ...]
    ctlogs: tuple[LogKey, ...]
    timestamp_authorities: tuple[CertificateAuthority, ...]

    def tlog(self, key_id: bytes) -> LogKey | None:
        """The transparency log whose key has this id."""
        return next((t for t in self.tlogs if t.key_id == key_id), None)


def _time(value: Any, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: expected an RFC 3339 time")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{what}: {value!r} is not an RFC 3339 time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _window(doc: Any, what: str) -> Window:
    if doc is None:
        return Window(None, None)
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what}: validFor must be an object")
    return Window(_time(doc.get("start"), f"{what}.start"), _time(doc.get("end"), f"{what}.end"))


def decode_b64(value: Any, what: str) -> bytes:
    """A base64 field of a sigstore document; a one-line error naming ``what`` otherwise."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what}: expected base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise InvalidInput(f"{what}: not valid base64") from None


def _list(doc: dict[str, Any], key: str, what: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise InvalidInput(f"{what}: {key} must be an array")
    return value


def _logs(doc: dict[str, Any], key: str, what: str) -> tuple[LogKey, ...]:
    import hashlib

    out = []
    for i, item in enumerate(_list(doc, key, what)):
        where = f"{what}: {key}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("publicKey"), dict):
            raise InvalidInput(f"{where}: no publicKey")
        pk = item["publicKey"]
        der = decode_b64(pk.get("rawBytes"), f"{where}.publicKey.rawBytes")
        log_id = item.get("logId") or {}
        key_id = (
            decode_b64(log_id.get("keyId"), f"{where}.logId.keyId")
            if isinstance(log_id, dict) and log_id.get("keyId")
            else hashlib.sha256(der).digest()
        )
        out.append(
            LogKey(
                str(item.get("baseUrl") or ""),
                key_id,
                der,
                _window(pk.get("validFor"), f"{where}.publicKey.validFor"),
            )
        )
    return tuple(out)


def _cas(doc: dict[str, Any], key: str, what: str) -> tuple[CertificateAuthority, ...]:
    out = []
    for i, item in enumerate(_list(doc, key, what)):
        where = f"{what}: {key}[{i}]"
        chain = item.get("certChain") if isinstance(item, dict) else None
        certs = chain.get("certificates") if isinstance(chain, dict) else None
        if not isinstance(certs, list) or not certs:
            raise InvalidInput(f"{where}: no certChain.certificates")
        ders = tuple(
            decode_b64(
                c.get("rawBytes") if isinstance(c, dict) else None, f"{where}.certificates[{j}]"
            )
            for j, c in enumerate(certs)
        )
        out.append(
            CertificateAuthority(
                str(item.get("uri") or ""), ders, _window(item.get("validFor"), where)
            )
        )
    return tuple(out)


def parse_trusted_root(raw: bytes, what: str = "trusted root") -> TrustedRoot:
    """Parse a ``trusted_root.json`` document."""
    doc = canonical.loads(raw, what)
    if not isinstance(doc, dict):
        raise InvalidInput(f"{what}: expected an object")
    media = doc.get("mediaType", "")
    if media and not str(media).startswith("application/vnd.dev.sigstore.trustedroot"):
        raise InvalidInput(f"{what}: mediaType {media!r} is not a Sigstore trusted root")
    root = TrustedRoot(
        _logs(doc, "tlogs", what),
        _cas(doc, "certificateAuthorities", what),
        _logs(doc, "ctlogs", what),
        _cas(doc, "timestampAuthorities", what),
    )
    if not root.certificate_authorities and not root.tlogs:
        raise InvalidInput(f"{what}: neither certificate authorities nor transparency logs")
    return root


def read_trusted_root(path: str | os.PathLike[str]) -> TrustedRoot:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read the trusted root ({exc.strerror})") from None
    return parse_trusted_root(raw, str(p))
