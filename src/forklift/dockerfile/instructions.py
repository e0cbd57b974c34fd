"""Typed instructions and build stages, from the syntax tree (BuildKit's ``instructions`` package).

:func:`parse_stages` turns a :class:`~forklift.dockerfile.ast.Dockerfile` into
global ``ARG``\\ s and :class:`Stage`\\ s, each holding typed commands
(:class:`RunCommand`, :class:`CopyCommand`, ...) with their flags parsed and
validated. Values are still unexpanded; every command with expandable fields
has ``expand(fn)`` returning a copy with those fields passed through ``fn``
(exactly the fields BuildKit expands), so the builder can expand with the
environment in effect at that step.

Errors are :class:`InstructionError` (a :class:`~forklift.errors.ParseError`)
pointing at the instruction (or the offending flag), with BuildKit's wording in
:attr:`InstructionError.buildkit_message`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from forklift.dockerfile.ast import Dockerfile, Flag, Heredoc, Instruction
from forklift.dockerfile.flags import FlagError, FlagKind, ParsedFlags, parse_flags
from forklift.dockerfile.gocompat import go_quote, parse_go_duration, trim_space, with_suggestion
from forklift.dockerfile.mounts import Mount, MountError, mount_from, parse_mount
from forklift.dockerfile.parser import KEYWORDS, HeredocMarker, parse_heredoc_marker
from forklift.errors import Location, ParseError

Expander = Callable[[str], str]

#: The shell a shell-form RUN, CMD or ENTRYPOINT runs with when no SHELL says otherwise (Linux)
DEFAULT_SHELL = ("/bin/sh", "-c")


class InstructionError(ParseError):
    """An instruction is invalid (unknown keyword or flag, wrong arguments).

    ``buildkit_message`` is the error as BuildKit words it, including its
    ``dockerfile parse error on line N:`` prefix where BuildKit adds one.
    """

    def __init__(self, message: str, *, location: Location, buildkit_message: str) -> None:
        super().__init__(message, location=location)
        self.buildkit_message = buildkit_message


# -- commands ----------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """Base of typed instructions: the syntax node gives position and original text."""

    node: Instruction = field(repr=False)

    @property
    def keyword(self) -> str:
        """Lower-case instruction keyword."""
        return self.node.keyword

    @property
    def line(self) -> int:
        """First line of the instruction."""
        return self.node.start_line

    @property
    def original(self) -> str:
        """The instruction's logical line as written (history ``created_by`` material)."""
        return self.node.original

    def expand(self, expander: Expander) -> Command:
        """A copy with the fields BuildKit expands passed through ``expander``."""
        return self


@dataclass(frozen=True)
class KeyValue:
    """One ``key=value`` of ENV or LABEL; ``legacy`` for the ``KEY value`` form."""

    key: str
    value: str
    legacy: bool = False


def _expand_pairs(pairs: tuple[KeyValue, ...], fn: Expander) -> tuple[KeyValue, ...]:
    return tuple(replace(p, key=fn(p.key), value=fn(p.value)) for p in pairs)


@dataclass(frozen=True)
class EnvCommand(Command):
    """``ENV k=v ...``."""

    pairs: tuple[KeyValue, ...] = ()

    def expand(self, expander: Expander) -> EnvCommand:
        return replace(self, pairs=_expand_pairs(self.pairs, expander))


@dataclass(frozen=True)
class LabelCommand(Command):
    """``LABEL k=v ...``."""

    pairs: tuple[KeyValue, ...] = ()

    def expand(self, expander: Expander) -> LabelCommand:
        return replace(self, pairs=_expand_pairs(self.pairs, expander))


@dataclass(frozen=True)
class MaintainerCommand(Command):
    """``MAINTAINER name`` (deprecated)."""

    maintainer: str = ""


@dataclass(frozen=True)
class ArgDef:
    """One ``NAME[=default]`` of an ARG; ``comment`` is its doc comment (``# NAME text``)."""

    key: str
    value: str | None
    comment: str = ""


