"""Artifacts attached to images in a registry: listing and pushing them.

Listing asks the referrers API (``GET /v2/<repo>/referrers/<digest>``; a
registry without it is read through the referrers tag schema's
``sha256-<hex>`` index) and looks up cosign's tag layout
(``sha256-<hex>.sig``, ``.att``, ``.sbom``). Pushing puts a referrer by digest
and, when the registry did not answer ``OCI-Subject`` (it has no referrers
API, as CNCF distribution 2.x), adds it to the ``sha256-<hex>`` index; a
tag-layout manifest is merged with the one already under its tag (new layers
appended, as cosign and containers/image do), so a second signature never
replaces the first.
"""

from __future__ import annotations

import io

from forklift.errors import NotFound
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest, parse_manifest
from forklift.oci.referrers import (
    APPENDING_SUFFIXES,
    TAG_SUFFIXES,
    Attachment,
    attachment_tag,
    describe_manifest,
    merge_tag_manifests,
)
from forklift.registry.client.client import ManifestResponse, RegistryClient
from forklift.registry.client.errors import RegistryStatusError
from forklift.registry.client.retry import Deadline

# what a tag-layout manifest may be (cosign writes OCI; older tools Docker schema 2)
_TAG_LAYOUT_ACCEPT = (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST)


def list_attachments(
    client: RegistryClient,
    repository: str,
    subject: Digest,
    *,
    tags: tuple[str, ...] | None = None,
    deadline: Deadline | None = None,
    fetched: dict[Digest, ManifestResponse] | None = None,
) -> list[Attachment]:
    """Everything attached to ``subject`` in ``repository``: referrers, then tag-layout kinds.

    ``tags`` limits the tag-layout kinds looked up (default all of
    ``sig``, ``att``, ``sbom``; ``()`` for none). Tag-layout manifests are
    fetched to learn their digests; they are added to ``fetched`` (when given)
    so a caller reading them next needs no second request.
    """
    found: list[Attachment] = []
    try:
        listed = client.referrers(repository, subject, deadline=deadline).manifests
    except RegistryStatusError as exc:
        if exc.status not in (400, 405, 406, 501):
            raise
        # a registry that has no referrers route but answers otherwise than 404
        listed = client._referrers_fallback(repository, subject, None, deadline).manifests
    for desc in listed:
        found.append(Attachment(subject, desc))
    for suffix in TAG_SUFFIXES if tags is None else tags:
        try:
            got = client.get_manifest(
                repository,
                attachment_tag(subject, suffix),
                accept=_TAG_LAYOUT_ACCEPT,
                deadline=deadline,
            )
        except NotFound:
            continue
        if fetched is not None:
            fetched[got.digest] = got
        manifest = got.parse()
        found.append(Attachment(subject, describe_manifest(manifest, got.data), suffix))
    return found


def push_attachment(
    client: RegistryClient,
    repository: str,
    attachment: Attachment,
    raw: bytes,
    *,
    deadline: Deadline | None = None,
) -> Attachment:
    """Store the manifest ``raw`` (its blobs already pushed) as attached to its subject.

    Returns the attachment as stored (a merged tag-layout manifest has a new digest).
    """
    media_type = attachment.descriptor.media_type
    manifest = parse_manifest(raw, media_type, what=f"attached manifest {attachment.digest}")
    if attachment.tag is not None and manifest.subject is None:
        tag = attachment_tag(attachment.subject, attachment.tag)
        if attachment.tag in APPENDING_SUFFIXES and isinstance(manifest, ImageManifest):
            existing = _existing(client, repository, tag, deadline)
            merged = merge_tag_manifests(existing, manifest)
            if merged.added == 0 and existing is not None:
                return Attachment(
                    attachment.subject, describe_manifest(existing, merged.raw), attachment.tag
                )
            if merged.config is not None:
                _put_small_blob(client, repository, merged.config, deadline)
            raw = merged.raw
            manifest = parse_manifest(raw, what=f"manifest for {tag}")
        client.put_manifest(repository, tag, raw, manifest.media_type, deadline=deadline)
        return Attachment(attachment.subject, describe_manifest(manifest, raw), attachment.tag)
    digest = Digest.of(raw)
    pushed = client.put_manifest(repository, digest, raw, manifest.media_type, deadline=deadline)
    stored = Attachment(attachment.subject, describe_manifest(manifest, raw))
    if not pushed.subject_processed:
        # no referrers API: keep the sha256-<hex> index that lists referrers up to date
        client.add_referrer_to_tag_index(
            repository, attachment.subject, stored.descriptor, deadline=deadline
        )
    return stored


def _existing(
    client: RegistryClient, repository: str, tag: str, deadline: Deadline | None
) -> ImageManifest | None:
    try:
        got = client.get_manifest(repository, tag, accept=_TAG_LAYOUT_ACCEPT, deadline=deadline)
    except NotFound:
        return None
    parsed = got.parse()
    return parsed if isinstance(parsed, ImageManifest) else None


def _put_small_blob(
    client: RegistryClient, repository: str, data: bytes, deadline: Deadline | None
) -> Descriptor:
    digest = Digest.of(data)
    client.push_blob(
        repository, digest, len(data), lambda: io.BytesIO(data), what="config", deadline=deadline
    )
    return Descriptor(mt.OCI_CONFIG, digest, len(data))


__all__ = ["list_attachments", "push_attachment"]
