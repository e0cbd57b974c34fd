"""ARG scoping: which build arguments and variables are visible where, with which value.

BuildKit's rules, which this module reproduces:

* ARGs before the first FROM are *global*: they can be used in FROM lines
  (base image and ``--platform``) and nowhere else, unless a stage declares
  ``ARG NAME`` (without a value) to import the global value.
* Inside a stage an ARG is visible from its line on, and in stages built
  ``FROM`` it; a value given with ``--build-arg`` replaces the default; the
  default is expanded with the variables in effect at that line.
* ARG and ENV values share one environment in the order they are set (so an
  ENV set after an ARG of the same name wins).
* Automatic platform ARGs (``TARGETPLATFORM``, ``TARGETOS``, ``TARGETARCH``,
  ``TARGETVARIANT``, ``BUILDPLATFORM``, ``BUILDOS``, ``BUILDARCH``,
  ``BUILDVARIANT``) are global; a stage sees them only after declaring them.
* Proxy variables (``HTTP_PROXY`` and friends, either case) given as build
  args reach RUN steps without being declared and stay out of the image
  history and the cache key unless the Dockerfile declares them.

:class:`GlobalArgs` evaluates the global scope; :class:`StageScope` follows a
stage line by line. :func:`unused_build_args` says which ``--build-arg``\\ s a
build would not consume (Docker prints them as a warning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from forklift.dockerfile.instructions import ArgCommand, ArgDef, Command
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.errors import Location, ParseError
from forklift.oci.platform import Platform, host_platform

PLATFORM_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
)
PROXY_ARGS = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)
#: Build arguments BuildKit itself understands; never reported as unused.
BUILTIN_ARGS = (
    "BUILDKIT_CACHE_MOUNT_NS",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SANDBOX_HOSTNAME",
    "BUILDKIT_SBOM_SCAN_CONTEXT",
    "BUILDKIT_SBOM_SCAN_STAGE",
    "BUILDKIT_SYNTAX",
    "SOURCE_DATE_EPOCH",
)
# These set builder behaviour and are never put into a step's environment.
_NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})

_LEXERS = {"\\": Lexer("\\"), "`": Lexer("`")}


def platform_args(target: Platform | None = None, build: Platform | None = None) -> dict[str, str]:
    """The automatic platform ARGs for a build (both default to this machine's platform)."""
    build = build or host_platform()
    target = target or build
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
    }


def proxy_env(build_args: Mapping[str, str]) -> dict[str, str]:
    """The proxy variables among ``build_args`` (they reach RUN without being declared)."""
    names = {p.lower() for p in PROXY_ARGS}
    return {k: v for k, v in build_args.items() if k.lower() in names}


@dataclass(frozen=True)
class ArgInfo:
    """What is known about one declared ARG: its value, doc comment and where it is.

    ``deps`` are the variables its default referenced (so using it uses them).
    """

    name: str
    value: str | None
    description: str
    line: int
    deps: frozenset[str] = frozenset()


def _expand(
    word: str, env: Mapping[str, str], file: str, line: int, escape: str = "\\"
) -> tuple[str, frozenset[str]]:
    try:
        result = _LEXERS[escape].process(word, env)
    except ExpansionError as exc:
        raise ParseError(str(exc), location=Location(file, line)) from None
    return result.result, result.matched


@dataclass
class GlobalArgs:
    """The global scope: automatic platform args, then the ARGs before the first FROM.

    ``env`` holds every global variable with a value (what FROM lines see);
    ``infos`` describes each declared global ARG.
    """

    env: dict[str, str] = field(default_factory=dict)
    infos: dict[str, ArgInfo] = field(default_factory=dict)

    @classmethod
    def evaluate(
        cls,
        meta_args: Iterable[ArgCommand],
        build_args: Mapping[str, str] | None = None,
        predefined: Mapping[str, str] | None = None,
        file: str = "Dockerfile",
        escape: str = "\\",
    ) -> GlobalArgs:
        """Compute the global scope (BuildKit's ``buildMetaArgs``).

        ``predefined`` defaults to :func:`platform_args` for this machine;
        ``--build-arg`` values override predefined values and defaults.
        """
        build_args = dict(build_args or {})
        env: dict[str, str] = {}
        for k, v in (platform_args() if predefined is None else predefined).items():
            env[k] = build_args.get(k, v)
        infos: dict[str, ArgInfo] = {}
        for cmd in meta_args:
            for kp in cmd.args:
                deps: frozenset[str] = frozenset()
                if kp.key in build_args:
                    value: str | None = build_args[kp.key]
                elif kp.value is not None:
                    value, deps = _expand(kp.value, env, file, cmd.line, escape)
                else:
                    value = None
                if value is not None:
                    env.pop(kp.key, None)
                    env[kp.key] = value
                infos[kp.key] = ArgInfo(kp.key, value, kp.comment, cmd.line, deps)
        return cls(env, infos)

    def resolve_used(self, names: Iterable[str]) -> set[str]:
        """``names`` plus the global ARGs their defaults referenced, transitively."""
        out: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in out:
                continue
            out.add(name)
            info = self.infos.get(name)
            if info is not None:
                todo.extend(info.deps)
        return out


