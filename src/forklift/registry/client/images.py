"""Images on registries: push, pull, inspect, tags and delete (what the CLI verbs call).

Every function takes the same connection settings: ``options``
(:class:`ClientOptions`: TLS, insecure registries...), ``credentials``
(default: docker's and podman's credential files) and ``timeout`` (seconds
for the whole operation, retries included). ``push`` and ``pull`` are the
one copy engine between the store and the ``docker://`` transport.

>>> from forklift.store.store import Store
>>> image = pull("localhost:5000/team/base:1.0", Store.open())     # StoredImage
>>> push("app:1.0", "localhost:5000/team/app:1.0").pinned           # ...app@sha256:...
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from forklift.errors import InvalidReference, NotFound, UsageError
from forklift.oci import mediatypes as mt
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageIndex, ImageManifest, Manifest
from forklift.oci.platform import Platform, host_platform
from forklift.reference import Reference
from forklift.registry.client.client import ManifestResponse, RegistryClient
from forklift.registry.client.credentials import Credentials, CredentialStore
from forklift.registry.client.options import ClientOptions
from forklift.registry.client.retry import Deadline
from forklift.registry.client.transport import (
    RegistryDestination,
    RegistrySource,
    registry_reference,
)
from forklift.store.store import Store, StoredImage
from forklift.transports.base import CopyProgress, ImagePolicy
from forklift.transports.copy import CopyResult, copy_image

Creds = Credentials | CredentialStore | None


@dataclass(frozen=True)
class PushResult:
    """A pushed image: where it went, its manifest digest, and what moved."""

    reference: Reference
    digest: Digest
    media_type: str
    size: int
    copy: CopyResult

    @property
    def pinned(self) -> Reference:
        """``registry/repo@sha256:...``: the reference to deploy (it never changes)."""
        return self.reference.with_digest(self.digest)


@dataclass(frozen=True)
class PullResult:
    """A pulled image: what the reference named in the registry, and what the store now holds."""

    reference: Reference
    #: the digest of what ``reference`` names in the registry (an index, for multi-arch images)
    digest: Digest
    image: StoredImage
    copy: CopyResult


@dataclass(frozen=True)
class RemoteImage:
    """An image as a registry describes it, without its layers.

    ``top`` is what the reference names (maybe an index); ``manifest`` the
    image chosen from it (the same as ``top`` for a single-platform image,
    None for an index when no image of the wanted platform is in it);
    ``config`` the chosen image's config blob, verified.
    """

    reference: Reference
    top: ManifestResponse
    manifest: ManifestResponse | None
    config: bytes | None

    def parsed_config(self) -> ImageConfig | None:
        """The config, parsed (None for an index or an artifact that has no image config)."""
        if self.config is None or self.manifest is None:
            return None
        parsed = self.manifest.parse()
        if not isinstance(parsed, ImageManifest) or parsed.config.media_type not in mt.CONFIGS:
            return None
        return ImageConfig.parse(self.config)


def _deadline(timeout: float | None) -> Deadline | None:
    return Deadline(timeout) if timeout is not None else None


def _with_jobs(options: ClientOptions | None, jobs: int) -> ClientOptions | None:
    """Options with enough pooled connections for ``jobs`` transfers plus manifest requests."""
    if options is None:
        options = ClientOptions()
    if options.max_connections >= jobs + 2:
        return options
    return replace(options, max_connections=jobs + 2)


def pull_image(
    ref: str | Reference,
    store: Store | None = None,
    *,
    platform: Platform | str | None = None,
    all_platforms: bool = False,
    progress: CopyProgress | None = None,
    jobs: int = 4,
    options: ClientOptions | None = None,
    credentials: Creds = None,
    timeout: float | None = None,
    referrers: bool = False,
    policy: ImagePolicy | None = None,
) -> PullResult:
    """Pull ``ref`` into the store and name it ``ref``; see :func:`pull`.

    With ``referrers``, signatures, attestations and SBOMs attached to the
    pulled manifests are stored with the image. A ``policy``
    (:class:`forklift.sign.enforce.Enforcer`) judges the image before any blob
    moves; the signatures it checked are stored with it.
    """
    ref = registry_reference(ref)
    store = store or Store.open()
    if isinstance(platform, str):
        platform = Platform.parse(platform)
    if platform is not None and all_platforms:
        raise UsageError("choose either a platform or all platforms")
    from forklift.transports.layout import StoreDestination

    with RegistrySource(
        ref,
        options=_with_jobs(options, jobs),
        credentials=credentials,
        deadline=_deadline(timeout),
    ) as src:
        top = src.top()
        with StoreDestination(store, ()) as dst:
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
            stored = Descriptor(result.media_type, result.digest, result.size)
            # A tag names the image in the store; a digest-only reference names what
            # was stored (the platform's image when one was picked from an index).
            name = ref if ref.digest is None else ref.with_digest(result.digest)
            store.add_image(stored, (name,))
            dst.commit()  # the attachments (the image itself is named above)
    return PullResult(ref, top.digest, store.resolve(str(name)), result)


def pull(
    ref: str | Reference,
    store: Store | None = None,
    platform: Platform | str | None = None,
    progress: CopyProgress | None = None,
    *,
    all_platforms: bool = False,
    jobs: int = 4,
    options: ClientOptions | None = None,
    credentials: Creds = None,
    timeout: float | None = None,
    policy: ImagePolicy | None = None,
) -> StoredImage:
    """Pull the image ``ref`` names from its registry into ``store``; return it as stored.

    From a multi-platform index the image for ``platform`` (default: this
    host's) is pulled, or with ``all_platforms`` the whole index. Only blobs
    missing from the store are downloaded, each verified while streamed
    (nothing that fails verification is kept). The image is named ``ref`` in
    the store (``name@digest`` for a pull by digest). This is what
    ``forklift build`` calls for a ``FROM`` image missing from the store.
    """
    return pull_image(
        ref,
        store,
        platform=platform,
        all_platforms=all_platforms,
        progress=progress,
        jobs=jobs,
        options=options,
        credentials=credentials,
        timeout=timeout,
        policy=policy,
    ).image


#: ``run --pull``: docker's policies for an image the command needs
PULL_POLICIES = ("missing", "always", "never")


def ensure_image(
    text: str,
    store: Store | None = None,
    *,
    policy: str = "missing",
    platform: Platform | str | None = None,
    progress: CopyProgress | None = None,
    options: ClientOptions | None = None,
    credentials: Creds = None,
    timeout: float | None = None,
    on_pull: Callable[[Reference], object] | None = None,
) -> StoredImage:
    """The image ``text`` names, pulled first when ``policy`` says so (``docker run --pull``).

    ``missing`` pulls only when the store lacks it, ``always`` pulls a name
    every time (an image ID or digest is never pulled), ``never`` only looks
    in the store. ``on_pull(ref)`` is called just before a pull.
    """
    if policy not in PULL_POLICIES:
        raise UsageError(f"unknown pull policy {policy!r} (use {', '.join(PULL_POLICIES)})")
    store = store or Store.open()
    ref: Reference | None = None
    if not (text.startswith("sha256:") or (len(text) == 64 and text.isalnum())):
        with contextlib.suppress(InvalidReference):
            ref = registry_reference(text)
    if policy != "always" or ref is None:
        try:
            return store.resolve(text)
        except NotFound as exc:
            if policy == "never" or ref is None:
                if policy == "never":
                    exc.hint = "pull it first (forklift pull), or use --pull missing"
                raise
    assert ref is not None
    if on_pull is not None:
        on_pull(ref)
    return pull(
        ref, store, platform=platform, progress=progress, options=options,
        credentials=credentials, timeout=timeout,
    )  # fmt: skip


def default_destination(image: str, stored: StoredImage) -> Reference:
    """Where ``forklift push IMAGE`` goes without a destination: the name IMAGE was given by."""
    from forklift.errors import InvalidReference
    from forklift.reference import parse_reference

    try:
        ref = parse_reference(image)
    except InvalidReference:
        ref = None
    if ref is not None and ref.digest is None and any(str(n) == str(ref) for n in stored.names):
        return ref
    raise UsageError(
        f"{image} does not name a tagged image; say where to push it: "
        f"forklift push {image} REGISTRY/REPOSITORY:TAG"
    )


def push(
    image: str,
    destination: str | Reference | None = None,
    *,
    store: Store | None = None,
    platform: Platform | str | None = None,
    all_platforms: bool | None = None,
    progress: CopyProgress | None = None,
    jobs: int = 4,
    options: ClientOptions | None = None,
    credentials: Creds = None,
    timeout: float | None = None,
    referrers: bool = True,
) -> PushResult:
    """Push the stored image ``image`` to ``destination`` (default: the name ``image`` gives).

    Blobs the repository has are skipped (``HEAD``); blobs elsewhere in the
    same registry are mounted; the rest are uploaded. A multi-platform image
    is pushed whole (its images by digest first, then the index under the
    tag) unless ``platform`` picks one of its images. What the store keeps
    attached to the image (signatures, attestations, SBOMs) is pushed too,
    before the tag (``referrers=False`` leaves it behind).
    """
    store = store or Store.open()
    if isinstance(platform, str):
        platform = Platform.parse(platform)
    from forklift.transports.layout import StoreSource

    src = StoreSource(store, image)
    with src:
        if destination is None:
            dest = default_destination(image, src.image)
        else:
            text = str(destination)
            dest = registry_reference(text.removeprefix("docker://"))
        if all_platforms is None:
            all_platforms = src.image.is_index and platform is None
        if platform is not None and all_platforms:
            raise UsageError("choose either a platform or all platforms")
        with RegistryDestination(
            dest,
            options=_with_jobs(options, jobs),
            credentials=credentials,
            deadline=_deadline(timeout),
        ) as dst:
            result = copy_image(
                src,
                dst,
                platform=platform,
                all_platforms=all_platforms,
                progress=progress,
                jobs=jobs,
                referrers=referrers,
            )
            dst.commit()
            assert dst.pushed is not None
            digest = dst.pushed.digest
    return PushResult(dest, digest, result.media_type, result.size, result)


def _pick(
    client: RegistryClient,
    ref: Reference,
    top: ManifestResponse,
    platform: Platform | None,
    deadline: Deadline | None,
) -> ManifestResponse | None:
    parsed = top.parse()
    if not isinstance(parsed, ImageIndex):
        return top
    if platform is not None:
        child = parsed.select(platform, str(ref))
    else:
        found = parsed.find(host_platform())
        if found is None:
            return None
        child = found
    return client.get_manifest(ref.path, child.digest, deadline=deadline)


def inspect_remote(
    ref: str | Reference,
    *,
    platform: Platform | str | None = None,
    config: bool = True,
    options: ClientOptions | None = None,
    credentials: Creds = None,
    timeout: float | None = None,
) -> RemoteImage:
    """What ``ref`` names in its registry: manifest (or index) and config, no layers.

    From an index, the image for ``platform`` (default: this host's) is
    chosen; without a ``platform`` and no image for this host, only the index
    is returned. With ``config=False`` and no ``platform`` only the top
    manifest is fetched (``manifest`` is then ``top``, as ``--raw`` needs).
    Everything fetched is verified against its digest.
    """
    ref = registry_reference(ref)
    if isinstance(platform, str):
        platform = Platform.parse(platform)
    deadline = _deadline(timeout)
    with RegistrySource(ref, options=options, credentials=credentials, deadline=deadline) as src:
        top = src.top()
        if not config and platform is None:
            # only the top manifest's bytes are wanted (inspect --raw)
            return RemoteImage(ref, top, top, None)
        chosen = _pick(src.client, ref, top, platform, src.deadline)
        blob: bytes | None = None
        if chosen is not None and config:
            parsed: Manifest = chosen.parse()
            assert isinstance(parsed, ImageManifest)
            blob = src.read_blob(parsed.config)
    return RemoteImage(ref, top, chosen, blob)


def remote_size(image: RemoteImage) -> int:
    """Bytes of the chosen manifest, its config and layers (the top manifest for an index)."""
    if image.manifest is None:
        return image.top.size
    parsed = image.manifest.parse()
    assert isinstance(parsed, ImageManifest)
    return image.manifest.size + parsed.config.size + sum(x.size for x in parsed.layers)


def list_tags(
    ref: str | Reference,
    *,
    page_size: int | None = None,
    options: ClientOptions | None = None,
    credentials: Creds = None,
    timeout: float | None = None,
) -> Iterator[str]:
    """Every tag of ``ref``'s repository, following the registry's pagination."""
    ref = registry_reference(ref)
    deadline = Deadline(timeout)
    if timeout is not None:
        # each page's request (retries included) stops at the timeout...
        options = replace(options or ClientOptions(), operation_timeout=timeout)
    with RegistryClient(ref.domain, options=options, credentials=credentials) as client:
        for tag in client.list_tags(ref.path, page_size=page_size):
            # ...and so does the series of pages
            deadline.check(f"tag list of {ref.name}")
            yield tag


@dataclass(frozen=True)
class DeleteResult:
    """What a delete removed: a tag only, or a manifest (with every tag pointing at it)."""

    reference: Reference
    digest: Digest | None
    tag_only: bool


def delete(
    ref: str | Reference,
    *,
    options: ClientOptions | None = None,
    credentials: Creds = None,
    timeout: float | None = None,
) -> DeleteResult:
    """Delete ``ref`` from its registry.

    By digest, the manifest goes (with its tags). By tag, the tag alone goes
    where the registry supports that (OCI distribution 1.1); registries that
    answer ``400``/``405`` (CNCF distribution 2.x) get the manifest the tag
    points at deleted by digest instead, as skopeo does.
    """
    ref = registry_reference(ref)
    deadline = _deadline(timeout)
    with RegistryClient(ref.domain, options=options, credentials=credentials) as client:
        if ref.digest is not None:
            client.delete_manifest(ref.path, ref.digest, deadline=deadline)
            return DeleteResult(ref, ref.digest, False)
        tag = ref.tag or "latest"
        head = client.head_manifest(ref.path, tag, deadline=deadline)
        if head is None:
            raise NotFound(f"{ref.path}:{tag} not found in {client.registry}")
        if client.delete_tag(ref.path, tag, deadline=deadline):
            return DeleteResult(ref, head.digest, True)
        client.delete_manifest(ref.path, head.digest, deadline=deadline)
        return DeleteResult(ref, head.digest, False)


__all__ = [
    "PULL_POLICIES",
    "DeleteResult",
    "PullResult",
    "PushResult",
    "RemoteImage",
    "default_destination",
    "delete",
    "ensure_image",
    "inspect_remote",
    "list_tags",
    "pull",
    "pull_image",
    "push",
    "remote_size",
]
