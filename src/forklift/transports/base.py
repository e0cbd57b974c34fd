"""The two interfaces every place an image can live implements, and progress reporting.

An :class:`ImageSource` hands out manifests and blob streams; an
:class:`ImageDestination` takes them. The copy engine (:mod:`.copy`) moves an
image from any source to any destination, verifying every digest on the way.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import BinaryIO, Protocol, Self

from forklift.errors import UsageError
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.referrers import Attachment
from forklift.reference import Reference


class ImageSource(abc.ABC):
    """Somewhere an image can be read from."""

    #: human-readable name for messages (``oci:/tmp/x:latest``)
    description: str = "source"
    #: the image's name where it has one (a registry reference, a stored image's name):
    #: what a signature policy judges it by
    reference: Reference | None = None

    @abc.abstractmethod
    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        """Manifest bytes and media type: the named image's (``None``) or a child's by digest.

        Implementations verify the bytes against ``digest`` when one is given.
        """

    @abc.abstractmethod
    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """A stream of the blob's bytes (the engine verifies them).

        A source that must hash what it reads anyway may return a
        :class:`~forklift.oci.digest.VerifyingReader` of ``desc``'s digest and
        size: the engine then uses it as is instead of hashing the bytes twice.
        """

    def blob_path(self, desc: Descriptor) -> Path | None:
        """A local file holding the blob, when there is one (lets copies avoid a pipe)."""
        return None

    def list_attachments(
        self, subject: Digest, *, tags: tuple[str, ...] | None = None
    ) -> list[Attachment]:
        """Artifacts attached to the manifest ``subject`` (signatures, attestations, SBOMs).

        Referrers (manifests whose ``subject`` it is) and cosign's tag layout
        (``sha256-<hex>.sig``...); ``tags`` limits which tag-layout kinds are
        looked up (default: ``sig``, ``att``, ``sbom``). Their manifests are read
        with :meth:`get_manifest`. Sources that cannot hold attachments have none.
        """
        return []

    def close(self) -> None:
        """Release files and connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageDestination(abc.ABC):
    """Somewhere an image can be written to. Nothing is visible until :meth:`commit`."""

    description: str = "destination"
    #: False for formats that cannot hold an image index (docker-archive)
    supports_index: bool = True
    #: True for OCI layouts: Docker schema 2 manifests are converted to OCI on the way in,
    #: as readers of OCI layouts (skopeo, umoci) accept only OCI media types there
    requires_oci: bool = False
    #: True if :meth:`put_attachment` can keep signatures, attestations and SBOMs
    supports_attachments: bool = False

    def has_blob(self, desc: Descriptor) -> bool:
        """True if the destination already holds this blob (it is then not copied)."""
        return False

    def reuse_blob(self, desc: Descriptor, source: ImageSource) -> str | None:
        """Make the blob present without reading it from ``source``, if the destination can.

        Returns how (``"exists"``, or e.g. ``"mounted from team/base"`` for a
        registry's cross-repository mount), or None when the bytes must be
        copied. The engine asks this before opening the source's stream. The
        default is :meth:`has_blob`.
        """
        return "exists" if self.has_blob(desc) else None

    @abc.abstractmethod
    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        """Store a blob. Must read ``stream`` to EOF (which verifies it) before keeping it."""

    @abc.abstractmethod
    def put_manifest(
        self,
        raw: bytes,
        media_type: str,
        *,
        top_level: bool,
        names: tuple[Reference, ...] | None = None,
    ) -> None:
        """Store a manifest; ``top_level`` marks the image being copied (which gets ``names``,
        or the destination's own default names when ``None``)."""

    def put_attachment(self, attachment: Attachment, raw: bytes) -> Attachment:
        """Store the manifest ``raw`` attached to ``attachment.subject`` (its blobs are there).

        A referrer goes where the destination lists referrers; a tag-layout
        manifest (``attachment.tag``) is merged into the one the destination
        has for that subject and kind. Returns what was stored.
        """
        raise UsageError(f"{self.description} cannot hold attached artifacts")

    def commit(self) -> None:
        """Make everything written visible (tags, index.json, the archive file)."""

    def abort(self) -> None:
        """Throw away what was written."""

    def close(self) -> None:
        """Release resources; an uncommitted destination is aborted."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        self.close()


class ImagePolicy(Protocol):
    """A signature policy the copy engine applies before it moves a byte (``forklift.sign``)."""

    def check_source(
        self, source: ImageSource, reference: Reference | None, top: Descriptor
    ) -> bool:
        """Raise if the image ``top`` describes may not be copied; True if signatures were
        checked (the copy then keeps them with the image)."""
        ...

    def trust_child(self, reference: Reference | None, parent: Digest, child: Digest) -> None:
        """The image ``child`` was picked from the accepted index ``parent``."""
        ...


class CopyProgress(Protocol):
    """Receives events from the copy engine (the CLI draws bars from them)."""

    def blob_started(self, desc: Descriptor, *, skipped: bool) -> None: ...

    def blob_advanced(self, desc: Descriptor, nbytes: int) -> None: ...

    def blob_finished(self, desc: Descriptor) -> None: ...

    def message(self, text: str) -> None: ...
