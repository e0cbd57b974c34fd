"""The local image store: an OCI image layout under ``$FORKLIFT_HOME`` plus tags and locks.

``index.json`` lists every image the store holds; a tagged image has one entry
per tag (annotation ``org.opencontainers.image.ref.name`` = the full normalised
reference), an untagged ("dangling") image one entry without it. Other tools
read the store as the OCI layout it is (``skopeo inspect oci:$FORKLIFT_HOME:REF``).

Other subsystems (the build cache, containers) keep blobs alive by registering
*roots*: small files ``roots/<kind>/<name>.json`` holding a descriptor.

Artifacts attached to an image (signatures, attestations, SBOMs: manifests
whose ``subject`` is the image, or cosign's ``sha256-<hex>.sig`` tag layout)
are ``index.json`` entries too, marked with the subject digest
(:mod:`forklift.store.attachments`): :meth:`Store.attach` records one,
:meth:`Store.referrers` lists them; they live as long as their subject (``rmi``
and ``prune`` drop them with it) and are not listed as images.

Subsystems that keep state of their own under the home (the runtime's unpacked
snapshots, containers, mounts) are handed to the store as :class:`Collector`
objects by whoever composes them (the CLI does): ``prune`` lets them collect
what nothing needs any more, and ``recover``/``fsck`` let them find and clean
what a killed process left. The store itself knows none of them.

Locking: ``locks/store.lock`` is held shared by every writer for the whole of a
write (first blob to last tag) and exclusively by anything that deletes blobs
(``prune``, ``rmi``, ``fsck --repair``), so a blob is never collected between
being written and being referenced. ``locks/index.lock`` serialises the
read-modify-write of ``index.json``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from forklift import logs
from forklift.errors import Conflict, ForkliftError, InvalidReference, NotFound, UsageError
from forklift.fsutil import FileLock, abandoned, atomic_write
from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, Hasher
from forklift.oci.manifest import ImageIndex, ImageManifest, Manifest, parse_manifest
from forklift.oci.referrers import Attachment
from forklift.reference import Reference, parse_reference
from forklift.store import attachments as attach_index
from forklift.store.layout import REF_NAME, BlobWriter, OciLayout

_HEX_PREFIX = re.compile(r"(?:sha256:)?[a-f0-9]{1,64}")
_ROOT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def default_home() -> Path:
    """``$FORKLIFT_HOME``, else ``$XDG_DATA_HOME/forklift``, else ``~/.local/share/forklift``."""
    env = os.environ.get("FORKLIFT_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "forklift"


@dataclass(frozen=True)
class StoredImage:
    """An image in the store, with its names and parsed documents."""

    descriptor: Descriptor
    names: tuple[Reference, ...]
    manifest: Manifest | None
    config: ImageConfig | None
    size: int
    error: str | None = None  # why the image could not be read (fsck tells more)

    @property
    def digest(self) -> Digest:
        """The manifest (or index) digest."""
        return self.descriptor.digest

    @property
    def id(self) -> Digest:
        """Docker's image ID: the config digest (the index digest for a multi-platform image)."""
        if isinstance(self.manifest, ImageManifest):
            return self.manifest.config.digest
        return self.descriptor.digest

    @property
    def created(self) -> str | None:
        return self.config.created if self.config else None

    @property
    def is_index(self) -> bool:
        return isinstance(self.manifest, ImageIndex)


@dataclass(frozen=True)
class Leftover:
    """State a killed forklift process left behind: a container, a mount, a temporary file."""

    kind: str  # "container" | "mount" | "directory" | "temporary file" | ...
    path: str  # where it is (a path, or a container ID)
    owner: str  # what held it ("process 1234", "container 4f2a...")


