"""The ``docker://`` transport: a registry repository as an image source or destination.

:class:`RegistrySource` reads an image (manifest, config, layers) from a
repository through a :class:`RegistryClient`; :class:`RegistryDestination`
writes one. Together with the one copy engine
(:func:`forklift.transports.copy.copy_image`) they are ``push``, ``pull`` and
``copy docker://...``:

* nothing moves that the destination has: the engine asks
  :meth:`RegistryDestination.reuse_blob` first, which sends a ``HEAD`` and
  then tries a cross-repository mount, from the source repository when the
  copy stays within one registry, else from repositories remembered to hold
  the blob (:class:`~forklift.registry.client.BlobLocations`);
* manifests of an index's images are pushed by digest as the engine copies
  them, and the top-level manifest by tag only on :meth:`commit`, so a tag
  never points at something incomplete;
* every blob read from a registry is hashed once, while streamed, and a
  mismatch is raised before the consumer can see the end of the stream.

``forklift.transports.names`` imports this module when a name starts with
``docker://`` and calls :func:`open_source` / :func:`open_destination`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from forklift.errors import DigestMismatch, InvalidInput, UsageError
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, VerifyingReader
from forklift.oci.referrers import Attachment
from forklift.reference import Reference, parse_reference
from forklift.registry.client import attachments as attached
from forklift.registry.client.auth import push_scope
from forklift.registry.client.blob_locations import BlobLocations
from forklift.registry.client.client import (
    BlobPush,
    ManifestResponse,
    PushedManifest,
    RegistryClient,
)
from forklift.registry.client.credentials import Credentials, CredentialStore
from forklift.registry.client.options import ClientOptions
from forklift.registry.client.retry import Deadline
from forklift.registry.client.upload import UploadSession
from forklift.store.store import Store
from forklift.transports.base import ImageDestination, ImageSource


class _RegistryBlobStream(VerifyingReader):
    """A verifying stream whose mismatch error says which registry sent the bad bytes."""

    def __init__(self, raw: BinaryIO, desc: Descriptor, where: str) -> None:
        super().__init__(raw, desc.digest, desc.size, desc.kind)
        self.where = where

    def _blame(self, exc: DigestMismatch) -> DigestMismatch:
        return DigestMismatch(f"{exc.message}: {self.where} sent different bytes")

    def read(self, n: int = -1) -> bytes:
        try:
            return super().read(n)
        except DigestMismatch as exc:
            raise self._blame(exc) from None

    def readinto(self, buf: bytearray | memoryview) -> int:
        try:
            return super().readinto(buf)
        except DigestMismatch as exc:
            raise self._blame(exc) from None


def registry_reference(spec: str | Reference) -> Reference:
    """The reference after ``docker://`` (Docker's normalisation; ``:latest`` if no tag)."""
    return spec if isinstance(spec, Reference) else parse_reference(spec)


class _Endpoint:
    """A client for one repository, owned (closed with the endpoint) or borrowed."""

    def __init__(
        self,
        ref: Reference,
        client: RegistryClient | None,
        options: ClientOptions | None,
        credentials: Credentials | CredentialStore | None,
        blob_locations: BlobLocations | None,
        deadline: Deadline | None,
    ) -> None:
        self.ref = ref
        self.repository = ref.path
        self._owns_client = client is None
        if client is None:
            client = RegistryClient(
                ref.domain, options=options, credentials=credentials, blob_locations=blob_locations
            )
        elif client.registry != ref.domain:
            raise UsageError(f"{ref} is not on {client.registry}")
        self.client = client
        # one deadline for everything this endpoint does (the whole copy, when shared)
        self.deadline = deadline if deadline is not None else client.session.deadline()

    def close_client(self) -> None:
        if self._owns_client:
            self.client.close()


