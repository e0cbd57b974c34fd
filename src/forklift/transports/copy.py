"""The one copy engine: moves an image between any source and destination.

Blobs the destination already has are skipped; every blob is streamed through
a :class:`~forklift.oci.digest.VerifyingReader`, so a destination only keeps
bytes whose digest and size are what the manifest promised. ``push``, ``pull``,
``save``, ``load`` and ``copy`` are all this function.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from forklift import cancel
from forklift.errors import InvalidInput, NotFound, UsageError
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, VerifyingReader
from forklift.oci.manifest import ImageIndex, ImageManifest, parse_manifest
from forklift.oci.platform import Platform, host_platform
from forklift.oci.referrers import Attachment
from forklift.reference import Reference
from forklift.store.store import Store
from forklift.transports.base import CopyProgress, ImageDestination, ImagePolicy, ImageSource
from forklift.transports.names import open_destination, open_source


@dataclass(frozen=True)
class CopyResult:
    """What a copy did: the top-level manifest written and how much moved."""

    digest: Digest
    media_type: str
    size: int
    blobs_copied: int
    blobs_skipped: int
    bytes_copied: int
    #: blobs the destination obtained without their bytes (a registry's cross-repository
    #: mount); they are counted in ``blobs_skipped`` too
    blobs_mounted: int = 0
    #: attached artifacts (signatures, attestations, SBOMs) copied with the image
    attachments: tuple[Attachment, ...] = ()
    #: attached artifacts the destination could not take (why, per attachment)
    attachments_left: tuple[str, ...] = ()


#: How long a cancelled copy waits for its other blob copies to stop.
_STOP_WAIT = 0.1


class _Counting:
    """Reports bytes read to a progress sink."""

    def __init__(
        self, raw: BinaryIO | VerifyingReader, desc: Descriptor, progress: CopyProgress
    ) -> None:
        self._raw = raw
        self._desc = desc
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._progress.blob_advanced(self._desc, len(data))
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        n = self._raw.readinto(buf)  # type: ignore[union-attr]
        if n:
            self._progress.blob_advanced(self._desc, n)
        return n


class _Copier:
    def __init__(
        self,
        src: ImageSource,
        dst: ImageDestination,
        progress: CopyProgress | None,
        jobs: int,
    ) -> None:
        self.src = src
        self.dst = dst
        self.progress = progress
        self.jobs = max(1, jobs)
        self.copied = 0
        self.skipped = 0
        self.mounted = 0
        self.bytes = 0
        #: manifests written: (digest at the source, digest at the destination)
        self.manifests: list[tuple[Digest, Digest]] = []
        self.attachments: list[Attachment] = []
        self.attachments_left: list[str] = []

    def blob(self, desc: Descriptor) -> None:
        reused = self.dst.reuse_blob(desc, self.src)
        if reused is not None:
            self.skipped += 1
            if reused != "exists":
                self.mounted += 1
            if self.progress:
                if reused == "exists":
                    self.progress.blob_started(desc, skipped=True)
                else:
                    self.progress.message(f"{desc.kind.capitalize()} {desc.digest}: {reused}")
            return
        try:
            raw = self.src.open_blob(desc)
        except NotFound:
            if desc.media_type in mt.NONDISTRIBUTABLE:
                if self.progress:
                    self.progress.message(f"skipping non-distributable layer {desc.digest}")
                return
            raise
        if self.progress:
            self.progress.blob_started(desc, skipped=False)
        with raw:
            stream: Any = raw
            if not (
                isinstance(raw, VerifyingReader)
                and raw.expected == desc.digest
                and raw.expected_size == desc.size
            ):
                stream = VerifyingReader(raw, desc.digest, desc.size, desc.kind)
            if self.progress:
                stream = _Counting(stream, desc, self.progress)
            self.dst.put_blob(desc, stream)
        self.copied += 1
        self.bytes += desc.size
        if self.progress:
            self.progress.blob_finished(desc)

    def image(
        self,
        raw: bytes,
        manifest: ImageManifest,
        *,
        top_level: bool,
        names: Any,
        present: bool = False,
    ) -> tuple[bytes, str]:
        """Copy one image's blobs, then its manifest (converted when the destination needs OCI).

        ``present``: the destination is known to hold the image already (its index is
        there), so no blob is checked.
        """
        layers = list({layer.digest: layer for layer in manifest.layers}.values())
        written = manifest
        if self.dst.requires_oci and manifest.media_type == mt.DOCKER_MANIFEST:
            written = to_oci_manifest(manifest)
        written_raw = raw if written is manifest else written.to_bytes()
        if present or self.dst.has_image(Digest.of(written_raw), top_level=top_level):
            # everything is there already: nothing to check blob by blob
            for desc in (manifest.config, *layers):
                self.skipped += 1
                if self.progress:
                    self.progress.blob_started(desc, skipped=True)
        else:
            # The config first (small; some destinations need it before layers), then
            # layers in parallel.
            self.blob(manifest.config)
            if self.jobs > 1 and len(layers) > 1:
                # imported here: a copy with nothing to move never needs it (start-up time)
                from concurrent.futures import ThreadPoolExecutor, wait

                pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(layers)))
                futures = [pool.submit(self.blob, layer) for layer in layers]
                try:
                    for future in futures:
                        future.result()
                except BaseException as exc:
                    # Queued copies are dropped; running ones stop at their next read when
                    # the command was cancelled (cancel.check in VerifyingReader), which must
                    # end now even if one is stuck in a read: it is waited for only briefly.
                    pool.shutdown(wait=False, cancel_futures=True)
                    wait(futures, timeout=_STOP_WAIT if isinstance(exc, cancel.Cancelled) else None)
                    raise
                pool.shutdown()
            else:
                for layer in layers:
                    cancel.check()
                    self.blob(layer)
        self.dst.put_manifest(written_raw, written.media_type, top_level=top_level, names=names)
        self.manifests.append((Digest.of(raw), Digest.of(written_raw)))
        return written_raw, written.media_type

    def index(self, raw: bytes, index: ImageIndex, *, names: Any) -> tuple[bytes, str]:
        """Copy every image of an index, then the index (rewritten if children were converted)."""
        converts = self.dst.requires_oci and index.media_type == mt.DOCKER_MANIFEST_LIST
        # an index already in place (under the destination's name) brings all its images
        present = not converts and self.dst.has_image(Digest.of(raw), top_level=True)
        children = []
        for child in index.manifests:
            child_raw, _ = self.src.get_manifest(child.digest)
            child.digest.verify(child_raw, "manifest")
            child_manifest = parse_manifest(
                child_raw, child.media_type, what=f"manifest {child.digest}"
            )
            if isinstance(child_manifest, ImageIndex):
                raise InvalidInput(
                    f"{self.src.description}: nested image indexes are not supported"
                )
            new_raw, new_type = self.image(
                child_raw, child_manifest, top_level=False, names=None, present=present
            )
            children.append(
                replace(child, media_type=new_type, digest=Digest.of(new_raw), size=len(new_raw))
            )
        source_digest = Digest.of(raw)
        if converts:
            index = replace(index, manifests=tuple(children), media_type=mt.OCI_INDEX, raw=b"")
            raw = index.to_bytes()
        self.dst.put_manifest(raw, index.media_type, top_level=True, names=names)
        self.manifests.append((source_digest, Digest.of(raw)))
        return raw, index.media_type

    def attached(self, subjects: list[tuple[Digest, Digest]], depth: int = 0) -> None:
        """Copy what is attached to each copied manifest, then what is attached to those."""
        if not self.dst.supports_attachments:
            return
        for source_digest, written in subjects:
            found = self.src.list_attachments(source_digest)
            if not found:
                continue
            if written != source_digest:
                # converted on the way (Docker -> OCI): signatures name the old digest
                self.attachments_left.extend(
                    f"{a.kind()} {a.digest}: the image's manifest was converted, "
                    "so it no longer names it"
                    for a in found
                )
                continue
            nested: list[tuple[Digest, Digest]] = []
            for att in found:
                raw, media_type = self.src.get_manifest(att.digest)
                att.digest.verify(raw, "manifest")
                manifest = parse_manifest(raw, media_type, what=f"attached manifest {att.digest}")
                if isinstance(manifest, ImageManifest):
                    self.blob(manifest.config)
                    for layer in manifest.layers:
                        self.blob(layer)
                else:
                    # an attached index (rare): its manifests first, by digest
                    for child in manifest.manifests:
                        child_raw, _ = self.src.get_manifest(child.digest)
                        child.digest.verify(child_raw, "manifest")
                        child_manifest = parse_manifest(child_raw, child.media_type)
                        if isinstance(child_manifest, ImageManifest):
                            self.image(child_raw, child_manifest, top_level=False, names=None)
                stored = self.dst.put_attachment(att, raw)
                self.attachments.append(stored)
                if self.progress:
                    self.progress.message(f"Copied {att.kind()} {att.digest}")
                nested.append((att.digest, att.digest))
            if depth < 3:
                # e.g. a signature of an SBOM attached to the image
                self.attached(nested, depth + 1)


def to_oci_manifest(manifest: ImageManifest) -> ImageManifest:
    """The OCI form of a Docker schema 2 manifest (same blobs, OCI media types)."""

    def convert(desc: Descriptor) -> Descriptor:
        return replace(desc, media_type=mt.DOCKER_TO_OCI.get(desc.media_type, desc.media_type))

    layers = []
    for layer in manifest.layers:
        if layer.media_type == mt.DOCKER_LAYER_FOREIGN:
            layers.append(replace(layer, media_type=mt.OCI_LAYER_ND_GZIP))
        else:
            layers.append(convert(layer))
    return replace(
        manifest,
        config=replace(manifest.config, media_type=mt.OCI_CONFIG),
        layers=tuple(layers),
        media_type=mt.OCI_MANIFEST,
        raw=b"",
    )


def copy_image(
    src: ImageSource,
    dst: ImageDestination,
    *,
    platform: Platform | None = None,
    all_platforms: bool = False,
    names: tuple[Reference, ...] | None = None,
    progress: CopyProgress | None = None,
    jobs: int = 4,
    referrers: bool = False,
    policy: ImagePolicy | None = None,
) -> CopyResult:
    """Copy the image ``src`` names into ``dst`` (without committing ``dst``).

    From a multi-platform index, the ``platform`` image (default: this host's)
    is copied, or with ``all_platforms`` the whole index. With ``referrers``,
    what is attached to each copied manifest (signatures, attestations, SBOMs,
    and what is attached to those) comes along, before the destination commits
    the image's name; attachments a destination cannot hold are listed in
    :attr:`CopyResult.attachments_left`. A ``policy`` judges the image (by
    ``src.reference``) before anything is copied; an image it wants signed is
    copied with its signatures.
    """
    copier = _Copier(src, dst, progress, jobs)
    raw, media_type = src.get_manifest()
    if policy is not None:
        top = Descriptor(media_type, Digest.of(raw), len(raw))
        if policy.check_source(src, src.reference, top):
            referrers = True
    manifest = parse_manifest(raw, media_type, what=f"manifest of {src.description}")
    if isinstance(manifest, ImageIndex) and not all_platforms:
        child = manifest.select(platform or host_platform(), src.description)
        if policy is not None:
            policy.trust_child(src.reference, Digest.of(raw), child.digest)
        raw, media_type = src.get_manifest(child.digest)
        manifest = parse_manifest(raw, child.media_type, what=f"manifest {child.digest}")
    if isinstance(manifest, ImageIndex):
        if not dst.supports_index:
            raise UsageError(
                f"{dst.description} cannot hold a multi-platform image; choose one with --platform"
            )
        raw, media_type = copier.index(raw, manifest, names=names)
    else:
        raw, media_type = copier.image(raw, manifest, top_level=True, names=names)
    if referrers:
        copier.attached(list(copier.manifests))
    return CopyResult(
        digest=Digest.of(raw),
        media_type=media_type,
        size=len(raw),
        blobs_copied=copier.copied,
        blobs_skipped=copier.skipped,
        bytes_copied=copier.bytes,
        blobs_mounted=copier.mounted,
        attachments=tuple(copier.attachments),
        attachments_left=tuple(copier.attachments_left),
    )


def copy(
    source: str,
    destination: str,
    *,
    store: Store | None = None,
    platform: Platform | str | None = None,
    all_platforms: bool = False,
    progress: CopyProgress | None = None,
    jobs: int = 4,
    source_options: dict[str, Any] | None = None,
    destination_options: dict[str, Any] | None = None,
    referrers: bool = True,
    policy: ImagePolicy | None = None,
) -> CopyResult:
    """Copy an image between two transport names (``forklift copy SRC DST``).

    Signatures, attestations and SBOMs attached to the image come along
    (``referrers=False`` leaves them) where the destination can hold them.

    >>> copy("oci:/tmp/layout:latest", "docker-archive:/tmp/img.tar:app:1")
    """
    if isinstance(platform, str):
        platform = Platform.parse(platform)
    with (
        open_source(source, store, **(source_options or {})) as src,
        open_destination(destination, store, **(destination_options or {})) as dst,
    ):
        result = copy_image(
            src,
            dst,
            platform=platform,
            all_platforms=all_platforms,
            progress=progress,
            jobs=jobs,
            referrers=referrers,
            policy=policy,
        )
        dst.commit()
    return result