@dataclass
class StageScope:
    """The variables in effect at one point of a stage (BuildKit's state environment).

    Start it with :meth:`for_stage`, then feed the stage's commands in order with
    :meth:`apply` (or call :meth:`declare` / :meth:`set_env` directly);
    :attr:`env` is the environment the next instruction is expanded with.
    """

    globals: GlobalArgs
    build_args: Mapping[str, str]
    env: dict[str, str] = field(default_factory=dict)
    args: list[ArgDef] = field(default_factory=list)
    infos: dict[str, ArgInfo] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    file: str = "Dockerfile"
    escape: str = "\\"

    @classmethod
    def for_stage(
        cls,
        globals_: GlobalArgs,
        build_args: Mapping[str, str] | None = None,
        *,
        base: StageScope | None = None,
        image_env: Mapping[str, str] | None = None,
        file: str = "Dockerfile",
        escape: str = "\\",
    ) -> StageScope:
        """A scope at the start of a stage.

        ``base`` is the scope at the end of the parent stage when the stage is
        built ``FROM`` another stage (its ARGs and ENVs carry over);
        ``image_env`` is the base image's configured environment otherwise.
        """
        if base is not None:
            return cls(
                globals_,
                dict(build_args or {}),
                dict(base.env),
                list(base.args),
                dict(base.infos),
                set(base.used),
                file,
                escape,
            )
        return cls(
            globals_, dict(build_args or {}), dict(image_env or {}), file=file, escape=escape
        )

    def _set(self, key: str, value: str) -> None:
        self.env.pop(key, None)
        self.env[key] = value

    def set_env(self, key: str, value: str) -> None:
        """Record ``ENV key=value`` (already expanded)."""
        self._set(key, value)

    def declare(self, arg: ArgDef, line: int) -> str | None:
        """Declare ``ARG`` (BuildKit's ``dispatchArg``); return the value it gets, if any."""
        has_build_value = arg.key in self.build_args
        value = arg.value
        inherited = False
        if value is None and not has_build_value and arg.key in self.globals.env:
            value = self.globals.env[arg.key]
            inherited = True
        if has_build_value:
            value = self.build_args[arg.key]
        elif value is not None and not inherited:
            value, _ = _expand(value, self.env, self.file, line, self.escape)
        if value is not None and arg.key not in _NON_ENV_ARGS:
            self._set(arg.key, value)
        if not inherited:
            self.infos[arg.key] = ArgInfo(arg.key, value, arg.comment, line)
        self.used.add(arg.key)
        self.args.append(ArgDef(arg.key, value, arg.comment))
        return value

    def apply(self, cmd: Command) -> None:
        """Update the scope for ``cmd`` (ARG declares, ENV sets; others change nothing)."""
        from forklift.dockerfile.instructions import EnvCommand

        if isinstance(cmd, ArgCommand):
            for arg in cmd.args:
                self.declare(arg, cmd.line)
        elif isinstance(cmd, EnvCommand):
            expanded = cmd.expand(self.expander(cmd.line))
            for pair in expanded.pairs:
                self.set_env(pair.key, pair.value)

    def expander(self, line: int = 0) -> Callable[[str], str]:
        """A function expanding one word with the current environment (for ``Command.expand``)."""
        env = dict(self.env)

        def expand(word: str) -> str:
            return _expand(word, env, self.file, line, self.escape)[0]

        return expand

    def history_prefix(self) -> str:
        """BuildKit's ``|N K=V ...`` prefix of a RUN's history entry (declared ARGs in effect)."""
        seen: dict[str, str] = {}
        for arg in self.args:
            # a re-declared ARG keeps its first position, with the latest value
            seen[arg.key] = self.env.get(arg.key, arg.value or "")
        if not seen:
            return ""
        return f"|{len(seen)} " + " ".join(f"{k}={v}" for k, v in seen.items())


def unused_build_args(
    build_args: Mapping[str, str],
    declared: Iterable[str],
) -> list[str]:
    """Build args given but never consumed, sorted (predefined/proxy/builtin ones never count).

    ``declared`` is every ARG name the build consumed: ARGs declared in the
    stages that are built, plus global ARGs those stages' FROM lines used (see
    :meth:`forklift.dockerfile.stages.StageGraph.consumed_args`).
    """
    consumed = set(declared)
    exempt = set(PLATFORM_ARGS) | set(PROXY_ARGS) | set(BUILTIN_ARGS)
    return sorted(k for k in build_args if k not in consumed and k not in exempt)
