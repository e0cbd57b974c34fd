"""The front end's one pass: what every instruction of a build means (BuildKit's dispatch).

:func:`plan` walks the stages a build needs (every stage with ``all_stages``)
in file order, as BuildKit's ``dockerfile2llb`` does, and returns a
:class:`BuildPlan`: for each stage the instructions it runs as :class:`Step`\\ s,
each one expanded (exactly the words BuildKit expands, with the ARG and ENV
values in effect at that line), validated (signals, ports, ``--chmod``,
``--checksum``, mounts, forward ``--from`` references...) and located. The
builder executes those steps, ``--print`` describes the plan, and the linter
listens to the same pass: the checks BuildKit makes while dispatching
(``UndefinedVar``, ``SecretsUsedInArgOrEnv``, ``ExposeInvalidFormat``...) are
reported through :class:`~forklift.dockerfile.diagnostics.Diagnostics` with
BuildKit's rule names and messages.

Order of work, as in BuildKit: the global ARGs (with the check that base images
are valid with default values), every FROM line (:class:`StageGraph`), the
target, base image names, then each stage's ONBUILD triggers and instructions.
Errors stop the pass where BuildKit stops, unless the diagnostics are tolerant
(the linter keeps going past them).

What a base image contributes (its environment, ONBUILD triggers and SHELL)
comes from a ``resolve`` callback: the builder's pulls images, the linter's
looks in the local store, ``--print`` has none (a stage then starts with only
``PATH``, as BuildKit guarantees).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from forklift.dockerfile.args import NON_ENV_ARGS, GlobalArgs, StageScope, default_args
from forklift.dockerfile.ast import Instruction
from forklift.dockerfile.diagnostics import Diagnostics
from forklift.dockerfile.gocompat import go_quote, suggest
from forklift.dockerfile.instructions import (
    AddCommand,
    ArgCommand,
    CmdCommand,
    Command,
    CopyCommand,
    EntrypointCommand,
    EnvCommand,
    ExposeCommand,
    HealthcheckCommand,
    LabelCommand,
    OnbuildCommand,
    ParsedStages,
    RunCommand,
    ShellCommand,
    SourceContent,
    Stage,
    StopSignalCommand,
    WorkdirCommand,
    parse_chmod,
    parse_instruction,
)
from forklift.dockerfile.mounts import Mount
from forklift.dockerfile.parser import parse
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.dockerfile.stages import StageGraph, StageNode
from forklift.dockerfile.values import (
    is_git_source,
    is_http_source,
    looks_secret,
    parse_expose,
    parse_signal,
    reference_problem,
)
from forklift.errors import ForkliftError, InvalidDigest, Location, ParseError
from forklift.oci.config import DEFAULT_PATH
from forklift.oci.digest import Digest
from forklift.oci.platform import Platform

#: The empty base (no image at all), spelled exactly so (BuildKit compares case-sensitively)
SCRATCH = "scratch"

# BuildKit expands COPY/ADD heredoc bodies with a lexer that leaves quotes alone
# (``ExpandRaw``): ``'$X'`` is expanded, ``\\$`` gives ``$``.
_RAW_LEXER = Lexer("\\", skip_quotes=True)


@dataclass(frozen=True)
class BaseImage:
    """What the pass needs to know about a FROM image: its config's env, triggers and shell."""

    env: Mapping[str, str] = field(default_factory=dict)
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] = ()


#: ``resolve({name: where first used})`` -> what each base image (its expanded name) holds,
#: ``None`` when that is unknown
Resolver = Callable[[Mapping[str, Location]], Mapping[str, BaseImage | None]]


