"""The simple-signing payload: what a cosign or containers/image signature signs.

::

    {"critical": {"identity": {"docker-reference": "registry/repo:tag"},
                  "image": {"docker-manifest-digest": "sha256:..."},
                  "type": "cosign container image signature"},
     "optional": {...} | null}

The signature covers SHA-256 of these exact bytes, so forklift never
re-serialises a payload it verifies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.oci.digest import Digest

COSIGN_TYPE = "cosign container image signature"
#: the older containers/image "atomic" type, accepted by c/image for sigstore payloads too
ATOMIC_TYPE = "atomic container signature"


@dataclass(frozen=True)
class SimpleSigning:
    """A parsed payload; ``raw`` is the exact signed bytes."""

    docker_reference: str
    manifest_digest: Digest
    type: str
    optional: dict[str, Any] = field(default_factory=dict)
    raw: bytes = b""


def build(
    docker_reference: str, digest: Digest, annotations: dict[str, Any] | None = None
) -> bytes:
    """The payload bytes for ``digest`` with identity ``docker_reference`` (cosign's layout)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": str(digest)},
            "type": COSIGN_TYPE,
        },
        "optional": dict(annotations) if annotations else None,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _get(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, dict):
        raise InvalidInput(f"{what}: expected an object")
    if key in obj:
        return obj[key]
    # Go's encoding/json (cosign) matches keys without regard to case
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == key.lower():
            return v
    raise InvalidInput(f"{what}: missing {key!r}")


def parse(raw: bytes, what: str = "signature payload") -> SimpleSigning:
    """Parse a payload strictly enough to trust its digest and identity."""
    doc = canonical.loads(raw, what)
    critical = _get(doc, "critical", what)
    kind = _get(critical, "type", f"{what}: critical")
    identity = _get(_get(critical, "identity", f"{what}: critical"), "docker-reference", what)
    digest = _get(_get(critical, "image", f"{what}: critical"), "docker-manifest-digest", what)
    if not isinstance(kind, str) or not isinstance(identity, str) or not isinstance(digest, str):
        raise InvalidInput(f"{what}: critical fields must be strings")
    optional = doc.get("optional") if isinstance(doc, dict) else None
    if optional is not None and not isinstance(optional, dict):
        raise InvalidInput(f"{what}: optional must be an object or null")
    return SimpleSigning(identity, Digest.parse(digest), kind, dict(optional or {}), bytes(raw))
