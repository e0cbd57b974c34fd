"""Metadata instructions applied to an image config, with Docker's rules.

ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL, CMD, ENTRYPOINT,
HEALTHCHECK, SHELL, ONBUILD and MAINTAINER change only the image config (no
layer). The builder uses :func:`apply_command` for each such step; ``forklift
import --change`` uses :func:`apply_changes`.
"""

from __future__ import annotations

import posixpath
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, replace

from forklift.dockerfile import instructions as ins
from forklift.dockerfile.parser import parse
from forklift.errors import InvalidInput, ParseError
from forklift.oci.config import ContainerConfig, Healthcheck, ImageConfig

DEFAULT_SHELL = ("/bin/sh", "-c")
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


@dataclass(frozen=True)
class StageState:
    """What metadata steps need besides the config: whether CMD was set in this stage."""

    cmd_set: bool = False


def expose_ports(ports: Sequence[str]) -> list[str]:
    """``80``, ``80/udp``, ``7000-7002`` -> ``80/tcp``, ``80/udp``, ``7000/tcp``... (ranges expanded)."""
    out: list[str] = []
    for spec in ports:
        m = _PORT.match(spec.strip())
        if not m:
            raise InvalidInput(
                f"invalid port {spec!r} in EXPOSE (expected PORT[-PORT][/tcp|udp|sctp])"
            )
        start = int(m.group(1))
        end = int(m.group(2) or start)
        proto = (m.group(3) or "tcp").lower()
        if not 0 < start <= 65535 or not 0 < end <= 65535 or end < start:
            raise InvalidInput(f"invalid port range {spec!r} in EXPOSE")
        out.extend(f"{p}/{proto}" for p in range(start, end + 1))
    return out


def check_signal(value: str) -> str:
    """Accept ``SIGTERM``, ``TERM``, ``15`` (as docker does); reject anything else."""
    v = value.strip()
    if v.isdigit() and 0 < int(v) < 65:
        return v
    name = v.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN") or name.startswith("SIGRTMAX") or hasattr(signal.Signals, name):
        return v
    raise InvalidInput(f"invalid STOPSIGNAL {value!r}")


def workdir_join(current: str, path: str) -> str:
    """WORKDIR semantics: relative paths join the current working directory; result cleaned."""
    base = current or "/"
    joined = path if path.startswith("/") else posixpath.join(base, path)
    return posixpath.normpath(joined) if joined not in ("", "/") else "/"


def _shell_form(cmd: ins._ShellDependent, config: ContainerConfig) -> tuple[str, ...]:
    if not cmd.prepend_shell:
        return tuple(cmd.cmdline)
    shell = tuple(config.shell) or DEFAULT_SHELL
    return (*shell, " ".join(cmd.cmdline))


def apply_command(
    image: ImageConfig, cmd: ins.Command, state: StageState = StageState()
) -> tuple[ImageConfig, StageState]:
    """Apply one (already expanded) metadata command; returns the new config and stage state."""
    c = image.config
    if isinstance(cmd, ins.EnvCommand):
        for pair in cmd.pairs:
            c = c.with_env(pair.key, pair.value)
    elif isinstance(cmd, ins.LabelCommand):
        c = replace(c, labels={**c.labels, **{p.key: p.value for p in cmd.pairs}})
    elif isinstance(cmd, ins.ExposeCommand):
        ports = list(c.exposed_ports)
        for p in expose_ports(cmd.ports):
            if p not in ports:
                ports.append(p)
        c = replace(c, exposed_ports=tuple(ports))
    elif isinstance(cmd, ins.UserCommand):
        c = replace(c, user=cmd.user)
    elif isinstance(cmd, ins.WorkdirCommand):
        c = replace(c, working_dir=workdir_join(c.working_dir, cmd.path))
    elif isinstance(cmd, ins.VolumeCommand):
        vols = list(c.volumes)
        for v in cmd.volumes:
            if not v.strip():
                raise InvalidInput("VOLUME specified can not be an empty string")
            if v not in vols:
                vols.append(v)
        c = replace(c, volumes=tuple(vols))
    elif isinstance(cmd, ins.StopSignalCommand):
        c = replace(c, stop_signal=check_signal(cmd.signal))
    elif isinstance(cmd, ins.CmdCommand):
        c = replace(c, cmd=_shell_form(cmd, c))
        state = replace(state, cmd_set=True)
    elif isinstance(cmd, ins.EntrypointCommand):
        # Docker: a new ENTRYPOINT drops an inherited CMD, but not one set earlier in this stage.
        c = replace(c, entrypoint=_shell_form(cmd, c), cmd=c.cmd if state.cmd_set else None)
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
    """Apply ``--change`` Dockerfile lines (``CMD ["sh"]``, ``ENV A=1``...) to a config."""
    from forklift.dockerfile.shell import expand

    image = ImageConfig(architecture="", os="", config=config)
    state = StageState()
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
        env = image.config.env_dict()

        def expander(word: str, env: dict[str, str] = env) -> str:
            return expand(word, env)

        image, state = apply_command(image, commands[0].expand(expander), state)
    return image.config
