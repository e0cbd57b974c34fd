"""BuildKit's build checks (``docker build --check``), reproduced.

The walk follows BuildKit's Dockerfile-to-LLB conversion in the order it runs
its checks, with the same inputs it has when linting without a registry:

1. parser warnings (empty continuation lines);
2. checks made while turning nodes into instructions (MAINTAINER, stage name
   and ``AS`` casing);
3. stage names (duplicates, reserved names) and instruction casing;
4. base images with default global ARG values;
5. every FROM with the global ARGs (undeclared ARGs, ``--platform`` checks);
6. every stage's instructions in file order, tracking the environment the
   way BuildKit's state does: ENV and ARG values, the base image's variables
   (only ``PATH``, since no image is pulled, unless ``image_env`` knows the
   image), ARGs inherited by stages built FROM another stage.

Where BuildKit would stop at an error (a blank base name, a bad expansion) the
walk skips the offending part and goes on. Messages are BuildKit's, word for
word; the finding ids are forklift's (see :mod:`forklift.lint.catalog`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from forklift.dockerfile.ast import Instruction
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
    InstructionError,
    LabelCommand,
    OnbuildCommand,
    RunCommand,
    ShellCommand,
    Stage,
    WorkdirCommand,
    parse_instruction,
)
from forklift.dockerfile.parser import EMPTY_CONTINUATION_URL, parse
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.errors import ForkliftError
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext
from forklift.reference import parse_reference

#: PATH BuildKit adds when the base image has none (Linux)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: ARGs that never reach the environment (BuildKit's ``nonEnvArgs``)
NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
RESERVED_STAGE_NAMES = frozenset({"context", "scratch"})

_SECRET = re.compile(
    r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)"
)
_SECRET_ALLOW = re.compile(r"(?i)(?:_|^)(?:public|file|version)(?:_|$)")


def looks_secret(name: str) -> bool:
    """BuildKit's test for secret-looking ARG/ENV names (``API_KEY``, ``db_password``)."""
    return bool(_SECRET.search(name)) and not _SECRET_ALLOW.search(name)


def default_args(target_stage: str, os: str = "linux", arch: str = "amd64") -> dict[str, str]:
    """The global ARGs BuildKit defines before any Dockerfile ARG (build = target platform)."""
    platform = f"{os}/{arch}"
    return {
        "BUILDPLATFORM": platform,
        "BUILDOS": os,
        "BUILDOSVERSION": "",
        "BUILDARCH": arch,
        "BUILDVARIANT": "",
        "TARGETPLATFORM": platform,
        "TARGETOS": os,
        "TARGETOSVERSION": "",
        "TARGETARCH": arch,
        "TARGETVARIANT": "",
        "TARGETSTAGE": target_stage,
    }


def _valid_reference(name: str) -> bool:
    try:
        parse_reference(name)
    except ForkliftError:
        return False
    return True


_OS_NAMES = frozenset(
    {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "android", "ios"}
)
_ARCH_NAMES = frozenset(
    {
        "amd64",
        "arm64",
        "arm",
        "386",
        "ppc64le",
        "ppc64",
        "s390x",
        "riscv64",
        "mips64le",
        "mips64",
        "mipsle",
        "mips",
        "loong64",
        "wasm",
    }
)
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}


def parse_platform(text: str) -> tuple[str, str] | None:
    """``os[/arch[/variant]]`` (containerd's rules, simplified) -> (os, arch), or None."""
    parts = text.lower().split("/")
    if not text or len(parts) > 3 or any(not p for p in parts):
        return None
    first = parts[0]
    if len(parts) == 1:
        if first in _OS_NAMES:
            return first, "amd64"
        arch = _ARCH_ALIASES.get(first, first)
        if arch in _ARCH_NAMES:
            return "linux", arch
        return None
    arch = _ARCH_ALIASES.get(parts[1], parts[1])
    if first not in _OS_NAMES or arch not in _ARCH_NAMES:
        return None
    return first, arch


@dataclass
class _StageState:
    """BuildKit's dispatch state for one stage, as far as the checks need it."""

    env: dict[str, str] = field(default_factory=dict)
    build_args: list[str] = field(default_factory=list)
    workdir_set: bool = False
    shell_set: bool = False
    onbuild: list[OnbuildCommand] = field(default_factory=list)


class _Stop(Exception):
    """Where BuildKit would give up with a build error (only raised in ``stop_at_error`` mode)."""


