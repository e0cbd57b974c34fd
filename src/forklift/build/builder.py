"""The build executor: a Dockerfile's stage graph -> an OCI image in the store.

Each stage runs its steps in order on a state (image config, layer stack,
history, cache key, variable scope). Layer steps (COPY, ADD, RUN, WORKDIR when
it creates a directory) look their cache key up first; a hit reuses the stored
layer without touching the filesystem, a miss executes the step:

* COPY/ADD write the layer straight from the selected files (the parent
  filesystem is mounted read-only only to resolve the destination and
  ``--chown`` names);
* RUN mounts the parent layers with overlayfs under a fresh upper directory,
  runs the command with runc/crun, and turns the upper directory into the
  layer (which also becomes the next snapshot, with no re-unpacking).

Stages the target needs run in dependency order, independent ones in
parallel. The first miss of each stage is explained against the last build.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forklift import cancel
from forklift.build import runstep
from forklift.build.cache import BuildCache, CacheEntry, step_key
from forklift.build.context import BuildContext, Selected, StatCache, checksum
from forklift.build.copyop import Source, plan_copy
from forklift.build.explain import BuildHistory, explain_miss, full_comparison, history_id
from forklift.build.metadata import StageState as MetaState
from forklift.build.metadata import apply_command, workdir_join
from forklift.build.options import BuildOptions, BuildResult, Output, StepReport
from forklift.build.progress import BuildProgress, PlainProgress
from forklift.build.rootview import Owner, RootView, resolve_chown
from forklift.dockerfile import instructions as ins
from forklift.dockerfile.args import (
    GlobalArgs,
    StageScope,
    platform_args,
    proxy_env,
    unused_build_args,
)
from forklift.dockerfile.ignore import IgnoreMatcher, find_ignore_file
from forklift.dockerfile.parser import parse
from forklift.dockerfile.shell import Lexer, split_words
from forklift.dockerfile.stages import StageGraph, StageNode
from forklift.errors import BuildError, ForkliftError, InvalidInput, Location, NotFound, UsageError
from forklift.layers import write_layer
from forklift.layers.entry import EntryType
from forklift.layers.source import LayerItem, Normalize
from forklift.oci import mediatypes as mt
from forklift.oci.config import History, ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import ImageManifest
from forklift.oci.platform import Platform, host_platform
from forklift.reference import parse_reference
from forklift.store.store import Store, StoredImage
from forklift.transports.rootfs import created_timestamp

COMMENT = "forklift: {file}:{line}"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HEREDOC_LEXER = Lexer(raw_quotes=True, raw_escapes=True)
_TAIL = 15


@dataclass
class StageState:
    """A stage being built: what its image is so far."""

    label: str
    config: ImageConfig
    layers: list[Any]  # runtime.snapshots.LayerRef
    history: list[History]
    key: str
    scope: StageScope
    meta: MetaState = field(default_factory=MetaState)
    no_cache: bool = False
    explained: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    # The time history entries get: that of the newest layer step so far (cached steps keep
    # the time they were built), so a fully cached rebuild gives the same image digest.
    stamp: str = ""


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
        self.cache = BuildCache(self.store)
        self.host = host_platform()
        if options.platform is not None and not options.platform.matches(self.host):
            raise UsageError(
                f"cannot build for {options.platform} on this {self.host} machine: "
                "emulation for other platforms is not available"
            )
        self._lock = threading.Lock()
        self._results: dict[int, StageState] = {}
        self._snapshotter: Any = None
        self._runtime: Any = None
        self._steps: list[StepReport] = []
        self.explanations: list[str] = []
        self._load_dockerfile()
        home = Path(self.store.home)
        self.stat_cache = StatCache(home / "cache" / "statcache.sqlite3")
        ignore = find_ignore_file(
            options.context, self.dockerfile_path if options.dockerfile_text is None else None
        )
        matcher = IgnoreMatcher.from_file(ignore) if ignore is not None else None
        self.context = BuildContext(options.context, matcher, self.stat_cache)
        self._named: dict[str, BuildContext] = {}
        self.history = BuildHistory(
            home, history_id(options.context, self.dockerfile_path, options.target)
        )
        self.previous = self.history.load()
        self.epoch = options.source_date_epoch
        self.created = (
            created_timestamp(self.epoch) if self.epoch is not None else created_timestamp()
        )

    # -- setup ---------------------------------------------------------------------

    def _load_dockerfile(self) -> None:
        opts = self.options
        if opts.dockerfile_text is not None:
            self.dockerfile_path = opts.dockerfile or os.path.join(opts.context, "Dockerfile")
            text = opts.dockerfile_text
            name = (
                "Dockerfile"
                if opts.dockerfile in (None, "-")
                else os.path.basename(opts.dockerfile)
            )
        else:
            self.dockerfile_path = opts.dockerfile or os.path.join(opts.context, "Dockerfile")
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
        self.dockerfile = parse(text, name)
        self.parsed = ins.parse_stages(self.dockerfile)
        predefined = platform_args(self.host, self.host)
        self.globals = GlobalArgs.evaluate(
            self.parsed.meta_args, opts.build_args, predefined, file=name, escape=self.parsed.escape
        )
        self.graph = StageGraph.build(self.parsed, self.globals)
        self.groups = self.graph.order(opts.target)

    @property
    def snapshotter(self) -> Any:
        if self._snapshotter is None:
            from forklift.runtime.snapshots import Snapshotter

            self._snapshotter = Snapshotter(self.store)
        return self._snapshotter

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            from forklift.runtime.oci_runtime import find_runtime

            self._runtime = find_runtime(self.options.runtime, home=self.store.home)
        return self._runtime

    # -- the build -----------------------------------------------------------------------

    def run(self) -> BuildResult:
        """Build the target; store (and tag) the image; return what happened."""
        with self.store.writing():
            try:
                for group in self.groups:
                    if len(group) == 1 or self.options.jobs <= 1:
                        for node in group:
                            self._results[node.index] = self._build_stage(node)
                    else:
                        with ThreadPoolExecutor(
                            max_workers=min(self.options.jobs, len(group))
                        ) as pool:
                            futures = {n.index: pool.submit(self._build_stage, n) for n in group}
                            for index, future in futures.items():
                                self._results[index] = future.result()
                target = self.graph.target(self.options.target)
                final = self._results[target.index]
                result = self._finish(final)
            finally:
                self.stat_cache.close()
                if self._snapshotter is not None:
                    self._snapshotter.close()
        records = {
            self._stage_label(self.graph.nodes[i]): st.records for i, st in self._results.items()
        }
        self.history.save(records)
        return result

    def _finish(self, final: StageState) -> BuildResult:
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
        manifest = ImageManifest(
            config=Descriptor(mt.OCI_CONFIG, config_digest, len(raw_config)),
            layers=tuple(layer.blob for layer in final.layers),
        )
        raw = manifest.to_bytes()
        digest = self.store.put_blob(raw)
        desc = Descriptor(mt.OCI_MANIFEST, digest, len(raw))
        self.store.add_image(desc, self.options.tags)
        unused = unused_build_args(
            self.options.build_args, self.graph.consumed_args(self.options.target)
        )
        warnings = []
        if unused:
            text = f"build-arg{'s' if len(unused) > 1 else ''} {', '.join(unused)} {'were' if len(unused) > 1 else 'was'} not consumed"
            self.progress.warn(text)
            warnings.append(text)
        self._export(desc, self.options.output)
        return BuildResult(
            digest, config_digest, self.options.tags, tuple(self._steps), tuple(warnings)
        )

    def _export(self, desc: Descriptor, output: Output) -> None:
        if output.type == "image":
            return
        from forklift.transports.archive import DockerArchiveDestination, OciArchiveDestination
        from forklift.transports.copy import copy_image
        from forklift.transports.layout import StoreSource

        assert output.dest is not None
        dst: Any = (
            OciArchiveDestination(output.dest, None)
            if output.type == "oci"
            else DockerArchiveDestination(output.dest)
        )
        with StoreSource(self.store, str(desc.digest)) as src, dst:
            copy_image(src, dst, names=self.options.tags)
            dst.commit()

    # -- stages ------------------------------------------------------------------------------

    def _stage_label(self, node: StageNode) -> str:
        return node.stage.name or f"stage-{node.index}"

    def _build_stage(self, node: StageNode) -> StageState:
        label = self._stage_label(node)
        total = len(node.stage.commands) + 1
        state = self._from(node, label, total)
        onbuild = list(state.config.config.on_build)
        if onbuild:
            # Triggers run now and are not inherited by this image's own children.
            state.config = replace(state.config, config=replace(state.config.config, on_build=()))
            for n, trigger in enumerate(onbuild, 1):
                cmd = self._parse_trigger(trigger, node)
                self._step(state, cmd, f"[{label} ONBUILD {n}/{len(onbuild)}] {trigger}")
        for i, cmd in enumerate(node.stage.commands, 2):
            self._step(state, cmd, f"[{label} {i}/{total}] {cmd.original}")
        return state

    def _parse_trigger(self, trigger: str, node: StageNode) -> ins.Command:
        try:
            parsed = ins.parse_stages(
                parse(f"FROM scratch\n{trigger}\n", f"ONBUILD of {node.base}")
            )
            return parsed.stages[0].commands[0]
        except (ForkliftError, IndexError) as exc:
            raise BuildError(
                f"ONBUILD trigger {trigger!r} of {node.base} is invalid: {exc}"
            ) from None

    def _from(self, node: StageNode, label: str, total: int) -> StageState:
        no_cache = self.options.no_cache or any(
            f.lower() in (node.stage.name, str(node.index)) for f in self.options.no_cache_filter
        )
        number = self.progress.start(f"[{label} 1/{total}] {node.stage.node.original}")
        try:
            if node.platform:
                wanted = Platform.parse(node.platform)
                if not wanted.matches(self.host):
                    raise BuildError(
                        f"FROM --platform={node.platform}: cannot build for {wanted} on this {self.host} "
                        "machine (no emulation)",
                        location=node.stage.node.location(self.file),
                    )
            base_stage = node.base_stage
            if base_stage is not None:
                parent = self._results[base_stage]
                scope = StageScope.for_stage(
                    self.globals,
                    self.options.build_args,
                    base=parent.scope,
                    file=self.file,
                    escape=self.parsed.escape,
                )
                state = StageState(
                    label, parent.config, list(parent.layers), list(parent.history), parent.key, scope,
                    MetaState(), no_cache, stamp=parent.stamp,
                )  # fmt: skip
                base_id = f"stage:{parent.key}"
            elif node.base == "scratch":
                config = ImageConfig(
                    architecture=self.host.architecture,
                    os=self.host.os,
                    variant=self.host.variant if self.host.architecture != "amd64" else "",
                )
                scope = StageScope.for_stage(
                    self.globals, self.options.build_args, file=self.file, escape=self.parsed.escape
                )
                state = StageState(
                    label, config, [], [], step_key("", "scratch", {}), scope, no_cache=no_cache,
                    stamp=self.created,
                )  # fmt: skip
                base_id = "scratch"
            else:
                image = self._base_image(node.base, node)
                from forklift.runtime.snapshots import image_layers

                assert image.config is not None
                scope = StageScope.for_stage(
                    self.globals,
                    self.options.build_args,
                    image_env=image.config.config.env_dict(),
                    file=self.file,
                    escape=self.parsed.escape,
                )
                state = StageState(
                    label, image.config, list(image_layers(self.store, image)), list(image.config.history),
                    step_key("", "from", {"image": str(image.digest)}), scope, no_cache=no_cache,
                    stamp=self.created if self.epoch is not None else (image.config.created or self.created),
                )  # fmt: skip
                base_id = str(image.digest)
            if "PATH" not in state.config.config.env_dict():
                # BuildKit makes sure every (Linux) stage has a PATH, in the image config too.
                state.config = replace(
                    state.config, config=state.config.config.with_env("PATH", DEFAULT_PATH)
                )
                state.scope.set_env("PATH", DEFAULT_PATH)
            state.records.append(
                {"instruction": node.stage.node.original, "key": state.key, "base": base_id}
            )
            self.progress.done(number)
            return state
        except ForkliftError as exc:
            self.progress.failed(number, exc.message)
            raise

    def _base_image(self, name: str, node: StageNode) -> StoredImage:
        named = self.options.build_contexts.get(name)
        if named is not None and named.startswith("docker-image://"):
            name = named[len("docker-image://") :]
        try:
            ref = parse_reference(name)
        except ForkliftError as exc:
            raise BuildError(
                f"FROM {name}: {exc.message}", location=node.stage.node.location(self.file)
            ) from None
        if not self.options.pull:
            with contextlib.suppress(NotFound):
                image = self.store.resolve(str(ref))
                self._check_policy(image, ref, node)
                return self._check_platform(image, name, node)
        image = self._pull(str(ref), node)
        self._check_policy(image, ref, node)
        return self._check_platform(image, name, node)

    def _check_policy(self, image: StoredImage, ref: Any, node: StageNode | None) -> None:
        """The signature policy (``--verify``/``--policy``) on a base image; cached per digest."""
        if self.options.image_policy is not None:
            try:
                self.options.image_policy.check_stored(self.store, image, ref)
            except ForkliftError as exc:
                where = node.stage.node.location(self.file) if node is not None else None
                raise BuildError(f"FROM {ref.familiar()}: {exc.message}", location=where) from None

    def _check_platform(self, image: StoredImage, name: str, node: StageNode) -> StoredImage:
        if image.config is None:
            raise BuildError(f"FROM {name}: {image.error or 'not an image with a config'}")
        if (
            image.config.os
            and not image.config.platform.matches(self.host)
            and not self.host.can_run(image.config.platform)
        ):
            raise BuildError(
                f"FROM {name}: the image is for {image.config.platform}, this machine is {self.host} "
                "(no emulation)",
                location=node.stage.node.location(self.file),
            )
        return image

    def _pull(self, ref: str, node: StageNode | None) -> StoredImage:
        """A base image missing from the store (or ``--pull``): from its registry."""
        where = node.stage.node.location(self.file) if node is not None else None
        try:
            from forklift.registry.client.images import pull
        except ImportError:  # pragma: no cover - the registry client ships with forklift
            raise NotFound(f"base image {ref} is not in the local store", location=where) from None
        try:
            return pull(ref, self.store, platform=self.host, policy=self.options.image_policy)
        except ForkliftError as exc:
            raise NotFound(
                f"base image {ref} is not in the local store and could not be pulled: {exc.message}",
                hint="forklift pull, forklift import or forklift load it first",
                location=where,
            ) from None

    # -- steps ----------------------------------------------------------------------------------

    def _step(self, st: StageState, cmd: ins.Command, label: str) -> None:
        cancel.check()
        number = self.progress.start(label)
        try:
            cached = self._dispatch(st, cmd, number)
        except ForkliftError as exc:
            if exc.location is None:
                exc.location = Location(self.file, cmd.line, cmd.node.column)
            self.progress.failed(number, exc.message)
            raise
        except cancel.Cancelled:
            self.progress.canceled(number)
            raise
        if cached:
            self.progress.cached(number)
        else:
            self.progress.done(number)

    def _history(self, st: StageState, cmd: ins.Command, created_by: str, empty: bool) -> None:
        st.history.append(
            History(
                created=st.stamp or self.created,
                created_by=created_by,
                comment=COMMENT.format(file=self.comment_file, line=cmd.line),
                empty_layer=empty,
            )
        )

    def _dispatch(self, st: StageState, cmd: ins.Command, number: int) -> bool:
        """Run one step; returns True when it came from the cache."""
        expander = st.scope.expander(cmd.line)
        if isinstance(cmd, ins.ArgCommand):
            st.scope.apply(cmd)
            self._history(st, cmd, cmd.original, True)
            return False
        if isinstance(cmd, ins.EnvCommand):
            expanded = cmd.expand(expander)
            for pair in expanded.pairs:
                st.scope.set_env(pair.key, pair.value)
            st.config, st.meta = apply_command(st.config, expanded, st.meta)
            self._history(
                st, cmd, "ENV " + " ".join(f"{p.key}={p.value}" for p in expanded.pairs), True
            )
            return False
        if isinstance(cmd, ins.ExposeCommand):
            ports: list[str] = []
            for p in cmd.ports:
                ports.extend(split_words(p, st.scope.env))
            cmd = replace(cmd, ports=tuple(ports))
        if isinstance(cmd, ins.WorkdirCommand):
            return self._workdir(st, cmd.expand(expander), number)
        if isinstance(cmd, ins.CopyCommand | ins.AddCommand):
            return self._copy(st, cmd, number)
        if isinstance(cmd, ins.RunCommand):
            return self._run(st, cmd, number)
        expanded_cmd = cmd.expand(expander)
        st.config, st.meta = apply_command(st.config, expanded_cmd, st.meta)
        self._history(st, cmd, cmd.original, True)
        return False

    # -- cache plumbing ---------------------------------------------------------------------

    def _lookup(
        self, st: StageState, key: str, record: dict[str, Any], number: int, what: str
    ) -> CacheEntry | None:
        st.records.append(record)
        if st.no_cache:
            self._explain(st, record, number, what, forced=True)
            return None
        entry = self.cache.get(key)
        if entry is None:
            self._explain(st, record, number, what)
        return entry

    def _explain(
        self, st: StageState, record: dict[str, Any], number: int, what: str, forced: bool = False
    ) -> None:
        if st.explained:
            return
        st.explained = True
        index = len(st.records) - 1
        previous_steps = self.previous.get(st.label) or []
        previous = previous_steps[index] if index < len(previous_steps) else None
        reason = "--no-cache" if forced else explain_miss(previous, record)
        line = f"cache miss: {what}: {reason}"
        self.progress.note(number, line)
        self.explanations.append(f"[{st.label}] {line}")
        if not forced:
            self.explanations.extend(full_comparison(previous, record))

    def _apply_entry(self, st: StageState, cmd: ins.Command, entry: CacheEntry) -> None:
        from forklift.runtime.snapshots import LayerRef

        if entry.layer is not None and entry.diff_id is not None:
            st.layers.append(LayerRef(entry.layer, entry.diff_id))
        if self.epoch is None:
            st.stamp = str(entry.extra.get("created") or st.stamp)
        self._history(st, cmd, entry.created_by, entry.layer is None)

    def _write_layer(
        self, source: Any, *, overlay: bool = False
    ) -> tuple[Descriptor, Digest] | None:
        """Write a layer blob into the store; None when a directory source holds no changes."""
        if overlay and not any(os.scandir(source)):
            return None
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

    def _record_layer(
        self,
        st: StageState,
        cmd: ins.Command,
        key: str,
        layer: tuple[Descriptor, Digest] | None,
        created_by: str,
    ) -> None:
        from forklift.runtime.snapshots import LayerRef

        desc, diff_id = layer if layer is not None else (None, None)
        st.stamp = self.created
        if desc is not None and diff_id is not None:
            st.layers.append(LayerRef(desc, diff_id))
        self.cache.put(
            key, desc, diff_id, created_by, {"created": self.created}, chain=self._chain(st, desc)
        )
        self._history(st, cmd, created_by, desc is None)

    @staticmethod
    def _chain(st: StageState, layer: Descriptor | None) -> Digest | None:
        """The chain ID of the stage's layers (when the step added one)."""
        if layer is None:
            return None
        from forklift.runtime.snapshots import chain_id

        return chain_id([x.diff_id for x in st.layers])

    def _report(self, st: StageState, cmd: ins.Command, cached: bool) -> None:
        with self._lock:
            self._steps.append(StepReport(st.label, cmd.original, cmd.line, cached))

    # -- WORKDIR -----------------------------------------------------------------------------

    def _workdir(self, st: StageState, cmd: ins.WorkdirCommand, number: int) -> bool:
        new_dir = workdir_join(st.config.config.working_dir, cmd.path)
        user = st.config.config.user
        key = step_key(st.key, "workdir", {"path": new_dir, "user": user})
        record = {
            "instruction": cmd.original,
            "key": key,
            "parent": st.key,
            "workdir": new_dir,
            "user": user,
        }
        entry = self._lookup(st, key, record, number, f"WORKDIR {cmd.path}")
        st.config, st.meta = apply_command(st.config, cmd, st.meta)
        created_by = f"WORKDIR {new_dir}"
        if entry is not None:
            self._apply_entry(st, cmd, entry)
            st.key = key
            self._report(st, cmd, True)
            return True
        layer = None
        with self.snapshotter.mount(st.layers) as m:
            view = RootView(str(m.rootfs))
            missing = []
            parts = [p for p in new_dir.split("/") if p]
            for i in range(len(parts)):
                path = "/" + "/".join(parts[: i + 1])
                kind = view.kind(path)
                if kind is None:
                    missing.append(path)
                elif kind != "d":
                    raise BuildError(f"WORKDIR {new_dir}: {path} exists and is not a directory")
            if missing:
                owner = self._exec_user(str(m.rootfs), user)
                items = [
                    LayerItem(
                        path=p.lstrip("/"),
                        type=EntryType.DIR,
                        mode=0o755,
                        uid=owner.uid,
                        gid=owner.gid,
                        mtime=int(time.time()),
                    )
                    for p in missing
                ]
                layer = self._write_layer(items)
        self._record_layer(st, cmd, key, layer, created_by)
        st.key = key
        self._report(st, cmd, False)
        return False

    def _exec_user(self, rootfs: str, user: str) -> Owner:
        if not user:
            return Owner(0, 0)
        from forklift.runtime.rootfs import resolve_user

        try:
            u = resolve_user(rootfs, user)
        except ForkliftError as exc:
            raise BuildError(exc.message) from None
        return Owner(u.uid, u.gid)

    # -- COPY / ADD -------------------------------------------------------------------------------

    def _source_context(self, from_: str, st: StageState) -> tuple[BuildContext | None, str, Any]:
        """The filesystem COPY --from reads: (context, identity for the cache key, layers to mount)."""
        if not from_:
            return self.context, "context", None
        named = self.options.build_contexts.get(from_)
        if named is not None and not named.startswith("docker-image://"):
            ctx = self._named.get(from_)
            if ctx is None:
                ctx = BuildContext(named, None, self.stat_cache, name=f"build context {from_!r}")
                self._named[from_] = ctx
            return ctx, f"context:{from_}", None
        stage = self.graph.parsed.stage(from_)
        if stage is not None and named is None:
            result = self._results.get(stage.index)
            if result is None:
                raise BuildError(f"--from={from_}: stage {from_} is not built yet")
            return None, f"stage:{result.key}", result.layers
        ref = named[len("docker-image://") :] if named else from_
        from forklift.runtime.snapshots import image_layers

        try:
            image = self.store.resolve(str(parse_reference(ref)))
        except NotFound:
            image = self._pull(str(parse_reference(ref)), None)
        self._check_policy(image, parse_reference(ref), None)
        return None, f"image:{image.digest}", list(image_layers(self.store, image))

    def _copy(self, st: StageState, cmd: ins.CopyCommand | ins.AddCommand, number: int) -> bool:
        expanded = cmd.expand(st.scope.expander(cmd.line))
        is_add = isinstance(cmd, ins.AddCommand)
        op = "add" if is_add else "copy"
        from_ = getattr(expanded, "from_", "") or ""
        ctx, source_id, from_layers = self._source_context(from_, st)
        urls = [s for s in expanded.sources if is_add and s.startswith(("http://", "https://"))]
        if urls and from_:
            raise BuildError("ADD --from cannot use URLs")
        for source in expanded.sources:
            if is_add and (
                source.startswith("git@")
                or ".git#" in source
                or source.rstrip("/").endswith(".git")
            ):
                raise BuildError(f"ADD {source}: adding git repositories is not supported")
        inputs: dict[str, Any] = {
            "sources": list(expanded.sources),
            "dest": expanded.dest,
            "workdir": st.config.config.working_dir,
            "from": source_id,
            "chown": expanded.chown,
            "chmod": expanded.chmod,
            "link": bool(getattr(expanded, "link", False)),
            "parents": bool(getattr(expanded, "parents", False)),
            "exclude": list(getattr(expanded, "excludes", ()) or ()),
            "heredocs": [(c.path, c.data) for c in expanded.contents],
        }
        created_by = (
            f"{op.upper()} {cmd.original.split(None, 1)[1] if ' ' in cmd.original else ''}".strip()
        )
        with contextlib.ExitStack() as stack:
            sources: list[Source] = []
            files: dict[str, str] = {}
            if ctx is not None:
                # The context (or a named directory): the file checksums are part of the key.
                sources = self._copy_sources(
                    ctx, expanded, inputs, urls, is_add, not from_, st, stack
                )
                inputs["checksum"] = checksum([x for s in sources for x in s.selected])
                for s in sources:
                    for sel in s.selected:
                        files[posixpath.join(s.name, sel.rel) if sel.rel else s.name] = (
                            f"{sel.kind}:{sel.mode & 0o7777:o}:{sel.digest}"
                        )
            # From a stage or an image, the source's key or digest stands for its content, so
            # a cache hit needs neither a mount nor a look at its files.
            key = step_key("link" if inputs["link"] else st.key, op, inputs)
            record = {
                "instruction": cmd.original,
                "key": key,
                "parent": st.key,
                "files": files,
                "options": {
                    k: v for k, v in inputs.items() if k not in ("sources", "heredocs", "checksum")
                },
            }
            entry = self._lookup(st, key, record, number, cmd.original)
            if entry is not None:
                self._apply_entry(st, cmd, entry)
                st.key = key
                self._report(st, cmd, True)
                return True
            if ctx is None:
                fs_mount = stack.enter_context(self.snapshotter.mount(from_layers))
                source_ctx = BuildContext(
                    str(fs_mount.rootfs),
                    None,
                    StatCache(None),
                    name=f"--from={from_}",
                    hash_contents=False,
                )
                sources = self._copy_sources(
                    source_ctx, expanded, inputs, urls, is_add, False, st, stack
                )
            chmod = ins.parse_chmod(expanded.chmod) if expanded.chmod else None
            link = inputs["link"]
            if link:
                view = RootView(None)
            else:
                m = stack.enter_context(self.snapshotter.mount(st.layers))
                view = RootView(str(m.rootfs))
            owner = resolve_chown(expanded.chown, view) if expanded.chown else None
            keep_owner = (
                any(s.name in inputs.get("archives", []) for s in sources) and owner is None
            )
            items = plan_copy(
                sources,
                expanded.dest,
                st.config.config.working_dir,
                view,
                owner=owner,
                chmod=chmod,
                link=link,
            )
            if keep_owner:  # an unpacked archive keeps the owners it records
                items = [
                    replace(i, uid=None, gid=None) if isinstance(i.source, str) else i
                    for i in items
                ]
            layer = self._write_layer(items) if items else None
        self._record_layer(st, cmd, key, layer, created_by)
        st.key = key
        self._report(st, cmd, False)
        return False

    def _copy_sources(
        self,
        ctx: BuildContext,
        expanded: Any,
        inputs: dict[str, Any],
        urls: list[str],
        is_add: bool,
        local_context: bool,
        st: StageState,
        stack: contextlib.ExitStack,
    ) -> list[Source]:
        """What each COPY/ADD source selects: files, unpacked archives, downloads, heredocs."""
        sources: list[Source] = []
        for src in (s for s in expanded.sources if s not in urls):
            selected, single = ctx.select(
                src, excludes=inputs["exclude"], parents=inputs["parents"]
            )
            unpack = getattr(expanded, "unpack", None) is not False
            if (
                is_add
                and single
                and unpack
                and local_context
                and self._is_archive(selected[0].path)
            ):
                selected, single = self._unpack_archive(selected[0].path, stack)
                inputs.setdefault("archives", []).append(src)
            sources.append(Source(tuple(selected), single, src))
        for url in urls:
            sources.append(self._fetch_url(url, getattr(expanded, "checksum", "") or "", stack))
        for content in expanded.contents:
            data = content.data
            if content.expand:
                # BuildKit expands variables in an unquoted heredoc but keeps quotes and escapes.
                data = _HEREDOC_LEXER.process(data, st.scope.env).result
            sources.append(Source((), True, content.path, data=data.encode()))
        return sources

    @staticmethod
    def _is_archive(path: str) -> bool:
        import tarfile

        try:
            with open(path, "rb") as f:
                head = f.read(512)
        except OSError:
            return False
        if (
            head[:2] == b"\x1f\x8b"
            or head[:4] == b"\x28\xb5\x2f\xfd"
            or head[:3] == b"BZh"
            or head[:6] == b"\xfd7zXZ\x00"
        ):
            return True
        return len(head) >= 262 and head[257:262] == b"ustar" and tarfile.is_tarfile(path)

    def _unpack_archive(
        self, path: str, stack: contextlib.ExitStack
    ) -> tuple[list[Selected], bool]:
        """ADD of a local archive: its contents, extracted safely into a scratch directory."""
        from forklift.layers import extract_layer

        tmp = Path(tempfile.mkdtemp(prefix="add-archive-"))
        stack.callback(shutil.rmtree, tmp, True)
        with open(path, "rb") as f:
            extract_layer(f, tmp, label=os.path.basename(path))
        ctx = BuildContext(str(tmp), None, StatCache(None), name="archive")
        selected, _ = ctx.select("/")
        return selected, False

    def _fetch_url(self, url: str, expected: str, stack: contextlib.ExitStack) -> Source:
        """ADD http(s)://...: download (verifying --checksum), mode 0600, mtime from Last-Modified."""
        import email.utils
        import hashlib

        import httpx

        tmp = Path(tempfile.mkdtemp(prefix="add-url-"))
        stack.callback(shutil.rmtree, tmp, True)
        name = posixpath.basename(httpx.URL(url).path.rstrip("/")) or "index.html"
        target = tmp / name
        h = hashlib.sha256()
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=60) as resp:
                if resp.status_code >= 400:
                    raise BuildError(f"ADD {url}: HTTP {resp.status_code}")
                with open(target, "wb") as out:
                    for chunk in resp.iter_bytes(1 << 20):
                        h.update(chunk)
                        out.write(chunk)
                modified = resp.headers.get("last-modified")
        except httpx.HTTPError as exc:
            raise BuildError(f"ADD {url}: {exc}") from None
        digest = "sha256:" + h.hexdigest()
        if expected and expected != digest:
            raise BuildError(f"ADD {url}: checksum mismatch: expected {expected}, got {digest}")
        os.chmod(target, 0o600)
        if modified:
            with contextlib.suppress(TypeError, ValueError):
                ts = email.utils.parsedate_to_datetime(modified).timestamp()
                os.utime(target, (ts, ts))
        ctx = BuildContext(str(tmp), None, StatCache(None), name="download")
        selected, single = ctx.select(name)
        return Source(tuple(selected), single, name)

    # -- RUN ------------------------------------------------------------------------------------

    def _run(self, st: StageState, cmd: ins.RunCommand, number: int) -> bool:
        expander = st.scope.expander(cmd.line)
        shell = tuple(st.config.config.shell) or runstep.DEFAULT_SHELL
        run = cmd.plan(shell)
        mounts = cmd.mounts(expander, self.file)
        network = cmd.network if cmd.network != "default" else self.options.network
        workdir = st.config.config.working_dir or "/"
        user = st.config.config.user
        env = dict(st.scope.env)
        mount_keys: list[dict[str, Any]] = []
        for mnt in mounts:
            item: dict[str, Any] = {"type": mnt.type, "target": mnt.target, "ro": mnt.readonly}
            if mnt.type == "bind":
                ctx, source_id, _ = self._source_context(mnt.from_, st)
                item["from"] = source_id
                item["source"] = mnt.source
                if ctx is not None:
                    selected, _ = ctx.select(mnt.source or "/")
                    item["checksum"] = checksum(selected)
            elif mnt.type == "cache":
                item.update(id=mnt.id, sharing=mnt.sharing)
            elif mnt.type == "secret":
                item.update(id=mnt.secret_id, env=mnt.env)  # never the value
            elif mnt.type == "ssh":
                raise BuildError(
                    "RUN --mount=type=ssh is not supported (no SSH agent forwarding here)"
                )
            mount_keys.append(item)
        prefix = st.scope.history_prefix()
        created_by = "RUN " + (prefix + " " if prefix else "") + " ".join(run.args)
        declared = {a.key: st.scope.env.get(a.key, a.value or "") for a in st.scope.args}
        inputs = {
            "args": list(run.args),
            "env": env,
            "user": user,
            "workdir": workdir,
            "network": network,
            "security": cmd.security,
            "mounts": mount_keys,
        }
        hostname = runstep.sandbox_hostname(self.options.build_args)
        if hostname != runstep.SANDBOX_HOSTNAME:
            inputs["hostname"] = hostname  # the default keeps the keys of earlier builds
        key = step_key(st.key, "run", inputs)
        config_env = st.config.config.env_dict()
        record = {
            "instruction": cmd.original,
            "key": key,
            "parent": st.key,
            "args": {k: v for k, v in declared.items()},
            "env": {k: v for k, v in config_env.items()},
            "user": user,
            "workdir": workdir,
            "shell": list(shell),
            "options": {"network": network, "mounts": mount_keys},
        }
        entry = self._lookup(st, key, record, number, cmd.original)
        if entry is not None:
            self._apply_entry(st, cmd, entry)
            st.key = key
            self._report(st, cmd, True)
            return True
        layer = self._execute(st, cmd, run, mounts, env, user, workdir, network, number)
        st.stamp = self.created
        self.cache.put(
            key,
            layer[0] if layer else None,
            layer[1] if layer else None,
            created_by,
            {"created": self.created},
            chain=self._chain(st, layer[0] if layer else None),
        )
        self._history(st, cmd, created_by, layer is None)
        st.key = key
        self._report(st, cmd, False)
        return False

    def _execute(
        self,
        st: StageState,
        cmd: ins.RunCommand,
        run: ins.RunPlan,
        mounts: tuple[Any, ...],
        env: dict[str, str],
        user: str,
        workdir: str,
        network: str,
        number: int,
    ) -> tuple[Descriptor, Digest] | None:
        from forklift.runtime.oci_runtime import STDOUT
        from forklift.runtime.runner import run_container
        from forklift.runtime.snapshots import LayerRef
        from forklift.runtime.spec import BindMount, ContainerSpec

        home = Path(self.store.home)
        secrets = {sid: s.read() for sid, s in self.options.secrets.items()}
        tail: list[str] = []
        buffer = bytearray()

        def on_output(chunk: bytes) -> None:
            buffer.extend(chunk)
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                text = line.decode(errors="replace").rstrip("\r")
                tail.append(text)
                del tail[:-_TAIL]
                self.progress.output(number, text)

        with contextlib.ExitStack() as stack:
            runtime_mounts: list[Any] = []
            extra_env: dict[str, str] = {}
            scratch = stack.enter_context(self.snapshotter.scratch())
            for mnt in mounts:
                target = (
                    runstep.mount_target(mnt, workdir) if mnt.target or mnt.type != "secret" else ""
                )
                if mnt.type == "cache":
                    runtime_mounts.append(runstep.prepare_cache(home, mnt, stack, target, scratch))
                elif mnt.type == "tmpfs":
                    runtime_mounts.append(runstep.prepare_tmpfs(mnt, workdir))
                elif mnt.type == "secret":
                    bind, secret_env = runstep.prepare_secret(mnt, secrets, stack, workdir, scratch)
                    if bind is not None:
                        runtime_mounts.append(bind)
                    extra_env.update(secret_env)
                elif mnt.type == "bind":
                    source = self._bind_source(mnt, st, stack)
                    if not mnt.readonly:
                        source = runstep.writable_copy(source, scratch)
                    runtime_mounts.append(BindMount(source, target, readonly=mnt.readonly))
            for n, inline in enumerate(run.files):
                script_dir = Path(tempfile.mkdtemp(prefix="heredoc-", dir=scratch))
                script = script_dir / f"script{n}"
                script.write_text(inline.data)
                os.chmod(script, inline.mode)
                runtime_mounts.append(BindMount(str(script), inline.path, readonly=True))
            process_env = {**proxy_env(self.options.build_args), **env, **extra_env}
            spec = ContainerSpec(
                args=run.args,
                env=tuple(f"{k}={v}" for k, v in process_env.items()),
                cwd=workdir,
                user=user,
                network=network,
                mounts=tuple(runtime_mounts),
                hostname=runstep.sandbox_hostname(self.options.build_args),
                hosts_from_host=False,
            )
            m = stack.enter_context(self.snapshotter.mount(st.layers))
            try:
                result = run_container(
                    spec, m, runtime=self.runtime, stdout=on_output, stderr=STDOUT
                )
            except ForkliftError as exc:
                raise BuildError(f"RUN: {exc.message}") from None
            if buffer:
                on_output(b"\n")
            if not result.ok:
                reason = result.runtime_error or f"exit code {result.exit_code}"
                last = "\n".join(tail[-5:])
                raise BuildError(
                    f"{cmd.original}: {reason}",
                    hint=("last output:\n" + last) if last else None,
                )
            m.unmount()
            layer = self._write_layer(str(m.upper), overlay=True)
            if layer is not None:
                m.commit(layer[1])
                st.layers.append(LayerRef(layer[0], layer[1]))
            return layer

    def _bind_source(self, mnt: Any, st: StageState, stack: contextlib.ExitStack) -> str:
        ctx, _, layers = self._source_context(mnt.from_, st)
        if ctx is None:
            fs = stack.enter_context(self.snapshotter.mount(layers))
            root = str(fs.rootfs)
            from forklift.fsutil import resolve_in_root

            return os.path.join(root, resolve_in_root(root, mnt.source or "/"))
        rel = ctx.resolve(mnt.source.lstrip("/")) if mnt.source else ""
        if not ctx.included(rel):
            raise BuildError(f"RUN --mount source {mnt.source!r} not found in the {ctx.name}")
        path = os.path.join(ctx.root, rel) if rel else ctx.root
        if ctx.matcher and os.path.isdir(path):
            return self._filtered_tree(ctx, rel, stack)
        return path

    def _filtered_tree(self, ctx: BuildContext, rel: str, stack: contextlib.ExitStack) -> str:
        """The included part of a context directory (ignored files left out), as hard links."""
        tmp = Path(tempfile.mkdtemp(prefix="bind-ctx-"))
        stack.callback(shutil.rmtree, tmp, True)
        root = tmp / "d"
        root.mkdir()
        selected, _ = ctx.select(rel or "/")
        for s in selected:
            target = root / s.rel
            if s.kind == "d":
                target.mkdir(parents=True, exist_ok=True)
            elif s.kind == "l":
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(s.link_target, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(s.path, target)
                except OSError:
                    shutil.copy2(s.path, target)
        return str(root)


def build(
    options: BuildOptions, store: Store | None = None, progress: BuildProgress | None = None
) -> BuildResult:
    """Build an image from a Dockerfile (``forklift build``) and store it.

    >>> result = build(BuildOptions(context="examples/hello", tags=(parse_reference("hello"),)))
    >>> result.image_id
    """
    builder = Builder(options, store, progress)
    return builder.run()
