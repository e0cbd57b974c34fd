"""A build, end to end: Dockerfile -> plan -> stages -> image in the store (-> ``--output``).

1. The front end plans the build (:func:`forklift.dockerfile.dispatch.plan`):
   the stages the target needs, every instruction expanded and validated. Base
   images are resolved for it on the way (from the store, or pulled), several
   at a time, each shown as BuildKit shows it (``[internal] load metadata``).
2. :func:`forklift.build.scheduler.run_stages` starts each stage as soon as
   the stages it needs are built; :class:`forklift.build.stage.StageRunner`
   runs a stage's steps through the executors (:mod:`forklift.build.step`).
3. The target stage becomes an image config and manifest in the store, tagged;
   :mod:`forklift.build.export` writes ``--output``; the steps' inputs are kept
   to explain the next build's cache misses (:mod:`forklift.build.explain`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from forklift.build.context import BuildContext, StatCache
from forklift.build.explain import BuildHistory, history_id
from forklift.build.noop import ReplayInputs
from forklift.build.options import BuildOptions, BuildResult, StepReport
from forklift.build.progress import BuildProgress, PlainProgress
from forklift.build.scheduler import run_stages
from forklift.build.stage import StageRunner, StageState
from forklift.build.step import CacheNotes
from forklift.build.workspace import Workspace
from forklift.dockerfile import instructions as ins
from forklift.dockerfile.args import unused_build_args
from forklift.dockerfile.dispatch import BaseImage, BuildPlan, PlannedStage, plan
from forklift.dockerfile.ignore import IgnoreMatcher, find_ignore_file, ignore_file_candidates
from forklift.dockerfile.parser import parse
from forklift.errors import BuildError, ForkliftError, InvalidInput, Location, NotFound, UsageError
from forklift.oci import mediatypes as mt
from forklift.oci.config import created_timestamp
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest
from forklift.oci.platform import host_platform
from forklift.reference import parse_reference
from forklift.store.store import Store, StoredImage


class Builder:
    """Runs one build; see :func:`build`."""

    def __init__(
        self,
        options: BuildOptions,
        store: Store | None = None,
        progress: BuildProgress | None = None,
    ) -> None:
        self.options = options
        self.store = store or Store.open()
        self.progress = progress or PlainProgress()
        self.host = host_platform()
        if options.platform is not None and not options.platform.matches(self.host):
            raise UsageError(
                f"cannot build for {options.platform} on this {self.host} machine: "
                "emulation for other platforms is not available"
            )
        self.notes = CacheNotes()
        #: what the build depended on and showed, for a replay record (set by :meth:`run`)
        self.replay_inputs: ReplayInputs | None = None
        self._stored: tuple[Descriptor, tuple[Digest, ...]] | None = None  # manifest, layers
        self._base_images: dict[str, tuple[str, StoredImage]] = {}
        self._load_dockerfile()
        self.history = BuildHistory(
            self.store.home, history_id(options.context, self.dockerfile_path, options.target)
        )
        self.previous = self.history.load()
        self.epoch = options.epoch
        self.created = (
            created_timestamp(self.epoch) if self.epoch is not None else created_timestamp()
        )

    @property
    def explanations(self) -> list[str]:
        """Every cache miss of the build explained (``--explain-cache``)."""
        return self.notes.explanations

    # -- setup ---------------------------------------------------------------------------

    def _load_dockerfile(self) -> None:
        opts = self.options
        self.dockerfile_path = opts.dockerfile or os.path.join(opts.context, "Dockerfile")
        if opts.dockerfile_text is not None:
            text = opts.dockerfile_text
            name = (
                "Dockerfile"
                if opts.dockerfile in (None, "-")
                else os.path.basename(opts.dockerfile)
            )
        else:
            try:
                with open(self.dockerfile_path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                raise NotFound(f"Dockerfile not found: {self.dockerfile_path}") from None
            except IsADirectoryError:
                raise InvalidInput(
                    f"{self.dockerfile_path} is a directory, not a Dockerfile"
                ) from None
            text = raw.decode("utf-8", errors="surrogateescape")
            rel = os.path.relpath(self.dockerfile_path)
            name = self.dockerfile_path if rel.startswith("..") else rel
        self.file = name
        # History comments name the Dockerfile without its directory: a path would make the
        # image digest depend on where the context sits on the build machine.
        self.comment_file = (
            os.path.basename(self.dockerfile_path) if opts.dockerfile != "-" else "Dockerfile"
        )
        self.parsed = ins.parse_stages(parse(text, name))

    def _ignore_dockerfile(self) -> str | None:
        """The Dockerfile path whose ``<path>.dockerignore`` applies (None: from stdin)."""
        return self.dockerfile_path if self.options.dockerfile_text is None else None

    def _workspace(self) -> Workspace:
        opts = self.options
        stat_cache = StatCache(Path(self.store.home) / "cache" / "statcache.sqlite3")
        ignore = find_ignore_file(opts.context, self._ignore_dockerfile())
        matcher = IgnoreMatcher.from_file(ignore) if ignore is not None else None
        return Workspace(
            options=opts,
            store=self.store,
            progress=self.progress,
            parsed=self.parsed,
            file=self.file,
            comment_file=self.comment_file,
            context=BuildContext(opts.context, matcher, stat_cache, observe=True),
            stat_cache=stat_cache,
            host=self.host,
            created=self.created,
            epoch=self.epoch,
            notes=self.notes,
        )

    # -- the build -------------------------------------------------------------------------

    def run(self) -> BuildResult:
        """Build the target; store (and tag) the image; write ``--output``; return what happened."""
        with self.store.writing():
            ws = self._workspace()
            try:
                built = plan(
                    self.parsed,
                    build_args=self.options.build_args,
                    target=self.options.target,
                    target_platform=self.host,
                    build_platform=self.host,
                    resolve=lambda names: self._resolve_bases(ws, names),
                )
                runner = StageRunner(ws, self._base_images)
                stages = {st.index: st for st in built.needed()}

                def run_stage(index: int) -> StageState:
                    planned = stages[index]
                    state = runner.run(planned, self.previous.get(planned.name) or [])
                    ws.results[index] = state
                    return state

                deps = {i: _stage_deps(self.parsed, st) for i, st in stages.items()}
                run_stages(deps, run_stage, self.options.jobs)
                result = self._finish(built, ws, ws.results[built.target.index])
                self.replay_inputs = self._replay_inputs(ws)
            finally:
                ws.close()
        self.history.save({st.name: st.records for st in ws.results.values()})
        return result

    def _finish(self, built: BuildPlan, ws: Workspace, final: StageState) -> BuildResult:
        config = final.config
        if self.options.labels:
            config = replace(
                config,
                config=replace(
                    config.config, labels={**config.config.labels, **self.options.labels}
                ),
            )
        history = final.history
        if self.epoch is not None:
            history = [replace(h, created=self.created) for h in history]
        config = replace(
            config,
            created=self.created if self.epoch is not None else (final.stamp or self.created),
            history=tuple(history),
            diff_ids=tuple(layer.diff_id for layer in final.layers),
        )
        raw_config = config.to_bytes()
        config_digest = self.store.put_blob(raw_config)
        layers = []
        for layer in final.layers:
            assert layer.blob is not None  # every layer of a build is a stored blob
            layers.append(layer.blob)
        manifest = ImageManifest(
            config=Descriptor(mt.OCI_CONFIG, config_digest, len(raw_config)),
            layers=tuple(layers),
        )
        raw = manifest.to_bytes()
        digest = self.store.put_blob(raw)
        desc = Descriptor(mt.OCI_MANIFEST, digest, len(raw))
        self._stored = (desc, tuple(layer.digest for layer in layers))
        self.store.add_image(desc, self.options.tags)
        unused = unused_build_args(self.options.build_args, built.consumed_args())
        warnings = []
        if unused:
            many = len(unused) > 1
            text = (
                f"build-arg{'s' if many else ''} {', '.join(unused)} "
                f"{'were' if many else 'was'} not consumed"
            )
            self.progress.warn(text)
            warnings.append(text)
        exported = ""  # type=image: the store already holds it
        if self.options.output.type != "image":
            from forklift.build.export import export

            exported = export(
                self.options.output,
                self.store,
                desc,
                final.layers,
                ws.snapshotter,
                names=self.options.tags,
            )
        steps: list[StepReport] = []
        for index in sorted(ws.results):
            steps.extend(ws.results[index].steps)
        return BuildResult(
            digest,
            config_digest,
            self.options.tags,
            tuple(steps),
            tuple(warnings),
            exported,
            tuple(ws.images.items()),
        )

    def _replay_inputs(self, ws: Workspace) -> ReplayInputs:
        """What this build read and showed, for :func:`forklift.build.noop.save`."""
        assert self._stored is not None  # set by _finish
        desc, layers = self._stored
        candidates = ignore_file_candidates(self.options.context, self._ignore_dockerfile())
        observed = ws.context.observed or {}
        unsafe = ws.unsafe
        if not unsafe and ws.context.followed_link:
            unsafe = "a source reached through a symlink"
        return ReplayInputs(
            paths=(*observed, *(os.path.abspath(p) for p in candidates)),
            images=tuple(ws.images.items()),
            cache_keys=tuple(ws.cache.used),
            shown=tuple(sorted(ws.shown)),
            manifest_media_type=desc.media_type,
            manifest_size=desc.size,
            layers=layers,
            unsafe=unsafe,
        )

    # -- base images -----------------------------------------------------------------------

    def _resolve_bases(
        self, ws: Workspace, names: Mapping[str, Location]
    ) -> dict[str, BaseImage | None]:
        """The images FROM lines name, from the store or their registries, several at once."""

        def one(name: str) -> tuple[str, BaseImage]:
            where = names[name]
            ref = self._image_name(name, where)
            number = self.progress.start(f"[internal] load metadata for {ref}")
            try:
                image = self._base_image(ws, ref, where)
            except ForkliftError as exc:
                self.progress.failed(number, exc.message)
                raise
            self.progress.done(number)
            ws.show(number, f"[internal] load metadata for {ref}", "done")
            self._base_images[name] = (ref, image)
            named = self.options.build_contexts.get(name, "")
            ws.used(named.removeprefix("docker-image://") or name, image.digest)
            assert image.config is not None
            c = image.config.config
            return name, BaseImage(c.env_dict(), tuple(c.on_build), tuple(c.shell))

        jobs = max(1, min(self.options.jobs, len(names)))
        if jobs == 1:
            return dict(one(n) for n in names)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="resolve") as pool:
            return dict(pool.map(one, names))

    def _image_name(self, name: str, where: Location) -> str:
        named = self.options.build_contexts.get(name)
        if named is not None and named.startswith("docker-image://"):
            name = named[len("docker-image://") :]
        try:
            return str(parse_reference(name))
        except ForkliftError as exc:
            raise BuildError(f"FROM {name}: {exc.message}", location=where) from None

    def _base_image(self, ws: Workspace, ref: str, where: Location) -> StoredImage:
        image: StoredImage | None = None
        if not self.options.pull:
            try:
                image = self.store.resolve(ref)
            except NotFound:
                image = None
        if image is None:
            image = ws.pull(ref, where)
        ws.check_policy(image, ref, where)
        if image.config is None:
            raise BuildError(f"FROM {ref}: {image.error or 'not an image with a config'}")
        if (
            image.config.os
            and not image.config.platform.matches(self.host)
            and not self.host.can_run(image.config.platform)
        ):
            raise BuildError(
                f"FROM {ref}: the image is for {image.config.platform}, this machine is "
                f"{self.host} (no emulation)",
                location=where,
            )
        return image


def _stage_deps(parsed: ins.ParsedStages, planned: PlannedStage) -> set[int]:
    """The stages ``planned`` needs built first (an image's ONBUILD triggers may add some)."""
    deps = set(planned.node.stage_deps)
    for step in planned.steps:
        cmd = step.command
        if step.trigger is not None and isinstance(cmd, ins.CopyCommand) and cmd.from_:
            source = parsed.stage(cmd.from_)
            if source is not None:
                deps.add(source.index)
    return deps


def build(
    options: BuildOptions, store: Store | None = None, progress: BuildProgress | None = None
) -> BuildResult:
    """Build an image from a Dockerfile (``forklift build``) and store it.

    >>> result = build(BuildOptions(context="examples/hello", tags=(parse_reference("hello"),)))
    >>> result.image_id
    """
    builder = Builder(options, store, progress)
    return builder.run()
