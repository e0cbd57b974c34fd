"""``RegistryClient``: the distribution-spec API of one registry, verified and resumable.

One client talks to one registry (``docker.io``, ``localhost:5000``...) and
is safe to share between threads: drive blob transfers from a thread pool
(:func:`~forklift.transports.registry.concurrency.bounded_map`). Everything it
downloads is checked against its digest; everything it uploads is checked by
the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from forklift.errors import (
    DigestMismatch,
    InvalidDigest,
    InvalidInput,
    NotFound,
    RegistryError,
    SizeMismatch,
    TransportError,
    UsageError,
)
from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageIndex, Manifest, detect_media_type, parse_manifest
from forklift.reference import Reference
from forklift.transports.registry import download
from forklift.transports.registry import httpclient as http
from forklift.transports.registry.auth import CATALOG_SCOPE, pull_scope, push_scope
from forklift.transports.registry.blob_locations import BlobLocations
from forklift.transports.registry.credentials import Credentials, CredentialStore
from forklift.transports.registry.errors import AuthenticationRequired, Denied, RegistryStatusError
from forklift.transports.registry.options import ClientOptions
from forklift.transports.registry.retry import Deadline
from forklift.transports.registry.session import PingResult, Session

if TYPE_CHECKING:
    # imported where used: a pull or a re-push never uploads (start-up time)
    from forklift.transports.registry import upload

# What forklift accepts when fetching a manifest: every OCI and Docker schema 2 type.
MANIFEST_ACCEPT = (mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ManifestResponse:
    """A manifest as the registry sent it: the exact bytes, their media type and digest."""

    data: bytes
    media_type: str
    digest: Digest

    @property
    def size(self) -> int:
        """The manifest's size in bytes."""
        return len(self.data)

    def descriptor(self) -> Descriptor:
        """A descriptor of this manifest (media type, digest, size)."""
        return Descriptor(self.media_type, self.digest, len(self.data))

    def parse(self) -> Manifest:
        """The parsed manifest or index (strict; raises InvalidInput if malformed)."""
        return parse_manifest(self.data, self.media_type, what=f"manifest {self.digest}")


@dataclass(frozen=True)
class PushedManifest:
    """The result of a manifest PUT.

    ``subject_processed`` is True when the registry answered with
    ``OCI-Subject`` (it indexed the manifest's ``subject`` for the referrers
    API); when False, a manifest with a subject needs the referrers tag
    (:meth:`RegistryClient.add_referrer_to_tag_index`).
    """

    digest: Digest
    location: str | None
    subject_processed: bool


@dataclass(frozen=True)
class Referrers:
    """Manifests that refer to a subject, from the referrers API or its tag fallback."""

    manifests: tuple[Descriptor, ...]
    filtered_by_server: bool
    from_fallback_tag: bool


@dataclass(frozen=True)
class BlobPush:
    """How :meth:`RegistryClient.push_blob` got a blob into a repository."""

    digest: Digest
    how: str  # "exists", "mounted" or "uploaded"
    mounted_from: str | None = None


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def referrers_tag(digest: Digest) -> str:
    """The fallback tag of the referrers tag schema: ``<alg>-<hex>`` (at most 128 chars)."""
    return f"{digest.algorithm}-{digest.hex}"[:128]