class RegistrySource(_Endpoint, ImageSource):
    """The image ``ref`` names in a registry (by tag, or by digest, verified)."""

    def __init__(
        self,
        ref: str | Reference,
        *,
        client: RegistryClient | None = None,
        options: ClientOptions | None = None,
        credentials: Credentials | CredentialStore | None = None,
        blob_locations: BlobLocations | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        ref = registry_reference(ref)
        super().__init__(ref, client, options, credentials, blob_locations, deadline)
        self.description = f"docker://{ref}"
        self.reference = ref
        self._top: ManifestResponse | None = None
        # manifests already fetched while listing attachments (read again by digest next)
        self._fetched: dict[Digest, ManifestResponse] = {}

    def top(self) -> ManifestResponse:
        """The manifest (or index) ``ref`` names, fetched once and verified.

        By digest, its bytes must hash to that digest; by tag, to the digest
        the registry announces.
        """
        if self._top is None:
            self._top = self.client.resolve(self.ref, deadline=self.deadline)
        return self._top

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        if digest is None or (self._top is not None and digest == self._top.digest):
            got = self.top()
        elif digest in self._fetched:
            got = self._fetched[digest]
        else:
            got = self.client.get_manifest(self.repository, digest, deadline=self.deadline)
        return got.data, got.media_type

    def list_attachments(
        self, subject: Digest, *, tags: tuple[str, ...] | None = None
    ) -> list[Attachment]:
        return attached.list_attachments(
            self.client,
            self.repository,
            subject,
            tags=tags,
            deadline=self.deadline,
            fetched=self._fetched,
        )

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        reader = self.client.open_blob(
            self.repository,
            desc.digest,
            size=desc.size,
            what=desc.kind,
            # hashed once, by the stream below, which the copy engine uses as is
            verify=False,
            deadline=self.deadline,
        )
        where = f"{self.client.registry}/{self.repository}"
        stream = _RegistryBlobStream(cast(BinaryIO, reader), desc, where)
        return cast(BinaryIO, stream)

    def read_blob(self, desc: Descriptor, *, max_size: int = 16 * 1024 * 1024) -> bytes:
        """A small blob (a config) in memory, verified."""
        if desc.size > max_size:
            raise InvalidInput(f"{desc.kind} {desc.digest} is larger than {max_size} bytes")
        return self.client.fetch_blob_bytes(
            self.repository,
            desc.digest,
            max_size=max_size,
            what=desc.kind,
            deadline=self.deadline,
        )

    def __enter__(self) -> RegistrySource:
        return self

    def close(self) -> None:
        self.close_client()


class RegistryDestination(_Endpoint, ImageDestination):
    """A repository to push into; ``ref``'s tag (or digest) names the image.

    Blobs are made present at once (``HEAD``, mount or upload); manifests of
    an index's images are pushed by digest when the engine hands them over;
    the top-level manifest is pushed under the tag by :meth:`commit`.
    """

    supports_index = True
    requires_oci = False
    supports_attachments = True

    def __init__(
        self,
        ref: str | Reference,
        *,
        client: RegistryClient | None = None,
        options: ClientOptions | None = None,
        credentials: Credentials | CredentialStore | None = None,
        blob_locations: BlobLocations | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        ref = registry_reference(ref)
        super().__init__(ref, client, options, credentials, blob_locations, deadline)
        self.description = f"docker://{ref}"
        self._lock = threading.Lock()
        # upload sessions a registry opened instead of mounting, waiting for the bytes
        self._open_uploads: dict[Digest, UploadSession] = {}
        # the source's local files of blobs to upload (re-read only to resume an upload)
        self._local_files: dict[Digest, Path] = {}
        self._top: tuple[bytes, str] | None = None
        #: the top-level manifest as pushed by :meth:`commit`
        self.pushed: PushedManifest | None = None
        #: how each blob got there: "exists", "mounted from REPO" or "uploaded"
        self.blob_results: dict[Digest, str] = {}

    def has_blob(self, desc: Descriptor) -> bool:
        return self.client.has_blob(self.repository, desc.digest, deadline=self.deadline)

    def reuse_blob(self, desc: Descriptor, source: ImageSource) -> str | None:
        mount_from: tuple[str, ...] = ()
        if (
            isinstance(source, RegistrySource)
            and source.client.registry == self.client.registry
            and source.repository != self.repository
        ):
            # a copy within one registry: the source repository holds every blob
            mount_from = (source.repository,)
        got = self.client.reuse_blob(
            self.repository, desc.digest, mount_from=mount_from, deadline=self.deadline
        )
        if isinstance(got, BlobPush):
            how = "exists" if got.how == "exists" else f"mounted from {got.mounted_from}"
            with self._lock:
                self.blob_results[desc.digest] = how
            return how
        path = source.blob_path(desc)
        with self._lock:
            if got is not None:
                self._open_uploads[desc.digest] = got
            if path is not None:
                self._local_files[desc.digest] = path
        return None

    def put_blob(self, desc: Descriptor, stream: BinaryIO) -> None:
        with self._lock:
            session = self._open_uploads.pop(desc.digest, None)
            path = self._local_files.pop(desc.digest, None)
        # The upload reads exactly ``size`` bytes and then asks for one more: the
        # engine's verifying stream raises on that read if the bytes were wrong,
        # before the closing PUT, so the registry never gets a blob that does not
        # match (and it checks the digest itself too).
        self.client.upload_blob(
            self.repository,
            stream,
            desc.digest,
            desc.size,
            what=desc.kind,
            deadline=self.deadline,
            into=session,
            # with the source's local file, a large blob streams from the verifying
            # stream instead of being buffered a chunk at a time for resumes
            reopen=_reopener(path) if path is not None else None,
        )
        with self._lock:
            self.blob_results[desc.digest] = "uploaded"

    def put_manifest(
        self,
        raw: bytes,
        media_type: str,
        *,
        top_level: bool,
        names: tuple[Reference, ...] | None = None,
    ) -> None:
        if not top_level:
            # an index's image: by digest, before the index that refers to it
            self.client.put_manifest(
                self.repository, Digest.of(raw), raw, media_type, deadline=self.deadline
            )
            return
        self._top = (raw, media_type)

    def put_attachment(self, attachment: Attachment, raw: bytes) -> Attachment:
        # pushed at once, before commit tags the image: a registry that wants images
        # signed (forklift serve with a policy) finds the signature first
        return attached.push_attachment(
            self.client, self.repository, attachment, raw, deadline=self.deadline
        )

    def commit(self) -> None:
        """Push the top-level manifest under the destination's tag (or digest)."""
        if self._top is None:
            return
        raw, media_type = self._top
        if self.ref.digest is not None:
            digest = Digest.of(raw, self.ref.digest.algorithm)
            if digest != self.ref.digest:
                raise DigestMismatch(
                    f"cannot push to {self.ref}: the image's manifest is {digest}, "
                    "not the digest in the destination"
                )
            target: str | Digest = digest
        else:
            target = self.ref.tag or "latest"
        self.pushed = self.client.put_manifest(
            self.repository, target, raw, media_type, deadline=self.deadline
        )
        self._top = None

    def abort(self) -> None:
        """Cancel upload sessions still open (a registry would keep them until they expire)."""
        with self._lock:
            sessions = list(self._open_uploads.values())
            self._open_uploads.clear()
        for session in sessions:
            with contextlib.suppress(Exception):
                self.client.session.request(
                    "DELETE",
                    session.location,
                    what="cancel of an upload",
                    scopes=(push_scope(self.repository),),
                    ok=(204, 200, 202, 404),
                    retry=False,
                    deadline=Deadline(5.0),
                )

    def __enter__(self) -> RegistryDestination:
        return self

    def close(self) -> None:
        self.abort()
        self.close_client()


def _reopener(path: Path) -> Callable[[int], BinaryIO]:
    def reopen(offset: int) -> BinaryIO:
        f = open(path, "rb")  # noqa: SIM115  (the caller closes it)
        f.seek(offset)
        return f

    return reopen


def _endpoint_options(options: dict[str, Any]) -> dict[str, Any]:
    known = {"client", "options", "credentials", "blob_locations", "deadline"}
    unknown = set(options) - known
    if unknown:
        raise UsageError(f"unknown docker:// transport options: {', '.join(sorted(unknown))}")
    return options


def open_source(spec: str, store: Store | None = None, **options: Any) -> RegistrySource:
    """Open ``docker://SPEC`` for reading (called by ``forklift.transports.names``).

    ``options``: ``client`` (a :class:`RegistryClient` to share), ``options``
    (:class:`ClientOptions`), ``credentials``, ``blob_locations``, ``deadline``.
    """
    return RegistrySource(spec, **_endpoint_options(options))


def open_destination(spec: str, store: Store | None = None, **options: Any) -> RegistryDestination:
    """Open ``docker://SPEC`` for writing (same ``options`` as :func:`open_source`)."""
    return RegistryDestination(spec, **_endpoint_options(options))
