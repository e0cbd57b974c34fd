"""Evaluate a Dockerfile without building it: every stage's variables, expanded commands, mounts.

This walks the stages a build needs (or all of them) in file order, the way
BuildKit dispatches them, and does everything that does not need an image or
the context: global and stage ARG scoping, ENV tracking, expanding the words
BuildKit expands, parsing ``RUN --mount`` options, checking ``--chmod``,
``STOPSIGNAL``, platforms and base image names. It stops at the first error,
with its location, like BuildKit would.

The result feeds ``--print=outline`` and ``dockerfile outline`` (which ARGs a
target uses, secrets, SSH): :attr:`StageEvaluation.commands` holds the expanded
commands, :attr:`StageEvaluation.steps` the scope before each. The builder does
not run from it: ``build/builder.py`` walks the stages itself (and the linter
has a third walk in ``lint/checks/buildkit.py``), so the three can disagree
where their checks differ.
"""

from __future__ import annotations

import re
import signal as signal_mod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from forklift.dockerfile.args import GlobalArgs, StageScope, platform_args
from forklift.dockerfile.gocompat import go_quote
from forklift.dockerfile.instructions import (
    AddCommand,
    ArgCommand,
    Command,
    CopyCommand,
    EnvCommand,
    ExposeCommand,
    ParsedStages,
    RunCommand,
    SourceContent,
    StopSignalCommand,
    parse_chmod,
)
from forklift.dockerfile.mounts import Mount
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.dockerfile.stages import StageGraph, StageNode, onbuild_triggers
from forklift.errors import InvalidReference, Location, ParseError
from forklift.oci.platform import Platform
from forklift.reference import parse_reference

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PLATFORM_COMPONENT = re.compile(r"[A-Za-z0-9_.-]+\Z")
_RAW_LEXER = Lexer("\\", skip_quotes=True)


@dataclass(frozen=True)
class SecretUse:
    """A secret (or SSH agent) a RUN mounts: its id, whether it is required, where."""

    id: str
    required: bool
    line: int


@dataclass
class StageEvaluation:
    """One evaluated stage.

    ``commands`` are the stage's commands with their words expanded, preceded
    by the ONBUILD triggers of its base stage if it has one; ``mounts`` maps a
    command's position (negative for triggers) to its parsed RUN mounts; ``scope`` is
    the variable scope at the end of the stage; ``secrets``/``ssh`` the ids its
    RUN mounts use.
    """

    node: StageNode
    scope: StageScope
    commands: list[Command] = field(default_factory=list)
    mounts: dict[int, tuple[Mount, ...]] = field(default_factory=dict)
    secrets: dict[str, SecretUse] = field(default_factory=dict)
    ssh: dict[str, SecretUse] = field(default_factory=dict)


@dataclass
class Evaluation:
    """The evaluated build: graph, global scope and each evaluated stage by index."""

    graph: StageGraph
    globals: GlobalArgs
    target: StageNode
    stages: dict[int, StageEvaluation]
    build_args: Mapping[str, str]


def _platform_error(text: str) -> str | None:
    """containerd's ``platforms.Parse`` complaint about ``text``, or ``None`` if it parses."""
    parts = text.split("/")
    for part in parts:
        if not _PLATFORM_COMPONENT.match(part):
            return (
                f"{go_quote(part)} is an invalid component of {go_quote(text)}: platform "
                'specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument'
            )
    if len(parts) > 3:
        return f"{go_quote(text)}: unknown operating system or architecture: invalid argument"
    return None


def _reference_problem(ref: str) -> str:
    """distribution/reference's complaint about ``ref`` (BuildKit shows it verbatim)."""
    try:
        parse_reference(ref.lower())
    except InvalidReference:
        return "invalid reference format"
    name = ref.split("@", 1)[0]
    if name.rfind(":") > name.rfind("/"):
        name = name[: name.rfind(":")]
    first, _, rest = name.partition("/")
    if not rest:
        path = "library/" + name
    elif "." in first or ":" in first or first == "localhost":
        path = rest
    else:
        path = name
    return f"invalid reference format: repository name ({path}) must be lowercase"


def _valid_signal(text: str) -> bool:
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text) != 0
    name = text.upper().removeprefix("SIG")
    if name in {s.name.removeprefix("SIG") for s in signal_mod.Signals}:
        return True
    m = re.fullmatch(r"RTMIN(?:\+([0-9]+))?|RTMAX(?:-([0-9]+))?", name)
    return m is not None


def _check_port(spec: str) -> str | None:
    # docker/go-connections nat.ParsePortSpec, reduced to what can be wrong here.
    port, _, proto = spec.rpartition("/") if "/" in spec else (spec, "", "tcp")
    if proto.lower() not in ("tcp", "udp", "sctp"):
        return f"invalid proto: {proto}"
    host_port = port.rsplit(":", 1)[-1]
    start, _, end = host_port.partition("-")
    for p in (start, end) if end else (start,):
        if not p.isdigit() or not 0 <= int(p) <= 65535:
            return f"invalid containerPort: {host_port}"
    return None


