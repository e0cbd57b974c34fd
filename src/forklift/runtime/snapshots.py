"""The overlay snapshotter: every layer unpacked once, keyed by its chain ID, stacked by overlayfs.

On disk, under ``$FORKLIFT_HOME/snapshots/``::

    <chain hex>/fs/         the layer in overlay form (whiteouts as 0/0 char
                            devices, opaque dirs with trusted.overlay.opaque=y)
    <chain hex>/meta.json   {"chain_id", "parent", "diff_id", "source", "created"}
    tmp/<chain>-<lease>-*/  unpacks and commits in progress (renamed into place)
    active/m-<lease>-*/     upper, work and rootfs of mounts made without a workspace
    active/s-<lease>-*/     scratch directories (:meth:`Snapshotter.scratch`)
    locks/<chain hex>.lock  serialises unpacking one chain across processes
    leases/<lease>.*        what a live process holds (.lock flocked while it lives)
    empty/                  the single lower dir of a FROM-scratch mount

The directory is mode 0700: unpacked layers hold setuid files and device
nodes as the images have them.

A snapshot directory appears by one ``rename`` of a fully written temporary
directory, so a killed unpack leaves nothing visible, and a per-chain file
lock makes concurrent processes that need the same chain unpack it once.

The chain ID is the OCI image spec's: ``ChainID(L1) = DiffID(L1)`` and
``ChainID(L1..Ln) = sha256(ChainID(L1..Ln-1) + " " + DiffID(Ln))``, so a
layer shared by two images (on the same parents) is unpacked once for both.

Garbage collection: ``Store.prune`` calls the prune of
:class:`~forklift.runtime.recovery.RuntimeCollector` (which the CLI hands to
the store) under the store's exclusive lock; it keeps every snapshot whose chain is a prefix of
the diff IDs of an image config reachable from the store's index or roots
(images, containers), or is named by a manifest's :data:`CHAIN_ANNOTATION`
(build-cache entries, which are artifacts rather than images), plus every
chain held by a live lease, and removes the rest. Unpacks and commits hold the store's shared lock,
so they never overlap a prune.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import secrets
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forklift import fsutil
from forklift.errors import ForkliftError, NotFound, RuntimeFailure, StoreError
from forklift.fsutil import fsync_dir
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageIndex, ImageManifest
from forklift.runtime import overlay
from forklift.runtime.layerstack import (
    LayerRef,
    chain_id,
    chain_ids,
    image_layers,
    layers_from,
    next_chain_id,
)
from forklift.store.store import Store

if TYPE_CHECKING:
    import ctypes

META = "meta.json"
#: A manifest annotation naming the chain ID of a snapshot to keep while the manifest is
#: reachable (for artifacts that are not images, e.g. build-cache entries of RUN steps).
CHAIN_ANNOTATION = "dev.forklift.snapshot.chain-id"


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Snapshot:
    """An unpacked layer stack top: ``path`` is the layer's tree in overlay form."""

    chain_id: Digest
    parent: Digest | None
    diff_id: Digest
    path: Path
    source: Digest | None  # the blob it was unpacked from; None when committed from an upper dir
    created: str


@dataclass(frozen=True)
class SnapshotPruneReport:
    """What :meth:`Snapshotter.prune` removed."""

    removed: tuple[Digest, ...]
    kept: int
    stale_temporaries: int


# --------------------------------------------------------------------------- helpers


