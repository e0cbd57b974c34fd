"""One stage of a build: its base, then each planned step through the executor of its kind.

The stage starts from its base (``scratch``, an image, or the result of an
earlier stage), then hands every :class:`~forklift.dockerfile.dispatch.Step`
to the executor for its instruction (see :mod:`forklift.build.step`), keeping
the stage's :class:`StageState` (config, snapshot, history) and the progress
output in step. Errors get the step's location if they have none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from forklift import cancel
from forklift.build.cache import step_key
from forklift.build.fileop import FileOp
from forklift.build.metadata import MetadataOp, MetaState
from forklift.build.options import StepReport
from forklift.build.runop import RunOp
from forklift.build.step import Executor, Snapshot, StepCache, StepInput
from forklift.build.workspace import Workspace
from forklift.dockerfile import instructions as ins
from forklift.dockerfile.dispatch import PlannedStage, Step
from forklift.errors import BuildError, ForkliftError, Location
from forklift.oci.config import DEFAULT_PATH, History, ImageConfig
from forklift.oci.platform import Platform
from forklift.store.store import StoredImage

if TYPE_CHECKING:
    from forklift.runtime.layerstack import LayerRef

COMMENT = "forklift: {file}:{line}"


@dataclass
class StageState:
    """A stage as built so far: its image config, filesystem and history.

    ``stamp`` is the time history entries get: that of the newest layer step so
    far (cached steps keep the time they were built), so a fully cached rebuild
    gives the same image digest.
    """

    name: str
    config: ImageConfig
    snapshot: Snapshot
    history: list[History]
    stamp: str
    meta: MetaState = field(default_factory=MetaState)
    records: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepReport] = field(default_factory=list)

    @property
    def layers(self) -> tuple[LayerRef, ...]:
        """The stage's layer stack, bottom first."""
        return self.snapshot.layers