@dataclass(frozen=True)
class ArgCommand(Command):
    """``ARG a[=x] b ...``."""

    args: tuple[ArgDef, ...] = ()


@dataclass(frozen=True)
class SourceContent:
    """A heredoc used as a COPY/ADD source: file ``path`` with ``data`` (already chomped)."""

    path: str
    data: str
    expand: bool


@dataclass(frozen=True)
class ChmodSpec:
    """A validated ``--chmod``: an octal ``mode`` or a ``symbolic`` expression (``u=rwX,go=rX``)."""

    mode: int | None = None
    symbolic: str | None = None

    def apply(self, current: int, is_dir: bool) -> int:
        """The permission bits a file with ``current`` mode gets."""
        if self.mode is not None:
            return self.mode
        assert self.symbolic is not None
        return apply_symbolic_mode(self.symbolic, current, is_dir)


_SYMBOLIC_CLAUSE = re.compile(r"[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+\Z")


def parse_chmod(value: str) -> ChmodSpec:
    """Validate a ``--chmod`` value: octal up to 07777, or chmod(1) symbolic clauses.

    Raises ``ValueError`` with BuildKit's message for garbage.
    """
    message = (
        f"invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"
    )
    if value and all(c in "01234567" for c in value):
        mode = int(value, 8)
        if mode > 0o7777:
            raise ValueError(message)
        return ChmodSpec(mode=mode)
    if value and all(_SYMBOLIC_CLAUSE.match(clause) for clause in value.split(",")):
        return ChmodSpec(symbolic=value)
    raise ValueError(message)


_WHO_BITS = {"u": 0o4700, "g": 0o2070, "o": 0o1007}


def apply_symbolic_mode(expr: str, current: int, is_dir: bool) -> int:
    """Apply a chmod(1) symbolic expression to ``current`` permission bits."""
    mode = current & 0o7777
    for clause in expr.split(","):
        i = 0
        who = ""
        while i < len(clause) and clause[i] in "ugoa":
            who += clause[i]
            i += 1
        if not who or "a" in who:
            who = "ugo"
        while i < len(clause):
            op = clause[i]
            i += 1
            perms = ""
            while i < len(clause) and clause[i] not in "-+=":
                perms += clause[i]
                i += 1
            bits = 0
            for w in who:
                if perms in ("u", "g", "o"):
                    src = {"u": (mode >> 6) & 7, "g": (mode >> 3) & 7, "o": mode & 7}[perms]
                    bits |= src << {"u": 6, "g": 3, "o": 0}[w]
                    continue
                for p in perms:
                    if p == "r":
                        bits |= 0o4 << {"u": 6, "g": 3, "o": 0}[w]
                    elif p == "w":
                        bits |= 0o2 << {"u": 6, "g": 3, "o": 0}[w]
                    elif p == "x" or (p == "X" and (is_dir or current & 0o111)):
                        bits |= 0o1 << {"u": 6, "g": 3, "o": 0}[w]
                    elif p == "s" and w in "ug":
                        bits |= 0o4000 if w == "u" else 0o2000
                    elif p == "t" and w == "o":
                        bits |= 0o1000
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                clear = 0
                for w in who:
                    clear |= _WHO_BITS[w]
                mode = (mode & ~clear) | bits
    return mode & 0o7777


@dataclass(frozen=True)
class _CopyLike(Command):
    sources: tuple[str, ...] = ()
    contents: tuple[SourceContent, ...] = ()
    dest: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    excludes: tuple[str, ...] = ()

    def chmod_spec(self) -> ChmodSpec | None:
        """The validated ``--chmod`` (call after :meth:`expand`), ``None`` if not given."""
        if not self.chmod:
            return None
        return parse_chmod(self.chmod)


@dataclass(frozen=True)
class CopyCommand(_CopyLike):
    """``COPY [--from=x] [--chown] [--chmod] [--link] [--parents] [--exclude]... src... dest``."""

    from_: str = ""
    parents: bool = False

    def expand(self, expander: Expander) -> CopyCommand:
        return replace(
            self,
            chown=expander(self.chown),
            chmod=expander(self.chmod),
            sources=tuple(expander(s) for s in self.sources),
            dest=expander(self.dest),
            excludes=tuple(expander(e) for e in self.excludes),
        )