def extract_layer(*args: Any, **kwargs: Any) -> Any:
    """:func:`forklift.layers.extract_layer`, imported on first use (starting a container that
    is already unpacked then never loads the tar machinery)."""
    from forklift.layers.extract import extract_layer as real

    return real(*args, **kwargs)


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """An exclusive flock held for the block, on a descriptor of its own (closed after)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_libc: ctypes.CDLL | None = None


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path``: an unpacked tree must be on disk before it is named.

    One syncfs costs far less than an fsync per file of a large layer.
    """
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _libc.syncfs(fd)
    finally:
        os.close(fd)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Best-effort ``rm -rf`` of a tree a container or an image may have written.

    Mounts forklift left below ``path`` (a killed process's overlay) are
    unmounted first; the removal itself never follows a symlink nor crosses a
    mount (:func:`forklift.fsutil.remove_tree`). Errors are not raised: this
    runs in cleanup paths, and prune or the next recovery tries again.
    """
    if not os.path.lexists(path):
        return
    for point in overlay.mounts_under(path):
        with contextlib.suppress(ForkliftError):
            overlay.unmount(point)
    with contextlib.suppress(OSError):
        fsutil.remove_tree(path)


_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")


def _xattrs(fd: int) -> dict[str, bytes]:
    """A directory's xattrs (from its descriptor), without overlayfs' own bookkeeping ones."""
    out = {}
    for name in os.listxattr(fd):
        if not name.startswith(("trusted.overlay.", "user.overlay.")):
            with contextlib.suppress(OSError):
                out[name] = os.getxattr(fd, name)
    return out


def _dir_attrs(st: os.stat_result) -> tuple[int, ...]:
    """What makes a copied-up directory the same as its lower one."""
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)


def _copy_root_attrs(src: Path, dst: Path) -> None:
    """Give ``dst`` the mode and owner of ``src``: overlay shows the upper root's attributes."""
    st = os.stat(src)
    os.chown(dst, st.st_uid, st.st_gid)
    os.chmod(dst, st.st_mode & 0o7777)


# --------------------------------------------------------------------------- leases


class _Lease:
    """What a live process holds: chains it uses, and the state named after it.

    ``<stem>.lock`` is flocked for the life of the lease (the flock dies with
    the process, so a crash ends the lease); ``<stem>.json`` lists the chains
    and is replaced atomically, so a concurrent prune never reads half of it.
    The stem (``<pid>-<random>``) also names the workspaces, scratch
    directories, unpack stagings and containers the process makes, which is
    how :mod:`forklift.runtime.recovery` finds what a killed process left.

    The lock file is created and flocked under a temporary name, then renamed
    into place: a visible lock file is always either held or dead.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.stem = stem
        self.lock_path = directory / f"{stem}.lock"
        self.path = directory / f"{stem}.json"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".new-", suffix=".lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.chmod(tmp, 0o644)
            os.rename(tmp, self.lock_path)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._fd = fd
        self._chains: set[str] = set()
        self._mutex = threading.Lock()

    def add(self, chains: Iterable[Digest]) -> None:
        with self._mutex:
            new = {str(c) for c in chains} - self._chains
            if not new:
                return
            self._chains |= new
            data = json.dumps(sorted(self._chains)).encode()
            # A lease only matters while its process lives, so no fsync: a crash ends it anyway.
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)

    def release(self) -> None:
        with self._mutex:
            for path in (self.path, self.lock_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


@dataclass(frozen=True)
class Leases:
    """The leases in a directory: who is alive, what they hold, what the dead left."""

    live: frozenset[str]  # stems of live leases
    held: frozenset[str]  # chains live leases hold
    dead: frozenset[str]  # stems of dead leases (their files are removed)


def owner_of(name: str) -> str | None:
    """The lease stem a workspace, staging directory or container ID is named after.

    ``m-<stem>-<rand>`` / ``s-<stem>-<rand>`` (mount workspaces, scratch dirs),
    ``<chain12>-<stem>-<rand>`` (unpack stagings), ``fk-<stem>-<rand>``
    (containers); None for anything else.
    """
    _, sep, rest = name.partition("-")
    if not sep:
        return None
    stem = rest.rpartition("-")[0]
    pid, sep, tag = stem.partition("-")
    if not (sep and pid.isdigit() and len(tag) == 8 and all(c in "0123456789abcdef" for c in tag)):
        return None
    return stem


def read_leases(directory: Path, *, reap: bool = True) -> Leases:
    """Check every lease in ``directory``; with ``reap``, delete the files of dead ones.

    A lease is dead when its lock file can be flocked (its process is gone); its
    files are deleted while that flock is held, so a new lease is never mistaken
    for it.
    """
    held: set[str] = set()
    live: set[str] = set()
    dead: set[str] = set()
    if not directory.is_dir():
        return Leases(frozenset(), frozenset(), frozenset())
    for lock in directory.glob("*.lock"):
        data = lock.with_suffix(".json")
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live.add(lock.stem)
                with contextlib.suppress(OSError, ValueError):
                    held.update(json.loads(data.read_bytes()))
                continue
            dead.add(lock.stem)
            if reap:
                for path in (data, data.with_suffix(".tmp"), lock):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        finally:
            os.close(fd)
    return Leases(frozenset(live), frozenset(held), frozenset(dead))


# --------------------------------------------------------------------------- mounts


class Mounted:
    """A mounted overlay: ``rootfs`` (merged view), ``upper`` (the writable diff), ``work``.

    Leaving the ``with`` block unmounts it; a default workspace (under
    ``snapshots/active/``) is removed too, a caller's workspace is kept.
    """

    def __init__(
        self,
        snapshotter: Snapshotter,
        layers: tuple[LayerRef, ...],
        parent: Digest | None,
        workspace: Path,
        owned: bool,
    ) -> None:
        self.snapshotter = snapshotter
        self.layers = layers
        #: The chain ID of the read-only layers under the upper dir (None for FROM scratch).
        self.parent = parent
        self.workspace = workspace
        self.rootfs = workspace / "rootfs"
        self.upper = workspace / "upper"
        self.work = workspace / "work"
        self._owned = owned
        self._mounted = False
        self._committed: Snapshot | None = None
        self._lowers: list[Path] = []
        self._tidy: set[str] = set()

    @property
    def mounted(self) -> bool:
        return self._mounted

    def unmount(self) -> None:
        """Unmount the merged view (the upper dir stays); idempotent."""
        if self._mounted:
            overlay.unmount(self.rootfs)
            self._mounted = False
            self._tidy_upper()

    def note_copied_up(self, paths: Iterable[str]) -> None:
        """Directories (relative to the root) copied up only to hold a runtime mount point.

        The run's stubs are gone by then, so at unmount each one still empty
        and unchanged against the lower layers is removed from the upper dir:
        a RUN that only needed ``/etc/hosts`` as a mount point does not put
        ``/etc`` into its layer.
        """
        self._tidy.update(p.strip("/") for p in paths if p.strip("/"))

    def _tidy_upper(self) -> None:
        """Drop the noted directories from the (unmounted) upper dir where they are unchanged.

        The container could have written anything into the upper dir, so every
        path is resolved from descriptors without following symlinks.
        """
        tidy, self._tidy = self._tidy, set()
        if not tidy:
            return
        try:
            upper_fd = fsutil.open_root(self.upper)
        except OSError:
            return
        try:
            for rel in sorted(tidy, key=lambda p: p.count("/"), reverse=True):
                with contextlib.suppress(OSError):
                    self._tidy_one(upper_fd, fsutil.rel_parts(rel))
        finally:
            os.close(upper_fd)

    def _tidy_one(self, upper_fd: int, parts: list[str]) -> None:
        with fsutil.dir_beneath(upper_fd, parts) as fd:
            if any(os.scandir(fd)) or any(n.startswith(_OPAQUE) for n in os.listxattr(fd)):
                return
            mine = (_dir_attrs(os.fstat(fd)), _xattrs(fd))
        if self._lower_dir(parts) == mine:
            with fsutil.dir_beneath(upper_fd, parts[:-1]) as pfd:
                os.rmdir(parts[-1], dir_fd=pfd)

    def _lower_dir(self, parts: list[str]) -> tuple[tuple[int, ...], dict[str, bytes]] | None:
        """Attributes and xattrs of the topmost lower directory at ``parts`` (None: no such
        directory, or something else hides it)."""
        for low in self._lowers:
            low_fd = fsutil.open_root(low)
            try:
                with fsutil.dir_beneath(low_fd, parts[:-1]) as pfd:
                    st = fsutil.lstat_at(pfd, parts[-1])
                    if st is None:
                        continue
                    if not stat.S_ISDIR(st.st_mode):
                        return None
                    with fsutil.dir_beneath(pfd, parts[-1:]) as fd:
                        return _dir_attrs(st), _xattrs(fd)
            except (FileNotFoundError, NotADirectoryError):
                continue  # no parent directory in this lower
            except OSError:
                return None
            finally:
                os.close(low_fd)
        return None

    def commit(self, diff_id: Digest) -> Snapshot:
        """Unmount and turn the upper dir into the snapshot of ``parent`` + ``diff_id``.

        ``diff_id`` is the diff ID of the layer written from :attr:`upper`
        (``write_layer(out, mounted.upper, overlay=True)``). The upper dir is
        renamed, not copied; afterwards this mount has no upper dir.
        """
        if self._committed is not None:
            raise RuntimeFailure("this mount's upper dir was already committed")
        self.unmount()
        snap = self.snapshotter.commit(self.upper, self.parent, diff_id)
        self._committed = snap
        return snap

    def close(self) -> None:
        """Unmount, and remove the workspace if the snapshotter made it."""
        try:
            self.unmount()
        finally:
            if self._owned:
                remove_tree(self.workspace)
            else:
                remove_tree(self.work)
                self.work.mkdir(exist_ok=True)

    def __enter__(self) -> Mounted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- the snapshotter


class Snapshotter:
    """Unpacked layers under ``$FORKLIFT_HOME/snapshots``, mounted with overlayfs.

    >>> snaps = Snapshotter(store)
    >>> with snaps.mount(image_layers(store, image)) as m:
    ...     run_container(spec, m.rootfs)          # writes land in m.upper
    ...     info = write_layer(f, m.upper, overlay=True)
    ...     m.commit(info.diff_id)                 # m.upper becomes the next layer's snapshot
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.home / "snapshots"
        self.tmp = self.root / "tmp"
        self.active = self.root / "active"
        self._lease: _Lease | None = None
        self._lease_mutex = threading.Lock()

    # -- leases -----------------------------------------------------------------

    def _hold(self, chains: Iterable[Digest]) -> _Lease:
        with self._lease_mutex:
            if self._lease is None:
                # Everything is made after a lease is taken: the snapshots (setuid files and
                # device nodes of images and RUN steps among them) are for root's eyes only.
                fsutil.private_dir(self.root)
                self._lease = _Lease(self.root / "leases")
            lease = self._lease
        lease.add(chains)
        return lease

    def lease_stem(self) -> str:
        """The name of this snapshotter's lease (taken now if needed); what it names is
        cleaned up by :mod:`forklift.runtime.recovery` once the lease is gone."""
        return self._hold(()).stem

    def close(self) -> None:
        """Release this process's lease (its snapshots become collectable by prune)."""
        with self._lease_mutex:
            if self._lease is not None:
                self._lease.release()
                self._lease = None

    def __enter__(self) -> Snapshotter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lookup -----------------------------------------------------------------

    def path_of(self, chain: Digest) -> Path:
        """Where the snapshot of ``chain`` lives (whether or not it exists)."""
        return self.root / chain.encoded

    def get(self, chain: Digest) -> Snapshot | None:
        """The snapshot of ``chain``, or None if it is not unpacked."""
        directory = self.path_of(chain)
        try:
            raw = (directory / META).read_bytes()
        except FileNotFoundError:
            return None
        try:
            meta = json.loads(raw)
            return Snapshot(
                chain_id=Digest.parse(meta["chain_id"]),
                parent=Digest.parse(meta["parent"]) if meta.get("parent") else None,
                diff_id=Digest.parse(meta["diff_id"]),
                path=directory / "fs",
                source=Digest.parse(meta["source"]) if meta.get("source") else None,
                created=str(meta.get("created", "")),
            )
        except (ValueError, KeyError, TypeError, ForkliftError) as exc:
            raise StoreError(f"snapshot metadata {directory / META} is damaged: {exc}") from None

    def list_snapshots(self) -> list[Snapshot]:
        """Every snapshot, in no particular order."""
        out = []
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if len(entry.name) == 64:
                    with contextlib.suppress(ForkliftError, ValueError):
                        snap = self.get(Digest("sha256", entry.name))
                        if snap is not None:
                            out.append(snap)
        return out

    # -- unpacking ----------------------------------------------------------------

    def prepare(self, layers: Sequence[LayerRef]) -> list[Snapshot]:
        """Make sure every prefix of ``layers`` is unpacked; their snapshots, bottom first."""
        chains = chain_ids([layer.diff_id for layer in layers])
        # The shared store lock keeps prune out between taking the lease and using the
        # snapshots: it sees either no lease and no use yet, or the lease.
        with self.store.lock.shared():
            self._hold(chains)
            snaps: list[Snapshot] = []
            parent: Digest | None = None
            for layer, chain in zip(layers, chains, strict=True):
                snap = self.get(chain)
                if snap is None:
                    snap = self._unpack(layer, parent, chain)
                snaps.append(snap)
                parent = chain
            return snaps

    def _unpack(self, layer: LayerRef, parent: Digest | None, chain: Digest) -> Snapshot:
        with _flock(self.root / "locks" / f"{chain.encoded}.lock"):
            existing = self.get(chain)
            if existing is not None:  # another process unpacked it while we waited
                return existing
            blob = layer.blob
            if blob is None:
                raise NotFound(
                    f"layer {layer.diff_id} is not unpacked and no blob was given to unpack it"
                )
            with self.store.lock.shared():
                try:
                    stream = self.store.open_blob(blob.digest)
                except NotFound:
                    raise NotFound(
                        f"layer blob {blob.digest} is not in the store",
                        hint="pull or load the image again (forklift fsck shows damaged images)",
                    ) from None
                staging = self._staging(chain)
                try:
                    fs = staging / "fs"
                    fs.mkdir()
                    # A layer without a "./" entry leaves the root as made here; 0755 is what
                    # every image root expects (mkdtemp's 0700 would lock out non-root users).
                    os.chmod(fs, 0o755)
                    with stream:
                        if parent is None:
                            extract_layer(
                                stream,
                                fs,
                                overlay=True,
                                digest=blob.digest,
                                diff_id=layer.diff_id,
                                label=f"layer {blob.digest}",
                            )
                        else:
                            self._apply_over(parent, staging, stream, blob, layer.diff_id)
                    return self._publish(staging, chain, parent, layer.diff_id, blob.digest)
                except BaseException:
                    remove_tree(staging)
                    raise

    def _staging(self, chain: Digest) -> Path:
        """A fresh directory under ``tmp/`` named after the chain and this process's lease."""
        lease = self._hold(())
        self.tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.tmp, prefix=f"{chain.encoded[:12]}-{lease.stem}-"))

    def scratch(self) -> contextlib.AbstractContextManager[Path]:
        """A private scratch directory (mode 0700) for the duration of a ``with`` block.

        It lives under ``active/``, named after this process's lease, so what a
        killed process left there (secrets on a tmpfs, copies) is found and
        removed by the next forklift command (:mod:`forklift.runtime.recovery`).
        """
        return self._scratch()

    @contextlib.contextmanager
    def _scratch(self) -> Iterator[Path]:
        lease = self._hold(())
        self.active.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(dir=self.active, prefix=f"s-{lease.stem}-"))
        try:
            yield path
        finally:
            remove_tree(path)

    def _lowers(self, chain: Digest) -> list[Path]:
        """The snapshot directories of ``chain`` and its ancestors, topmost first."""
        out: list[Path] = []
        current: Digest | None = chain
        while current is not None:
            snap = self.get(current)
            if snap is None:
                raise NotFound(f"snapshot {current} is missing below a layer being unpacked")
            out.append(snap.path)
            current = snap.parent
        return out

    def _apply_over(
        self, parent: Digest, staging: Path, stream: Any, blob: Descriptor, diff_id: Digest
    ) -> None:
        """Apply a layer through an overlay of its parent chain (as containerd does).

        A layer may name a file without its parent directories; unpacked on its own,
        those would be made root:root 0755 and, being topmost, would hide the real
        owner and mode below. Written through the overlay, missing parents are
        copied up with their lower metadata, and deletions become overlay whiteouts.
        """
        upper = staging / "fs"
        work = staging / "work"
        merged = staging / "merged"
        work.mkdir()
        merged.mkdir()
        try:
            with overlay.mounted_overlay(self._lowers(parent), upper, work, merged):
                extract_layer(
                    stream,
                    merged,
                    digest=blob.digest,
                    diff_id=diff_id,
                    label=f"layer {blob.digest}",
                )
        finally:
            remove_tree(work)
            with contextlib.suppress(OSError):
                merged.rmdir()

    def _publish(
        self,
        staging: Path,
        chain: Digest,
        parent: Digest | None,
        diff_id: Digest,
        source: Digest | None,
    ) -> Snapshot:
        """Write the metadata into ``staging`` and rename it to the snapshot's place."""
        created = _now()
        meta = {
            "chain_id": str(chain),
            "parent": str(parent) if parent else None,
            "diff_id": str(diff_id),
            "source": str(source) if source else None,
            "created": created,
        }
        (staging / META).write_text(json.dumps(meta, indent=1) + "\n")
        os.chmod(staging, 0o755)
        _syncfs(staging)
        try:
            os.rename(staging, self.path_of(chain))
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            remove_tree(staging)  # the same chain appeared meanwhile: same content
        fsync_dir(self.root)
        snap = self.get(chain)
        assert snap is not None
        return snap

    # -- mounting ------------------------------------------------------------------

    def mount(
        self,
        layers: Sequence[LayerRef],
        *,
        workspace: str | os.PathLike[str] | None = None,
    ) -> Mounted:
        """Mount ``layers`` (bottom first) read-only under a fresh writable upper dir.

        Use as a context manager. Missing snapshots are unpacked first. With
        ``workspace``, ``upper/``, ``work/`` and ``rootfs/`` are made there
        (and kept on exit, e.g. a container's writable layer; it must be on
        the same filesystem as the snapshots); without, a temporary workspace
        under ``snapshots/active/`` is used and removed on exit. An empty
        ``layers`` (FROM scratch) mounts an empty root.
        """
        layers = tuple(layers)
        # Held until mounted: prune must not take the snapshots or the workspace meanwhile.
        with self.store.lock.shared():
            snaps = self.prepare(layers)
            if snaps:
                lowers = [s.path for s in reversed(snaps)]
            else:
                empty = self.root / "empty"
                empty.mkdir(parents=True, exist_ok=True)
                os.chmod(empty, 0o755)
                lowers = [empty]
            return self._mount(layers, snaps, lowers, workspace)

    def _mount(
        self,
        layers: tuple[LayerRef, ...],
        snaps: list[Snapshot],
        lowers: list[Path],
        workspace: str | os.PathLike[str] | None,
    ) -> Mounted:
        owned = workspace is None
        if workspace is None:
            self.active.mkdir(parents=True, exist_ok=True)
            # Named after this process's lease: prune keeps it while the lease lives, even
            # after the unmount, when the upper dir is still being turned into a layer.
            lease = self._hold(())
            ws = Path(tempfile.mkdtemp(dir=self.active, prefix=f"m-{lease.stem}-"))
            os.chmod(ws, 0o700)
        else:
            ws = Path(workspace)
            ws.mkdir(parents=True, exist_ok=True)
        mounted = Mounted(self, layers, snaps[-1].chain_id if snaps else None, ws, owned)
        try:
            for d in (mounted.upper, mounted.work, mounted.rootfs):
                d.mkdir(exist_ok=True)
            if not any(mounted.upper.iterdir()):
                _copy_root_attrs(lowers[0], mounted.upper)
            # A kept workspace may hold an old work dir; overlay wants it empty.
            remove_tree(mounted.work)
            mounted.work.mkdir()
            overlay.mount_overlay(lowers, mounted.upper, mounted.work, mounted.rootfs)
            mounted._mounted = True
            mounted._lowers = list(lowers)
        except BaseException:
            mounted.close()
            raise
        return mounted

    # -- committing ------------------------------------------------------------------

    def commit(
        self,
        upper: str | os.PathLike[str],
        parent: Digest | Sequence[LayerRef] | None,
        diff_id: Digest,
    ) -> Snapshot:
        """Make the finished (unmounted) overlay upper dir ``upper`` the snapshot of a new chain.

        ``parent`` is the chain the upper dir was mounted on (its chain ID, or
        the layers); ``diff_id`` is the diff ID of the layer written from the
        upper dir. The directory is renamed (no copy, no re-unpack); if the
        chain already exists, the upper dir is discarded instead. No mount may
        still use it (its later writes would land in the snapshot), which
        :meth:`Mounted.commit` ensures by unmounting first.
        """
        if parent is None or isinstance(parent, Digest):
            parent_chain = parent
        else:
            parent_chain = chain_id([layer.diff_id for layer in parent])
        chain = next_chain_id(parent_chain, diff_id)
        self._hold([chain])
        src = Path(upper)
        # Same order as prepare (store lock, then chain lock), so the two never deadlock.
        with self.store.lock.shared(), _flock(self.root / "locks" / f"{chain.encoded}.lock"):
            existing = self.get(chain)
            if existing is not None:
                remove_tree(src)
                return existing
            staging = self._staging(chain)
            try:
                os.rename(src, staging / "fs")
            except OSError as exc:
                remove_tree(staging)
                if exc.errno == errno.EXDEV:
                    raise RuntimeFailure(
                        f"cannot commit {src}: not on the same filesystem as {self.root}"
                    ) from None
                raise
            try:
                return self._publish(staging, chain, parent_chain, diff_id, None)
            except BaseException:
                remove_tree(staging)
                raise

    # -- garbage collection ---------------------------------------------------------------

    def prune(self, keep: set[Digest], *, dry_run: bool = False) -> SnapshotPruneReport:
        """Remove snapshots whose chain is neither in ``keep`` nor leased by a live process
        (nor under one of those: ancestors of a kept snapshot stay).

        Call with the store's exclusive lock held (as ``Store.prune`` does),
        so no unpack or commit is half-way; leftovers of killed ones in
        ``tmp/`` and ``active/`` workspaces no live mount uses go too.
        """
        leases = read_leases(self.root / "leases", reap=not dry_run)
        keep_names = {c.encoded for c in keep}
        for c in leases.held:
            with contextlib.suppress(ForkliftError):
                keep_names.add(Digest.parse(c).encoded)
        # A kept snapshot is only usable with the ones under it: keep its ancestors too.
        todo = list(keep_names)
        while todo:
            with contextlib.suppress(ForkliftError, ValueError):
                snap = self.get(Digest("sha256", todo.pop()))
                if snap is not None and snap.parent and snap.parent.encoded not in keep_names:
                    keep_names.add(snap.parent.encoded)
                    todo.append(snap.parent.encoded)
        removed: list[Digest] = []
        kept = 0
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                if len(entry.name) != 64 or not entry.is_dir():
                    continue
                if entry.name in keep_names:
                    kept += 1
                    continue
                removed.append(Digest("sha256", entry.name))
                if not dry_run:
                    # Rename first so a crash mid-delete never leaves a half snapshot behind.
                    doomed = self.tmp / f"gc-{entry.name}"
                    self.tmp.mkdir(parents=True, exist_ok=True)
                    os.rename(entry, doomed)
                    remove_tree(doomed)
                    with contextlib.suppress(FileNotFoundError):
                        (self.root / "locks" / f"{entry.name}.lock").unlink()
        temporaries = 0
        for directory in (self.tmp, self.active):
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                # Under the exclusive store lock no unpack or commit runs, so a staging
                # directory belongs to a dead process unless a live lease names it; a mount
                # workspace or scratch directory is kept while its owner's lease lives.
                owner = owner_of(entry.name)
                if owner in leases.live:
                    continue
                if owner is None and directory == self.active and overlay.mounts_under(entry):
                    continue  # named in no way forklift knows: leave it unless unused
                temporaries += 1
                if not dry_run:
                    remove_tree(entry)
        return SnapshotPruneReport(tuple(removed), kept, temporaries)


