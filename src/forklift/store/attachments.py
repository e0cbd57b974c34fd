"""How an OCI layout's ``index.json`` records artifacts attached to images.

An attachment is an ``index.json`` entry for the attached manifest carrying
``dev.forklift.attachment.subject`` (the image's digest) and, for cosign's tag
layout, ``dev.forklift.attachment.tag`` (``sig``, ``att``, ``sbom``). The
manifest blobs stay ordinary layout content, so other tools reading the
layout see them as manifests in the index (as ``oras`` writes referrers into
layouts); forklift lists images without them.

Layouts written by other tools are read too: an entry named
``sha256-<hex>.sig`` (cosign's tag) or an entry whose manifest has a
``subject`` is an attachment of that digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from forklift.errors import ForkliftError, NotFound, UsageError
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest, Manifest, parse_manifest
from forklift.oci.referrers import (
    APPENDING_SUFFIXES,
    Attachment,
    describe_manifest,
    merge_tag_manifests,
    parse_attachment_tag,
)

if TYPE_CHECKING:
    from forklift.store.layout import OciLayout

SUBJECT = "dev.forklift.attachment.subject"
TAG = "dev.forklift.attachment.tag"
REF_NAME = "org.opencontainers.image.ref.name"


def is_attachment(entry: Descriptor) -> bool:
    """True for an ``index.json`` entry that records an attachment (forklift's annotation)."""
    return SUBJECT in entry.annotations


def to_entry(att: Attachment) -> Descriptor:
    """The ``index.json`` entry recording ``att``."""
    annotations = {**att.descriptor.annotations, SUBJECT: str(att.subject)}
    if att.tag:
        annotations[TAG] = att.tag
    d = att.descriptor
    return Descriptor(
        d.media_type, d.digest, d.size, annotations=annotations, artifact_type=d.artifact_type
    )


def from_entry(entry: Descriptor) -> Attachment | None:
    """The attachment an entry records (forklift's annotations), or None."""
    subject = entry.annotations.get(SUBJECT)
    if subject is None:
        return None
    try:
        digest = Digest.parse(subject)
    except ForkliftError:
        return None
    annotations = {k: v for k, v in entry.annotations.items() if k not in (SUBJECT, TAG)}
    desc = Descriptor(
        entry.media_type,
        entry.digest,
        entry.size,
        annotations=annotations,
        artifact_type=entry.artifact_type,
    )
    return Attachment(digest, desc, entry.annotations.get(TAG))


def foreign_attachment(entry: Descriptor) -> Attachment | None:
    """An attachment another tool recorded: a ``sha256-<hex>.<suffix>`` ref name."""
    name = entry.annotations.get(REF_NAME, "")
    parsed = parse_attachment_tag(name.rsplit(":", 1)[-1]) if name else None
    if parsed is None:
        return None
    subject, suffix = parsed
    desc = Descriptor(entry.media_type, entry.digest, entry.size, artifact_type=entry.artifact_type)
    return Attachment(subject, desc, suffix)


def attachments_in(
    entries: Iterable[Descriptor], subject: Digest | None = None
) -> list[Attachment]:
    """Attachments recorded in ``entries`` (of ``subject`` only, when given)."""
    out: list[Attachment] = []
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        att = from_entry(entry) or foreign_attachment(entry)
        if att is None or (subject is not None and att.subject != subject):
            continue
        key = (str(att.subject), str(att.digest))
        if key not in seen:
            seen.add(key)
            out.append(att)
    return out


def referrers_by_subject(
    entries: Iterable[Descriptor], read_blob: Callable[[Digest], bytes], subject: Digest
) -> list[Attachment]:
    """Entries whose manifest names ``subject`` (layouts other tools wrote; reads manifests)."""
    out: list[Attachment] = []
    for entry in entries:
        if is_attachment(entry) or entry.media_type not in mt.MANIFESTS:
            continue
        try:
            raw = read_blob(entry.digest)
            manifest = parse_manifest(raw, entry.media_type)
        except (ForkliftError, OSError):
            continue
        if manifest.subject is not None and manifest.subject.digest == subject:
            out.append(Attachment(subject, describe_manifest(manifest, raw)))
    return out


def _blobs_of(manifest: Manifest) -> list[Descriptor]:
    if isinstance(manifest, ImageManifest):
        return [manifest.config, *(x for x in manifest.layers if not x.urls)]
    return list(manifest.manifests)


def _same(entry: Descriptor, subject: Digest, digest: Digest) -> bool:
    return (
        is_attachment(entry)
        and entry.digest == digest
        and entry.annotations.get(SUBJECT) == str(subject)
    )


def record(
    layout: OciLayout,
    entries: list[Descriptor],
    subject: Digest,
    raw: bytes,
    *,
    media_type: str | None = None,
    tag: str | None = None,
) -> tuple[list[Descriptor], Attachment]:
    """Store the manifest ``raw`` in ``layout`` as attached to ``subject``; the new entries.

    A manifest with a ``subject`` is a referrer (its subject must be
    ``subject``); one without is cosign's tag layout and needs ``tag``. A
    tag-layout manifest replaces the one recorded for the same subject and
    kind; for ``sig``/``att`` the old one's layers are kept and the new ones
    appended, as cosign and containers/image do in a registry. The manifest's
    blobs must be in the layout already. The caller writes the entries.
    """
    parsed = parse_manifest(raw, media_type, what="attached manifest")
    if parsed.subject is not None and parsed.subject.digest != subject:
        raise UsageError(f"the manifest refers to {parsed.subject.digest}, not to {subject}")
    if parsed.subject is None and tag is None:
        raise UsageError(
            "a manifest without a subject can only be attached under a tag-layout kind "
            "(sig, att or sbom)"
        )
    if parsed.subject is not None:
        tag = None
    for child in _blobs_of(parsed):
        if not layout.has_blob(child.digest):
            raise NotFound(f"{child.kind} {child.digest} of the attached manifest is not stored")
    if tag is not None:
        old = [a for a in attachments_in(entries, subject) if a.tag == tag]
        if old and tag in APPENDING_SUFFIXES and isinstance(parsed, ImageManifest):
            existing_raw = layout.read_blob(old[0].digest)
            existing = parse_manifest(existing_raw, what=f"manifest {old[0].digest}")
            if isinstance(existing, ImageManifest):
                merged = merge_tag_manifests(existing, parsed)
                if merged.config is not None:
                    layout.put_blob(merged.config)
                raw = merged.raw
                parsed = parse_manifest(raw, what="attached manifest")
        entries = [e for e in entries if not any(_same(e, subject, a.digest) for a in old)]
    layout.put_blob(raw)
    att = Attachment(subject, describe_manifest(parsed, raw), tag)
    entries = [e for e in entries if not _same(e, subject, att.digest)]
    entries.append(to_entry(att))
    return entries, att