@dataclass(frozen=True)
class AddCommand(_CopyLike):
    """``ADD [--chown] [--chmod] [--link] [--checksum] [--keep-git-dir] [--unpack] src... dest``."""

    checksum: str = ""
    keep_git_dir: bool = False
    unpack: bool | None = None

    def expand(self, expander: Expander) -> AddCommand:
        return replace(
            self,
            chown=expander(self.chown),
            chmod=expander(self.chmod),
            checksum=expander(self.checksum),
            sources=tuple(expander(s) for s in self.sources),
            dest=expander(self.dest),
            excludes=tuple(expander(e) for e in self.excludes),
        )


@dataclass(frozen=True)
class _ShellDependent(Command):
    """Shared by RUN, CMD and ENTRYPOINT: the command and whether the shell is prepended."""

    cmdline: tuple[str, ...] = ()
    prepend_shell: bool = True
    files: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class RunCommand(_ShellDependent):
    """``RUN [--mount=...]... [--network=...] [--security=...] cmd``.

    ``mount_specs`` are the raw ``--mount`` values; :meth:`mounts` parses them
    (after expanding variables with ``expand``).
    """

    mount_specs: tuple[str, ...] = ()
    network: str = "default"
    security: str = "sandbox"
    flags_used: frozenset[str] = frozenset()

    def mounts(self, expand: Expander | None = None, file: str = "Dockerfile") -> tuple[Mount, ...]:
        """Parse every ``--mount`` into a :class:`Mount`; raise :class:`InstructionError`."""
        out: list[Mount] = []
        flags = [f for f in self.node.flags if f.name == "mount"]
        for i, spec in enumerate(self.mount_specs):
            try:
                out.append(parse_mount(spec, expand))
            except MountError as exc:
                flag = flags[i] if i < len(flags) else None
                raise _error(self.node, str(exc), file, flag=flag, prefixed=False) from None
        return tuple(out)

    def plan(self, shell: tuple[str, ...] = DEFAULT_SHELL, os: str = "linux") -> RunPlan:
        """The process arguments and inline script files (see :func:`run_plan`)."""
        return run_plan(self, shell, os)

    @property
    def mount_sources(self) -> tuple[str, ...]:
        """The ``from=`` stage/image names of the mounts (dependencies of this step)."""
        return tuple(s for s in (mount_from(m) for m in self.mount_specs) if s)


@dataclass(frozen=True)
class InlineFile:
    """A heredoc a RUN executes as a script: mount ``data`` at ``path`` with ``mode``."""

    path: str
    data: str
    mode: int


@dataclass(frozen=True)
class RunPlan:
    """What a RUN executes: ``args`` for the process, ``files`` to mount read-only first."""

    args: tuple[str, ...]
    files: tuple[InlineFile, ...] = ()


HEREDOC_SCRIPT_DIR = "/dev/pipes/"


def run_plan(cmd: RunCommand, shell: tuple[str, ...] = DEFAULT_SHELL, os: str = "linux") -> RunPlan:
    """BuildKit's arguments for a RUN (``dispatchRun``), heredocs included.

    * A RUN that is just one heredoc runs its body with the shell, or, when the
      body starts with ``#!``, as an executable script mounted under
      ``/dev/pipes/`` (Linux only).
    * Otherwise every heredoc is appended to the command line as the shell would
      read it (``cmd\n<body><NAME>``) and the shell runs the lot.
    * Shell form prepends ``shell`` (the stage's ``SHELL``, default ``/bin/sh -c``).
    """
    args = list(cmd.cmdline)
    files: list[InlineFile] = []
    if cmd.files:
        if len(args) != 1 or not cmd.prepend_shell:
            raise ValueError(f"parsing produced an invalid run command: {args}")
        if parse_heredoc_marker_quiet(args[0]) is not None:
            first = cmd.files[0]
            data = first.body()
            if os != "windows" and first.content.startswith("#!"):
                path = HEREDOC_SCRIPT_DIR + first.name
                files.append(InlineFile(path, data, 0o755))
                args = [path]
            else:
                args = [data]
        else:
            full = args[0]
            for doc in cmd.files:
                full += "\n" + doc.content + doc.name
            args = [full]
    if cmd.prepend_shell:
        args = [*shell, " ".join(args)]
    return RunPlan(tuple(args), tuple(files))