# --------------------------------------------------------------------------- prune integration


def wanted_chains(store: Store) -> set[Digest]:
    """Chains to keep: every prefix of the diff IDs of every image config reachable from the
    index and roots, plus chains named by a :data:`CHAIN_ANNOTATION` on a reachable manifest."""
    starts: list[Descriptor] = list(store.layout.read_index().manifests)
    roots_dir = store.home / "roots"
    if roots_dir.is_dir():
        for kind in sorted(p.name for p in roots_dir.iterdir() if p.is_dir()):
            starts.extend(store.roots(kind).values())
    wanted: set[Digest] = set()
    seen: set[Digest] = set()
    todo = starts
    while todo:
        desc = todo.pop()
        if desc.digest in seen or not store.has_blob(desc.digest):
            continue
        seen.add(desc.digest)
        try:
            if desc.media_type in mt.MANIFESTS:
                manifest = store.get_manifest(desc.digest, desc.media_type)
                if isinstance(manifest, ImageIndex):
                    todo.extend(manifest.manifests)
                elif isinstance(manifest, ImageManifest):
                    todo.append(manifest.config)
                    named = manifest.annotations.get(CHAIN_ANNOTATION)
                    if named:
                        with contextlib.suppress(ForkliftError):
                            wanted.add(Digest.parse(named))
            elif desc.media_type in mt.CONFIGS:
                config = store.get_config(desc.digest)
                wanted.update(chain_ids(config.diff_ids))
        except ForkliftError:
            continue  # a damaged document keeps nothing alive; fsck reports it
    return wanted


__all__ = [
    "CHAIN_ANNOTATION",
    "LayerRef",
    "Mounted",
    "Snapshot",
    "SnapshotPruneReport",
    "Snapshotter",
    "chain_id",
    "chain_ids",
    "image_layers",
    "layers_from",
    "next_chain_id",
    "wanted_chains",
]