class _Walker:
    def __init__(self, ctx: LintContext, stop_at_error: bool = False) -> None:
        self.ctx = ctx
        self.stop_at_error = stop_at_error
        self.lexer = Lexer(ctx.escape)
        self.raw_lexer = Lexer("\\", skip_quotes=True)
        self.out: list[Finding] = []
        self.image_env: Callable[[str], Mapping[str, str] | None] | None = ctx.image_env  # type: ignore[assignment]

    def emit(self, rule: str, message: str, node: Instruction) -> None:
        self.out.append(self.ctx.at(rule, message, node))

    # -- 1 and 2: the parser and instruction parsing ------------------------

    def fail(self) -> None:
        """BuildKit stops here; so does the walk in ``stop_at_error`` mode."""
        if self.stop_at_error:
            raise _Stop

    def parse_time(self) -> None:
        df = self.ctx.dockerfile
        for w in df.warnings:
            if w.url == EMPTY_CONTINUATION_URL:
                self.out.append(self.ctx.finding("FL518", "Empty continuation line", w.line))
        first_bad = min((f.line for f in self.ctx.invalid), default=None)
        for node in df.instructions:
            if first_bad is not None and node.start_line > first_bad and self.stop_at_error:
                break
            if node.keyword == "maintainer":
                self.emit(
                    "FL510", "Maintainer instruction is deprecated in favor of using label", node
                )
            elif node.keyword == "from":
                args = node.args
                if len(args) == 3 and args[2] != args[2].lower():
                    self.emit("FL514", f"Stage name '{args[2]}' should be lowercase", node)
                cmd = node.raw_keyword
                if len(args) >= 3 and cmd in (cmd.lower(), cmd.upper()):
                    want = args[1].lower() if cmd == cmd.lower() else args[1].upper()
                    if args[1] != want:
                        self.emit(
                            "FL515", f"'{args[1]}' and '{cmd}' keywords' casing do not match", node
                        )
        if first_bad is not None:
            self.fail()

    # -- 3: stage names and instruction casing ---------------------------------

    def stage_names(self) -> None:
        seen: set[str] = set()
        for st in self.ctx.parsed.stages:
            if not st.name:
                continue
            if st.name in RESERVED_STAGE_NAMES:
                self.emit(
                    "FL519",
                    f"Stage name should not use the same name as reserved stage {go_quote(st.name)}",
                    st.node,
                )
            if st.name in seen:
                self.emit(
                    "FL507",
                    f"Duplicate stage name {go_quote(st.name)}, stage names should be unique",
                    st.node,
                )
            seen.add(st.name)

    def casing(self) -> None:
        nodes: list[Instruction] = []
        for st in self.ctx.parsed.stages:
            nodes.append(st.node)
            nodes.extend(c.node for c in st.commands)
        lower = upper = 0
        for n in nodes:
            word = n.raw_keyword
            if word == word.lower():
                lower += 1
            elif word == word.upper():
                upper += 1
        majority_lower = lower > upper
        for n in nodes:
            word = n.raw_keyword
            if majority_lower and word != word.lower():
                want = "lowercase"
            elif not majority_lower and word != word.upper():
                want = "uppercase"
            else:
                continue
            self.emit(
                "FL516",
                f"Command '{word}' should match the case of the command majority ({want})",
                n,
            )

    # -- 4 and 5: global ARGs and FROM lines ------------------------------------

    def global_args(self) -> tuple[dict[str, str], set[str], bool]:
        """The global environment with default values, declared names, and whether it worked."""
        stages = self.ctx.parsed.stages
        target = stages[-1].name if stages else ""
        env = default_args(target)
        declared: set[str] = set()
        ok = True
        for cmd in self.ctx.parsed.meta_args:
            for arg in cmd.args:
                declared.add(arg.key)
                if arg.value is None:
                    continue
                try:
                    value = self.lexer.process(arg.value, env).result
                except ExpansionError:
                    ok = False
                    continue
                env.pop(arg.key, None)
                env[arg.key] = value
        return env, declared, ok

    def from_lines(self, env: dict[str, str], declared: set[str], ok: bool) -> None:
        keys = set(env) | declared
        if ok:
            for st in self.ctx.parsed.stages:
                try:
                    result = self.lexer.process(st.base_name, env).result
                except ExpansionError:
                    break
                if not _valid_reference(result):
                    self.emit(
                        "FL107",
                        f"Default value for ARG {st.base_name} results in empty or invalid base image name",
                        st.node,
                    )
        for st in self.ctx.parsed.stages:
            try:
                match = self.lexer.process(st.base_name, env)
                self._undeclared(match.unmatched, keys, st.node)
                if match.result == "":
                    self.fail()  # base name (...) should not be blank
            except ExpansionError:
                self.fail()
            if st.platform:
                try:
                    plat = self.lexer.process(st.platform, env)
                except ExpansionError:
                    self.fail()
                    continue
                self._undeclared(plat.unmatched, keys, st.node)
                if (
                    len(plat.matched) == 1
                    and not plat.unmatched
                    and "TARGETPLATFORM" in plat.matched
                    and plat.result == env.get("TARGETPLATFORM")
                ):
                    self.emit(
                        "FL105",
                        f"Setting platform to predefined {st.platform} in FROM is redundant as this is the default behavior",
                        st.node,
                    )
                if not plat.matched and not plat.unmatched:
                    parsed = parse_platform(plat.result)
                    if parsed is not None and not (parsed[0] in st.name or parsed[1] in st.name):
                        self.emit(
                            "FL104",
                            f"FROM --platform flag should not use constant value {go_quote(plat.result)}",
                            st.node,
                        )
                if parse_platform(plat.result) is None:
                    self.fail()  # failed to parse platform
        if self.stop_at_error:
            self.resolvable(env)

    def resolvable(self, env: dict[str, str]) -> None:
        """BuildKit resolves every base image before dispatching: bad names stop it."""
        names: set[str] = set()
        for st in self.ctx.parsed.stages:
            base = self.lexer.process(st.base_name, env).result
            if base not in names and base != "scratch" and not _valid_reference(base):
                self.fail()
            if st.name:
                names.add(st.name)

    def _undeclared(self, unmatched: frozenset[str], keys: set[str], node: Instruction) -> None:
        for name in sorted(unmatched):
            if name in keys:
                continue
            msg = f"FROM argument '{name}' is not declared"
            hint = suggest(name, keys, case_sensitive=True)
            if hint:
                msg += f" (did you mean {hint}?)"
            self.emit("FL108", msg, node)

    # -- 6: dispatching the stages ------------------------------------------------

    def expand(self, word: str, state: _StageState, node: Instruction, raw: bool = False) -> str:
        lexer = self.raw_lexer if raw else self.lexer
        try:
            result = lexer.process(word, state.env)
        except ExpansionError:
            self.fail()
            return word
        self._unmatched(result.unmatched, state, node)
        return result.result

    def _unmatched(self, unmatched: frozenset[str], state: _StageState, node: Instruction) -> None:
        if not unmatched:
            return
        declared = set(state.build_args)
        for name in sorted(unmatched):
            if name in declared or name in NON_ENV_ARGS:
                continue
            msg = f"Usage of undefined variable '${name}'"
            hint = suggest(name, state.env.keys(), case_sensitive=True)
            if hint:
                msg += f" (did you mean ${hint}?)"
            self.emit("FL512", msg, node)

    def stages(self, globals_env: dict[str, str]) -> None:
        states: dict[int, _StageState] = {}
        by_name: dict[str, int] = {}
        for st in self.ctx.parsed.stages:
            try:
                base = self.lexer.process(st.base_name, globals_env).result
            except ExpansionError:
                base = st.base_name
            parent = by_name.get(base)
            if parent is not None and parent in states:
                p = states[parent]
                state = _StageState(
                    dict(p.env), list(p.build_args), p.workdir_set, p.shell_set, list(p.onbuild)
                )
                triggers = p.onbuild
                state.onbuild = []
            else:
                env: dict[str, str] = {}
                if self.image_env is not None and base:
                    env = dict(self.image_env(base) or {})
                env.setdefault("PATH", DEFAULT_PATH)
                state = _StageState(env)
                triggers = []
            trackers: dict[str, Instruction] = {}
            for trigger in triggers:
                cmd = _trigger_command(trigger, st)
                if cmd is not None:
                    self.dispatch(cmd, st, state, trackers, globals_env)
            for cmd in st.commands:
                self.dispatch(cmd, st, state, trackers, globals_env)
            states[st.index] = state
            if st.name:
                by_name[st.name] = st.index

    def dispatch(
        self,
        cmd: Command,
        st: Stage,
        state: _StageState,
        trackers: dict[str, Instruction],
        globals_env: Mapping[str, str],
    ) -> None:
        node = cmd.node
        if isinstance(cmd, ArgCommand):
            for arg in cmd.args:
                if looks_secret(arg.key):
                    self.emit(
                        "FL404",
                        f"Do not use ARG or ENV instructions for sensitive data (ARG {go_quote(arg.key)})",
                        node,
                    )
                value = arg.value
                if value is None:
                    value = globals_env.get(arg.key)
                else:
                    value = self.expand(value, state, node)
                if value is not None and arg.key not in NON_ENV_ARGS:
                    state.env.pop(arg.key, None)
                    state.env[arg.key] = value
                state.build_args.append(arg.key)
            return
        expander = _Recorder(self, state, node)
        if isinstance(cmd, RunCommand):
            try:
                cmd.mounts(expander)
            except (InstructionError, ExpansionError, ValueError):
                self.fail()
            return
        if isinstance(cmd, CopyCommand) and cmd.from_:
            source = self.ctx.parsed.stage(cmd.from_)
            if source is not None and source.index >= st.index:
                self.fail()  # cannot copy from a stage defined after (or as) this one
        try:
            expanded = cmd.expand(expander)
        except (ExpansionError, ValueError):
            expanded = cmd
        if isinstance(cmd, (CopyCommand, AddCommand)):
            for content in cmd.contents:
                if content.expand:
                    self.expand(content.data, state, node, raw=True)
        name = node.raw_keyword
        if isinstance(expanded, EnvCommand):
            for pair in expanded.pairs:
                if pair.legacy:
                    self.emit(
                        "FL517",
                        f'"{name} key=value" should be used instead of legacy "{name} key value" format',
                        node,
                    )
                if looks_secret(pair.key):
                    self.emit(
                        "FL404",
                        f"Do not use ARG or ENV instructions for sensitive data (ENV {go_quote(pair.key)})",
                        node,
                    )
                state.env.pop(pair.key, None)
                state.env[pair.key] = pair.value
        elif isinstance(expanded, LabelCommand):
            for pair in expanded.pairs:
                if pair.legacy:
                    self.emit(
                        "FL517",
                        f'"{name} key=value" should be used instead of legacy "{name} key value" format',
                        node,
                    )
        elif isinstance(expanded, WorkdirCommand):
            if not state.workdir_set and not expanded.path.startswith("/"):
                self.emit(
                    "FL501",
                    f"Relative workdir {go_quote(expanded.path)} can have unexpected results if the base image changes",
                    node,
                )
            state.workdir_set = True
        elif isinstance(cmd, (CmdCommand, EntrypointCommand, HealthcheckCommand)):
            kind = type(cmd).__name__
            previous = trackers.get(kind)
            if previous is not None:
                self.emit(
                    "FL503",
                    f"Multiple {name} instructions should not be used in the same stage because only the last one will be used",
                    previous,
                )
            trackers[kind] = node
            if (
                isinstance(cmd, (CmdCommand, EntrypointCommand))
                and cmd.prepend_shell
                and not state.shell_set
            ):
                self.emit(
                    "FL504",
                    f"JSON arguments recommended for {name} to prevent unintended behavior related to OS signals",
                    node,
                )
        elif isinstance(cmd, ShellCommand):
            state.shell_set = True
        elif isinstance(cmd, ExposeCommand):
            self.expose(cmd, state)
        elif isinstance(cmd, OnbuildCommand):
            state.onbuild.append(cmd)

    def expose(self, cmd: ExposeCommand, state: _StageState) -> None:
        for raw in cmd.ports:
            try:
                words = self.lexer.process(raw, state.env).words
            except ExpansionError:
                continue
            for port in words:
                if ":" in port:
                    self.emit(
                        "FL508",
                        f"EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'",
                        cmd.node,
                    )
                _, slash, proto = port.partition("/")
                if slash and proto != proto.lower():
                    self.emit(
                        "FL509",
                        f"Defined protocol '{port}' in EXPOSE instruction should be lowercase",
                        cmd.node,
                    )

    def run(self) -> list[Finding]:
        try:
            self.parse_time()
            self.stage_names()
            self.casing()
            env, declared, ok = self.global_args()
            if not ok:
                self.fail()
            self.from_lines(env, declared, ok)
            self.stages(env)
        except _Stop:
            pass
        return self.out