@dataclass(frozen=True)
class CmdCommand(_ShellDependent):
    """``CMD``."""


@dataclass(frozen=True)
class EntrypointCommand(_ShellDependent):
    """``ENTRYPOINT``."""


@dataclass(frozen=True)
class ShellCommand(Command):
    """``SHELL ["exe", "arg"]``."""

    shell: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkdirCommand(Command):
    """``WORKDIR path``."""

    path: str = ""

    def expand(self, expander: Expander) -> WorkdirCommand:
        return replace(self, path=expander(self.path))


@dataclass(frozen=True)
class UserCommand(Command):
    """``USER user[:group]``."""

    user: str = ""

    def expand(self, expander: Expander) -> UserCommand:
        return replace(self, user=expander(self.user))


@dataclass(frozen=True)
class VolumeCommand(Command):
    """``VOLUME path...`` or ``VOLUME ["path", ...]``."""

    volumes: tuple[str, ...] = ()

    def expand(self, expander: Expander) -> VolumeCommand:
        return replace(self, volumes=tuple(expander(v) for v in self.volumes))


@dataclass(frozen=True)
class StopSignalCommand(Command):
    """``STOPSIGNAL signal``."""

    signal: str = ""

    def expand(self, expander: Expander) -> StopSignalCommand:
        return replace(self, signal=expander(self.signal))


@dataclass(frozen=True)
class ExposeCommand(Command):
    """``EXPOSE port[/proto]...``; ports are split into words when expanded (like BuildKit)."""

    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthcheckCommand(Command):
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [opts] CMD ...``; durations in nanoseconds (0 = unset)."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class OnbuildCommand(Command):
    """``ONBUILD <instruction>``; ``expression`` is the trigger text stored in the image."""

    expression: str = ""

    def trigger(self, file: str = "Dockerfile") -> Command:
        """The wrapped instruction as a typed command (checked now; BuildKit checks it
        only when a child build runs the trigger)."""
        assert self.node.child is not None
        cmd = parse_instruction(self.node.child, file)
        assert isinstance(cmd, Command)
        return cmd


@dataclass(frozen=True)
class Stage:
    """A build stage: ``FROM [--platform=p] base [AS name]`` and its commands.

    ``name`` is lower-cased ("" when unnamed); ``base_name`` and ``platform``
    are unexpanded; ``comment`` is the doc comment (``# name text`` above FROM).
    """

    index: int
    name: str
    base_name: str
    platform: str
    comment: str
    node: Instruction = field(repr=False)
    commands: tuple[Command, ...] = ()

    @property
    def line(self) -> int:
        """Line of the FROM instruction."""
        return self.node.start_line

    @property
    def display_name(self) -> str:
        """``name``, or ``stage-N`` for unnamed stages (BuildKit's naming)."""
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class ParsedStages:
    """The global ARGs (before the first FROM) and the stages of a Dockerfile."""

    meta_args: tuple[ArgCommand, ...]
    stages: tuple[Stage, ...]
    file: str = "Dockerfile"
    #: the file's escape character (``# escape=``), used when expanding words
    escape: str = "\\"

    def stage(self, name_or_index: str) -> Stage | None:
        """Find a stage by (case-insensitive) name or by index."""
        lowered = name_or_index.lower()
        for st in self.stages:
            if st.name and st.name == lowered:
                return st
        if name_or_index.isdigit():
            idx = int(name_or_index)
            if 0 <= idx < len(self.stages):
                return self.stages[idx]
        return None


