"""COPY, ADD and WORKDIR: steps that write files into a layer without running anything.

Each looks its cache key up first; a hit reuses the stored layer without
touching any filesystem. On a miss:

* COPY/ADD write the layer straight from the selected files (the parent
  filesystem is mounted read-only only to resolve the destination and
  ``--chown`` names; ``--link`` needs not even that). Sources are the build
  context (``.dockerignore`` applied), a named ``--build-context``, a stage
  built earlier or an image (``--from``), a heredoc, and for ADD a local
  archive (unpacked) or an ``http(s)://`` URL (downloaded with the registry
  client's TLS, proxy and retry settings). Where each file lands is
  :mod:`forklift.build.copyop`'s job.
* WORKDIR creates the directories that do not exist yet, owned by the USER.

Cache keys derive from the parent key and the content: file checksums for the
context, the source stage's key or image digest for ``--from``, and for a URL,
as BuildKit does, the downloaded content's digest, file name and
``Last-Modified`` time; with ``--checksum`` the given digest stands for the
content, so a cached step downloads nothing (a download is verified against it).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import time
from dataclasses import replace
from typing import Any

from forklift.build.cache import step_key
from forklift.build.context import BuildContext, Selected, StatCache, checksum
from forklift.build.copyop import Source, plan_copy
from forklift.build.metadata import apply_command, workdir_join
from forklift.build.rootview import Owner, RootView, resolve_chown
from forklift.build.step import StepCache, StepInput, StepOutput, cached_or_built
from forklift.build.workspace import Workspace
from forklift.dockerfile import instructions as ins
from forklift.dockerfile.values import is_git_source, is_http_source
from forklift.errors import BuildError, ForkliftError


class FileOp:
    """The executor of COPY, ADD and WORKDIR."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def execute(self, inp: StepInput, cache: StepCache) -> StepOutput:
        """Write the step's files as a layer on top of ``inp.snapshot`` (or reuse the cached one)."""
        cmd = inp.step.command
        if isinstance(cmd, ins.WorkdirCommand):
            return self._workdir(inp, cache, cmd)
        assert isinstance(cmd, ins.CopyCommand | ins.AddCommand)
        return self._copy(inp, cache, cmd)

    # -- WORKDIR --------------------------------------------------------------------------

    def _workdir(self, inp: StepInput, cache: StepCache, cmd: ins.WorkdirCommand) -> StepOutput:
        new_dir = workdir_join(inp.config.config.working_dir, cmd.path)
        user = inp.config.config.user
        key = step_key(inp.snapshot.key, "workdir", {"path": new_dir, "user": user})
        record = {
            "instruction": inp.step.original,
            "key": key,
            "parent": inp.snapshot.key,
            "workdir": new_dir,
            "user": user,
        }
        config, _ = apply_command(inp.config, cmd)

        def build() -> StepOutput:
            from forklift.layers.entry import EntryType
            from forklift.layers.source import LayerItem

            layer = None
            with self.ws.snapshotter.mount(inp.snapshot.layers) as m:
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
                    owner = _exec_user(str(m.rootfs), user)
                    now = int(time.time())
                    items = [
                        LayerItem(
                            path=p.lstrip("/"),
                            type=EntryType.DIR,
                            mode=0o755,
                            uid=owner.uid,
                            gid=owner.gid,
                            mtime=now,
                        )
                        for p in missing
                    ]
                    layer = self.ws.write_layer(items)
            return cache.store(inp, key, layer, f"WORKDIR {new_dir}", config)

        return cached_or_built(inp, cache, key, record, config, build)

    # -- COPY / ADD -----------------------------------------------------------------------

    def _copy(
        self, inp: StepInput, cache: StepCache, cmd: ins.CopyCommand | ins.AddCommand
    ) -> StepOutput:
        is_add = isinstance(cmd, ins.AddCommand)
        op = "add" if is_add else "copy"
        from_ = cmd.from_ if isinstance(cmd, ins.CopyCommand) else ""
        origin = self.ws.origin(from_)
        urls = [s for s in cmd.sources if is_add and is_http_source(s)]
        for source in cmd.sources:
            if is_add and is_git_source(source):
                raise BuildError(f"ADD {source}: adding git repositories is not supported")
        expected = cmd.checksum if isinstance(cmd, ins.AddCommand) else ""
        inputs: dict[str, Any] = {
            "sources": [s for s in cmd.sources if s not in urls],
            "dest": cmd.dest,
            "workdir": inp.config.config.working_dir,
            "from": origin.identity,
            "chown": cmd.chown,
            "chmod": cmd.chmod,
            "link": cmd.link,
            "parents": bool(getattr(cmd, "parents", False)),
            "exclude": list(cmd.excludes),
            "heredocs": [(c.path, c.data) for c in cmd.contents],
        }
        original = inp.step.original
        created_by = f"{op.upper()} {original.split(None, 1)[1] if ' ' in original else ''}".strip()
        with contextlib.ExitStack() as stack:
            paths: list[Source] = []
            files: dict[str, str] = {}
            downloads: dict[str, Source] = {}
            if urls:
                inputs["urls"] = [self._url_identity(u, expected, downloads, stack) for u in urls]
                for _u, ident in zip(urls, inputs["urls"], strict=True):
                    files[ident["name"]] = f"url:{ident['checksum']}"
            if origin.context is not None:
                # The context (or a named directory): the file checksums are part of the key.
                paths = self._select(origin.context, cmd, inputs, is_add, stack)
                inputs["checksum"] = checksum([x for s in paths for x in s.selected])
                for s in paths:
                    for sel in s.selected:
                        files[posixpath.join(s.name, sel.rel) if sel.rel else s.name] = (
                            f"{sel.kind}:{sel.mode & 0o7777:o}:{sel.digest}"
                        )
            # From a stage or an image, the source's key or digest stands for its content, so
            # a cache hit needs neither a mount nor a look at its files.
            key = step_key("link" if cmd.link else inp.snapshot.key, op, inputs)
            record = {
                "instruction": original,
                "key": key,
                "parent": inp.snapshot.key,
                "files": files,
                "options": {
                    k: v
                    for k, v in inputs.items()
                    if k not in ("sources", "heredocs", "checksum", "urls")
                },
            }

            def build() -> StepOutput:
                nonlocal paths
                if origin.context is None:
                    fs = stack.enter_context(self.ws.snapshotter.mount(origin.layers))
                    source_ctx = BuildContext(
                        str(fs.rootfs),
                        None,
                        StatCache(None),
                        name=f"--from={from_}",
                        hash_contents=False,
                    )
                    paths = self._select(source_ctx, cmd, inputs, False, stack)
                fetched = [downloads.get(u) or self._download(u, expected, stack) for u in urls]
                # the front end expanded an unquoted heredoc's variables already
                heredocs = [Source((), True, c.path, data=c.data.encode()) for c in cmd.contents]
                layer = self._write(inp, cmd, paths + fetched + heredocs, inputs, stack)
                return cache.store(inp, key, layer, created_by, inp.config)

            return cached_or_built(inp, cache, key, record, inp.config, build)

    def _select(
        self,
        ctx: BuildContext,
        cmd: ins.CopyCommand | ins.AddCommand,
        inputs: dict[str, Any],
        unpack_archives: bool,
        stack: contextlib.ExitStack,
    ) -> list[Source]:
        """What each path source selects (a local archive unpacked, for ADD)."""
        sources: list[Source] = []
        unpack = getattr(cmd, "unpack", None) is not False
        for src in cmd.sources:
            if unpack_archives and is_http_source(src):
                continue  # ADD's downloads are sources of their own
            selected, single = ctx.select(
                src, excludes=inputs["exclude"], parents=inputs["parents"]
            )
            if unpack_archives and single and unpack and _is_archive(selected[0].path):
                selected, single = self._unpack_archive(selected[0].path, stack)
                inputs.setdefault("archives", []).append(src)
            sources.append(Source(tuple(selected), single, src))
        return sources

    def _write(
        self,
        inp: StepInput,
        cmd: ins.CopyCommand | ins.AddCommand,
        sources: list[Source],
        inputs: dict[str, Any],
        stack: contextlib.ExitStack,
    ) -> Any:
        chmod = cmd.chmod_spec()
        if cmd.link:
            view = RootView(None)
        else:
            m = stack.enter_context(self.ws.snapshotter.mount(inp.snapshot.layers))
            view = RootView(str(m.rootfs))
        owner = resolve_chown(cmd.chown, view) if cmd.chown else None
        keep_owner = any(s.name in inputs.get("archives", []) for s in sources) and owner is None
        items = plan_copy(
            sources,
            cmd.dest,
            inp.config.config.working_dir,
            view,
            owner=owner,
            chmod=chmod,
            link=cmd.link,
        )
        if keep_owner:  # an unpacked archive keeps the owners it records
            items = [
                replace(i, uid=None, gid=None) if isinstance(i.source, str) else i for i in items
            ]
        return self.ws.write_layer(items) if items else None

    def _unpack_archive(
        self, path: str, stack: contextlib.ExitStack
    ) -> tuple[list[Selected], bool]:
        """ADD of a local archive: its contents, extracted safely into a scratch directory."""
        from forklift.layers import extract_layer

        # in the snapshotter's scratch space: recovery removes it if forklift is killed
        tmp = stack.enter_context(self.ws.snapshotter.scratch())
        with open(path, "rb") as f:
            extract_layer(f, tmp, label=os.path.basename(path))
        ctx = BuildContext(str(tmp), None, StatCache(None), name="archive")
        selected, _ = ctx.select("/")
        return selected, False

    # -- ADD <url> ------------------------------------------------------------------------

    def _url_identity(
        self, url: str, expected: str, downloads: dict[str, Source], stack: contextlib.ExitStack
    ) -> dict[str, Any]:
        """What stands for a URL's content in the cache key (BuildKit's HTTP source key)."""
        from forklift.registry.client.web import url_filename

        if expected:
            return {"name": url_filename(url), "checksum": expected}
        # what the URL serves now decides the step: only a real build can answer
        self.ws.unsafe = f"ADD {url} (no --checksum)"
        source = self._download(url, "", stack)
        downloads[url] = source
        sel = source.selected[0]
        return {"name": source.name, "checksum": sel.digest, "modified": sel.mtime}

    def _download(self, url: str, expected: str, stack: contextlib.ExitStack) -> Source:
        """ADD http(s)://...: download (verifying --checksum); mode 0600, mtime Last-Modified."""
        from forklift.registry.client.web import download, url_filename

        tmp = stack.enter_context(self.ws.snapshotter.scratch())
        name = url_filename(url)
        target = tmp / name
        try:
            with open(target, "wb") as out:
                got = download(url, out, options=self.ws.options.client_options)
        except ForkliftError as exc:
            raise BuildError(f"ADD {url}: {exc.message}") from None
        if expected and got.digest != expected:
            raise BuildError(f"digest mismatch for {url}: {got.digest} (expected: {expected})")
        os.chmod(target, 0o600)
        if got.last_modified is not None:
            os.utime(target, (got.last_modified, got.last_modified))
        ctx = BuildContext(str(tmp), None, StatCache(None), name="download")
        selected, single = ctx.select(name)
        return Source(tuple(selected), single, name)


def _is_archive(path: str) -> bool:
    from forklift.layers import is_tar_archive

    try:
        with open(path, "rb") as f:
            return is_tar_archive(f)
    except OSError:
        return False


def _exec_user(rootfs: str, user: str) -> Owner:
    """The owner of what WORKDIR creates: the USER of the stage, as the image resolves it."""
    if not user:
        return Owner(0, 0)
    from forklift.runtime.rootfs import resolve_user

    try:
        u = resolve_user(rootfs, user)
    except ForkliftError as exc:
        raise BuildError(exc.message) from None
    return Owner(u.uid, u.gid)