class StageRunner:
    """Runs planned stages in one workspace (see the module doc)."""

    def __init__(self, ws: Workspace, base_images: dict[str, tuple[str, StoredImage]]) -> None:
        self.ws = ws
        self.base_images = base_images
        files = FileOp(ws)
        metadata = MetadataOp()
        self.executors: dict[type[ins.Command], Executor] = {
            ins.CopyCommand: files,
            ins.AddCommand: files,
            ins.WorkdirCommand: files,
            ins.RunCommand: RunOp(ws),
        }
        self.metadata = metadata

    def executor(self, step: Step) -> Executor:
        """The executor of ``step``'s kind (every instruction without a layer: metadata)."""
        return self.executors.get(type(step.command), self.metadata)

    def run(self, planned: PlannedStage, previous: list[dict[str, Any]]) -> StageState:
        """Build ``planned``; ``previous`` are its step records from the last build."""
        ws = self.ws
        name = planned.name
        prefix = f"{planned.label} " if planned.label else ""
        own = [s for s in planned.steps if s.trigger is None]
        triggers = [s for s in planned.steps if s.trigger is not None]
        total = len(own) + 1
        no_cache = ws.options.no_cache or any(
            f.lower() in (planned.node.stage.name, str(planned.index))
            for f in ws.options.no_cache_filter
        )
        state = self._from(planned, f"[{prefix}1/{total}]")
        cache = StepCache(
            ws.cache,
            ws.progress,
            ws.notes,
            name,
            no_cache=no_cache,
            created=ws.created,
            epoch=ws.epoch,
            previous=previous,
            records=state.records,
        )
        for n, step in enumerate(triggers, 1):
            self._step(state, cache, step, f"[{prefix}ONBUILD {n}/{len(triggers)}] {step.original}")
        for i, step in enumerate(own, 2):
            self._step(state, cache, step, f"[{prefix}{i}/{total}] {step.original}")
        return state

    # -- the base ---------------------------------------------------------------------------

    def _from(self, planned: PlannedStage, label: str) -> StageState:
        ws = self.ws
        node = planned.node
        where = node.stage.node.location(ws.file)
        base_stage = planned.base_stage
        if base_stage is not None:
            shown = f"FROM {ws.results[base_stage].name}"
        elif planned.base_image:
            # BuildKit shows the reference it resolved, with the digest it got
            ref, image = self.base_images[planned.base_image]
            shown = f"FROM {ref}@{image.digest}"
        else:
            shown = "FROM scratch"
        number = ws.progress.start(f"{label} {shown}")
        try:
            if node.platform:
                wanted = Platform.parse(node.platform)
                if not wanted.matches(ws.host):
                    raise BuildError(
                        f"FROM --platform={node.platform}: cannot build for {wanted} on this "
                        f"{ws.host} machine (no emulation)",
                        location=where,
                    )
            if base_stage is not None:
                parent = ws.results[base_stage]
                state = StageState(
                    planned.name,
                    parent.config,
                    parent.snapshot,
                    list(parent.history),
                    parent.stamp,
                )
                base_id = f"stage:{parent.snapshot.key}"
            elif planned.base_image:
                _, image = self.base_images[planned.base_image]
                assert image.config is not None
                from forklift.runtime.layerstack import image_layers

                state = StageState(
                    planned.name,
                    image.config,
                    Snapshot(
                        tuple(image_layers(ws.store, image)),
                        step_key("", "from", {"image": str(image.digest)}),
                    ),
                    list(image.config.history),
                    ws.created if ws.epoch is not None else (image.config.created or ws.created),
                )
                base_id = str(image.digest)
            else:
                config = ImageConfig(
                    architecture=ws.host.architecture,
                    os=ws.host.os,
                    variant=ws.host.variant if ws.host.architecture != "amd64" else "",
                )
                state = StageState(
                    planned.name,
                    config,
                    Snapshot((), step_key("", "scratch", {})),
                    [],
                    ws.created,
                )
                base_id = "scratch"
            c = state.config.config
            # ONBUILD triggers run in this stage (the plan has them) and go no further.
            c = replace(c, on_build=())
            if planned.default_path:
                # BuildKit makes sure every (Linux) stage has a PATH, in the image config too.
                c = c.with_env("PATH", DEFAULT_PATH)
            state.config = replace(state.config, config=c)
            state.records.append(
                {
                    "instruction": node.stage.node.original,
                    "key": state.snapshot.key,
                    "base": base_id,
                }
            )
        except ForkliftError as exc:
            ws.progress.failed(number, exc.message)
            raise
        ws.progress.done(number)
        ws.show(number, f"{label} {shown}", "done")
        return state

    # -- one step -------------------------------------------------------------------------------

    def _step(self, state: StageState, cache: StepCache, step: Step, label: str) -> None:
        ws = self.ws
        cancel.check()  # a SIGINT/SIGTERM stops the build before its next step
        number = ws.progress.start(label)
        executor = self.executor(step)
        inp = StepInput(step, state.snapshot, state.config, state.meta, state.name, number)
        try:
            out = executor.execute(inp, cache)
        except ForkliftError as exc:
            if exc.location is None:
                exc.location = Location(ws.file, step.line, step.location.column)
            ws.progress.failed(number, exc.message)
            raise
        except cancel.Cancelled:
            ws.progress.canceled(number)
            raise
        state.snapshot = out.snapshot
        state.config = out.config
        if out.meta is not None:
            state.meta = out.meta
        if out.stamp is not None:
            state.stamp = out.stamp
        state.history.append(
            History(
                created=state.stamp or ws.created,
                created_by=out.created_by,
                comment=COMMENT.format(file=ws.comment_file, line=step.line),
                empty_layer=out.empty_layer,
            )
        )
        if executor is not self.metadata:  # a build reports its layer steps
            state.steps.append(StepReport(state.name, step.original, step.line, out.cached))
        if out.cached:
            ws.progress.cached(number)
        else:
            ws.progress.done(number)
        # a layer step is CACHED in a rebuild that changed nothing; the others are DONE
        ws.show(number, label, "done" if executor is self.metadata else "cached")