# -- parsing -----------------------------------------------------------------


def _error(
    node: Instruction,
    message: str,
    file: str,
    *,
    flag: Flag | None = None,
    prefixed: bool = True,
) -> InstructionError:
    line, col = (flag.line, flag.column) if flag is not None else (node.start_line, node.column)
    bk = f"dockerfile parse error on line {node.start_line}: {message}" if prefixed else message
    return InstructionError(message, location=Location(file, line, col), buildkit_message=bk)


class _Fail(Exception):
    def __init__(self, message: str, flag: Flag | None = None) -> None:
        super().__init__(message)
        self.flag = flag


def _flags(
    node: Instruction, spec: dict[str, FlagKind], defaults: dict[str, object] | None = None
) -> ParsedFlags:
    try:
        return parse_flags(node.flags, spec, defaults)
    except FlagError as exc:
        raise _Fail(str(exc), exc.flag) from None


def node_args(node: Instruction) -> list[str]:
    """Arguments as BuildKit's ``nodeArgs`` sees them (ONBUILD: keyword of the wrapped one first)."""
    if node.child is not None:
        return [node.child.raw_keyword, *node_args(node.child)]
    if node.empty_node:
        return [""]
    return list(node.args)


def _json_args(args: list[str], node: Instruction) -> list[str]:
    if not args:
        return []
    if node.json:
        return args
    return [" ".join(args)]


def _kvps(args: list[str], name: str) -> tuple[KeyValue, ...]:
    if not args:
        raise _Fail(f"{name} requires at least one argument")
    if len(args) % 3:
        raise _Fail(f"Bad input to {name}, too many arguments")
    out: list[KeyValue] = []
    for j in range(0, len(args), 3):
        if args[j] == "":
            raise _Fail(f"{name} names can not be blank")
        out.append(KeyValue(args[j], args[j + 1], args[j + 2] == ""))
    return tuple(out)


def _comment_for(comments: tuple[str, ...], name: str) -> str:
    if not name:
        return ""
    prefix = name + " "
    for line in comments:
        if line.startswith(prefix):
            return line[len(prefix) :]
    return ""


def _sources_and_dest(
    node: Instruction, args: list[str], name: str
) -> tuple[tuple[str, ...], tuple[SourceContent, ...], str]:
    *srcs, dest = args
    if parse_heredoc_marker_quiet(dest) is not None:
        raise _Fail(f"{name} cannot accept a heredoc as a destination")
    lookup = {h.name: h for h in node.heredocs}
    paths: list[str] = []
    contents: list[SourceContent] = []
    for src in srcs:
        marker = parse_heredoc_marker_quiet(src)
        if marker is None:
            paths.append(src)
            continue
        doc = lookup.get(marker.name)
        data = "" if doc is None else doc.content
        if marker.chomp:
            data = "\n".join(line.lstrip("\t") for line in data.split("\n"))
        contents.append(SourceContent(marker.name, data, marker.expand))
    return tuple(paths), tuple(contents), dest


def parse_heredoc_marker_quiet(word: str) -> HeredocMarker | None:
    """``parse_heredoc_marker`` that treats lexing errors as "not a heredoc" (BuildKit's MustParseHeredoc)."""
    try:
        return parse_heredoc_marker(word)
    except ValueError:
        return None


_NO_DEST = "{} requires at least two arguments, but only one was provided. Destination could not be determined"


# the flags COPY and ADD share (BuildKit parses them the same way for both)
_COPY_LIKE_FLAGS = {
    "exclude": FlagKind.STRINGS,
    "chown": FlagKind.STRING,
    "chmod": FlagKind.STRING,
    "link": FlagKind.BOOL,
}