class Collector(Protocol):
    """State a subsystem keeps under the store's home, checked and collected with the store.

    ``leftovers`` finds (changing nothing) and ``recover`` cleans what processes
    that died left behind; neither may touch the state of a live process.
    ``prune`` removes what nothing needs any more; it runs under the store's
    exclusive lock, after the blobs, and returns counts for the report.
    """

    def leftovers(self, store: Store) -> list[Leftover]: ...

    def recover(self, store: Store) -> list[Leftover]: ...

    def prune(self, store: Store, *, dry_run: bool) -> dict[str, int]: ...


@dataclass(frozen=True)
class PruneReport:
    """What ``prune`` removed (or would remove, with ``dry_run``)."""

    blobs_removed: int
    bytes_freed: int
    images_removed: tuple[str, ...] = ()
    roots_removed: int = 0
    dry_run: bool = False
    #: what the collectors removed, by kind ("snapshots": 3)
    collected: dict[str, int] = field(default_factory=dict)
    #: state of killed processes cleaned first
    leftovers: tuple[Leftover, ...] = ()


@dataclass(frozen=True)
class FsckProblem:
    """A blob that is corrupt or missing, and the images that need it."""

    digest: str
    kind: str  # "corrupt" | "missing" | "unreadable"
    detail: str
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class FsckReport:
    """The result of re-hashing the store."""

    blobs_checked: int
    bytes_checked: int
    problems: tuple[FsckProblem, ...] = field(default=())
    repaired: tuple[str, ...] = ()
    #: state killed processes left (cleaned too with ``repair``)
    leftovers: tuple[Leftover, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and not self.leftovers


class Store:
    """The local content-addressable image store.

    >>> store = Store.open()                      # $FORKLIFT_HOME or ~/.local/share/forklift
    >>> [str(n) for i in store.images() for n in i.names]
    """

    def __init__(
        self, home: str | os.PathLike[str] | None = None, *, collectors: Iterable[Collector] = ()
    ) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.collectors: list[Collector] = list(collectors)
        try:
            self.layout = OciLayout(self.home, create=True)
        except PermissionError as exc:
            raise ForkliftError(
                f"cannot use the store at {self.home}: {exc.strerror}",
                hint="set FORKLIFT_HOME to a directory you can write",
            ) from None
        self.lock = FileLock(self.home / "locks" / "store.lock")
        self._index_lock = FileLock(self.home / "locks" / "index.lock")

    @classmethod
    def open(
        cls, home: str | os.PathLike[str] | None = None, *, collectors: Iterable[Collector] = ()
    ) -> Store:
        """Open (creating if needed) the store at ``home`` or the default location."""
        return cls(home, collectors=collectors)

    # -- what killed processes left -----------------------------------------------

    def _abandoned_temporaries(self) -> list[Path]:
        """Partial blobs and ``atomic_write`` temporaries whose writer died."""
        found: list[Path] = []
        places = [self.layout.tmp_dir, self.home]
        roots = self.home / "roots"
        if roots.is_dir():
            places.extend(p for p in roots.iterdir() if p.is_dir())
        for place in places:
            with contextlib.suppress(OSError):
                for entry in os.scandir(place):
                    name = entry.name
                    ours = (name.startswith("blob-") and name.endswith(".partial")) or (
                        name.startswith(".") and name.endswith(".tmp")
                    )
                    if ours and abandoned(entry.path):
                        found.append(Path(entry.path))
        return found

    def leftovers(self) -> list[Leftover]:
        """State killed processes left in this store (nothing is changed)."""
        out = [
            Leftover("temporary file", str(p), "a killed writer")
            for p in self._abandoned_temporaries()
        ]
        for collector in self.collectors:
            out.extend(collector.leftovers(self))
        return out

    def recover(self) -> list[Leftover]:
        """Clean what killed processes left (their containers, mounts, temporary files).

        Safe while other forklift processes run: only state whose owner is gone
        is touched. Returns what was cleaned.
        """
        with FileLock(self.home / "locks" / "recover.lock").exclusive():
            out = []
            for path in self._abandoned_temporaries():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    out.append(Leftover("temporary file", str(path), "a killed writer"))
            for collector in self.collectors:
                out.extend(collector.recover(self))
            return out

    # -- writes ------------------------------------------------------------------

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Hold this around a whole write (blobs + tags) so prune cannot interleave."""
        return self.lock.shared()

    # -- blobs -------------------------------------------------------------------

    def has_blob(self, digest: Digest) -> bool:
        return self.layout.has_blob(digest)

    def blob_path(self, digest: Digest) -> Path:
        return self.layout.blob_path(digest)

    def blob_size(self, digest: Digest) -> int:
        return self.layout.blob_size(digest)

    def open_blob(self, digest: Digest) -> BinaryIO:
        return self.layout.open_blob(digest)

    def read_blob(self, digest: Digest) -> bytes:
        return self.layout.read_blob(digest)

    def blob_writer(self, expected: Digest | None = None, size: int | None = None) -> BlobWriter:
        """Write a blob atomically; hold :meth:`writing` until it is referenced."""
        return self.layout.blob_writer(expected, size)

    def put_blob(self, data: bytes, expected: Digest | None = None) -> Digest:
        return self.layout.put_blob(data, expected)

    def get_manifest(self, digest: Digest, media_type: str | None = None) -> Manifest:
        return parse_manifest(self.read_blob(digest), media_type, what=f"manifest {digest}")

    def get_config(self, digest: Digest) -> ImageConfig:
        return ImageConfig.parse(self.read_blob(digest))

    # -- images ------------------------------------------------------------------

    def _load(self, desc: Descriptor, names: tuple[Reference, ...]) -> StoredImage:
        manifest = self.get_manifest(desc.digest, desc.media_type)
        config = None
        size = desc.size
        if isinstance(manifest, ImageManifest):
            size += manifest.config.size + sum(layer.size for layer in manifest.layers)
            if manifest.config.media_type in mt.CONFIGS:
                config = self.get_config(manifest.config.digest)
        else:
            for child in manifest.manifests:
                if self.has_blob(child.digest) and child.media_type in mt.IMAGE_MANIFESTS:
                    m = self.get_manifest(child.digest, child.media_type)
                    assert isinstance(m, ImageManifest)
                    size += child.size + m.config.size + sum(x.size for x in m.layers)
        return StoredImage(desc, names, manifest, config, size)

    def _entries(self) -> list[Descriptor]:
        return list(self.layout.read_index().manifests)

    def _image_entries(self) -> list[Descriptor]:
        return [e for e in self._entries() if not attach_index.is_attachment(e)]

    def images(self) -> list[StoredImage]:
        """Every image in the store (tagged and dangling), newest first."""
        by_digest: dict[Digest, tuple[Descriptor, list[Reference]]] = {}
        for desc in self._image_entries():
            slot = by_digest.setdefault(desc.digest, (desc, []))
            name = desc.annotations.get(REF_NAME)
            if name:
                with contextlib.suppress(InvalidReference):
                    slot[1].append(parse_reference(name))
        out = []
        for desc, names in by_digest.values():
            try:
                out.append(self._load(desc, tuple(sorted(names, key=str))))
            except ForkliftError as exc:
                # A damaged image still deserves a line; fsck explains what is wrong.
                out.append(StoredImage(desc, tuple(names), None, None, desc.size, exc.message))
        out.sort(key=lambda i: (i.created or "", str(i.digest)), reverse=True)
        return out

    def manifest_digest(self, text: str) -> Digest | None:
        """The manifest digest the name ``text`` (name[:tag], or name@digest) has in the
        store, reading only the index (no image is loaded); None if it names none.

        Names compare as :meth:`resolve` compares them.
        """
        try:
            ref = parse_reference(text)
        except InvalidReference:
            return None
        for desc in self._image_entries():
            if ref.digest is not None:
                if desc.digest == ref.digest:
                    return desc.digest
                continue
            name = desc.annotations.get(REF_NAME)
            if name:
                with contextlib.suppress(InvalidReference):
                    if str(parse_reference(name)) == str(ref):
                        return desc.digest
        return None

    def resolve(self, text: str) -> StoredImage:
        """Find an image by name[:tag], name@digest, digest, or image-ID prefix (like docker).

        An image ID is the config digest, as in docker. When several stored
        manifests share it (the same image loaded as a docker-archive and as an
        OCI archive), the ID still resolves: to the first of
        :meth:`resolve_all`, and the ``forklift.store`` logger says which.
        """
        found = self.resolve_all(text)
        if len(found) > 1:
            chosen = found[0]
            named = f" ({', '.join(n.familiar() for n in chosen.names)})" if chosen.names else ""
            logs.get("forklift.store").warning(
                "image ID %s is shared by %d stored manifests; using manifest %s%s",
                chosen.id.short,
                len(found),
                chosen.digest,
                named,
            )
        return found[0]

    def resolve_all(self, text: str) -> list[StoredImage]:
        """Every stored image ``text`` names: one, or all the manifests sharing an image ID.

        Names and manifest digests name one image. A full or unique-prefix image
        ID (config digest) names every manifest with that config, in a fixed
        order: tagged before untagged, then by manifest digest. A prefix that
        matches different IDs is ambiguous (:class:`Conflict`); nothing found is
        :class:`NotFound`.
        """
        images = self.images()
        ref: Reference | None = None
        with contextlib.suppress(InvalidReference):
            ref = parse_reference(text)
        if ref is not None:
            for image in images:
                if ref.digest is not None:
                    if image.digest == ref.digest:
                        return [image]
                elif any(str(n) == str(ref) for n in image.names):
                    return [image]
        if _HEX_PREFIX.fullmatch(text) or text.startswith("sha256:"):
            prefix = text.removeprefix("sha256:")
            by_manifest = [i for i in images if i.digest.hex.startswith(prefix)]
            by_id = [i for i in images if i.id.hex.startswith(prefix)]
            ids = {i.id for i in by_id} | {i.id for i in by_manifest}
            if len(by_manifest) == 1 and (len(prefix) == 64 or not by_id):
                return by_manifest  # a manifest digest names exactly that manifest
            if len(ids) == 1:
                return sorted(by_id or by_manifest, key=lambda i: (not i.names, str(i.digest)))
            if len(ids) > 1:
                raise Conflict(
                    f"{text!r} is ambiguous: it matches {len(ids)} different images; "
                    "give more characters"
                )
        shown = ref.familiar() if ref is not None else text
        raise NotFound(
            f"image {shown} not in the local store",
            hint="forklift images lists what is there; forklift pull, load or import adds images",
        )

    def add_image(self, desc: Descriptor, names: Iterable[Reference] = ()) -> None:
        """Record an image whose blobs are all stored; tag it with ``names`` (or keep it dangling)."""
        if not self.has_blob(desc.digest):
            raise NotFound(f"manifest {desc.digest} is not in the store")
        names = list(names)
        plain = _plain(desc)
        with self._index_lock.exclusive():
            entries = self._entries()
            if _already_recorded(entries, plain, [str(_tagged(r)) for r in names]):
                return  # e.g. a rebuild that changed nothing: no index write, no fsync
            for ref in names:
                entries = _retag(entries, plain, str(_tagged(ref)))
            if not names and not any(
                e.digest == desc.digest and not attach_index.is_attachment(e) for e in entries
            ):
                entries.append(plain)
            self.layout.write_index(entries)

    def tag(self, source: str | StoredImage, target: str | Reference) -> Reference:
        """Give an image another name (``forklift tag``)."""
        image = self.resolve(source) if isinstance(source, str) else source
        ref = _tagged(parse_reference(target) if isinstance(target, str) else target)
        if ref.digest is not None:
            raise UsageError(f"cannot tag with a digest reference: {ref}")
        self.add_image(image.descriptor, [ref])
        return ref

    def remove(self, text: str, *, force: bool = False) -> list[str]:
        """``rmi``: untag by name (deleting the image when its last tag goes) or delete by ID.

        By ID, every stored manifest with that image ID goes; as in docker, an
        ID that carries more than one name is refused unless ``force``.
        Returns docker-like lines (``Untagged: ...``, ``Deleted: ...``).
        """
        group = self.resolve_all(text)
        image = group[0]
        lines: list[str] = []
        ref: Reference | None = None
        with contextlib.suppress(InvalidReference):
            ref = parse_reference(text)
        by_name = (
            ref is not None and ref.digest is None and any(str(n) == str(ref) for n in image.names)
        )
        with self.lock.exclusive(), self._index_lock.exclusive():
            entries = self._entries()
            if by_name:
                assert ref is not None
                entries = [
                    e
                    for e in entries
                    if not (e.digest == image.digest and e.annotations.get(REF_NAME) == str(ref))
                ]
                lines.append(f"Untagged: {ref.familiar()}")
                if any(
                    e.digest == image.digest and not attach_index.is_attachment(e) for e in entries
                ):
                    self.layout.write_index(entries)
                    return lines
            else:
                names = sorted({n for i in group for n in i.names}, key=str)
                if len(names) > 1 and not force:
                    raise Conflict(
                        f"unable to delete {image.id.short} (must be forced): the image has "
                        f"{len(names)} names ({', '.join(n.familiar() for n in names)})",
                        hint="remove it by name, or use -f to remove every name",
                    )
                lines.extend(f"Untagged: {n.familiar()}" for n in names)
                doomed = {i.digest for i in group}
                entries = [
                    e for e in entries if e.digest not in doomed or attach_index.is_attachment(e)
                ]
            roots = list(self._all_roots())
            before = entries
            entries = self._without_orphans(entries, roots)
            dropped = [e for e in before if e not in entries]
            self.layout.write_index(entries)
            keep = self._reachable(entries + roots)
            removed = [i.descriptor for i in (group if not by_name else [image])]
            for digest in sorted(self._reachable([*removed, *dropped]) - keep):
                if self.layout.delete_blob(digest):
                    lines.append(f"Deleted: {digest}")
        return lines

    # -- attached artifacts (signatures, attestations, SBOMs) --------------------------

    def attach(
        self,
        subject: Digest,
        manifest: bytes,
        *,
        media_type: str | None = None,
        tag: str | None = None,
    ) -> Attachment:
        """Record the manifest ``manifest`` as attached to the stored image ``subject``.

        The manifest's blobs (config, layers) must already be in the store (write
        them with :meth:`put_blob` inside :meth:`writing`). A manifest with a
        ``subject`` is an OCI referrer and its subject must be ``subject``; one
        without is cosign's tag layout and needs ``tag`` (``sig``, ``att``,
        ``sbom``). A tag-layout manifest replaces the one recorded for the same
        subject and tag, keeping the old one's layers (``sig``/``att`` entries are
        appended, as cosign and containers/image do in a registry).
        Returns what was recorded (the merged manifest, for the tag layout).
        """
        with self.writing(), self._index_lock.exclusive():
            entries, att = attach_index.record(
                self.layout, self._entries(), subject, manifest, media_type=media_type, tag=tag
            )
            self.layout.write_index(entries)
        return att

    def referrers(self, subject: Digest, artifact_type: str | None = None) -> list[Attachment]:
        """What is attached to ``subject`` (referrers and tag-layout manifests), oldest first.

        ``artifact_type`` keeps only attachments of that type (a referrer's
        ``artifactType``, else its config media type).
        """
        found = attach_index.attachments_in(self._entries(), subject)
        if artifact_type is not None:
            found = [a for a in found if a.artifact_type == artifact_type]
        return found

    def attachments(self) -> list[Attachment]:
        """Every attachment the store records."""
        return attach_index.attachments_in(self._entries())

    def detach(self, subject: Digest, digest: Digest) -> bool:
        """Forget the attachment ``digest`` of ``subject`` (prune then collects its blobs)."""
        with self._index_lock.exclusive():
            entries = self._entries()
            kept = [
                e
                for e in entries
                if not (
                    attach_index.is_attachment(e)
                    and e.digest == digest
                    and e.annotations.get(attach_index.SUBJECT) == str(subject)
                )
            ]
            if len(kept) == len(entries):
                return False
            self.layout.write_index(kept)
            return True

    def _without_orphans(
        self, entries: list[Descriptor], roots: list[Descriptor]
    ) -> list[Descriptor]:
        """``entries`` without attachments whose subject nothing keeps (recursively)."""
        images = [e for e in entries if not attach_index.is_attachment(e)]
        pending = [(e, a) for e in entries if (a := attach_index.from_entry(e)) is not None]
        live = self._reachable(images + roots)
        kept: list[Descriptor] = []
        progress = True
        while progress and pending:
            progress = False
            rest = []
            for e, a in pending:
                if a.subject in live:
                    kept.append(e)
                    live |= self._reachable([e])
                    progress = True
                else:
                    rest.append((e, a))
            pending = rest
        return images + kept

    # -- roots of other subsystems ---------------------------------------------------

    def _root_path(self, kind: str, name: str) -> Path:
        if not _ROOT_NAME.fullmatch(kind) or not _ROOT_NAME.fullmatch(name):
            raise UsageError(f"invalid root name {kind}/{name}")
        return self.home / "roots" / kind / f"{name}.json"

    def set_root(self, kind: str, name: str, desc: Descriptor) -> None:
        """Keep ``desc`` (and everything it references) alive under ``kind/name``."""
        atomic_write(self._root_path(kind, name), canonical.dumps(desc.to_json()))

    def get_root(self, kind: str, name: str) -> Descriptor | None:
        try:
            raw = self._root_path(kind, name).read_bytes()
        except FileNotFoundError:
            return None
        return Descriptor.from_json(
            canonical.loads(raw, f"root {kind}/{name}"), f"root {kind}/{name}"
        )

    def has_root(self, kind: str, name: str) -> bool:
        """Whether a root ``kind/name`` is kept."""
        return self._root_path(kind, name).is_file()

    def delete_root(self, kind: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._root_path(kind, name).unlink()

    def roots(self, kind: str) -> dict[str, Descriptor]:
        out: dict[str, Descriptor] = {}
        directory = self.home / "roots" / kind
        if not directory.is_dir():
            return out
        for path in sorted(directory.glob("*.json")):
            with contextlib.suppress(ForkliftError, OSError):
                desc = self.get_root(kind, path.stem)
                if desc is not None:
                    out[path.stem] = desc
        return out

    def _all_roots(self) -> Iterator[Descriptor]:
        base = self.home / "roots"
        if not base.is_dir():
            return
        for kind_dir in sorted(base.iterdir()):
            if kind_dir.is_dir():
                yield from self.roots(kind_dir.name).values()

    # -- reachability, prune, fsck ----------------------------------------------------

    def _children(self, desc: Descriptor) -> list[Descriptor]:
        if desc.media_type not in mt.MANIFESTS or not self.has_blob(desc.digest):
            return []
        try:
            manifest = self.get_manifest(desc.digest, desc.media_type)
        except ForkliftError:
            return []
        if isinstance(manifest, ImageManifest):
            return [manifest.config, *manifest.layers]
        return list(manifest.manifests)

    def _reachable(self, starts: Iterable[Descriptor]) -> set[Digest]:
        seen: set[Digest] = set()
        todo = list(starts)
        while todo:
            desc = todo.pop()
            if desc.digest in seen:
                continue
            seen.add(desc.digest)
            todo.extend(self._children(desc))
        return seen

    def prune(
        self, *, dangling: bool = False, cache: bool = False, dry_run: bool = False
    ) -> PruneReport:
        """Remove every blob nothing references (and, if asked, dangling images and build cache).

        What killed processes left is cleaned first (:meth:`recover`), then each
        collector prunes its own state after the blobs.
        """
        leftovers = tuple(self.leftovers() if dry_run else self.recover())
        with self.lock.exclusive(), self._index_lock.exclusive():
            entries = self._entries()
            removed_images: list[str] = []
            if dangling:
                named = {e.digest for e in entries if e.annotations.get(REF_NAME)}
                for e in entries:
                    if e.digest not in named:
                        removed_images.append(str(e.digest))
                entries = [e for e in entries if e.digest in named]
            roots_removed = 0
            roots = list(self._all_roots())
            if cache:
                cache_roots = self.roots("buildcache")
                roots_removed = len(cache_roots)
                cache_digests = {d.digest for d in cache_roots.values()}
                roots = [r for r in roots if r.digest not in cache_digests]
            before = len(entries)
            entries = self._without_orphans(entries, roots)
            orphans = before != len(entries)
            keep = self._reachable(entries + roots)
            blobs = 0
            freed = 0
            for algorithm, encoded, path in list(self.layout.iter_blobs()):
                digest = OciLayout.digest_for_name(algorithm, encoded)
                if digest is not None and digest in keep:
                    continue
                size = path.stat().st_size
                blobs += 1
                freed += size
                if not dry_run:
                    path.unlink()
            if not dry_run:
                import shutil

                if dangling or orphans:
                    self.layout.write_index(entries)
                if cache:
                    shutil.rmtree(self.home / "roots" / "buildcache", ignore_errors=True)
                # Partial blobs of killed writers: no writer can be active under the exclusive lock.
                shutil.rmtree(self.layout.tmp_dir, ignore_errors=True)
            collected: dict[str, int] = {}
            for collector in self.collectors:
                for kind, count in collector.prune(self, dry_run=dry_run).items():
                    collected[kind] = collected.get(kind, 0) + count
            return PruneReport(
                blobs, freed, tuple(removed_images), roots_removed, dry_run, collected, leftovers
            )

    def fsck(self, *, repair: bool = False, jobs: int = 2) -> FsckReport:
        """Re-hash every blob; report corrupt and missing blobs and the images they break,
        and the state killed processes left (containers, mounts, temporary files).

        With ``repair``, corrupt blobs are deleted so the next pull or build fetches
        them again, and the leftovers are cleaned.
        """
        leftovers = tuple(self.recover() if repair else self.leftovers())
        lock = self.lock.exclusive() if repair else self.lock.shared()
        with lock:
            files = list(self.layout.iter_blobs())

            def check(item: tuple[str, str, Path]) -> tuple[str, str, str | None, int]:
                algorithm, encoded, path = item
                name = f"{algorithm}:{encoded}"
                digest = OciLayout.digest_for_name(algorithm, encoded)
                if digest is None:
                    return name, "corrupt", "not a valid digest file name", 0
                try:
                    with open(path, "rb") as f:
                        h = Hasher(algorithm)
                        h.consume(f)
                except OSError as exc:
                    return name, "unreadable", exc.strerror or str(exc), 0
                got = h.digest()
                if got != digest:
                    return name, "corrupt", f"content hashes to {got}", h.size
                return name, "ok", None, h.size

            # imported here: only fsck needs a pool (start-up time of every other verb)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                results = list(pool.map(check, files))
            bad = {name: (kind, detail) for name, kind, detail, _ in results if kind != "ok"}
            total = sum(n for *_, n in results)
            # Which images need which blobs.
            needed: dict[str, set[str]] = {}
            missing: set[str] = set()
            for image_desc, label in self._labelled_roots():
                for digest in self._reachable([image_desc]):
                    needed.setdefault(str(digest), set()).add(label)
                    if not self.has_blob(digest):
                        missing.add(str(digest))
            problems = [
                FsckProblem(name, kind, detail or "", tuple(sorted(needed.get(name, ()))))
                for name, (kind, detail) in sorted(bad.items())
            ]
            problems += [
                FsckProblem(
                    name, "missing", "referenced but not in the store", tuple(sorted(needed[name]))
                )
                for name in sorted(missing)
            ]
            repaired: list[str] = []
            if repair:
                for name, (kind, _) in bad.items():
                    if kind == "corrupt":
                        algorithm, _, encoded = name.partition(":")
                        with contextlib.suppress(FileNotFoundError):
                            (self.home / "blobs" / algorithm / encoded).unlink()
                            repaired.append(name)
            return FsckReport(len(files), total, tuple(problems), tuple(repaired), leftovers)

    def _labelled_roots(self) -> Iterator[tuple[Descriptor, str]]:
        for desc in self._entries():
            subject = desc.annotations.get(attach_index.SUBJECT)
            if subject:
                yield desc, f"attachment {desc.digest} of {subject}"
                continue
            yield desc, desc.annotations.get(REF_NAME) or f"<none>@{desc.digest}"
        base = self.home / "roots"
        if base.is_dir():
            for kind_dir in sorted(base.iterdir()):
                if kind_dir.is_dir():
                    for name, desc in self.roots(kind_dir.name).items():
                        yield desc, f"{kind_dir.name}/{name}"


def _tagged(ref: Reference) -> Reference:
    """Docker's rule for naming images in a store: a bare name means :latest."""
    if ref.tag is None and ref.digest is None:
        return ref.with_tag("latest")
    return ref