@dataclass(frozen=True)
class Step:
    """One instruction as a stage runs it: expanded, validated, located.

    ``env`` is the environment in effect (base image, ARG and ENV values so
    far; a RUN's process environment), ``args`` the declared ARGs in effect
    with their values; ``mounts`` are a RUN's parsed ``--mount``\\ s; ``trigger``
    is the ONBUILD text when the step is a trigger of the stage's base;
    ``shell`` the SHELL in effect (``()``: :data:`~forklift.dockerfile.instructions.DEFAULT_SHELL`).
    """

    command: Command
    location: Location
    env: Mapping[str, str]
    args: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    trigger: str | None = None
    shell: tuple[str, ...] = ()

    @property
    def keyword(self) -> str:
        """Lower-case instruction keyword."""
        return self.command.keyword

    @property
    def line(self) -> int:
        """The line the step is reported at (a trigger's: its stage's FROM)."""
        return self.location.line or 0

    @property
    def original(self) -> str:
        """The instruction as written (the trigger text for a trigger)."""
        return self.trigger if self.trigger is not None else self.command.original

    def history_prefix(self) -> str:
        """BuildKit's ``|N K=V ...`` prefix of a RUN's history entry (declared ARGs in effect)."""
        if not self.args:
            return ""
        return f"|{len(self.args)} " + " ".join(f"{k}={v}" for k, v in self.args)


@dataclass(frozen=True)
class SecretUse:
    """A secret (or SSH agent) a RUN mounts: its id, whether it is required, where."""

    id: str
    required: bool
    line: int


@dataclass
class PlannedStage:
    """One stage of the plan.

    ``label`` names the stage in progress output (BuildKit's: ``""`` when the
    file has one stage). ``base_image`` is the expanded base image name (``""``
    for ``scratch`` or a stage base); ``default_path`` says the base had no
    ``PATH`` and the stage's config gets :data:`~forklift.oci.config.DEFAULT_PATH`
    (BuildKit does that for every Linux stage); ``scope`` is the variable scope
    at the end of the stage; ``secrets``/``ssh`` the ids its RUN mounts use.
    """

    node: StageNode
    label: str
    scope: StageScope
    steps: list[Step]
    base_image: str = ""
    default_path: bool = False
    secrets: dict[str, SecretUse] = field(default_factory=dict)
    ssh: dict[str, SecretUse] = field(default_factory=dict)
    # what a stage built FROM this one starts with
    workdir_set: bool = False
    shell: tuple[str, ...] = ()

    @property
    def index(self) -> int:
        """Position of the stage in the file."""
        return self.node.index

    @property
    def name(self) -> str:
        """The stage's name, or ``stage-N`` when it has none."""
        return self.node.name

    @property
    def base_stage(self) -> int | None:
        """The stage this one is built FROM, if any."""
        return self.node.base_stage


@dataclass
class BuildPlan:
    """The result of :func:`plan`: the stage graph, the global scope and each planned stage."""

    parsed: ParsedStages
    graph: StageGraph
    globals: GlobalArgs
    target: StageNode
    target_name: str | None
    stages: dict[int, PlannedStage]
    build_args: Mapping[str, str]
    errors: list[ParseError] = field(default_factory=list)

    def needed(self) -> list[PlannedStage]:
        """The planned stages the target needs, in file order."""
        return [self.stages[n.index] for n in self.graph.needed(self.target_name)]

    def consumed_args(self) -> set[str]:
        """The ARG names the build consumes (for the unused ``--build-arg`` warning)."""
        return self.graph.consumed_args(self.target_name)


@dataclass
class _State:
    """The pass's view of the stage it dispatches (BuildKit's ``dispatchState``)."""

    scope: StageScope
    name: str = ""
    steps: list[Step] = field(default_factory=list)
    secrets: dict[str, SecretUse] = field(default_factory=dict)
    ssh: dict[str, SecretUse] = field(default_factory=dict)
    workdir_set: bool = False
    shell: tuple[str, ...] = ()


