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
* Automatic ARGs (``TARGETPLATFORM``, ``TARGETOS``, ``TARGETOSVERSION``,
  ``TARGETARCH``, ``TARGETVARIANT``, the same five for ``BUILD*``, and
  ``TARGETSTAGE``) are global; a stage sees them only after declaring them.
* Proxy variables (``HTTP_PROXY`` and friends, either case) given as build
  args reach RUN steps without being declared and stay out of the image
  history and the cache key unless the Dockerfile declares them.

:func:`default_args` gives the automatic ones, :class:`GlobalArgs` evaluates
the global scope; :class:`StageScope` follows a stage line by line. :func:`unused_build_args` says which ``--build-arg``\\ s a
build would not consume (Docker prints them as a warning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from forklift.dockerfile.diagnostics import Diagnostics
from forklift.dockerfile.instructions import ArgCommand, ArgDef
from forklift.dockerfile.shell import ExpansionError, Lexer
from forklift.errors import Location, ParseError
from forklift.oci.platform import Platform, host_platform

PLATFORM_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETSTAGE",
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
#: ARGs that set builder behaviour and never reach a step's environment (BuildKit's ``nonEnvArgs``)
NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})

_LEXERS = {"\\": Lexer("\\"), "`": Lexer("`")}


def default_args(
    target: Platform | None = None, build: Platform | None = None, target_stage: str = ""
) -> dict[str, str]:
    """The automatic global ARGs of a build (BuildKit's ``defaultArgs``), before ``--build-arg``.

    Both platforms default to this machine's; ``target_stage`` is the stage being
    built (``default`` when the target is the unnamed last stage).
    """
    build = build or host_platform()
    target = target or build
    return {
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDOSVERSION": build.os_version,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETOSVERSION": target.os_version,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
        "TARGETSTAGE": target_stage or "default",
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


Expander = Callable[[str], str]


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
        diag: Diagnostics | None = None,
    ) -> GlobalArgs:
        """Compute the global scope (BuildKit's ``buildMetaArgs``).

        ``predefined`` defaults to :func:`default_args` for this machine;
        ``--build-arg`` values override predefined values and defaults. A
        default that cannot be expanded is an error (through ``diag``: a
        tolerant pass leaves that ARG without a value).
        """
        diag = diag or Diagnostics()
        build_args = dict(build_args or {})
        lexer = _LEXERS[escape]
        env: dict[str, str] = {}
        for k, v in (default_args() if predefined is None else predefined).items():
            env[k] = build_args.get(k, v)
        infos: dict[str, ArgInfo] = {}
        for cmd in meta_args:
            for kp in cmd.args:
                deps: frozenset[str] = frozenset()
                value: str | None = None
                if kp.key in build_args:
                    value = build_args[kp.key]
                elif kp.value is not None:
                    try:
                        result = lexer.process(kp.value, env)
                    except ExpansionError as exc:
                        diag.error(ParseError(str(exc), location=Location(file, cmd.line)))
                        continue
                    value, deps = result.result, result.matched
                    if kp.key in deps:  # ARG A=$A:1 depends on what the earlier A did
                        old = infos.get(kp.key)
                        deps = (deps - {kp.key}) | (old.deps if old else frozenset())
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

    Start it with :meth:`for_stage`, then follow the stage's instructions with
    :meth:`declare` (ARG) and :meth:`set_env` (ENV); :attr:`env` is the
    environment the next instruction is expanded with, :attr:`args` the ARGs
    declared so far.
    """

    globals: GlobalArgs
    build_args: Mapping[str, str]
    env: dict[str, str] = field(default_factory=dict)
    args: list[ArgDef] = field(default_factory=list)
    infos: dict[str, ArgInfo] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    @classmethod
    def for_stage(
        cls,
        globals_: GlobalArgs,
        build_args: Mapping[str, str] | None = None,
        *,
        base: StageScope | None = None,
        image_env: Mapping[str, str] | None = None,
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
            )
        return cls(globals_, dict(build_args or {}), dict(image_env or {}))

    def set_env(self, key: str, value: str) -> None:
        """Record ``ENV key=value`` (already expanded); the latest setting comes last."""
        self.env.pop(key, None)
        self.env[key] = value

    def declare(self, arg: ArgDef, line: int, expand: Expander) -> str | None:
        """Declare ``ARG`` (BuildKit's ``dispatchArg``); return the value it gets, if any.

        ``expand`` expands a default with the current environment (it may raise).
        """
        has_build_value = arg.key in self.build_args
        value = arg.value
        inherited = False
        if value is None and not has_build_value and arg.key in self.globals.env:
            value = self.globals.env[arg.key]
            inherited = True
        if has_build_value:
            value = self.build_args[arg.key]
        elif value is not None and not inherited:
            value = expand(value)
        if value is not None and arg.key not in NON_ENV_ARGS:
            self.set_env(arg.key, value)
        if not inherited:
            self.infos[arg.key] = ArgInfo(arg.key, value, arg.comment, line)
        self.used.add(arg.key)
        self.args.append(ArgDef(arg.key, value, arg.comment))
        return value

    def declared(self) -> tuple[tuple[str, str], ...]:
        """The declared ARGs in effect with their current values, in first-declared order.

        (What a RUN's history line prefixes, ``|N K=V ...``, and what its cache
        record compares: a later ENV of the same name shows its value.)
        """
        seen: dict[str, str] = {}
        for arg in self.args:
            # a re-declared ARG keeps its first position, with the latest value
            seen[arg.key] = self.env.get(arg.key, arg.value or "")
        return tuple(seen.items())


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
