"""What every step of one build may use: the store, the contexts, snapshots, the runtime, results.

One :class:`Workspace` per build, shared by the stages that run at the same
time (the lazily made snapshotter and runtime are created once, under a lock).
It answers the questions several executors ask:

* :meth:`Workspace.origin` - the filesystem a ``COPY --from`` or a ``RUN
  --mount ...,from=`` reads: the build context, a named ``--build-context``, a
  stage built earlier, or an image;
* :meth:`Workspace.write_layer` - a layer blob into the store (with
  ``--rewrite-timestamp`` applied);
* :meth:`Workspace.pull` - an image missing from the store, from its registry;
* :meth:`Workspace.check_policy` - the signature policy on an image the build uses.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forklift.build.cache import BuildCache
from forklift.build.context import BuildContext, StatCache
from forklift.build.options import BuildOptions
from forklift.build.progress import BuildProgress
from forklift.build.step import CacheNotes
from forklift.dockerfile.instructions import ParsedStages
from forklift.errors import BuildError, ForkliftError, Location, NotFound
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.platform import Platform
from forklift.reference import parse_reference
from forklift.store.store import Store, StoredImage

if TYPE_CHECKING:
    from forklift.build.stage import StageState
    from forklift.runtime.snapshots import LayerRef, Snapshotter


@dataclass(frozen=True)
class Origin:
    """What a ``--from`` names: a directory to select from (``context``), or a layer stack
    to mount (``layers``); ``identity`` stands for its content in cache keys."""

    identity: str
    context: BuildContext | None = None
    layers: tuple[LayerRef, ...] = ()


@dataclass
class Workspace:
    """The shared resources of one build (see the module doc)."""

    options: BuildOptions
    store: Store
    progress: BuildProgress
    parsed: ParsedStages
    file: str  # the Dockerfile as messages name it
    comment_file: str  # the Dockerfile as history comments name it
    context: BuildContext
    stat_cache: StatCache
    host: Platform
    created: str
    epoch: int | None
    cache: BuildCache = field(init=False)
    notes: CacheNotes = field(default_factory=CacheNotes)
    results: dict[int, StageState] = field(default_factory=dict)
    #: the images the build used (as the Dockerfile names them) and the digests it used
    images: dict[str, Digest] = field(default_factory=dict)
    #: (progress number, label, what an all-cached rebuild shows: cached or done) per step
    shown: list[tuple[int, str, str]] = field(default_factory=list)
    #: an input of the build no replay record can check (empty: none; see build.noop)
    unsafe: str = ""
    _named: dict[str, BuildContext] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _snapshotter: Snapshotter | None = None
    _runtime: Any = None

    def __post_init__(self) -> None:
        self.cache = BuildCache(self.store)

    @property
    def home(self) -> Path:
        """``$FORKLIFT_HOME`` of the store."""
        return Path(self.store.home)

    @property
    def snapshotter(self) -> Snapshotter:
        """Unpacked layer stacks (made on first use: a build that mounts nothing never needs it)."""
        with self._lock:
            if self._snapshotter is None:
                from forklift.runtime.snapshots import Snapshotter

                self._snapshotter = Snapshotter(self.store)
            return self._snapshotter

    @property
    def runtime(self) -> Any:
        """The OCI runtime RUN steps use (found on first use)."""
        with self._lock:
            if self._runtime is None:
                from forklift.runtime.oci_runtime import find_runtime

                self._runtime = find_runtime(self.options.runtime, home=self.store.home)
            return self._runtime

    def close(self) -> None:
        """Release what the build opened."""
        self.stat_cache.close()
        if self._snapshotter is not None:
            self._snapshotter.close()

    # -- sources -------------------------------------------------------------------------

    def origin(self, from_: str) -> Origin:
        """The filesystem ``--from=from_`` names (``""``: the build context)."""
        if not from_:
            return Origin("context", self.context)
        named = self.options.build_contexts.get(from_)
        if named is not None and not named.startswith("docker-image://"):
            with self._lock:
                ctx = self._named.get(from_)
                if ctx is None:
                    ctx = BuildContext(
                        named, None, self.stat_cache, name=f"build context {from_!r}"
                    )
                    self._named[from_] = ctx
            return Origin(f"context:{from_}", ctx)
        stage = self.parsed.stage(from_)
        if stage is not None and named is None:
            result = self.results.get(stage.index)
            if result is None:  # pragma: no cover - the scheduler orders stages by their uses
                raise ForkliftError(f"--from={from_}: stage {from_} is not built yet")
            return Origin(f"stage:{result.snapshot.key}", layers=result.snapshot.layers)
        ref = named[len("docker-image://") :] if named else from_
        from forklift.runtime.layerstack import image_layers

        name = str(parse_reference(ref))
        try:
            image = self.store.resolve(name)
        except NotFound:
            image = self.pull(name, what="image")
        self.check_policy(image, name, None, what=f"--from={from_}")
        self.used(ref, image.digest)
        return Origin(f"image:{image.digest}", layers=tuple(image_layers(self.store, image)))

    def pull(
        self, ref: str, location: Location | None = None, what: str = "base image"
    ) -> StoredImage:
        """An image missing from the store (or ``--pull``): from its registry."""
        try:
            from forklift.registry.client.images import pull
        except ImportError:  # pragma: no cover - the registry client ships with forklift
            raise NotFound(f"{what} {ref} is not in the local store", location=location) from None
        try:
            return pull(ref, self.store, platform=self.host, policy=self.options.image_policy)
        except ForkliftError as exc:
            raise NotFound(
                f"{what} {ref} is not in the local store and could not be pulled: {exc.message}",
                hint="forklift pull, forklift import or forklift load it first",
                location=location,
            ) from None

    def show(self, number: int, label: str, rebuilt: str) -> None:
        """Note how a rebuild with nothing changed shows step ``number`` (``cached``/``done``)."""
        with self._lock:
            self.shown.append((number, label, rebuilt))

    def used(self, name: str, digest: Digest) -> None:
        """Record that the build used image ``name`` at ``digest`` (for provenance)."""
        with self._lock:
            self.images.setdefault(name, digest)

    def check_policy(
        self, image: StoredImage, ref: str, location: Location | None, what: str = "FROM"
    ) -> None:
        """The signature policy (``--verify``/``--policy``) on an image the build uses."""
        policy = self.options.image_policy
        if policy is None:
            return
        name = parse_reference(ref)
        try:
            policy.check_stored(self.store, image, name)
        except ForkliftError as exc:
            raise BuildError(
                f"{what} {name.familiar()}: {exc.message}", location=location
            ) from None

    # -- layers ---------------------------------------------------------------------------

    def write_layer(
        self, source: Any, *, overlay: bool = False
    ) -> tuple[Descriptor, Digest] | None:
        """Write a layer blob into the store; None when a directory source holds no changes."""
        if overlay and not any(os.scandir(source)):
            return None
        # the layer writer (tar, compressors) is loaded by the first step that writes a layer
        from forklift.layers import write_layer
        from forklift.layers.source import Normalize

        normalize = None
        if self.options.rewrite_timestamp and self.epoch is not None:
            normalize = Normalize(mtime_clamp=self.epoch)
        with self.store.blob_writer() as w:
            info = write_layer(
                w,
                source,
                compression=self.options.compression,
                overlay=overlay,
                normalize=normalize,
            )
            w.commit()
        return info.descriptor(), info.diff_id  # annotated with the encoder