def plan(
    parsed: ParsedStages,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    all_stages: bool = False,
    target_platform: Platform | None = None,
    build_platform: Platform | None = None,
    resolve: Resolver | None = None,
    diagnostics: Diagnostics | None = None,
) -> BuildPlan:
    """Plan the stages ``target`` (default: the last stage) needs; every stage with ``all_stages``.

    Raises :class:`~forklift.errors.ParseError` at the first invalid instruction
    (with tolerant ``diagnostics``: records it and goes on), and
    :class:`~forklift.errors.NotFound` for an unknown target.
    """
    diag = diagnostics or Diagnostics()
    file = parsed.file
    build_args = dict(build_args or {})
    lexer = Lexer(parsed.escape)
    stage_name = target or (parsed.stages[-1].name if parsed.stages else "")
    defaults = default_args(target_platform, build_platform, stage_name)
    if diag.checking:
        _check_default_bases(parsed, defaults, build_args, lexer, diag)
    globals_ = GlobalArgs.evaluate(
        parsed.meta_args, build_args, defaults, file=file, escape=parsed.escape, diag=diag
    )
    graph = StageGraph.build(parsed, globals_, diag=diag)
    chosen = graph.target(target)
    wanted = list(graph.nodes) if all_stages else graph.needed(target)
    _check_image_names(graph, file, diag)
    requests: dict[str, Location] = {}
    for n in wanted:
        if n.base_stage is None and n.base not in (SCRATCH, ""):
            requests.setdefault(n.base, n.stage.node.location(file))
    images: Mapping[str, BaseImage | None] = resolve(requests) if resolve and requests else {}
    walker = _Walker(parsed, globals_, build_args, lexer, diag, len(graph.nodes) == 1)
    stages: dict[int, PlannedStage] = {}
    for node in wanted:
        stages[node.index] = walker.stage(node, stages, images)
    return BuildPlan(parsed, graph, globals_, chosen, target, stages, build_args, diag.errors)


def _check_default_bases(
    parsed: ParsedStages,
    defaults: Mapping[str, str],
    build_args: Mapping[str, str],
    lexer: Lexer,
    diag: Diagnostics,
) -> None:
    """BuildKit's ``InvalidDefaultArgInFrom``: base names must be valid with default ARG values."""
    env = {k: build_args.get(k, v) for k, v in defaults.items()}
    for cmd in parsed.meta_args:
        for arg in cmd.args:
            if arg.value is None:
                continue
            try:
                value = lexer.process(arg.value, env).result
            except ExpansionError:
                return  # the real evaluation reports it
            env.pop(arg.key, None)
            env[arg.key] = value
    for st in parsed.stages:
        try:
            name = lexer.process(st.base_name, env).result
        except ExpansionError:
            return
        if reference_problem(name) is not None:
            diag.warn(
                "InvalidDefaultArgInFrom",
                f"Default value for ARG {st.base_name} results in empty or invalid base image name",
                st.node,
            )


def _check_image_names(graph: StageGraph, file: str, diag: Diagnostics) -> None:
    """Every image a stage starts from or copies from must be a valid name (any target)."""
    for node in graph.nodes:
        refs = [(node.base, node.stage.line)] if node.base_stage is None else []
        refs += [(d.image, d.line) for d in node.deps if d.kind != "base" and d.stage is None]
        for ref, line in refs:
            if ref == SCRATCH or ref == "":  # "": a tolerant pass already reported the FROM
                continue
            problem = reference_problem(ref)
            if problem is not None:
                diag.error(
                    ParseError(
                        f"failed to parse stage name {go_quote(ref)}: {problem}",
                        location=Location(file, line),
                    )
                )


def _relocated(node: Instruction, at: Instruction) -> Instruction:
    return replace(node, start_line=at.start_line, end_line=at.end_line, column=at.column)


