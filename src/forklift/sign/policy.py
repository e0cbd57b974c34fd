"""The signature policy: which images need which signatures (containers-policy.json semantics).

The file is containers-policy.json(5)'s format, read where the meanings overlap::

    {"default": [{"type": "reject"}],
     "transports": {"docker": {
        "registry.example.com/team": [
            {"type": "sigstoreSigned", "keyPath": "/etc/keys/team.pub",
             "signedIdentity": {"type": "matchRepository"}}],
        "registry.example.com/public": [{"type": "insecureAcceptAnything"}]}}}

Scopes (in ``transports.docker``; ``store`` and ``oci`` are not separate
transports here: a stored image is judged by its name) are, most specific
first: ``host/repo:tag``, ``host/repo``, each parent namespace, ``host[:port]``,
``*.domain`` wildcards, then ``default``. Every requirement of the chosen list
must hold: ``insecureAcceptAnything``, ``reject``, or ``sigstoreSigned`` with
``keyPath``/``keyPaths``/``keyData``/``keyDatas``, or keyless with ``fulcio``
(``caPath``/``caData``, ``oidcIssuer``, ``subjectEmail``) plus
``rekorPublicKeyPath``/``rekorPublicKeyData``; forklift also accepts
``trustedRootPath`` (a Sigstore ``trusted_root.json``) and ``subject`` /
``subjectRegexp`` for URI identities. ``signedIdentity`` is one of
``matchRepoDigestOrExact`` (the default), ``matchRepository``, ``matchExact``,
``exactReference``, ``exactRepository``, ``remapIdentity``. The types
containers has and forklift does not (``signedBy``: GPG) are refused when the
file is loaded, not silently passed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forklift.errors import InvalidInput, ParseError
from forklift.oci import canonical
from forklift.reference import Reference, parse_reference

_IDENTITY_TYPES = {
    "matchRepoDigestOrExact",
    "matchRepository",
    "matchExact",
    "exactReference",
    "exactRepository",
    "remapIdentity",
}


@dataclass(frozen=True)
class SignedIdentity:
    """How a signature's docker-reference must relate to the image's name."""

    type: str = "matchRepoDigestOrExact"
    reference: str | None = None  # exactReference: dockerReference
    repository: str | None = None  # exactRepository: dockerRepository
    prefix: str | None = None  # remapIdentity
    signed_prefix: str | None = None

    def check(self, image: Reference | None, signed: str) -> str | None:
        """None if ``signed`` (a payload's docker-reference) is acceptable for ``image``."""
        try:
            sig = parse_reference(_legacy(signed), default_tag=False)
        except InvalidInput:
            return f"the signature names {signed!r}, not an image reference"
        if self.type == "exactReference":
            want = parse_reference(self.reference or "", default_tag=False)
            return None if str(sig) == str(want) else f"the signature is for {sig}, not {want}"
        if self.type == "exactRepository":
            want_repo = parse_reference(self.repository or "", default_tag=False).name
            return (
                None
                if sig.name == want_repo
                else f"the signature is for {sig.name}, not {want_repo}"
            )
        if image is None:
            return "the image has no name to match the signature's identity against"
        if self.type == "remapIdentity" and self.prefix and self.signed_prefix:
            text = str(image)
            if text.startswith(self.prefix):
                image = parse_reference(self.signed_prefix + text[len(self.prefix) :])
        if self.type == "matchRepository":
            return (
                None
                if sig.name == image.name
                else f"the signature is for {sig.name}, not {image.name}"
            )
        if self.type == "matchExact" or (
            self.type in ("matchRepoDigestOrExact", "remapIdentity") and image.digest is None
        ):
            if sig.name == image.name and sig.tag == image.tag and sig.digest == image.digest:
                return None
            return f"the signature is for {sig}, not exactly {image}"
        # a digest reference: the repository must match
        return (
            None if sig.name == image.name else f"the signature is for {sig.name}, not {image.name}"
        )


def _legacy(name: str) -> str:
    return (
        "docker.io/" + name[len("index.docker.io/") :]
        if name.startswith("index.docker.io/")
        else name
    )


@dataclass(frozen=True)
class Requirement:
    """One requirement of a scope."""

    type: str  # "insecureAcceptAnything" | "reject" | "sigstoreSigned"
    keys: tuple[bytes, ...] = ()  # PEM public keys
    trusted_root: bytes | None = None  # trusted_root.json bytes (keyless)
    ca_pem: bytes | None = None  # fulcio.caPath/caData
    rekor_pem: bytes | None = None
    oidc_issuer: str | None = None
    subject: str | None = None
    subject_regexp: str | None = None
    identity: SignedIdentity = field(default_factory=SignedIdentity)

    @property
    def fingerprint(self) -> str:
        """A digest of everything the requirement checks (the verification cache's key)."""
        doc = {
            "type": self.type,
            "keys": [hashlib.sha256(k).hexdigest() for k in self.keys],
            "root": hashlib.sha256(self.trusted_root).hexdigest() if self.trusted_root else None,
            "ca": hashlib.sha256(self.ca_pem).hexdigest() if self.ca_pem else None,
            "rekor": hashlib.sha256(self.rekor_pem).hexdigest() if self.rekor_pem else None,
            "issuer": self.oidc_issuer,
            "subject": self.subject,
            "subject_re": self.subject_regexp,
            "identity": [
                self.identity.type,
                self.identity.reference,
                self.identity.repository,
                self.identity.prefix,
                self.identity.signed_prefix,
            ],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        if self.type != "sigstoreSigned":
            return self.type
        if self.keys:
            return f"a signature by {'one of ' if len(self.keys) > 1 else ''}the policy's key{'s' if len(self.keys) > 1 else ''}"
        return f"a keyless signature by {self.subject or self.subject_regexp or 'anyone'} ({self.oidc_issuer})"


@dataclass(frozen=True)
class Policy:
    """A loaded policy file."""

    default: tuple[Requirement, ...]
    scopes: dict[str, tuple[Requirement, ...]]
    path: str = ""

    def requirements_for(self, ref: Reference | None) -> tuple[str, tuple[Requirement, ...]]:
        """The scope that applies to ``ref`` and its requirements."""
        if ref is not None:
            for scope in _candidate_scopes(ref):
                if scope in self.scopes:
                    return scope, self.scopes[scope]
        return "default", self.default

    def requires_signatures(self, ref: Reference | None) -> bool:
        return any(r.type == "sigstoreSigned" for r in self.requirements_for(ref)[1])


def _candidate_scopes(ref: Reference) -> list[str]:
    out = []
    if ref.tag is not None:
        out.append(f"{ref.name}:{ref.tag}")
    if ref.digest is not None:
        out.append(f"{ref.name}@{ref.digest}")
    parts = ref.name.split("/")
    for i in range(len(parts), 0, -1):
        out.append("/".join(parts[:i]))
    host = ref.domain.split(":")[0]
    labels = host.split(".")
    for i in range(1, len(labels)):
        out.append("*." + ".".join(labels[i:]))
    return out


# -- loading ----------------------------------------------------------------------------------


def _fail(path: str, where: str, message: str) -> ParseError:
    from forklift.errors import Location

    return ParseError(f"{where}: {message}", location=Location(path))


def _read(value: str, base: Path, path: str, where: str) -> bytes:
    p = Path(value)
    p = p if p.is_absolute() else base / p
    try:
        return p.read_bytes()
    except OSError as exc:
        raise _fail(path, where, f"cannot read {p} ({exc.strerror})") from None


def _data(value: Any, path: str, where: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(path, where, "expected base64 data")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _fail(path, where, "not valid base64") from None


def _identity(doc: Any, path: str, where: str) -> SignedIdentity:
    if doc is None:
        return SignedIdentity()
    if not isinstance(doc, dict) or doc.get("type") not in _IDENTITY_TYPES:
        raise _fail(
            path, where, f"signedIdentity.type must be one of {', '.join(sorted(_IDENTITY_TYPES))}"
        )
    kind = doc["type"]
    ident = SignedIdentity(
        kind,
        doc.get("dockerReference"),
        doc.get("dockerRepository"),
        doc.get("prefix"),
        doc.get("signedPrefix"),
    )
    try:
        if kind == "exactReference":
            parse_reference(ident.reference or "", default_tag=False)
        if kind == "exactRepository":
            parse_reference(ident.repository or "", default_tag=False)
    except InvalidInput as exc:
        raise _fail(path, where, f"signedIdentity: {exc.message}") from None
    if kind == "remapIdentity" and not (ident.prefix and ident.signed_prefix):
        raise _fail(path, where, "remapIdentity needs prefix and signedPrefix")
    return ident


def _requirement(doc: Any, base: Path, path: str, where: str) -> Requirement:
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise _fail(path, where, "a requirement must be an object with a type")
    kind = doc["type"]
    if kind in ("insecureAcceptAnything", "reject"):
        return Requirement(kind)
    if kind == "signedBy":
        raise _fail(path, where, "signedBy (GPG signatures) is not supported; use sigstoreSigned")
    if kind != "sigstoreSigned":
        raise _fail(path, where, f"unknown requirement type {kind!r}")
    for name in ("keyPaths", "keyDatas"):
        if doc.get(name) is not None and not isinstance(doc[name], list):
            raise _fail(path, where, f"{name} must be a list")
    keys: list[bytes] = []
    if isinstance(doc.get("keyPath"), str):
        keys.append(_read(doc["keyPath"], base, path, f"{where}.keyPath"))
    for i, item in enumerate(doc.get("keyPaths") or []):
        keys.append(_read(str(item), base, path, f"{where}.keyPaths[{i}]"))
    if doc.get("keyData") is not None:
        keys.append(_data(doc["keyData"], path, f"{where}.keyData"))
    for i, item in enumerate(doc.get("keyDatas") or []):
        keys.append(_data(item, path, f"{where}.keyDatas[{i}]"))
    for i, k in enumerate(keys):
        # only the shape here (loading cryptography would cost every pull its import time);
        # the key itself is parsed when a signature has to be checked
        if b"-----BEGIN PUBLIC KEY-----" not in k and b"-----BEGIN CERTIFICATE-----" not in k:
            raise _fail(path, where, f"key {i} is not a PEM public key")
    fulcio = doc.get("fulcio")
    root = (
        _read(doc["trustedRootPath"], base, path, f"{where}.trustedRootPath")
        if isinstance(doc.get("trustedRootPath"), str)
        else None
    )
    req = Requirement(kind, tuple(keys), identity=_identity(doc.get("signedIdentity"), path, where))
    if fulcio is not None or root is not None:
        if keys:
            raise _fail(path, where, "give keys or fulcio/trustedRootPath, not both")
        f = fulcio if isinstance(fulcio, dict) else {}
        ca = None
        if isinstance(f.get("caPath"), str):
            ca = _read(f["caPath"], base, path, f"{where}.fulcio.caPath")
        elif f.get("caData") is not None:
            ca = _data(f["caData"], path, f"{where}.fulcio.caData")
        rekor = None
        if isinstance(doc.get("rekorPublicKeyPath"), str):
            rekor = _read(doc["rekorPublicKeyPath"], base, path, f"{where}.rekorPublicKeyPath")
        elif doc.get("rekorPublicKeyData") is not None:
            rekor = _data(doc["rekorPublicKeyData"], path, f"{where}.rekorPublicKeyData")
        if root is None and (ca is None or rekor is None):
            raise _fail(
                path,
                where,
                "keyless needs fulcio.caPath and rekorPublicKeyPath, or trustedRootPath",
            )
        issuer = f.get("oidcIssuer")
        subject = f.get("subjectEmail") or doc.get("subject")
        subject_re = doc.get("subjectRegexp")
        if subject_re is not None:
            try:
                re.compile(str(subject_re))
            except re.error as exc:
                raise _fail(
                    path, where, f"subjectRegexp: invalid regular expression ({exc})"
                ) from None
        if not issuer or not (subject or subject_re):
            raise _fail(
                path, where, "keyless needs fulcio.oidcIssuer and fulcio.subjectEmail (or subject)"
            )
        req = Requirement(
            kind,
            (),
            root,
            ca,
            rekor,
            issuer,
            subject,
            subject_re,
            req.identity,
        )
    elif not keys:
        raise _fail(path, where, "sigstoreSigned needs keyPath/keyData or fulcio")
    return req


def _requirements(doc: Any, base: Path, path: str, where: str) -> tuple[Requirement, ...]:
    if not isinstance(doc, list) or not doc:
        raise _fail(path, where, "expected a non-empty list of requirements")
    return tuple(_requirement(r, base, path, f"{where}[{i}]") for i, r in enumerate(doc))


def parse_policy(raw: bytes, path: str = "policy.json", base: Path | None = None) -> Policy:
    """Parse a policy document; relative key paths are relative to ``base``."""
    doc = canonical.loads(raw, path)
    if not isinstance(doc, dict):
        raise _fail(path, "(top level)", "expected an object")
    base = base if base is not None else Path(path).parent
    default = _requirements(doc.get("default"), base, path, "default")
    scopes: dict[str, tuple[Requirement, ...]] = {}
    transports = doc.get("transports") or {}
    if not isinstance(transports, dict):
        raise _fail(path, "transports", "expected an object")
    for transport, entries in transports.items():
        if transport != "docker":
            continue  # containers' other transports (oci, dir, ...) do not apply to forklift
        if not isinstance(entries, dict):
            raise _fail(path, f"transports.{transport}", "expected an object")
        for scope, reqs in entries.items():
            scopes[scope] = _requirements(reqs, base, path, f"transports.{transport}[{scope!r}]")
    return Policy(default, scopes, path)


def read_policy(path: str | os.PathLike[str]) -> Policy:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{p}: cannot read the policy ({exc.strerror})") from None
    return parse_policy(raw, str(p), p.parent)