class _Recorder:
    """An expander for ``Command.expand`` that reports undefined variables as it goes."""

    def __init__(self, walker: _Walker, state: _StageState, node: Instruction) -> None:
        self.walker = walker
        self.state = state
        self.node = node

    def __call__(self, word: str) -> str:
        return self.walker.expand(word, self.state, self.node)


def _trigger_command(trigger: OnbuildCommand, st: Stage) -> Command | None:
    """An ONBUILD trigger of the parent stage as a command located at this stage's FROM."""
    try:
        df = parse(trigger.expression, "ONBUILD")
        if len(df.instructions) != 1:
            return None
        node = df.instructions[0]
        node = replace(
            node, start_line=st.node.start_line, end_line=st.node.end_line, column=st.node.column
        )
        cmd = parse_instruction(node)
    except ForkliftError:
        return None
    return None if isinstance(cmd, Stage) else cmd


def check(ctx: LintContext, *, stop_at_error: bool = False) -> Iterator[Finding]:
    """Every BuildKit build check forklift reproduces, in BuildKit's order.

    With ``stop_at_error`` the walk ends where BuildKit's conversion would fail
    (an invalid instruction, a blank or invalid base image name, a forward
    ``COPY --from``), so the findings are exactly what ``docker build --check``
    prints for such a file; by default the walk goes on past those points.
    """
    yield from _Walker(ctx, stop_at_error).run()
