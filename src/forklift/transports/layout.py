"""Transports over OCI image layouts: the store and ``oci:DIR[:REF]`` directories."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import BinaryIO

from forklift.errors import InvalidInput, NotFound
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, VerifyingReader
from forklift.oci.manifest import parse_manifest
from forklift.oci.referrers import Attachment
from forklift.reference import Reference
from forklift.store import attachments as attach_index
from forklift.store.layout import REF_NAME, OciLayout
from forklift.store.store import Store
from forklift.transports.base import ImageDestination, ImageSource

CONTAINERD_NAME = "io.containerd.image.name"


class LayoutSource(ImageSource):
    """Reads one image (the descriptor ``top``) from an OCI layout."""

    def __init__(self, layout: OciLayout, top: Descriptor, description: str) -> None:
        self.layout = layout
        self.top = top
        self.description = description

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        if digest is None:
            raw = self.layout.read_blob(self.top.digest)
            return raw, self.top.media_type
        raw = self.layout.read_blob(digest)
        return raw, parse_manifest(raw, what=f"manifest {digest}").media_type

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.layout.open_blob(desc.digest)

    def blob_path(self, desc: Descriptor) -> Path | None:
        path = self.layout.blob_path(desc.digest)
        return path if path.is_file() else None

    def list_attachments(
        self, subject: Digest, *, tags: tuple[str, ...] | None = None
    ) -> list[Attachment]:
        entries = list(self.layout.read_index().manifests)
        found = attach_index.attachments_in(entries, subject)
        # layouts other tools wrote (oras) list referrers as plain entries with a subject
        known = {a.digest for a in found}
        found += [
            a
            for a in attach_index.referrers_by_subject(entries, self.layout.read_blob, subject)
            if a.digest not in known
        ]
        return _only_tags(found, tags)


def _only_tags(found: list[Attachment], tags: tuple[str, ...] | None) -> list[Attachment]:
    if tags is None:
        return found
    return [a for a in found if a.tag is None or a.tag in tags]


class LayoutDestination(ImageDestination):
    """Writes blobs into an OCI layout; index entries are written on :meth:`commit`."""

    supports_attachments = True

    def __init__(self, layout: OciLayout, description: str) -> None:
        self.layout = layout
        self.description = description
        self._tops: list[tuple[Descriptor, tuple[Reference, ...] | None]] = []
        self._attached: list[tuple[Attachment, bytes]] = []

    def put_attachment(self, attachment: Attachment, raw: bytes) -> Attachment:
        # recorded in index.json on commit, after the image it is attached to
        self._attached.append((attachment, raw))
        return attachment

    def _record_attachments(self, entries: list[Descriptor]) -> list[Descriptor]:
        for att, raw in self._attached:
            entries, _ = attach_index.record(
                self.layout,
                entries,
                att.subject,
                raw,
                media_type=att.descriptor.media_type,
                tag=att.tag,
            )
        self._attached.clear()
        return entries

    def has_blob(self, desc: Descriptor) -> bool:
        return self.layout.has_blob(desc.digest)

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        verifier = _verifier_of(stream)
        with self.layout.blob_writer(desc.digest, desc.size, verified_by=verifier) as w:
            w.copy_from(stream)
            if verifier is not None:
                stream.read()  # reach EOF so the verdict is in, even if copy_from stopped at size
            w.commit()

    def put_manifest(
        self,
        raw: bytes,
        media_type: str,
        *,
        top_level: bool,
        names: tuple[Reference, ...] | None = None,
    ) -> None:
        digest = self.layout.put_blob(raw)
        if top_level:
            manifest = parse_manifest(raw, media_type)
            desc = Descriptor(media_type, digest, len(raw), artifact_type=manifest.artifact_type)
            self._tops.append((desc, names))


def _verifier_of(stream: object) -> VerifyingReader | None:
    """The VerifyingReader behind ``stream`` (possibly wrapped for progress), if any."""
    seen = 0
    while stream is not None and seen < 4:
        if isinstance(stream, VerifyingReader):
            return stream
        stream = getattr(stream, "_raw", None)
        seen += 1
    return None


class StoreSource(LayoutSource):
    """An image in the local store, found by name, digest or ID prefix."""

    def __init__(self, store: Store, name: str) -> None:
        image = store.resolve(name)
        top = Descriptor(image.descriptor.media_type, image.digest, image.descriptor.size)
        super().__init__(store.layout, top, name)
        self.store = store
        self.image = image
        self.reference = name_of(name, image.names)

    def list_attachments(
        self, subject: Digest, *, tags: tuple[str, ...] | None = None
    ) -> list[Attachment]:
        return _only_tags(self.store.referrers(subject), tags)


def name_of(text: str, names: tuple[Reference, ...]) -> Reference | None:
    """The name a stored image was asked for by (or its only name, when asked by ID)."""
    from forklift.errors import InvalidInput
    from forklift.reference import parse_reference

    try:
        ref = parse_reference(text)
    except InvalidInput:
        return names[0] if len(names) == 1 else None
    if ref.digest is not None:
        return next((n for n in names if n.name == ref.name), ref)
    return ref


class StoreDestination(LayoutDestination):
    """The local store; the copied image gets ``names`` (or stays dangling without any)."""

    def __init__(self, store: Store, names: tuple[Reference, ...] = ()) -> None:
        super().__init__(store.layout, "the local store")
        self.store = store
        self.names = names
        self._hold = contextlib.ExitStack()
        # Shared store lock from the first blob to the tag, so prune cannot collect in between.
        self._hold.enter_context(store.writing())

    def commit(self) -> None:
        for desc, names in self._tops:
            self.store.add_image(desc, self.names if names is None else names)
        for att, raw in self._attached:
            self.store.attach(att.subject, raw, media_type=att.descriptor.media_type, tag=att.tag)
        self._attached.clear()

    def close(self) -> None:
        self._hold.close()


class OciDirSource(LayoutSource):
    """``oci:DIR[:REF]``: an image of an OCI layout directory, by its ref name."""

    def __init__(self, directory: str, ref: str | None) -> None:
        layout = OciLayout(directory)
        super().__init__(
            layout, select(layout, ref, f"oci:{directory}"), f"oci:{directory}:{ref or ''}"
        )


def select(layout: OciLayout, ref: str | None, where: str) -> Descriptor:
    """The index.json entry named ``ref`` (or the only entry when ``ref`` is None)."""
    entries = layout.find(None)
    if ref:
        hits = [e for e in entries if e.annotations.get(REF_NAME) == ref]
        if not hits:
            # Some writers store the full name, some only the tag: accept either spelling.
            hits = [e for e in entries if e.annotations.get(CONTAINERD_NAME) == ref]
        if not hits:
            known = sorted({e.annotations.get(REF_NAME, "") for e in entries} - {""})
            raise NotFound(
                f"{where}: no image named {ref!r}",
                hint=f"names there: {', '.join(known) or 'none'}",
            )
        return _plain_top(hits[0])
    # attached artifacts (signatures next to the image) are not candidates
    entries = [
        e
        for e in entries
        if not attach_index.is_attachment(e) and attach_index.foreign_attachment(e) is None
    ]
    if len(entries) == 1:
        return _plain_top(entries[0])
    if not entries:
        raise NotFound(f"{where}: the layout holds no images")
    known = sorted({e.annotations.get(REF_NAME, "") for e in entries} - {""})
    raise InvalidInput(
        f"{where}: holds {len(entries)} images; name one ({where}:NAME)",
        hint=f"names there: {', '.join(known) or 'none'}",
    )


def _plain_top(desc: Descriptor) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size, platform=desc.platform)


class OciDirDestination(LayoutDestination):
    """``oci:DIR[:REF]``: writes into (creating) an OCI layout directory."""

    requires_oci = True

    def __init__(self, directory: str, ref: str | None) -> None:
        path = Path(directory)
        existed = path.exists()
        super().__init__(OciLayout(path, create=True), f"oci:{directory}:{ref or ''}")
        self.ref = ref
        self._created = not existed

    def commit(self) -> None:
        entries = list(self.layout.read_index().manifests)
        for desc, names in self._tops:
            ref_names: list[tuple[str, dict[str, str]]] = []
            if names:
                for n in names:
                    ref_names.append((n.tag or str(n), {CONTAINERD_NAME: str(n)}))
            elif self.ref:
                ref_names.append((self.ref, {}))
            if not ref_names:
                if not any(e.digest == desc.digest for e in entries):
                    entries.append(desc)
                continue
            for name, extra in ref_names:
                key = (name, extra.get(CONTAINERD_NAME))
                entries = [
                    e
                    for e in entries
                    if (e.annotations.get(REF_NAME), e.annotations.get(CONTAINERD_NAME)) != key
                ]
                entries.append(
                    Descriptor(
                        desc.media_type,
                        desc.digest,
                        desc.size,
                        annotations={**extra, REF_NAME: name},
                    )
                )
        entries = self._record_attachments(entries)
        self.layout.write_index(entries)
        with contextlib.suppress(OSError):
            self.layout.tmp_dir.rmdir()

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.layout.tmp_dir.rmdir()
        if self._created:
            shutil.rmtree(self.layout.root, ignore_errors=True)
