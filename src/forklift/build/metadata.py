"""Steps that change only the image config: the metadata executor, with Docker's rules.

ENV, LABEL, EXPOSE, USER, WORKDIR (its config part), VOLUME, STOPSIGNAL, CMD,
ENTRYPOINT, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER and ARG change no layer.
The front end has already expanded and validated each one
(:mod:`forklift.dockerfile.dispatch`); :func:`apply_command` applies it to an
image config, :class:`MetadataOp` is the build step, and ``forklift import
--change`` uses :func:`apply_changes`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from forklift.dockerfile import instructions as ins
from forklift.dockerfile.dispatch import expand_command
from forklift.dockerfile.parser import parse
from forklift.errors import InvalidInput, ParseError
from forklift.oci.config import ContainerConfig, Healthcheck, ImageConfig

if TYPE_CHECKING:
    from forklift.build.step import StepCache, StepInput, StepOutput


@dataclass(frozen=True)
class MetaState:
    """What metadata steps need besides the config: whether CMD was set in this stage."""

    cmd_set: bool = False


def workdir_join(current: str, path: str) -> str:
    """WORKDIR semantics: relative paths join the current working directory; result cleaned."""
    base = current or "/"
    joined = path if path.startswith("/") else posixpath.join(base, path)
    return posixpath.normpath(joined) if joined not in ("", "/") else "/"


def _added(current: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    """``current`` and then what ``new`` adds (a set kept in the order things were added)."""
    out = list(current)
    for item in new:
        if item not in out:
            out.append(item)
    return tuple(out)


def shell_form(cmd: ins._ShellDependent, config: ContainerConfig) -> tuple[str, ...]:
    if not cmd.prepend_shell:
        return tuple(cmd.cmdline)
    shell = tuple(config.shell) or ins.DEFAULT_SHELL
    return (*shell, " ".join(cmd.cmdline))


def apply_command(
    image: ImageConfig, cmd: ins.Command, state: MetaState = MetaState()
) -> tuple[ImageConfig, MetaState]:
    """Apply one metadata command, as the front end expanded and checked it.

    Returns the new config and stage state.
    """
    c = image.config
    if isinstance(cmd, ins.EnvCommand):
        for pair in cmd.pairs:
            c = c.with_env(pair.key, pair.value)
    elif isinstance(cmd, ins.LabelCommand):
        c = replace(c, labels={**c.labels, **{p.key: p.value for p in cmd.pairs}})
    elif isinstance(cmd, ins.ExposeCommand):
        # the front end turned every word into ``port/proto`` entries
        c = replace(c, exposed_ports=_added(c.exposed_ports, cmd.ports))
    elif isinstance(cmd, ins.UserCommand):
        c = replace(c, user=cmd.user)
    elif isinstance(cmd, ins.WorkdirCommand):
        c = replace(c, working_dir=workdir_join(c.working_dir, cmd.path))
    elif isinstance(cmd, ins.VolumeCommand):
        c = replace(c, volumes=_added(c.volumes, cmd.volumes))
    elif isinstance(cmd, ins.StopSignalCommand):
        c = replace(c, stop_signal=cmd.signal)
    elif isinstance(cmd, ins.CmdCommand):
        c = replace(c, cmd=shell_form(cmd, c))
        state = replace(state, cmd_set=True)
    elif isinstance(cmd, ins.EntrypointCommand):
        # Docker: a new ENTRYPOINT drops an inherited CMD, but not one set earlier in this stage.
        c = replace(c, entrypoint=shell_form(cmd, c), cmd=c.cmd if state.cmd_set else None)
    elif isinstance(cmd, ins.HealthcheckCommand):
        c = replace(
            c,
            healthcheck=Healthcheck(
                test=tuple(cmd.test),
                interval=cmd.interval,
                timeout=cmd.timeout,
                start_period=cmd.start_period,
                start_interval=cmd.start_interval,
                retries=cmd.retries,
            ),
        )
    elif isinstance(cmd, ins.ShellCommand):
        c = replace(c, shell=tuple(cmd.shell))
    elif isinstance(cmd, ins.OnbuildCommand):
        c = replace(c, on_build=(*c.on_build, cmd.expression))
    elif isinstance(cmd, ins.MaintainerCommand):
        return replace(image, author=cmd.maintainer), state
    else:
        raise InvalidInput(f"{cmd.keyword.upper()} is not a metadata instruction")
    return replace(image, config=c), state


# Instructions `docker import --change` / `docker commit --change` accept.
CHANGE_KEYWORDS = frozenset(
    {
        "cmd",
        "entrypoint",
        "env",
        "expose",
        "label",
        "onbuild",
        "user",
        "volume",
        "workdir",
        "stopsignal",
        "healthcheck",
        "shell",
    }
)


def apply_changes(config: ContainerConfig, changes: Sequence[str]) -> ContainerConfig:
    """Apply ``--change`` Dockerfile lines (``CMD ["sh"]``, ``ENV A=1``...) to a config.

    Each line is expanded and checked by the front end exactly as a build step.
    """
    image = ImageConfig(architecture="", os="", config=config)
    state = MetaState()
    for n, line in enumerate(changes, 1):
        try:
            stages = ins.parse_stages(parse(f"FROM scratch\n{line}\n", f"--change #{n}"))
        except ParseError as exc:
            raise InvalidInput(f"--change {line!r}: {exc.message}") from None
        commands = stages.stages[0].commands
        if len(commands) != 1 or commands[0].keyword not in CHANGE_KEYWORDS:
            kw = (
                commands[0].keyword.upper() if commands else line.split()[0] if line.split() else ""
            )
            raise InvalidInput(
                f"--change {line!r}: {kw or 'an empty line'} is not allowed "
                f"(use {', '.join(sorted(k.upper() for k in CHANGE_KEYWORDS))})"
            )
        try:
            cmd = expand_command(commands[0], image.config.env_dict(), file=f"--change #{n}")
        except ParseError as exc:
            raise InvalidInput(f"--change {line!r}: {exc.message}") from None
        image, state = apply_command(image, cmd, state)
    return image.config


class MetadataOp:
    """The executor of config-only steps (ARG and ENV included): no layer, the cache key kept."""

    def execute(self, inp: StepInput, cache: StepCache) -> StepOutput:
        """Apply the step to the config; the history line says what it did."""
        from forklift.build.step import StepOutput

        cmd = inp.step.command
        config, meta = inp.config, inp.meta
        created_by = inp.step.original
        if isinstance(cmd, ins.EnvCommand):
            created_by = "ENV " + " ".join(f"{p.key}={p.value}" for p in cmd.pairs)
        if not isinstance(cmd, ins.ArgCommand):
            config, meta = apply_command(config, cmd, meta)
        return StepOutput(inp.snapshot, config, created_by, empty_layer=True, meta=meta)
