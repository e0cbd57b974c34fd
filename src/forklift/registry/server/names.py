"""Validation of the names in request paths: repositories, tags, digests, upload ids.

The repository grammar is the OCI Distribution Spec's; a name that matches it
can contain no ``..``, no empty segment and no leading ``/``, so it can never
reach outside the storage root (and storage never uses names as paths anyway).
"""

from __future__ import annotations

import re

from forklift.errors import InvalidDigest
from forklift.oci import Digest
from forklift.registry.server import apierrors

REPOSITORY = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
UPLOAD_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# distribution's limit; keeps names usable as path components elsewhere
MAX_NAME = 255


def check_repository(name: str) -> str:
    """Return ``name`` or raise NAME_INVALID."""
    if len(name) > MAX_NAME:
        raise apierrors.name_invalid(f"repository name longer than {MAX_NAME} characters")
    if not REPOSITORY.fullmatch(name):
        raise apierrors.name_invalid(f"invalid repository name {name[:100]!r}")
    return name


def is_tag(reference: str) -> bool:
    """True if ``reference`` is a valid tag (not a digest)."""
    return bool(TAG.fullmatch(reference))


def parse_digest(text: str) -> Digest:
    """Parse a digest from a path or query; raise DIGEST_INVALID."""
    try:
        return Digest.parse(text)
    except InvalidDigest as exc:
        raise apierrors.digest_invalid(exc.message) from None


def check_upload_id(upload_id: str) -> str:
    """Return ``upload_id`` or raise BLOB_UPLOAD_UNKNOWN (never a path)."""
    if not UPLOAD_ID.fullmatch(upload_id):
        raise apierrors.blob_upload_unknown(upload_id[:64])
    return upload_id
