"""RUN: a process in the OCI runtime whose filesystem changes become the step's layer.

On a cache miss the parent layers are mounted with overlayfs under a fresh
upper directory, the command runs with runc/crun (its ``--mount``\\ s prepared by
:mod:`forklift.build.runstep`), and the upper directory is written as the
layer, which also becomes the next snapshot without unpacking it again.

The cache key covers what the process can see and that could change its
result: its arguments (heredocs included), environment (ARG and ENV values),
user, working directory, network mode, security mode and mounts (a bind
mount's source content checksum; never a secret's value). Proxy variables
given as build args reach the process but not the key, as in BuildKit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from forklift.build import runstep
from forklift.build.cache import step_key
from forklift.build.context import BuildContext, checksum
from forklift.build.step import StepCache, StepInput, StepOutput, cached_or_built
from forklift.build.workspace import Workspace
from forklift.dockerfile import instructions as ins
from forklift.dockerfile.args import proxy_env
from forklift.dockerfile.mounts import Mount
from forklift.errors import BuildError, ForkliftError

_TAIL = 15  # output lines kept for the error of a failing RUN


class RunOp:
    """The executor of RUN."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def execute(self, inp: StepInput, cache: StepCache) -> StepOutput:
        """Run the step's process on top of ``inp.snapshot`` (or reuse the cached layer)."""
        step = inp.step
        cmd = step.command
        assert isinstance(cmd, ins.RunCommand)
        config = inp.config.config
        shell = step.shell or ins.DEFAULT_SHELL  # the front end follows SHELL and the base's
        run = cmd.plan(shell)
        network = cmd.network if cmd.network != "default" else self.ws.options.network
        workdir = config.working_dir or "/"
        user = config.user
        env = dict(step.env)
        mount_keys: list[dict[str, Any]] = []
        for mnt in step.mounts:
            item: dict[str, Any] = {"type": mnt.type, "target": mnt.target, "ro": mnt.readonly}
            if mnt.type == "bind":
                origin = self.ws.origin(mnt.from_)
                item["from"] = origin.identity
                item["source"] = mnt.source
                if origin.context is not None:
                    selected, _ = origin.context.select(mnt.source or "/")
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
        prefix = step.history_prefix()
        created_by = "RUN " + (prefix + " " if prefix else "") + " ".join(run.args)
        inputs = {
            "args": list(run.args),
            "env": env,
            "user": user,
            "workdir": workdir,
            "network": network,
            "security": cmd.security,
            "mounts": mount_keys,
        }
        hostname = runstep.sandbox_hostname(self.ws.options.build_args)
        if hostname != runstep.SANDBOX_HOSTNAME:
            inputs["hostname"] = hostname  # the default keeps the keys of earlier builds
        key = step_key(inp.snapshot.key, "run", inputs)
        record = {
            "instruction": step.original,
            "key": key,
            "parent": inp.snapshot.key,
            "args": dict(step.args),
            "env": config.env_dict(),
            "user": user,
            "workdir": workdir,
            "shell": list(shell),
            "options": {"network": network, "mounts": mount_keys},
        }

        def build() -> StepOutput:
            return self._execute(inp, cache, key, created_by, run, env, user, workdir, network)

        return cached_or_built(inp, cache, key, record, inp.config, build)

    def _execute(
        self,
        inp: StepInput,
        cache: StepCache,
        key: str,
        created_by: str,
        run: ins.RunPlan,
        env: dict[str, str],
        user: str,
        workdir: str,
        network: str,
    ) -> StepOutput:
        from forklift.runtime.layerstack import LayerRef
        from forklift.runtime.oci_runtime import STDOUT
        from forklift.runtime.runner import run_container
        from forklift.runtime.spec import BindMount, ContainerSpec

        ws = self.ws
        number = inp.number
        secrets = {sid: s.read() for sid, s in ws.options.secrets.items()}
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
                ws.progress.output(number, text)

        with contextlib.ExitStack() as stack:
            runtime_mounts: list[Any] = []
            extra_env: dict[str, str] = {}
            # the step's own scratch space in the snapshotter (cleaned up even after a crash)
            scratch = stack.enter_context(ws.snapshotter.scratch())
            for mnt in inp.step.mounts:
                target = (
                    runstep.mount_target(mnt, workdir) if mnt.target or mnt.type != "secret" else ""
                )
                if mnt.type == "cache":
                    runtime_mounts.append(
                        runstep.prepare_cache(ws.home, mnt, stack, target, scratch)
                    )
                elif mnt.type == "tmpfs":
                    runtime_mounts.append(runstep.prepare_tmpfs(mnt, workdir))
                elif mnt.type == "secret":
                    bind, secret_env = runstep.prepare_secret(mnt, secrets, stack, workdir, scratch)
                    if bind is not None:
                        runtime_mounts.append(bind)
                    extra_env.update(secret_env)
                elif mnt.type == "bind":
                    source = self._bind_source(mnt, stack, scratch)
                    if not mnt.readonly:
                        source = runstep.writable_copy(source, scratch)
                    runtime_mounts.append(BindMount(source, target, readonly=mnt.readonly))
            for n, inline in enumerate(run.files):
                script_dir = Path(tempfile.mkdtemp(prefix="heredoc-", dir=scratch))
                script = script_dir / f"script{n}"
                script.write_text(inline.data)
                os.chmod(script, inline.mode)
                runtime_mounts.append(BindMount(str(script), inline.path, readonly=True))
            process_env = {**proxy_env(ws.options.build_args), **env, **extra_env}
            spec = ContainerSpec(
                args=run.args,
                env=tuple(f"{k}={v}" for k, v in process_env.items()),
                cwd=workdir,
                user=user,
                network=network,
                mounts=tuple(runtime_mounts),
                hostname=runstep.sandbox_hostname(ws.options.build_args),
                hosts_from_host=False,
            )
            m = stack.enter_context(ws.snapshotter.mount(inp.snapshot.layers))
            try:
                result = run_container(spec, m, runtime=ws.runtime, stdout=on_output, stderr=STDOUT)
            except ForkliftError as exc:
                raise BuildError(f"RUN: {exc.message}") from None
            if buffer:
                on_output(b"\n")
            if not result.ok:
                reason = result.runtime_error or f"exit code {result.exit_code}"
                last = "\n".join(tail[-5:])
                raise BuildError(
                    f"{inp.step.original}: {reason}",
                    hint=("last output:\n" + last) if last else None,
                )
            m.unmount()
            layer = ws.write_layer(str(m.upper), overlay=True)
            after = None
            if layer is not None:
                # the upper dir becomes the next snapshot as it is: nothing is unpacked again
                m.commit(layer[1])
                after = inp.snapshot.plus(LayerRef(layer[0], layer[1]), key)
            return cache.store(inp, key, layer, created_by, inp.config, after)

    def _bind_source(self, mnt: Mount, stack: contextlib.ExitStack, scratch: Path) -> str:
        """The host path a ``--mount=type=bind`` shows (ignored context files left out)."""
        origin = self.ws.origin(mnt.from_)
        ctx = origin.context
        if ctx is None:
            fs = stack.enter_context(self.ws.snapshotter.mount(origin.layers))
            root = str(fs.rootfs)
            from forklift.fsutil import resolve_in_root

            return os.path.join(root, resolve_in_root(root, mnt.source or "/"))
        rel = ctx.resolve(mnt.source.lstrip("/")) if mnt.source else ""
        if not ctx.included(rel):
            raise BuildError(f"RUN --mount source {mnt.source!r} not found in the {ctx.name}")
        path = os.path.join(ctx.root, rel) if rel else ctx.root
        if ctx.matcher and os.path.isdir(path):
            return _filtered_tree(ctx, rel, Path(tempfile.mkdtemp(prefix="bind-ctx-", dir=scratch)))
        return path


def _filtered_tree(ctx: BuildContext, rel: str, scratch: Path) -> str:
    """The included part of a context directory (ignored files left out), as hard links.

    Made in the step's ``scratch`` directory, which recovery removes if forklift is killed.
    """
    root = scratch / "d"
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