def _plain(desc: Descriptor) -> Descriptor:
    annotations = {k: v for k, v in desc.annotations.items() if k != REF_NAME}
    return Descriptor(
        desc.media_type, desc.digest, desc.size, annotations=annotations, platform=desc.platform
    )


def _already_recorded(entries: list[Descriptor], plain: Descriptor, names: list[str]) -> bool:
    """Whether ``entries`` already record ``plain`` under every one of ``names`` (or, with no
    names, at all), so that adding it again would change nothing but the order."""

    def same(e: Descriptor) -> bool:
        return (
            e.digest == plain.digest
            and e.media_type == plain.media_type
            and e.size == plain.size
            and e.platform == plain.platform
            and not attach_index.is_attachment(e)
            and {k: v for k, v in e.annotations.items() if k != REF_NAME} == plain.annotations
        )

    if not names:
        return any(same(e) for e in entries)
    tagged = {e.annotations.get(REF_NAME) for e in entries if same(e)}
    return all(name in tagged for name in names)


def _retag(entries: list[Descriptor], plain: Descriptor, name: str) -> list[Descriptor]:
    """Point ``name`` at ``plain``; an image losing its last name stays as a dangling entry."""
    out: list[Descriptor] = []
    orphaned: list[Descriptor] = []
    for e in entries:
        if e.annotations.get(REF_NAME) == name:
            orphaned.append(e)
            continue
        if (
            e.digest == plain.digest
            and REF_NAME not in e.annotations
            and not attach_index.is_attachment(e)
        ):
            continue  # the dangling entry is replaced by the named one
        out.append(e)
    for e in orphaned:
        if e.digest != plain.digest and not any(x.digest == e.digest for x in out):
            out.append(_plain(e))
    tagged = Descriptor(
        plain.media_type,
        plain.digest,
        plain.size,
        annotations={**plain.annotations, REF_NAME: name},
        platform=plain.platform,
    )
    out.append(tagged)
    return out


__all__ = [
    "Collector",
    "FsckProblem",
    "FsckReport",
    "Leftover",
    "PruneReport",
    "Store",
    "StoredImage",
    "default_home",
]
