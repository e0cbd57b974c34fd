"""The stage graph: which stage needs which, and what a target needs.

Dependencies (as BuildKit finds them):

* ``FROM <name>`` where ``<name>`` (after expanding global ARGs) is the name of
  an *earlier* stage: the stage starts from that stage's result.
* ``COPY --from=<name|index>``: a stage by name (any stage) or by index; any
  other value is an image reference.
* ``RUN --mount=...,from=<name>``: likewise.

:meth:`StageGraph.build` expands every FROM line (base name and
``--platform``) with the global ARGs, which is where BuildKit checks them too.
:meth:`StageGraph.needed` gives the stages a target needs; the builder's
scheduler starts each as soon as the stages it depends on are done. Cycles,
unknown targets, bad stage indexes and variables in ``--from`` are reported as
:class:`~forklift.errors.ParseError`/:class:`~forklift.errors.NotFound`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from forklift.dockerfile.args import GlobalArgs
from forklift.dockerfile.diagnostics import Diagnostics
from forklift.dockerfile.gocompat import go_quote, suggest, with_suggestion
from forklift.dockerfile.instructions import (
    ArgCommand,
    Command,
    CopyCommand,
    OnbuildCommand,
    ParsedStages,
    RunCommand,
    Stage,
)
from forklift.dockerfile.mounts import mount_from
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.dockerfile.values import parse_platform
from forklift.errors import Location, NotFound, ParseError

_ATOI = re.compile(r"[+-]?[0-9]+\Z")


@dataclass(frozen=True)
class Dependency:
    """One edge: ``kind`` is ``"base"``, ``"copy"`` or ``"mount"``; ``stage`` is the index of
    the stage depended on, or ``None`` when ``image`` names an external image."""

    kind: str
    stage: int | None
    image: str
    line: int
    column: int = 0


@dataclass(frozen=True)
class StageNode:
    """A stage with its FROM expanded and its dependencies resolved.

    ``base`` is the expanded base name; ``platform`` the expanded ``--platform``
    ("" if none); ``used_args`` the global ARGs the FROM line used.
    """

    stage: Stage
    base: str
    platform: str
    deps: tuple[Dependency, ...]
    used_args: frozenset[str]

    @property
    def index(self) -> int:
        """Position of the stage in the file (0-based)."""
        return self.stage.index

    @property
    def name(self) -> str:
        """The stage's name, or ``stage-N``."""
        return self.stage.display_name

    @property
    def base_stage(self) -> int | None:
        """Index of the stage this one is built FROM, if any."""
        for d in self.deps:
            if d.kind == "base":
                return d.stage
        return None

    @property
    def stage_deps(self) -> tuple[int, ...]:
        """Indices of all stages this one needs, without repeats, in first-use order."""
        out: list[int] = []
        for d in self.deps:
            if d.stage is not None and d.stage not in out:
                out.append(d.stage)
        return tuple(out)

    @property
    def images(self) -> tuple[str, ...]:
        """External images this stage uses (base image, ``--from`` images), without repeats."""
        out: list[str] = []
        for d in self.deps:
            if d.stage is None and d.image not in out and d.image.lower() != "scratch":
                out.append(d.image)
        return tuple(out)