def _copy_like(
    node: Instruction, args: list[str], name: str, extra: dict[str, FlagKind]
) -> tuple[ParsedFlags, dict[str, Any]]:
    """What COPY and ADD have in common: sources, destination and the shared flags."""
    if len(args) < 2:
        raise _Fail(_NO_DEST.format(name))
    fl = _flags(node, {**_COPY_LIKE_FLAGS, **extra})
    sources, contents, dest = _sources_and_dest(node, args, name)
    common = {
        "sources": sources,
        "contents": contents,
        "dest": dest,
        "chown": fl.string("chown"),
        "chmod": fl.string("chmod"),
        "link": fl.boolean("link"),
        "excludes": fl.strings("exclude"),
    }
    return fl, common


def _parse_copy(node: Instruction, args: list[str]) -> CopyCommand:
    fl, common = _copy_like(node, args, "COPY", {"parents": FlagKind.BOOL, "from": FlagKind.STRING})
    return CopyCommand(node, **common, from_=fl.string("from"), parents=fl.boolean("parents"))


def _parse_add(node: Instruction, args: list[str]) -> AddCommand:
    fl, common = _copy_like(
        node,
        args,
        "ADD",
        {"keep-git-dir": FlagKind.BOOL, "checksum": FlagKind.STRING, "unpack": FlagKind.BOOL},
    )
    return AddCommand(
        node,
        **common,
        checksum=fl.string("checksum"),
        keep_git_dir=fl.boolean("keep-git-dir"),
        unpack=fl.boolean("unpack") if "unpack" in fl.used else None,
    )


_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*\Z")