def evaluate(
    parsed: ParsedStages,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    all_stages: bool = False,
    target_platform: Platform | None = None,
    build_platform: Platform | None = None,
    image_env: Callable[[str], Mapping[str, str] | None] | None = None,
) -> Evaluation:
    """Evaluate the stages ``target`` needs (every stage with ``all_stages``).

    ``image_env`` returns the configured environment of a base image (by its
    expanded name) when the caller knows it; otherwise stages start with only
    ``PATH``, as BuildKit guarantees. Raises :class:`~forklift.errors.ParseError`
    (or :class:`~forklift.errors.NotFound` for an unknown target).
    """
    file = parsed.file
    build_args = dict(build_args or {})
    globals_ = GlobalArgs.evaluate(
        parsed.meta_args,
        build_args,
        platform_args(target_platform, build_platform),
        file=file,
        escape=parsed.escape,
    )
    graph = StageGraph.build(parsed, globals_)
    for node in graph.nodes:
        if node.platform:
            problem = _platform_error(node.platform)
            if problem:
                raise ParseError(
                    f"failed to parse platform {node.stage.platform}: {problem}",
                    location=node.stage.node.location(file),
                )
    chosen = graph.target(target)
    wanted = graph.nodes if all_stages else graph.needed(target)
    if not all_stages:
        graph.order(target)  # reports forward COPY --from references

    for node in wanted:
        refs = [(node.base, node.stage.line)] if node.base_stage is None else []
        refs += [(d.image, d.line) for d in node.deps if d.kind != "base" and d.stage is None]
        for ref, line in refs:
            if ref.lower() == "scratch":
                continue
            try:
                parse_reference(ref)
            except InvalidReference:
                raise ParseError(
                    f"failed to parse stage name {go_quote(ref)}: {_reference_problem(ref)}",
                    location=Location(file, line),
                ) from None

    results: dict[int, StageEvaluation] = {}
    for node in wanted:
        base = results.get(node.base_stage) if node.base_stage is not None else None
        env: Mapping[str, str] | None = None
        if base is None:
            env = dict((image_env(node.base) if image_env else None) or {})
            env.setdefault("PATH", DEFAULT_PATH)
        scope = StageScope.for_stage(
            globals_,
            build_args,
            base=base.scope if base is not None else None,
            image_env=env,
            file=file,
            escape=parsed.escape,
        )
        scope.used |= set(node.used_args)
        ev = StageEvaluation(node, scope)
        lexer = Lexer(parsed.escape)
        # ONBUILD triggers of a base stage run first (positions before 0).
        triggers = onbuild_triggers(parsed, node.base_stage)
        for pos, cmd in enumerate(triggers, -len(triggers)):
            _dispatch(ev, pos, cmd, file, lexer)
        for pos, cmd in enumerate(node.stage.commands):
            _dispatch(ev, pos, cmd, file, lexer)
        results[node.index] = ev
    return Evaluation(graph, globals_, chosen, results, build_args)


def _dispatch(ev: StageEvaluation, pos: int, cmd: Command, file: str, lexer: Lexer) -> None:
    scope = ev.scope
    loc = cmd.node.location(file)
    try:
        if isinstance(cmd, ArgCommand):
            for arg in cmd.args:
                scope.declare(arg, cmd.line)
            ev.commands.append(cmd)
            return
        env = dict(scope.env)

        def expand(word: str) -> str:
            return lexer.process(word, env).result

        if isinstance(cmd, EnvCommand):
            expanded_env = cmd.expand(expand)
            for pair in expanded_env.pairs:
                scope.set_env(pair.key, pair.value)
            ev.commands.append(expanded_env)
            return
        if isinstance(cmd, ExposeCommand):
            ports: list[str] = []
            for p in cmd.ports:
                ports.extend(lexer.process(p, env).words)
            for p in ports:
                problem = _check_port(p)
                if problem:
                    raise ParseError(problem, location=loc)
            ev.commands.append(ExposeCommand(cmd.node, ports=tuple(ports)))
            return
        expanded = cmd.expand(expand)
        if isinstance(expanded, RunCommand):
            mounts = expanded.mounts(expand, file)
            ev.mounts[pos] = mounts
            for m in mounts:
                if m.type == "secret":
                    ev.secrets.setdefault(m.secret_id, SecretUse(m.secret_id, m.required, cmd.line))
                elif m.type == "ssh":
                    ev.ssh.setdefault(m.secret_id, SecretUse(m.secret_id, m.required, cmd.line))
        elif isinstance(expanded, (CopyCommand, AddCommand)):
            if expanded.chmod:
                try:
                    parse_chmod(expanded.chmod)
                except ValueError as exc:
                    raise ParseError(
                        str(exc), location=_flag_location(cmd, "chmod", file)
                    ) from None
            if expanded.contents:
                contents = tuple(
                    SourceContent(c.path, _RAW_LEXER.process(c.data, env).result, c.expand)
                    if c.expand
                    else c
                    for c in expanded.contents
                )
                expanded = _replace_contents(expanded, contents)
        elif isinstance(expanded, StopSignalCommand) and not _valid_signal(expanded.signal):
            raise ParseError(f"Invalid signal: {expanded.signal}", location=loc)
        ev.commands.append(expanded)
    except ExpansionError as exc:
        raise ParseError(str(exc), location=loc) from None


def _flag_location(cmd: Command, name: str, file: str) -> Location:
    for flag in cmd.node.flags:
        if flag.name == name:
            return Location(file, flag.line, flag.column)
    return cmd.node.location(file)


def _replace_contents(
    cmd: CopyCommand | AddCommand, contents: tuple[SourceContent, ...]
) -> Command:

    return replace(cmd, contents=contents)