class StageGraph:
    """Stages of a Dockerfile with their dependencies; see the module doc."""

    def __init__(
        self, parsed: ParsedStages, nodes: tuple[StageNode, ...], globals_: GlobalArgs
    ) -> None:
        self.parsed = parsed
        self.nodes = nodes
        self.globals = globals_
        self._by_name = {n.stage.name: n for n in nodes if n.stage.name}

    @classmethod
    def build(
        cls,
        parsed: ParsedStages,
        globals_: GlobalArgs | None = None,
        build_args: Mapping[str, str] | None = None,
        diag: Diagnostics | None = None,
    ) -> StageGraph:
        """Resolve FROM lines with the global ARGs and collect every dependency.

        Errors (through ``diag``, raised by default): an empty base name, a bad
        ``--platform`` expression, a COPY index out of range, variables in
        ``--from``, a dependency cycle. The checks BuildKit makes on FROM lines
        (``UndefinedArgInFrom``, ``RedundantTargetPlatform``,
        ``FromPlatformFlagConstDisallowed``) go to ``diag``'s warnings.
        """
        diag = diag or Diagnostics()
        file = parsed.file
        if globals_ is None:
            globals_ = GlobalArgs.evaluate(
                parsed.meta_args, build_args, file=file, escape=parsed.escape, diag=diag
            )
        env = globals_.env
        declared = set(env) | set(globals_.infos)
        lexer = Lexer(parsed.escape)
        names: dict[str, int] = {}
        bases: list[tuple[str, str, frozenset[str], int | None]] = []
        for st in parsed.stages:
            base, platform, used = _expand_from(st, env, declared, lexer, file, diag)
            # Only an earlier stage can be a base; BuildKit looks the expanded
            # name up as is among (lower-cased) stage names.
            base_index = names.get(base)
            bases.append((base, platform, used, base_index))
            if st.name:
                names[st.name] = st.index

        nodes: list[StageNode] = []
        for st, (base, platform, used_args, base_index) in zip(parsed.stages, bases, strict=True):
            deps: list[Dependency] = [
                Dependency("base", base_index, base if base_index is None else "", st.line)
            ]
            for cmd in onbuild_triggers(parsed, base_index) + list(st.commands):
                try:
                    deps.extend(_command_deps(cmd, parsed, file))
                except ParseError as exc:
                    diag.error(exc)
            nodes.append(StageNode(st, base, platform, tuple(deps), used_args))
        graph = cls(parsed, tuple(nodes), globals_)
        try:
            graph._check_cycles()
        except ParseError as exc:
            diag.error(exc)
        return graph

    # -- lookups -----------------------------------------------------------
    def get(self, name: str) -> StageNode:
        """The stage called ``name`` (case-insensitive), as ``--target`` names it.

        Like BuildKit, only named stages are targets: an unnamed stage has no
        name to give (``stage-N`` is only how progress output labels it).
        """
        node = self._by_name.get(name.lower())
        if node is None:
            named = [n.stage.name for n in self.nodes if n.stage.name]
            message = with_suggestion(
                f"target stage {go_quote(name)} could not be found",
                name,
                named,
                case_sensitive=False,
            )
            raise NotFound(
                message,
                hint=(
                    "stages: " + ", ".join(named)
                    if named
                    else "no stage has a name (FROM image AS name); build the last one "
                    "without --target"
                ),
            )
        return node

    def target(self, name: str | None = None) -> StageNode:
        """The stage built for ``--target name`` (default: the last stage)."""
        if not self.nodes:
            raise NotFound("the Dockerfile has no stages")
        if name is None or name == "":
            return self.nodes[-1]
        return self.get(name)

    # -- traversal ---------------------------------------------------------
    def needed(self, target: str | None = None) -> list[StageNode]:
        """The stages the target needs (itself included), in file order."""
        start = self.target(target)
        seen: set[int] = set()
        todo = [start.index]
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            todo.extend(self.nodes[i].stage_deps)
        return [n for n in self.nodes if n.index in seen]

    def consumed_args(self, target: str | None = None) -> set[str]:
        """Names of ARGs a build of ``target`` consumes (for :func:`~forklift.dockerfile.args.unused_build_args`)."""
        out: set[str] = set()
        for node in self.needed(target):
            out |= self.globals.resolve_used(node.used_args)
            for cmd in node.stage.commands:
                if isinstance(cmd, ArgCommand):
                    out.update(a.key for a in cmd.args)
        return out

    # -- validation --------------------------------------------------------
    def _check_cycles(self) -> None:
        visited: set[int] = set()
        for node in self.nodes:
            path = self._visit(node.index, visited, set(), [])
            if path is not None:
                first = min(path, key=lambda d: (d.line, d.column))
                chain = " -> ".join(
                    [node.name, *(self.nodes[d.stage].name for d in path if d.stage is not None)]
                )
                raise ParseError(
                    f"circular dependency detected on stage: {node.name} ({chain})",
                    location=Location(self.parsed.file, first.line, first.column),
                )

    def _visit(
        self, i: int, visited: set[int], on_path: set[int], edges: list[Dependency]
    ) -> list[Dependency] | None:
        if i in visited:
            return None
        visited.add(i)
        on_path.add(i)
        for dep in self.nodes[i].deps:
            # A base is always an earlier stage, so it cannot close a cycle on
            # its own; BuildKit checks COPY/mount edges only.
            if dep.stage is None or dep.kind == "base":
                continue
            path = [*edges, dep]
            if dep.stage in on_path:
                return path
            found = self._visit(dep.stage, visited, on_path, path)
            if found is not None:
                return found
        on_path.discard(i)
        return None


def _undeclared_in_from(
    unmatched: frozenset[str], declared: set[str], st: Stage, diag: Diagnostics
) -> None:
    for name in sorted(unmatched - declared):
        message = f"FROM argument '{name}' is not declared"
        hint = suggest(name, declared, case_sensitive=True)
        if hint:
            message += f" (did you mean {hint}?)"
        diag.warn("UndefinedArgInFrom", message, st.node)