class RegistryClient:
    """Client for one registry.

    ``registry`` is a reference's domain (``docker.io``, ``ghcr.io``,
    ``localhost:5000``). ``credentials`` are explicit credentials or a
    :class:`CredentialStore` to look them up (default: docker's config and
    containers' auth files). ``blob_locations`` remembers which repositories
    hold which blobs so pushes can mount; pass None to use the default file
    under ``$FORKLIFT_HOME`` or ``False``-y :class:`BlobLocations` of your own.
    """

    def __init__(
        self,
        registry: str,
        *,
        options: ClientOptions | None = None,
        credentials: Credentials | CredentialStore | None = None,
        blob_locations: BlobLocations | None = None,
    ) -> None:
        self.session = Session(registry, options, credentials)
        self.registry = self.session.registry
        self.options = self.session.options
        self.blob_locations = blob_locations if blob_locations is not None else BlobLocations()

    @classmethod
    def for_reference(cls, ref: Reference, **kwargs: object) -> RegistryClient:
        """A client for the registry of ``ref``."""
        return cls(ref.domain, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the connection pool (the client is also a context manager)."""
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- registry ---------------------------------------------------------------------

    def ping(self, deadline: Deadline | None = None) -> PingResult:
        """Check the registry speaks the API; learn its endpoint and auth scheme."""
        return self.session.ping(deadline)

    def login(self, credentials: Credentials, deadline: Deadline | None = None) -> Credentials:
        """Verify ``credentials``; return what to store (an identity token replaces a password
        when the token service issues one). Raises AuthenticationRequired if rejected."""
        return self.session.login(credentials, deadline)

    def catalog(self, *, page_size: int | None = None) -> Iterator[str]:
        """Repository names (``GET /v2/_catalog``), following ``Link`` pagination."""
        yield from self._paged(
            "/v2/_catalog", "repositories", (CATALOG_SCOPE,), page_size, None, "catalog"
        )

    # -- manifests --------------------------------------------------------------------

    def _manifest_path(self, repository: str, reference: str | Digest) -> str:
        return f"/v2/{repository}/manifests/{reference}"

    def _not_found(self, repository: str, reference: str | Digest) -> str:
        sep = "@" if isinstance(reference, Digest) or ":" in str(reference) else ":"
        return f"{repository}{sep}{reference} not found in {self.registry}"

    def get_manifest(
        self,
        repository: str,
        reference: str | Digest,
        *,
        accept: tuple[str, ...] = MANIFEST_ACCEPT,
        deadline: Deadline | None = None,
    ) -> ManifestResponse:
        """Fetch a manifest or index by tag or digest, verified.

        Fetched by digest, the bytes must hash to it; fetched by tag, they must
        hash to the ``Docker-Content-Digest`` the registry announces (if any).
        """
        reference = _reference(reference)
        deadline = self.session.deadline(deadline)
        attempt = 0
        while True:
            resp = self.session.request(
                "GET",
                self._manifest_path(repository, reference),
                what=f"manifest {repository}:{reference}",
                scopes=(pull_scope(repository),),
                headers={"Accept": ", ".join(accept)},
                stream=True,
                deadline=deadline,
                not_found=self._not_found(repository, reference),
            )
            try:
                buf = self._read_manifest_body(resp, f"{repository}:{reference}")
                break
            except http.HTTP_ERRORS as exc:
                # a manifest is small: fetch it again rather than resume
                attempt += 1
                if attempt >= self.options.max_attempts:
                    raise TransportError(
                        f"download of manifest {repository}:{reference} from {self.registry} "
                        f"failed: {exc}"
                    ) from None
            finally:
                resp.close()
        data = bytes(buf)
        media_type = self._manifest_media_type(resp.headers.get("content-type"), data)
        digest = self._verify_manifest(data, reference, resp.headers.get("docker-content-digest"))
        self.blob_locations.remember(self.registry, repository, [str(digest)])
        return ManifestResponse(data, media_type, digest)

    def _read_manifest_body(self, resp: http.Response, what: str) -> bytearray:
        limit = self.options.manifest_max_size
        length = resp.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise RegistryError(
                f"manifest {what} is {length} bytes, more than the {limit}-byte limit"
            )
        buf = bytearray()
        for chunk in resp.iter_raw():
            buf += chunk
            if len(buf) > limit:
                raise RegistryError(f"manifest {what} is larger than the {limit}-byte limit")
        return buf

    def _manifest_media_type(self, header: str | None, data: bytes) -> str:
        declared = _media_type(header)
        if declared in mt.MANIFESTS or declared in (
            mt.DOCKER_MANIFEST_V1,
            mt.DOCKER_MANIFEST_V1_SIGNED,
        ):
            return declared
        # some registries answer application/json or nothing: trust the document
        try:
            doc = canonical.loads(data)
        except InvalidInput:
            return declared or "application/octet-stream"
        found = detect_media_type(doc) if isinstance(doc, dict) else None
        return found or declared or "application/octet-stream"

    def _verify_manifest(self, data: bytes, reference: str | Digest, header: str | None) -> Digest:
        if isinstance(reference, Digest):
            got = Digest.of(data, reference.algorithm)
            if got != reference:
                raise download.mismatch("manifest", reference, got)
            return reference
        computed = Digest.of(data)
        if header:
            try:
                announced = Digest.parse(header.strip())
            except InvalidDigest:
                raise RegistryError(
                    f"{self.registry} sent an invalid Docker-Content-Digest {header!r}"
                ) from None
            got = Digest.of(data, announced.algorithm)
            if got != announced:
                raise download.mismatch("manifest", announced, got)
            if announced.algorithm == computed.algorithm:
                return announced
        return computed

    def resolve(self, ref: Reference, *, deadline: Deadline | None = None) -> ManifestResponse:
        """The manifest ``ref`` names (its digest if it has one, else its tag)."""
        if ref.domain != self.registry:
            raise UsageError(f"{ref} is not on {self.registry}")
        target: str | Digest = ref.digest if ref.digest is not None else (ref.tag or "latest")
        return self.get_manifest(ref.path, target, deadline=deadline)

    def head_manifest(
        self,
        repository: str,
        reference: str | Digest,
        *,
        accept: tuple[str, ...] = MANIFEST_ACCEPT,
        deadline: Deadline | None = None,
    ) -> Descriptor | None:
        """Descriptor of a manifest (``HEAD``), or None if it does not exist."""
        reference = _reference(reference)
        try:
            resp = self.session.request(
                "HEAD",
                self._manifest_path(repository, reference),
                what=f"manifest {repository}:{reference}",
                scopes=(pull_scope(repository),),
                headers={"Accept": ", ".join(accept)},
                deadline=deadline,
                not_found=self._not_found(repository, reference),
            )
        except NotFound:
            return None
        header = resp.headers.get("docker-content-digest")
        length = resp.headers.get("content-length", "")
        media_type = _media_type(resp.headers.get("content-type"))
        if not header or not length.isdigit() or media_type not in mt.MANIFESTS:
            # not enough in the headers to trust: fetch the manifest itself
            got = self.get_manifest(repository, reference, accept=accept, deadline=deadline)
            return got.descriptor()
        try:
            digest = Digest.parse(header.strip())
        except InvalidDigest:
            raise RegistryError(
                f"{self.registry} sent an invalid Docker-Content-Digest {header!r}"
            ) from None
        if isinstance(reference, Digest) and digest != reference:
            raise DigestMismatch(
                f"digest mismatch for manifest {reference}: the registry announced {digest}"
            )
        return Descriptor(media_type, digest, int(length))

    def put_manifest(
        self,
        repository: str,
        reference: str | Digest,
        data: bytes,
        media_type: str,
        *,
        deadline: Deadline | None = None,
    ) -> PushedManifest:
        """Store ``data`` as a manifest under a tag or its digest."""
        reference = _reference(reference)
        digest = Digest.of(data, reference.algorithm if isinstance(reference, Digest) else "sha256")
        if isinstance(reference, Digest) and digest != reference:
            raise DigestMismatch(
                f"digest mismatch for manifest {reference}: the bytes to push hash to {digest}"
            )
        if len(data) > self.options.manifest_max_size:
            raise UsageError(
                f"manifest is {len(data)} bytes; registries accept at most "
                f"{self.options.manifest_max_size}"
            )
        resp = self.session.request(
            "PUT",
            self._manifest_path(repository, reference),
            what=f"push of manifest {repository}:{reference}",
            scopes=(push_scope(repository),),
            headers={"Content-Type": media_type},
            body=lambda: data,
            ok=(201, 200, 202, 204),
            deadline=deadline,
        )
        header = resp.headers.get("docker-content-digest")
        if header:
            try:
                announced = Digest.parse(header.strip())
            except InvalidDigest:
                announced = None
            if (
                announced is not None
                and announced.algorithm == digest.algorithm
                and announced != digest
            ):
                raise DigestMismatch(
                    f"digest mismatch for manifest {digest}: the registry stored it as {announced}"
                )
        self.blob_locations.remember(self.registry, repository, [str(digest)])
        location = resp.headers.get("location")
        return PushedManifest(
            digest,
            self.session.follow(resp, location) if location else None,
            "oci-subject" in resp.headers,
        )

    def delete_manifest(
        self, repository: str, reference: str | Digest, *, deadline: Deadline | None = None
    ) -> None:
        """Delete a manifest (by digest; by tag where the registry allows it)."""
        reference = _reference(reference)
        self._delete(
            self._manifest_path(repository, reference),
            repository,
            f"manifest {repository}{'@' if isinstance(reference, Digest) else ':'}{reference}",
            self._not_found(repository, reference),
            deadline,
        )

    def delete_tag(self, repository: str, tag: str, *, deadline: Deadline | None = None) -> bool:
        """Delete the tag alone (``DELETE`` of the manifest by tag, OCI distribution 1.1).

        Returns False when the registry does not delete by tag: the spec lets
        it answer ``400`` or ``405``/``UNSUPPORTED`` (CNCF distribution 2.x
        answers ``DIGEST_INVALID``). Callers may then delete the manifest by
        digest, which removes every tag pointing at it.
        """
        if not tag or ":" in tag:
            raise UsageError(f"invalid tag {tag!r}")
        try:
            self.session.request(
                "DELETE",
                self._manifest_path(repository, tag),
                what=f"deletion of tag {repository}:{tag}",
                scopes=(repository_delete_scope(repository),),
                ok=(202, 200, 204),
                deadline=deadline,
                not_found=self._not_found(repository, tag),
            )
        except RegistryStatusError as exc:
            if exc.status in (400, 405) or "UNSUPPORTED" in exc.codes:
                return False
            raise
        return True

    def _delete(
        self, path: str, repository: str, what: str, not_found: str, deadline: Deadline | None
    ) -> None:
        try:
            self.session.request(
                "DELETE",
                path,
                what=f"deletion of {what}",
                scopes=(repository_delete_scope(repository),),
                ok=(202, 200, 204),
                deadline=deadline,
                not_found=not_found,
            )
        except RegistryStatusError as exc:
            if exc.status == 405 or "UNSUPPORTED" in exc.codes:
                raise RegistryError(
                    f"{self.registry} does not allow deleting {what}",
                    hint="deletion is disabled on this registry "
                    "(CNCF distribution: storage.delete.enabled)",
                ) from None
            raise

    def list_tags(
        self, repository: str, *, page_size: int | None = None, last: str | None = None
    ) -> Iterator[str]:
        """The repository's tags, following ``Link`` pagination (``n`` per page, after ``last``)."""
        yield from self._paged(
            f"/v2/{repository}/tags/list",
            "tags",
            (pull_scope(repository),),
            page_size,
            last,
            f"tag list of {repository}",
            not_found=f"repository {repository} not found in {self.registry}",
        )

    def _paged(
        self,
        path: str,
        key: str,
        scopes: tuple[str, ...],
        page_size: int | None,
        last: str | None,
        what: str,
        not_found: str | None = None,
    ) -> Iterator[str]:
        first: list[tuple[str, str]] = []
        if page_size is not None:
            first.append(("n", str(page_size)))
        if last is not None:
            first.append(("last", last))
        params: list[tuple[str, str]] | None = first or None
        url = path
        seen: set[str] = set()
        while True:
            resp = self.session.request(
                "GET", url, what=what, scopes=scopes, params=params, not_found=not_found
            )
            try:
                doc = canonical.loads(resp.content)
            except InvalidInput:
                raise RegistryError(f"{self.registry}: {what}: invalid JSON answer") from None
            items = doc.get(key) if isinstance(doc, dict) else None
            if items is not None and not isinstance(items, list):
                raise RegistryError(f"{self.registry}: {what}: {key!r} is not a list")
            for item in items or ():
                if isinstance(item, str):
                    yield item
            from forklift.transports.registry.pagination import next_link

            link = next_link(resp.headers.get_list("link"))
            if not link:
                return
            url = self.session.follow(resp, link)
            if url in seen:
                return  # a registry that links a page to itself would loop forever
            seen.add(url)
            params = None

    # -- referrers --------------------------------------------------------------------

    def referrers(
        self,
        repository: str,
        subject: Digest,
        *,
        artifact_type: str | None = None,
        deadline: Deadline | None = None,
    ) -> Referrers:
        """Manifests whose ``subject`` is ``subject`` (OCI 1.1 referrers API).

        Registries without the API (404) are read through the referrers tag
        schema: an index tagged ``<alg>-<hex>``. A filter on ``artifact_type``
        is applied here when the registry did not apply it.
        """
        params = [("artifactType", artifact_type)] if artifact_type else None
        try:
            resp = self.session.request(
                "GET",
                f"/v2/{repository}/referrers/{subject}",
                what=f"referrers of {subject}",
                scopes=(pull_scope(repository),),
                headers={"Accept": mt.OCI_INDEX},
                params=params,
                deadline=deadline,
            )
        except NotFound:
            return self._referrers_fallback(repository, subject, artifact_type, deadline)
        index = parse_manifest(resp.content, mt.OCI_INDEX, what=f"referrers of {subject}")
        if not isinstance(index, ImageIndex):
            raise RegistryError(f"{self.registry}: referrers of {subject}: not an index")
        applied = "artifacttype" in resp.headers.get("oci-filters-applied", "").lower()
        found = index.manifests
        if artifact_type and not applied:
            found = tuple(d for d in found if d.artifact_type == artifact_type)
        return Referrers(found, applied, False)

    def _referrers_fallback(
        self,
        repository: str,
        subject: Digest,
        artifact_type: str | None,
        deadline: Deadline | None,
    ) -> Referrers:
        try:
            got = self.get_manifest(
                repository, referrers_tag(subject), accept=(mt.OCI_INDEX,), deadline=deadline
            )
        except NotFound:
            return Referrers((), False, True)
        index = got.parse()
        if not isinstance(index, ImageIndex):
            raise RegistryError(
                f"{self.registry}: {repository}:{referrers_tag(subject)} is not an index"
            )
        found = index.manifests
        if artifact_type:
            found = tuple(d for d in found if d.artifact_type == artifact_type)
        return Referrers(found, False, True)

    def add_referrer_to_tag_index(
        self,
        repository: str,
        subject: Digest,
        referrer: Descriptor,
        *,
        deadline: Deadline | None = None,
    ) -> Digest:
        """Add ``referrer`` to the referrers tag index of ``subject`` (tag schema fallback)."""
        tag = referrers_tag(subject)
        manifests: list[Descriptor] = []
        try:
            existing = self.get_manifest(repository, tag, accept=(mt.OCI_INDEX,), deadline=deadline)
        except NotFound:
            existing = None
        if existing is not None:
            parsed = existing.parse()
            if isinstance(parsed, ImageIndex):
                manifests = list(parsed.manifests)
            if any(d.digest == referrer.digest for d in manifests):
                return existing.digest
        manifests.append(referrer)
        data = ImageIndex(tuple(manifests), media_type=mt.OCI_INDEX).to_bytes()
        return self.put_manifest(repository, tag, data, mt.OCI_INDEX, deadline=deadline).digest

    # -- blobs ------------------------------------------------------------------------

    def stat_blob(
        self, repository: str, digest: Digest, *, deadline: Deadline | None = None
    ) -> int | None:
        """The size of blob ``digest`` in ``repository`` (``HEAD``), or None if absent."""
        try:
            resp = self.session.request(
                "HEAD",
                f"/v2/{repository}/blobs/{digest}",
                what=f"check of blob {digest}",
                scopes=(pull_scope(repository),),
                follow_redirects=True,
                deadline=deadline,
            )
        except NotFound:
            return None
        self.blob_locations.remember(self.registry, repository, [str(digest)])
        length = resp.headers.get("content-length", "")
        return int(length) if length.isdigit() else -1

    def has_blob(
        self, repository: str, digest: Digest, *, deadline: Deadline | None = None
    ) -> bool:
        """True if ``repository`` holds blob ``digest``."""
        return self.stat_blob(repository, digest, deadline=deadline) is not None

    def get_blob(
        self,
        repository: str,
        digest: Digest,
        writer: download.BlobWriter,
        *,
        size: int | None = None,
        progress: Progress | None = None,
        what: str = "blob",
        deadline: Deadline | None = None,
    ) -> int:
        """Stream blob ``digest`` into ``writer``, verified and resumed; return its size.

        On :class:`DigestMismatch` or :class:`SizeMismatch` the writer holds
        bad bytes and must be discarded (see :meth:`download_blob` for files).
        ``what`` names the blob in messages ("layer", "config").
        """
        n = download.fetch_blob(
            self.session,
            repository,
            digest,
            writer,
            size=size,
            progress=progress,
            what=what,
            deadline=deadline,
        )
        self.blob_locations.remember(self.registry, repository, [str(digest)])
        return n

    def open_blob(
        self,
        repository: str,
        digest: Digest,
        *,
        size: int | None = None,
        progress: Progress | None = None,
        what: str = "blob",
        verify: bool = True,
        deadline: Deadline | None = None,
    ) -> download.BlobReader:
        """Blob ``digest`` as a readable stream (for copy engines that pull from sources).

        The stream resumes broken connections by itself, and with ``verify``
        the read that reaches the end raises :class:`DigestMismatch` instead of
        returning EOF when the bytes were wrong. Close it when done.
        """

        transfer = download.BlobDownload(
            self.session,
            repository,
            digest,
            size=size,
            progress=progress,
            what=what,
            deadline=deadline,
            verify=verify,
        )
        return download.BlobReader(
            transfer,
            on_end=lambda: self.blob_locations.remember(self.registry, repository, [str(digest)]),
        )

    def download_blob(
        self,
        repository: str,
        digest: Digest,
        path: Path,
        *,
        size: int | None = None,
        progress: Progress | None = None,
        what: str = "blob",
        deadline: Deadline | None = None,
    ) -> int:
        """Download a blob to ``path``; the file appears only complete and verified."""
        n = download.download_blob(
            self.session,
            repository,
            digest,
            Path(path),
            size=size,
            progress=progress,
            what=what,
            deadline=deadline,
        )
        self.blob_locations.remember(self.registry, repository, [str(digest)])
        return n

    def fetch_blob_bytes(
        self,
        repository: str,
        digest: Digest,
        *,
        max_size: int = 16 * 1024 * 1024,
        what: str = "blob",
        deadline: Deadline | None = None,
    ) -> bytes:
        """A small blob (a config) in memory, verified."""

        class _Capped:
            def __init__(self) -> None:
                self.buf = bytearray()

            def write(self, data: bytes) -> None:
                self.buf += data
                if len(self.buf) > max_size:
                    raise SizeMismatch(f"{what} {digest} is larger than {max_size} bytes")

        sink = _Capped()
        self.get_blob(repository, digest, sink, what=what, deadline=deadline)
        return bytes(sink.buf)

    def upload_blob(
        self,
        repository: str,
        reader: BinaryIO,
        digest: Digest,
        size: int,
        *,
        progress: Progress | None = None,
        what: str = "blob",
        deadline: Deadline | None = None,
        into: upload.UploadSession | None = None,
        reopen: upload.Reopen | None = None,
    ) -> None:
        """Upload ``size`` bytes read from ``reader`` as blob ``digest`` (no existence check).

        ``into`` is an upload session already open, such as the one a mount
        that fell back returns (:meth:`mount_blob`). ``progress`` gets the
        running count of bytes sent; it can step back when a chunk is resent.
        ``reopen(offset)`` returns a stream of the same bytes from ``offset``
        (a local file): a ``reader`` that cannot seek is then streamed, and
        only what a broken connection lost is read again, through it.
        """
        from forklift.transports.registry import upload

        upload.upload_blob(
            self.session,
            repository,
            reader,
            digest,
            size,
            progress=progress,
            deadline=deadline,
            upload=into,
            what=what,
            reopen=reopen,
        )
        self.blob_locations.remember(self.registry, repository, [str(digest)])

    def mount_blob(
        self,
        repository: str,
        digest: Digest,
        from_repository: str,
        *,
        deadline: Deadline | None = None,
    ) -> upload.UploadSession | None:
        """Cross-repository mount of ``digest`` from ``from_repository``.

        Returns None when mounted (201). When the registry cannot mount, it
        opens an ordinary upload instead (202): that session is returned so the
        caller can upload into it.
        """
        resp = self.session.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            what=f"mount of blob {digest} from {from_repository}",
            scopes=(push_scope(repository), pull_scope(from_repository)),
            params=[("mount", str(digest)), ("from", from_repository)],
            ok=(201, 202),
            deadline=deadline,
        )
        if resp.status_code == 201:
            self.blob_locations.remember(self.registry, repository, [str(digest)])
            return None
        location = resp.headers.get("location")
        if not location:
            raise RegistryError(f"{self.registry}: mount fell back to an upload without a Location")
        from forklift.transports.registry import upload

        return upload.UploadSession(self.session.follow(resp, location), upload.min_chunk(resp))

    def reuse_blob(
        self,
        repository: str,
        digest: Digest,
        *,
        mount_from: tuple[str, ...] = (),
        deadline: Deadline | None = None,
    ) -> BlobPush | upload.UploadSession | None:
        """Try to make blob ``digest`` present in ``repository`` without sending its bytes.

        ``HEAD`` first, then a cross-repository mount from ``mount_from`` (in
        order) or from repositories remembered to hold the blob (at most three
        mounts are tried). Returns a :class:`BlobPush` (``exists`` or
        ``mounted``) when the blob is there; otherwise None, or the upload
        session a registry opened instead of mounting (upload into it with
        ``upload_blob(..., into=session)`` so it is not left dangling).
        """
        deadline = self.session.deadline(deadline)
        if self.has_blob(repository, digest, deadline=deadline):
            return BlobPush(digest, "exists")
        candidates = [r for r in dict.fromkeys(mount_from) if r != repository]
        candidates += [
            r
            for r in self.blob_locations.repositories(
                self.registry, str(digest), exclude=repository
            )
            if r not in candidates
        ]
        for source in candidates[:3]:
            try:
                open_session = self.mount_blob(repository, digest, source, deadline=deadline)
            except (AuthenticationRequired, Denied, NotFound):
                # no read access to the source (or it is gone): try the next one
                self.blob_locations.forget(self.registry, source, str(digest))
                continue
            if open_session is None:
                return BlobPush(digest, "mounted", source)
            # the registry did not mount (the source lacks the blob, or it never mounts):
            # the session it opened instead is where the bytes go
            self.blob_locations.forget(self.registry, source, str(digest))
            return open_session
        return None

    def push_blob(
        self,
        repository: str,
        digest: Digest,
        size: int,
        open_reader: Callable[[], BinaryIO],
        *,
        progress: Progress | None = None,
        what: str = "blob",
        mount_from: tuple[str, ...] = (),
        deadline: Deadline | None = None,
    ) -> BlobPush:
        """Make blob ``digest`` present in ``repository``, moving as little as possible.

        :meth:`reuse_blob` first (``HEAD``, then mounts from ``mount_from`` or
        remembered repositories); only then an upload of the bytes from
        ``open_reader()`` (opened only if needed, and closed after).
        """
        deadline = self.session.deadline(deadline)
        reused = self.reuse_blob(repository, digest, mount_from=mount_from, deadline=deadline)
        if isinstance(reused, BlobPush):
            return reused
        with open_reader() as reader:
            self.upload_blob(
                repository,
                reader,
                digest,
                size,
                progress=progress,
                what=what,
                deadline=deadline,
                into=reused,
            )
        return BlobPush(digest, "uploaded")

    def delete_blob(
        self, repository: str, digest: Digest, *, deadline: Deadline | None = None
    ) -> None:
        """Delete blob ``digest`` from ``repository``."""
        self._delete(
            f"/v2/{repository}/blobs/{digest}",
            repository,
            f"blob {digest}",
            f"blob {digest} not found in {self.registry}/{repository}",
            deadline,
        )
        self.blob_locations.forget(self.registry, repository, str(digest))


def repository_delete_scope(repository: str) -> str:
    """The token scope for deletes: distribution's token auth names the action ``delete``."""
    return f"repository:{repository}:delete"


def _reference(reference: str | Digest) -> str | Digest:
    """A tag stays a string; a digest string becomes a :class:`Digest`."""
    if isinstance(reference, Digest):
        return reference
    if ":" in reference:
        return Digest.parse(reference)
    if not reference:
        raise UsageError("empty tag")
    return reference