def _parse_from(node: Instruction, args: list[str]) -> Stage:
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise _Fail(
                f"invalid name for build stage: {go_quote(args[2])}, "
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise _Fail("FROM requires either one or three arguments")
    fl = _flags(node, {"platform": FlagKind.STRING})
    return Stage(
        index=-1,
        name=name,
        base_name=args[0],
        platform=fl.string("platform"),
        comment=_comment_for(node.comments, name),
        node=node,
    )


_ONBUILD_PREFIX = re.compile(r"^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", re.IGNORECASE)


def _parse_onbuild(node: Instruction, args: list[str]) -> OnbuildCommand:
    if not args:
        raise _Fail("ONBUILD requires at least one argument")
    _flags(node, {})
    trigger = trim_space(args[0]).upper()
    if trigger == "ONBUILD":
        raise _Fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Fail(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", node.original, count=1)
    for doc in node.heredocs:
        expression += "\n" + doc.content + doc.name
    return OnbuildCommand(node, expression=expression)


def _shell_dependent(node: Instruction, args: list[str]) -> tuple[tuple[str, ...], bool]:
    """(command line, prepend shell?) for RUN, CMD and ENTRYPOINT."""
    return tuple(_json_args(args, node)), not node.json


_NETWORKS = ("default", "none", "host")
_SECURITY = ("sandbox", "insecure")


def _parse_run(node: Instruction, args: list[str]) -> RunCommand:
    fl = _flags(
        node,
        {"mount": FlagKind.STRINGS, "network": FlagKind.STRING, "security": FlagKind.STRING},
        {"network": "default", "security": "sandbox"},
    )
    specs = fl.strings("mount")
    mount_flags = [f for f in node.flags if f.name == "mount"]
    for i, spec in enumerate(specs):
        try:
            mount_from(spec)
        except MountError as exc:
            raise _Fail(str(exc), mount_flags[i] if i < len(mount_flags) else None) from None
    network = fl.string("network")
    if network not in _NETWORKS:
        raise _Fail(f"invalid network mode {go_quote(network)}", fl.by_name.get("network"))
    security = fl.string("security")
    if security not in _SECURITY:
        raise _Fail(f"security {go_quote(security)} is not valid", fl.by_name.get("security"))
    cmdline, prepend = _shell_dependent(node, args)
    return RunCommand(
        node,
        cmdline=cmdline,
        prepend_shell=prepend,
        files=node.heredocs,
        mount_specs=specs,
        network=network,
        security=security,
        flags_used=fl.used,
    )


def _duration(fl: ParsedFlags, name: str) -> int:
    text = fl.string(name)
    if text == "":
        return 0
    try:
        ns = parse_go_duration(text)
    except ValueError as exc:
        raise _Fail(str(exc), fl.by_name.get(name)) from None
    if ns == 0:
        return 0
    if ns < 1_000_000:
        raise _Fail(f"Interval {go_quote(name)} cannot be less than 1ms", fl.by_name.get(name))
    return ns


def _parse_healthcheck(node: Instruction, args: list[str]) -> HealthcheckCommand:
    if not args:
        raise _Fail("HEALTHCHECK requires at least one argument")
    kind = args[0].upper()
    rest = args[1:]
    if kind == "NONE":
        if rest:
            raise _Fail("HEALTHCHECK NONE takes no arguments")
        return HealthcheckCommand(node, test=("NONE",))
    fl = _flags(
        node,
        {
            "interval": FlagKind.STRING,
            "timeout": FlagKind.STRING,
            "start-period": FlagKind.STRING,
            "start-interval": FlagKind.STRING,
            "retries": FlagKind.STRING,
        },
    )
    if kind != "CMD":
        raise _Fail(f"Unknown type {go_quote(kind)} in HEALTHCHECK (try CMD)")
    cmd = _json_args(rest, node)
    if not cmd:
        raise _Fail("Missing command after HEALTHCHECK CMD")
    test = ("CMD" if node.json else "CMD-SHELL", *cmd)
    retries = 0
    text = fl.string("retries")
    if text != "":
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _Fail(
                f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax",
                fl.by_name.get("retries"),
            )
        retries = int(text)
        if not -(2**31) <= retries < 2**31:
            raise _Fail(
                f"strconv.ParseInt: parsing {go_quote(text)}: value out of range",
                fl.by_name.get("retries"),
            )
        if retries < 0:
            raise _Fail(f"--retries cannot be negative ({retries})", fl.by_name.get("retries"))
    return HealthcheckCommand(
        node,
        test=test,
        interval=_duration(fl, "interval"),
        timeout=_duration(fl, "timeout"),
        start_period=_duration(fl, "start-period"),
        start_interval=_duration(fl, "start-interval"),
        retries=retries,
    )


def _parse_arg(node: Instruction, args: list[str]) -> ArgCommand:
    if not args:
        raise _Fail("ARG requires at least one argument")
    defs: list[ArgDef] = []
    for arg in args:
        if "=" in arg:
            key, value = arg.split("=", 1)
            if key == "":
                raise _Fail("ARG names can not be blank")
            defs.append(ArgDef(key, value, _comment_for(node.comments, key)))
        else:
            defs.append(ArgDef(arg, None, _comment_for(node.comments, arg)))
    return ArgCommand(node, args=tuple(defs))


def _exactly_one(args: list[str], name: str) -> str:
    if len(args) != 1:
        raise _Fail(f"{name} requires exactly one argument")
    return args[0]


def _not_json_error(name: str, original: str) -> str:
    low = original.lower()
    extra = ""
    if re.search(r'"[a-z]:\\.*', low) and "\\\\" not in low and "[" in low and "]" in low:
        extra = (
            f". It looks like '{low}' includes a file path without an escaped back-slash. "
            'JSON requires back-slashes to be escaped such as ["c:\\\\path\\\\to\\\\file.exe", '
            '"/parameter"]'
        )
    return f"{name} requires the arguments to be in JSON form{extra}"


def _parse_one(node: Instruction) -> Command | Stage:
    kw = node.keyword
    args = node_args(node)
    if kw == "env":
        _flags(node, {})
        return EnvCommand(node, pairs=_kvps(args, "ENV"))
    if kw == "maintainer":
        value = _exactly_one(args, "MAINTAINER")
        _flags(node, {})
        return MaintainerCommand(node, maintainer=value)
    if kw == "label":
        _flags(node, {})
        return LabelCommand(node, pairs=_kvps(args, "LABEL"))
    if kw == "add":
        return _parse_add(node, args)
    if kw == "copy":
        return _parse_copy(node, args)
    if kw == "from":
        return _parse_from(node, args)
    if kw == "onbuild":
        return _parse_onbuild(node, args)
    if kw == "workdir":
        value = _exactly_one(args, "WORKDIR")
        _flags(node, {})
        return WorkdirCommand(node, path=value)
    if kw == "run":
        return _parse_run(node, args)
    if kw == "cmd":
        _flags(node, {})
        cmdline, prepend = _shell_dependent(node, args)
        return CmdCommand(node, cmdline=cmdline, prepend_shell=prepend, files=node.heredocs)
    if kw == "entrypoint":
        _flags(node, {})
        cmdline, prepend = _shell_dependent(node, args)
        return EntrypointCommand(node, cmdline=cmdline, prepend_shell=prepend, files=node.heredocs)
    if kw == "healthcheck":
        return _parse_healthcheck(node, args)
    if kw == "expose":
        if not args:
            raise _Fail("EXPOSE requires at least one argument")
        _flags(node, {})
        return ExposeCommand(node, ports=tuple(sorted(args)))
    if kw == "user":
        value = _exactly_one(args, "USER")
        _flags(node, {})
        return UserCommand(node, user=value)
    if kw == "volume":
        if not args:
            raise _Fail("VOLUME requires at least one argument")
        _flags(node, {})
        vols = []
        for v in args:
            v = trim_space(v)
            if v == "":
                raise _Fail("VOLUME specified can not be an empty string")
            vols.append(v)
        return VolumeCommand(node, volumes=tuple(vols))
    if kw == "stopsignal":
        return StopSignalCommand(node, signal=_exactly_one(args, "STOPSIGNAL"))
    if kw == "arg":
        return _parse_arg(node, args)
    if kw == "shell":
        _flags(node, {})
        shell = _json_args(args, node)
        if not shell:
            raise _Fail("SHELL requires at least one argument")
        if not node.json:
            raise _Fail(_not_json_error("SHELL", node.original))
        return ShellCommand(node, shell=tuple(shell))
    raise _Fail(
        with_suggestion(
            f"unknown instruction: {node.raw_keyword}",
            node.raw_keyword,
            [k.upper() for k in KEYWORDS],
            case_sensitive=False,
        )
    )


def parse_instruction(node: Instruction, file: str = "Dockerfile") -> Command | Stage:
    """Turn one syntax node into a typed command (or a :class:`Stage` for FROM)."""
    try:
        return _parse_one(node)
    except _Fail as exc:
        raise _error(node, str(exc), file, flag=exc.flag) from None


def parse_stages(
    dockerfile: Dockerfile, *, errors: list[InstructionError] | None = None
) -> ParsedStages:
    """Group a parsed Dockerfile into global ARGs and stages with typed commands.

    Raises :class:`InstructionError` for the first invalid instruction, or when
    an instruction other than ARG comes before the first FROM. With ``errors``
    (a list), such an instruction is recorded there and left out instead, and
    the rest is grouped (the linter checks what remains).
    """
    file = dockerfile.filename
    meta: list[ArgCommand] = []
    stages: list[Stage] = []
    commands: list[Command] = []
    for node in dockerfile.instructions:
        try:
            cmd = parse_instruction(node, file)
            if not stages and not isinstance(cmd, ArgCommand | Stage):
                raise InstructionError(
                    f"{node.raw_keyword.upper()} before the first FROM: no build stage in "
                    "current context",
                    location=node.location(file),
                    buildkit_message="no build stage in current context",
                )
        except InstructionError as exc:
            if errors is None:
                raise
            errors.append(exc)
            continue
        if not stages and isinstance(cmd, ArgCommand):
            meta.append(cmd)
            continue
        if isinstance(cmd, Stage):
            if stages:
                stages[-1] = replace(stages[-1], commands=tuple(commands))
            stages.append(replace(cmd, index=len(stages)))
            commands = []
            continue
        commands.append(cmd)
    if stages:
        stages[-1] = replace(stages[-1], commands=tuple(commands))
    return ParsedStages(tuple(meta), tuple(stages), file, dockerfile.escape)