def _expand_from(
    st: Stage,
    env: Mapping[str, str],
    declared: set[str],
    lexer: Lexer,
    file: str,
    diag: Diagnostics,
) -> tuple[str, str, frozenset[str]]:
    """One FROM line with the global ARGs: (base name, platform, ARGs used).

    BuildKit's ``buildDispatchStates`` for one stage: its checks, then its errors.
    A tolerant pass keeps an empty base name where it failed (it is reported once).
    """
    loc = st.node.location(file)
    base = ""  # what a tolerant pass keeps when the name cannot be expanded
    used: set[str] = set()
    try:
        res = lexer.process(st.base_name, env)
    except ExpansionError as exc:
        diag.error(ParseError(str(exc), location=loc))
    else:
        _undeclared_in_from(res.unmatched, declared, st, diag)
        if res.result == "":
            diag.error(ParseError(f"base name ({st.base_name}) should not be blank", location=loc))
        else:
            base = res.result
        used |= res.matched
    platform = ""
    if st.platform:
        try:
            pres = lexer.process(st.platform, env)
        except ExpansionError as exc:
            diag.error(
                ParseError(
                    f"failed to process arguments for platform {st.platform}: {exc}",
                    location=loc,
                )
            )
            return base, platform, frozenset(used)
        _undeclared_in_from(pres.unmatched, declared, st, diag)
        if (
            len(pres.matched) == 1
            and not pres.unmatched
            and "TARGETPLATFORM" in pres.matched
            and pres.result == env.get("TARGETPLATFORM")
        ):
            diag.warn(
                "RedundantTargetPlatform",
                f"Setting platform to predefined {st.platform} in FROM is redundant as this "
                "is the default behavior",
                st.node,
            )
        problem: str | None = None
        try:
            parsed_platform = parse_platform(pres.result)
        except ValueError as exc:
            problem = str(exc)
        else:
            if (
                not pres.matched
                and not pres.unmatched
                and parsed_platform.os not in st.name
                and parsed_platform.architecture not in st.name
            ):
                diag.warn(
                    "FromPlatformFlagConstDisallowed",
                    f"FROM --platform flag should not use constant value {go_quote(pres.result)}",
                    st.node,
                )
        if pres.result == "":
            message = f"empty platform value from expression {st.platform}"
            for name in sorted(pres.unmatched):
                hinted = with_suggestion(message, name, env, case_sensitive=True)
                if hinted != message:
                    message = hinted
                    break
            diag.error(ParseError(message, location=loc))
        elif problem is not None:
            diag.error(
                ParseError(f"failed to parse platform {st.platform}: {problem}", location=loc)
            )
        else:
            platform = pres.result
            used |= pres.matched
    return base, platform, frozenset(used)


def onbuild_triggers(parsed: ParsedStages, base_index: int | None) -> list[Command]:
    """The ONBUILD triggers a stage built FROM stage ``base_index`` runs first, in order.

    Only the base stage's own ONBUILD instructions count (triggers are not
    inherited further), as in BuildKit. A trigger that does not parse is left
    out here (it only adds dependencies); the child's dispatch reports it.
    """
    if base_index is None:
        return []
    out: list[Command] = []
    for cmd in parsed.stages[base_index].commands:
        if isinstance(cmd, OnbuildCommand):
            try:
                out.append(cmd.trigger(parsed.file))
            except ParseError:
                continue
    return out


def _stage_ref(
    value: str, parsed: ParsedStages, where: tuple[int, int], file: str, kind: str
) -> Dependency:
    line, column = where
    if _ATOI.match(value):
        index = int(value)
        if index < 0 or index >= len(parsed.stages):
            raise ParseError(
                f"invalid stage index {index} (the file has {len(parsed.stages)} "
                f"stage{'' if len(parsed.stages) == 1 else 's'}, numbered from 0)",
                location=Location(file, line, column),
            )
        return Dependency(kind, index, "", line, column)
    lowered = value.lower()
    for st in parsed.stages:
        if st.name and st.name == lowered:
            return Dependency(kind, st.index, "", line, column)
    if "$" in value:
        raise ParseError(
            "variable expansion is not supported for --from, define a new stage with FROM "
            "using ARG from global scope as a workaround",
            location=Location(file, line, column),
        )
    return Dependency(kind, None, value, line, column)


def _flag_positions(cmd: CopyCommand | RunCommand, name: str) -> list[tuple[int, int]]:
    return [(f.line, f.column) for f in cmd.node.flags if f.name == name]


def _command_deps(cmd: object, parsed: ParsedStages, file: str) -> list[Dependency]:
    if isinstance(cmd, CopyCommand) and cmd.from_:
        where = (_flag_positions(cmd, "from") or [(cmd.line, cmd.node.column)])[-1]
        return [_stage_ref(cmd.from_, parsed, where, file, "copy")]
    if isinstance(cmd, RunCommand):
        out = []
        positions = _flag_positions(cmd, "mount")
        for i, spec in enumerate(cmd.mount_specs):
            src = mount_from(spec)
            if not src:
                continue
            line, column = positions[i] if i < len(positions) else (cmd.line, cmd.node.column)
            lowered = src.lower()
            match = next((st for st in parsed.stages if st.name and st.name == lowered), None)
            if match is not None:
                out.append(Dependency("mount", match.index, "", line, column))
            else:
                out.append(Dependency("mount", None, src, line, column))
        return out
    if isinstance(cmd, OnbuildCommand):
        # ONBUILD triggers run in a child build; their dependencies are the child's.
        return []
    return []
