"""The one interface of build steps: a snapshot and a config in, a snapshot and a config out.

A stage runs its planned steps (:class:`forklift.dockerfile.dispatch.Step`) one
after the other. Each kind of step has one executor (BuildKit's ops):

* :mod:`forklift.build.fileop` - COPY, ADD and WORKDIR: files written as a layer;
* :mod:`forklift.build.runop` - RUN: a process in the runtime, its changes a layer;
* :mod:`forklift.build.metadata` - every other instruction: the image config only.

An executor gets a :class:`StepInput` (the step, the stage's :class:`Snapshot`
and image config before it) and returns a :class:`StepOutput` (the snapshot and
config after it, and what the history says). Steps that make a layer share the
cache plumbing of :class:`StepCache`: look the key up, explain the first miss of
the stage, reuse a hit, record what was built.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from forklift.build.cache import BuildCache, CacheEntry
from forklift.build.explain import explain_miss, full_comparison
from forklift.build.metadata import MetaState
from forklift.build.progress import BuildProgress
from forklift.dockerfile.dispatch import Step
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest

if TYPE_CHECKING:  # the runtime is imported only when a step mounts or runs something
    from forklift.runtime.layerstack import LayerRef


@dataclass(frozen=True)
class Snapshot:
    """A stage's filesystem between two steps: its layer stack (bottom first) and the
    cache key that names it (what the next step's key derives from)."""

    layers: tuple[LayerRef, ...]
    key: str

    def plus(self, layer: LayerRef | None, key: str) -> Snapshot:
        """This snapshot with ``layer`` on top (if any), named ``key``."""
        return Snapshot(self.layers + ((layer,) if layer is not None else ()), key)


@dataclass(frozen=True)
class StepInput:
    """What an executor is given: the step and the stage as it is before it."""

    step: Step
    snapshot: Snapshot
    config: ImageConfig
    meta: MetaState
    stage: str  # the stage's name, for messages
    number: int  # the step's number in the progress output


@dataclass(frozen=True)
class StepOutput:
    """What an executor returns: the stage after the step, and its history line.

    ``stamp`` is the creation time of the layer step (a cached step keeps the
    time it was built); metadata steps leave it ``None``.
    """

    snapshot: Snapshot
    config: ImageConfig
    created_by: str
    empty_layer: bool
    cached: bool = False
    meta: MetaState | None = None
    stamp: str | None = None


class Executor(Protocol):
    """Runs one kind of step."""

    def execute(self, inp: StepInput, cache: StepCache) -> StepOutput:
        """Snapshot and config in, snapshot and config out (see the module doc)."""
        ...


@dataclass
class CacheNotes:
    """What a build learns about its cache: every miss explained (for ``--explain-cache``)."""

    explanations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, lines: list[str]) -> None:
        with self.lock:
            self.explanations.extend(lines)


@dataclass
class StepCache:
    """The cache plumbing of one stage's layer steps.

    ``previous`` are the step records of the same stage in the last build (for
    explaining a miss); ``records`` collects this build's, in step order.
    """

    cache: BuildCache
    progress: BuildProgress
    notes: CacheNotes
    label: str
    no_cache: bool = False
    created: str = ""
    epoch: int | None = None
    previous: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    explained: bool = False

    def lookup(self, key: str, record: dict[str, Any], number: int, what: str) -> CacheEntry | None:
        """The cached result of the step keyed ``key``; explains the stage's first miss."""
        self.records.append(record)
        if self.no_cache:
            self._explain(record, number, what, forced=True)
            return None
        entry = self.cache.get(key)
        if entry is None:
            self._explain(record, number, what)
        return entry

    def reuse(self, inp: StepInput, key: str, entry: CacheEntry, config: ImageConfig) -> StepOutput:
        """The output of a step whose result is ``entry``."""
        from forklift.runtime.layerstack import LayerRef

        layer = (
            LayerRef(entry.layer, entry.diff_id)
            if entry.layer is not None and entry.diff_id is not None
            else None
        )
        stamp = str(entry.extra.get("created") or "") if self.epoch is None else None
        return StepOutput(
            inp.snapshot.plus(layer, key),
            config,
            entry.created_by,
            layer is None,
            cached=True,
            stamp=stamp or None,
        )

    def store(
        self,
        inp: StepInput,
        key: str,
        layer: tuple[Descriptor, Digest] | None,
        created_by: str,
        config: ImageConfig,
        snapshot: Snapshot | None = None,
    ) -> StepOutput:
        """Record a step just built (its layer, if any, already in the store).

        ``snapshot`` is the result when the executor has already put the layer on
        top of the input (a RUN's snapshot is committed as it is written).
        """
        from forklift.runtime.layerstack import LayerRef, chain_id

        ref = LayerRef(layer[0], layer[1]) if layer is not None else None
        after = snapshot if snapshot is not None else inp.snapshot.plus(ref, key)
        chain = chain_id([x.diff_id for x in after.layers]) if ref is not None else None
        self.cache.put(
            key,
            ref.blob if ref is not None else None,
            ref.diff_id if ref is not None else None,
            created_by,
            {"created": self.created},
            chain=chain,
        )
        return StepOutput(after, config, created_by, ref is None, stamp=self.created)

    def _explain(
        self, record: dict[str, Any], number: int, what: str, forced: bool = False
    ) -> None:
        if self.explained:
            return
        self.explained = True
        index = len(self.records) - 1
        previous = self.previous[index] if index < len(self.previous) else None
        reason = "--no-cache" if forced else explain_miss(previous, record)
        line = f"cache miss: {what}: {reason}"
        self.progress.note(number, line)
        lines = [f"[{self.label}] {line}"]
        if not forced:
            lines.extend(full_comparison(previous, record))
        self.notes.add(lines)


def cached_or_built(
    inp: StepInput,
    cache: StepCache,
    key: str,
    record: dict[str, Any],
    config: ImageConfig,
    build: Callable[[], StepOutput],
) -> StepOutput:
    """The common path of a layer step: reuse the cached result of ``key`` or ``build`` it."""
    entry = cache.lookup(key, record, inp.number, what(inp.step))
    if entry is not None:
        return cache.reuse(inp, key, entry, config)
    return build()


def what(step: Step) -> str:
    """How a cache-miss line names a step: its instruction and line, not its whole text."""
    keyword = step.command.node.raw_keyword.upper() or step.keyword.upper()
    where = f"line {step.line}"
    return f"{keyword} ({where}, ONBUILD)" if step.trigger is not None else f"{keyword} ({where})"