class _Walker:
    """Dispatches the stages of one plan, in file order."""

    def __init__(
        self,
        parsed: ParsedStages,
        globals_: GlobalArgs,
        build_args: Mapping[str, str],
        lexer: Lexer,
        diag: Diagnostics,
        single: bool,
    ) -> None:
        self.parsed = parsed
        self.file = parsed.file
        self.globals = globals_
        self.build_args = build_args
        self.lexer = lexer
        self.diag = diag
        self.single = single

    # -- stages ---------------------------------------------------------------------------

    def stage(
        self,
        node: StageNode,
        done: Mapping[int, PlannedStage],
        images: Mapping[str, BaseImage | None],
    ) -> PlannedStage:
        triggers: list[str] = []
        base_image = ""
        default_path = False
        parent = done.get(node.base_stage) if node.base_stage is not None else None
        if parent is not None:
            scope = StageScope.for_stage(self.globals, self.build_args, base=parent.scope)
            st = _State(scope, node.name, workdir_set=parent.workdir_set, shell=parent.shell)
            for cmd in self.parsed.stages[parent.index].commands:
                if isinstance(cmd, OnbuildCommand):
                    triggers.append(cmd.expression)
        else:
            info = images.get(node.base) if node.base != SCRATCH else None
            env = dict(info.env) if info is not None else {}
            default_path = "PATH" not in env
            if default_path:
                env["PATH"] = DEFAULT_PATH
            base_image = "" if node.base == SCRATCH else node.base
            st = _State(StageScope.for_stage(self.globals, self.build_args, image_env=env))
            st.name = node.name
            if info is not None:
                st.shell = tuple(info.shell)
                triggers = list(info.on_build)
        st.scope.used |= set(node.used_args)
        trackers: dict[str, Instruction] = {}
        for text in triggers:
            trigger = self._trigger(text, node.stage)
            if trigger is not None:
                self._dispatch(st, trigger, trackers, done, trigger=text)
        for cmd in node.stage.commands:
            self._dispatch(st, cmd, trackers, done)
        return PlannedStage(
            node,
            # BuildKit names no stage when the file has only one; progress labels follow it.
            "" if self.single else node.name,
            st.scope,
            st.steps,
            base_image,
            default_path,
            st.secrets,
            st.ssh,
            st.workdir_set,
            st.shell,
        )

    def _trigger(self, text: str, stage: Stage) -> Command | None:
        """An ONBUILD trigger as a command, located at the FROM of the stage that runs it."""
        at = stage.node
        try:
            df = parse(text, self.file)
            if len(df.instructions) != 1:
                raise ParseError("onbuild trigger should be a single expression")
            cmd = parse_instruction(_relocated(df.instructions[0], at), self.file)
            if isinstance(cmd, Stage):
                raise ParseError("FROM isn't allowed as an ONBUILD trigger")
            return cmd
        except ForkliftError as exc:
            self.diag.error(
                ParseError(
                    f"ONBUILD trigger {go_quote(text)} of the base: {exc.message}",
                    location=at.location(self.file),
                )
            )
            return None

    # -- one instruction ------------------------------------------------------------------

    def _dispatch(
        self,
        st: _State,
        cmd: Command,
        trackers: dict[str, Instruction],
        done: Mapping[int, PlannedStage],
        trigger: str | None = None,
    ) -> None:
        loc = cmd.node.location(self.file)
        # the scope the step runs in (what a RUN sees; ARG and ENV change it for the next one)
        env = dict(st.scope.env)
        args = st.scope.declared()
        try:
            expanded, mounts = self.expand(st, cmd, loc, trackers, done)
        except ExpansionError as exc:
            self.diag.error(ParseError(str(exc), location=loc))
            return
        except ParseError as exc:
            self.diag.error(exc)
            return
        st.steps.append(Step(expanded, loc, env, args, mounts, trigger, st.shell))

    def expand(
        self,
        st: _State,
        cmd: Command,
        loc: Location,
        trackers: dict[str, Instruction],
        done: Mapping[int, PlannedStage],
    ) -> tuple[Command, tuple[Mount, ...]]:
        """One instruction: its checks, its effect on the scope, the expanded command."""
        node = cmd.node
        name = node.raw_keyword
        scope = st.scope
        if isinstance(cmd, ArgCommand):
            for arg in cmd.args:
                if looks_secret(arg.key):
                    self._secret("ARG", arg.key, node)
                scope.declare(arg, cmd.line, self._expander(st, node))
            return cmd, ()
        if isinstance(cmd, ExposeCommand):
            return self._expose(st, cmd, loc), ()
        expanded = cmd.expand(self._expander(st, node))
        mounts: tuple[Mount, ...] = ()
        if isinstance(expanded, EnvCommand):
            for pair in expanded.pairs:
                if pair.legacy:
                    self._legacy(name, node)
                if looks_secret(pair.key):
                    self._secret("ENV", pair.key, node)
                scope.set_env(pair.key, pair.value)
        elif isinstance(expanded, LabelCommand):
            for pair in expanded.pairs:
                if pair.legacy:
                    self._legacy(name, node)
        elif isinstance(expanded, WorkdirCommand):
            if not st.workdir_set and not expanded.path.startswith("/"):
                self.diag.warn(
                    "WorkdirRelativePath",
                    f"Relative workdir {go_quote(expanded.path)} can have unexpected results if "
                    "the base image changes",
                    node,
                )
            st.workdir_set = True
        elif isinstance(expanded, CmdCommand | EntrypointCommand | HealthcheckCommand):
            self._once(st, expanded, name, trackers)
        elif isinstance(expanded, ShellCommand):
            st.shell = tuple(expanded.shell)
        elif isinstance(expanded, StopSignalCommand):
            try:
                parse_signal(expanded.signal)
            except ValueError as exc:
                raise ParseError(str(exc), location=loc) from None
        elif isinstance(expanded, CopyCommand | AddCommand):
            expanded = self._copy(st, expanded, loc, done)
        elif isinstance(expanded, RunCommand):
            mounts = expanded.mounts(self._expander(st, node), self.file)
            self._mount_sources(expanded, mounts, done)
            for m in mounts:
                use = SecretUse(m.secret_id, m.required, cmd.line)
                if m.type == "secret":
                    st.secrets.setdefault(m.secret_id, use)
                elif m.type == "ssh":
                    st.ssh.setdefault(m.secret_id, use)
        return expanded, mounts

    def _expander(self, st: _State, node: Instruction) -> Callable[[str], str]:
        """Expand a word with the scope as it is now, reporting undefined variables."""
        env = dict(st.scope.env)

        def expand(word: str) -> str:
            result = self.lexer.process(word, env)
            self._unmatched(result.unmatched, st, node)
            return result.result

        return expand

    def _unmatched(self, names: frozenset[str], st: _State, node: Instruction) -> None:
        """BuildKit's ``UndefinedVar``: variables used but neither set nor declared."""
        declared = {a.key for a in st.scope.args}
        for name in sorted(names - declared - NON_ENV_ARGS):
            message = f"Usage of undefined variable '${name}'"
            hint = suggest(name, st.scope.env.keys(), case_sensitive=True)
            if hint:
                message += f" (did you mean ${hint}?)"
            self.diag.warn("UndefinedVar", message, node)

    def _expose(self, st: _State, cmd: ExposeCommand, loc: Location) -> ExposeCommand:
        """EXPOSE words (split as BuildKit splits them) -> ``port/proto`` entries."""
        node = cmd.node
        ports: list[str] = []
        for raw in cmd.ports:
            for word in self.lexer.process(raw, st.scope.env).words:
                try:
                    exposed = parse_expose(word)
                except ValueError as exc:
                    raise ParseError(str(exc), location=loc) from None
                if exposed.proto != exposed.proto.lower():
                    self.diag.warn(
                        "ExposeProtoCasing",
                        f"Defined protocol '{word}' in EXPOSE instruction should be lowercase",
                        node,
                    )
                if exposed.host_part:
                    self.diag.warn(
                        "ExposeInvalidFormat",
                        "EXPOSE instruction should not define an IP address or host-port "
                        f"mapping, found '{word}'",
                        node,
                    )
                ports.extend(exposed.ports)
        return replace(cmd, ports=tuple(ports))

    def _once(
        self,
        st: _State,
        cmd: CmdCommand | EntrypointCommand | HealthcheckCommand,
        name: str,
        trackers: dict[str, Instruction],
    ) -> None:
        """CMD, ENTRYPOINT and HEALTHCHECK: only the last counts; JSON form recommended."""
        kind = type(cmd).__name__
        previous = trackers.get(kind)
        if previous is not None:
            # BuildKit points at the earlier one: it is the one that does nothing.
            self.diag.warn(
                "MultipleInstructionsDisallowed",
                f"Multiple {name} instructions should not be used in the same stage because "
                "only the last one will be used",
                previous,
            )
        trackers[kind] = cmd.node
        shell_form = isinstance(cmd, CmdCommand | EntrypointCommand) and cmd.prepend_shell
        if shell_form and not st.shell:
            self.diag.warn(
                "JSONArgsRecommended",
                f"JSON arguments recommended for {name} to prevent unintended behavior "
                "related to OS signals",
                cmd.node,
            )

    def _copy(
        self,
        st: _State,
        cmd: CopyCommand | AddCommand,
        loc: Location,
        done: Mapping[int, PlannedStage],
    ) -> CopyCommand | AddCommand:
        """COPY/ADD: stage order, ``--chmod``, ``--checksum``, sources, heredoc bodies."""
        if isinstance(cmd, CopyCommand) and cmd.from_:
            source = self.parsed.stage(cmd.from_)
            if source is not None and source.index not in done:
                raise ParseError(
                    f"cannot copy from stage {go_quote(cmd.from_)}, it needs to be defined "
                    f"before current stage {go_quote(st.name)}",
                    location=_flag_location(cmd, "from", self.file),
                )
        if cmd.chmod:
            try:
                parse_chmod(cmd.chmod)
            except ValueError as exc:
                where = _flag_location(cmd, "chmod", self.file)
                raise ParseError(str(exc), location=where) from None
        if isinstance(cmd, AddCommand) and cmd.checksum:
            if len(cmd.sources) + len(cmd.contents) != 1:
                raise ParseError("checksum can't be specified for multiple sources", location=loc)
            if not cmd.sources or not (
                is_http_source(cmd.sources[0]) or is_git_source(cmd.sources[0])
            ):
                raise ParseError("checksum requires HTTP(S) or Git sources", location=loc)
            try:
                Digest.parse(cmd.checksum)
            except InvalidDigest:
                raise ParseError(
                    f"invalid checksum digest format: {cmd.checksum}",
                    location=_flag_location(cmd, "checksum", self.file),
                ) from None
        if isinstance(cmd, CopyCommand):
            for src in cmd.sources:
                if is_http_source(src):
                    raise ParseError("source can't be a URL for COPY", location=loc)
        if cmd.contents:
            env = dict(st.scope.env)
            contents = []
            for c in cmd.contents:
                if c.expand:
                    result = _RAW_LEXER.process(c.data, env)
                    self._unmatched(result.unmatched, st, cmd.node)
                    c = SourceContent(c.path, result.result, c.expand)
                contents.append(c)
            cmd = replace(cmd, contents=tuple(contents))
        return cmd

    def _mount_sources(
        self, cmd: RunCommand, mounts: tuple[Mount, ...], done: Mapping[int, PlannedStage]
    ) -> None:
        """A RUN can mount only stages dispatched before it (by name, as BuildKit finds them)."""
        flags = [f for f in cmd.node.flags if f.name == "mount"]
        for i, m in enumerate(mounts):
            if not m.from_:
                continue
            source = self.parsed.stage(m.from_)
            if source is None or source.name != m.from_.lower() or source.index in done:
                continue
            flag = flags[i] if i < len(flags) else None
            where = (
                Location(self.file, flag.line, flag.column)
                if flag is not None
                else cmd.node.location(self.file)
            )
            raise ParseError(
                f"cannot mount from stage {go_quote(m.from_)} to {go_quote(m.target)}, "
                "stage needs to be defined before current command",
                location=where,
            )

    def _legacy(self, name: str, node: Instruction) -> None:
        self.diag.warn(
            "LegacyKeyValueFormat",
            f'"{name} key=value" should be used instead of legacy "{name} key value" format',
            node,
        )

    def _secret(self, instruction: str, key: str, node: Instruction) -> None:
        self.diag.warn(
            "SecretsUsedInArgOrEnv",
            f"Do not use ARG or ENV instructions for sensitive data ({instruction} {go_quote(key)})",
            node,
        )


def _flag_location(cmd: Command, name: str, file: str) -> Location:
    for flag in cmd.node.flags:
        if flag.name == name:
            return Location(file, flag.line, flag.column)
    return cmd.node.location(file)


def expand_command(
    cmd: Command, env: Mapping[str, str], *, file: str = "Dockerfile", escape: str = "\\"
) -> Command:
    """One instruction outside a build (``import --change``): expanded and checked exactly as
    a step of a stage whose environment is ``env``."""
    walker = _Walker(
        ParsedStages((), (), file, escape), GlobalArgs(), {}, Lexer(escape), Diagnostics(), True
    )
    state = _State(StageScope.for_stage(GlobalArgs(), {}, image_env=env))
    loc = cmd.node.location(file)
    try:
        expanded, _ = walker.expand(state, cmd, loc, {}, {})
    except ExpansionError as exc:
        raise ParseError(str(exc), location=loc) from None
    return expanded
