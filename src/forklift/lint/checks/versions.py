"""Package versions left open: hadolint's pinning rules (DL3008, DL3013, DL3016, DL3018,
DL3028, DL3033, DL3037, DL3041, DL3062), with hadolint's idea of what counts as pinned.

Each rule looks at the package arguments of one install command, as hadolint
does: the command's words that are not options, minus the value of the options
known to take one (``apt-get -t RELEASE``, ``apk --virtual NAME``, ``pip
--index-url URL``...). A package counts as pinned when it carries a version
the way its manager spells one (``curl=8.5.0-2``, ``flask==3.0``,
``express@4``, ``rails:7.1``, ``tomcat-9.0.1``), or names a file, a path or a
URL that fixes it. RUN lines are read with the linter's shell reader, so
commands inside ``sh -c '...'``, ``$(...)``, heredoc scripts and ``ONBUILD
RUN`` are checked too, and every finding names the unpinned packages.

Where forklift departs from hadolint: a variable in a yum/dnf package counts
as pinned when an ``ENV`` of the stage (or a stage it is built from) or any
``ARG`` declares it, in the ``$v`` and the ``${v}`` spelling (hadolint sees
both as ``${v}``); ``gem install``'s flags that take no value
(``--no-document``...) do not swallow the next word (hadolint assumes every
gem flag takes one, so ``gem install --no-document rails`` escapes it); ``go
run main.go`` names a local file, not a module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from forklift.dockerfile.instructions import ArgCommand, OnbuildCommand
from forklift.lint.findings import Finding
from forklift.lint.model import LintContext, StageModel
from forklift.lint.runscripts import DEFAULT_SHELL, analyse_run
from forklift.lint.shellscript import ShellCommand


def _flag_names(word: str) -> list[str]:
    """``--name=v`` -> [name]; ``-abc`` -> [a, b, c]; not a flag -> []."""
    if word in ("-", "--") or not word.startswith("-"):
        return []
    if word.startswith("--"):
        return [word[2:].split("=", 1)[0]]
    return list(word[1:])


def operands(args: Sequence[str], valued: frozenset[str] = frozenset()) -> list[str]:
    """The words that are not flags, skipping the value after a flag in ``valued``.

    A value given inline (``--target=x``) is part of its flag already.
    """
    out: list[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        names = _flag_names(word)
        if not names:
            out.append(word)
        elif "=" not in word and any(n in valued for n in names):
            skip = True
    return out


def _after_install(words: list[str]) -> list[str]:
    """The words after the first ``install`` (and any repeated ``install``)."""
    if "install" not in words:
        return []
    rest = words[words.index("install") :]
    while rest and rest[0] == "install":
        rest = rest[1:]
    return rest


# -- apt-get (DL3008) ---------------------------------------------------------------------


def _apt(cmd: ShellCommand) -> list[str] | None:
    if cmd.name != "apt-get" or "install" not in cmd.args:
        return None
    words = operands(cmd.args, frozenset({"t", "target-release"}))
    return [w for w in words if w != "install" and not _apt_pinned(w)]


def _apt_pinned(package: str) -> bool:
    # name=version, a release (name/bookworm-backports) or a .deb file
    return "=" in package or "/" in package or package.endswith(".deb")


# -- pip (DL3013) -------------------------------------------------------------------------

_PIP_VALUED = frozenset(
    [
        "abi",
        "b",
        "build",
        "e",
        "editable",
        "extra-index-url",
        "f",
        "find-links",
        "i",
        "index-url",
        "implementation",
        "no-binary",
        "only-binary",
        "platform",
        "prefix",
        "progress-bar",
        "proxy",
        "python",
        "python-version",
        "root",
        "root-user-action",
        "src",
        "t",
        "target",
        "trusted-host",
        "upgrade-strategy",
    ]
)
_PIP_OPERATORS = ("==", ">=", "<=", ">", "<", "!=", "~=", "===")
_VCS = re.compile(r"^(git|hg|svn|bzr)(\+[a-z-]+)?(:|$)")


def _is_pip_install(cmd: ShellCommand) -> bool:
    args = list(cmd.args)
    if cmd.name.startswith("pip") and not cmd.name.startswith("pipenv"):
        return "install" in args
    if cmd.name.startswith("python"):
        return any(args[i : i + 3] == ["-m", "pip", "install"] for i in range(len(args)))
    return False


def _pip(cmd: ShellCommand) -> list[str] | None:
    if not _is_pip_install(cmd):
        return None
    args = list(cmd.args)
    if "-r" in args or "--requirement" in args or "." in args:
        return None  # a requirements file or the project itself
    flags = {n for a in args for n in _flag_names(a)}
    if "c" in flags or "constraint" in flags:
        return None  # versions come from the constraints file
    return [p for p in _after_install(operands(args, _PIP_VALUED)) if not _pip_pinned(p)]


def _pip_pinned(package: str) -> bool:
    if any(op in package for op in _PIP_OPERATORS):
        return True
    vcs = _VCS.match(package) is not None
    if vcs:
        return "@" in package  # git+https://...@v1.2
    # a wheel or sdist file, or a path or URL (the file fixes the version)
    return package.endswith((".whl", ".tar.gz")) or "/" in package


# -- npm (DL3016) -------------------------------------------------------------------------

_NPM_VALUED = frozenset({"loglevel", "registry"})


def _npm(cmd: ShellCommand) -> list[str] | None:
    if cmd.name != "npm" or "install" not in cmd.args:
        return None
    words = operands(cmd.args, _NPM_VALUED)
    if not words or words[0] != "install":
        return None  # npm run ... install, npm --prefix x ci...
    return [p for p in _after_install(words) if not _npm_pinned(p)]


def _npm_pinned(package: str) -> bool:
    if package.startswith(("git://", "git+ssh://", "git+http://", "git+https://")):
        return "#" in package  # a commit, tag or semver range after #
    if package.endswith((".tar", ".tar.gz", ".tgz")):
        return True
    if package.startswith(("/", "./", "../", "~/")):
        return True  # a folder
    name = package.split("/", 1)[1] if package.startswith("@") and "/" in package else package
    return "@" in name  # name@version, @scope/name@version


# -- apk (DL3018) -------------------------------------------------------------------------


def _apk(cmd: ShellCommand) -> list[str] | None:
    if cmd.name != "apk" or "add" not in cmd.args:
        return None
    words = operands(cmd.args, frozenset({"t", "virtual", "repository", "X"}))
    return [w for w in words if w != "add" and not _apk_pinned(w)]


def _apk_pinned(package: str) -> bool:
    return any(c in package for c in "=~<>") or package.endswith(".apk")


# -- gem (DL3028) -------------------------------------------------------------------------

#: gem install flags that take no value (hadolint assumes every flag takes one)
_GEM_BOOLEAN = frozenset(
    [
        "--no-document",
        "-N",
        "--no-ri",
        "--no-rdoc",
        "--user-install",
        "--no-user-install",
        "--conservative",
        "--force",
        "-f",
        "--local",
        "-l",
        "--remote",
        "-r",
        "--both",
        "-b",
        "--prerelease",
        "--minimal-deps",
        "--env-shebang",
        "-E",
        "--ignore-dependencies",
        "--development",
        "--no-wrappers",
        "--wrappers",
        "--verbose",
        "-V",
        "--quiet",
        "-q",
        "--silent",
        "--no-suggestions",
        "--lock",
        "--no-lock",
        "--default",
        "--post-install-message",
    ]
)


def _gem(cmd: ShellCommand) -> list[str] | None:
    args = list(cmd.args)
    if cmd.name != "gem" or not ({"install", "i"} & set(args)):
        return None
    if "-v" in args or "--version" in args or any(a.startswith("--version=") for a in args):
        return None  # gem install rails -v 7.1
    if "--" in args:
        args = args[: args.index("--")]  # after --: the gem's own build flags
    gems: list[str] = []
    skip = False
    for word in args:
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            skip = word not in _GEM_BOOLEAN and "=" not in word
            continue
        if word not in ("install", "i"):
            gems.append(word)
    return [g for g in gems if ":" not in g]


# -- yum / dnf (DL3033, DL3041) -------------------------------------------------------------

_VERSION_PART = re.compile(r"^[0-9A-Za-z.~^_:+]+$")


def _rpm_pinned(package: str, variables: set[str]) -> bool:
    parts = package.split("-")
    if len(parts) <= 1:
        return False  # no dash: no version
    if package.endswith(".rpm"):
        return True
    if "$" in package:
        return any(_uses(package, v) for v in variables)
    rest = parts[1:]
    return all(_VERSION_PART.match(p) for p in rest) and any(p[:1].isdigit() for p in rest)


def _uses(text: str, name: str) -> bool:
    return (
        "${" + name + "}" in text
        or re.search(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", text) is not None
    )


def _rpm(
    names: tuple[str, ...], skip: tuple[str, ...]
) -> Callable[[ShellCommand, set[str]], list[str] | None]:
    def check(cmd: ShellCommand, variables: set[str]) -> list[str] | None:
        args = list(cmd.args)
        if cmd.name not in names or "install" not in args:
            return None
        words = [w for w in operands(args) if w not in ("install", "module")]
        if "module" in args:
            return [m for m in words if ":" not in m]  # module:stream
        if any(s in args for s in skip):
            return None  # dnf group install "Development Tools"
        return [p for p in words if not _rpm_pinned(p, variables)]

    return check


# -- zypper (DL3037) and go (DL3062) ---------------------------------------------------------


def _zypper(cmd: ShellCommand) -> list[str] | None:
    if cmd.name != "zypper" or not ({"install", "in"} & set(cmd.args)):
        return None
    words = [w for w in operands(cmd.args) if w not in ("install", "in")]
    return [w for w in words if not (any(c in w for c in "=<>") or w.endswith(".rpm"))]


def _go(cmd: ShellCommand) -> list[str] | None:
    if cmd.name != "go":
        return None
    words = operands(cmd.args)
    if words[:1] == ["run"]:
        modules = words[1:2]  # what follows the package is the program's own arguments
    elif words[:1] in (["install"], ["get"]):
        modules = [w for w in words[1:] if w != "tool"]
    else:
        return None
    return [m for m in modules if not _go_pinned(m)]


def _go_pinned(module: str) -> bool:
    if module == "." or module.startswith(("/", ".")) or module.endswith(".go"):
        return True  # a local package or file
    return "@" in module and not module.endswith(("@latest", "@none"))


_yum = _rpm(("yum",), ())
_dnf = _rpm(("dnf", "microdnf"), ("group",))

#: rule -> (what the message calls the command, the check)
_SIMPLE: dict[str, Callable[[ShellCommand], list[str] | None]] = {
    "FL216": _apt,
    "FL217": _pip,
    "FL218": _npm,
    "FL219": _apk,
    "FL220": _gem,
    "FL223": _zypper,
    "FL224": _go,
}
_RPM = {"FL221": _yum, "FL222": _dnf}


def _stage_variables(ctx: LintContext, model: StageModel) -> set[str]:
    """ENV names of this stage and the stages it is built from, plus every ARG in the file."""
    names = {a.key for cmd in ctx.parsed.meta_args for a in cmd.args}
    for st in ctx.stages:
        for cmd in st.stage.commands:
            if isinstance(cmd, ArgCommand):
                names.update(a.key for a in cmd.args)
    return names | ctx.env_names(model)


def _onbuild_runs(ctx: LintContext, model: StageModel) -> Iterator[tuple[ShellCommand, int]]:
    for cmd in model.stage.commands:
        if not isinstance(cmd, OnbuildCommand) or cmd.node.child is None:
            continue
        if cmd.node.child.keyword != "run":
            continue
        rs = analyse_run(cmd.node.child, DEFAULT_SHELL, ctx.escape)
        yield from rs.commands()


def _what(cmd: ShellCommand) -> str:
    if cmd.name.startswith("python"):
        return f"{cmd.name} -m pip install"
    if cmd.name == "go":
        return f"go {operands(cmd.args)[0]}"
    verb = "add" if cmd.name == "apk" else "install"
    if cmd.name in ("yum", "dnf", "microdnf") and "module" in cmd.args:
        verb = "module install"
    return f"{cmd.name} {verb}"


def check(ctx: LintContext) -> Iterator[Finding]:
    """FL216-FL224: one finding per install command that leaves a version open."""
    for model in ctx.stages:
        variables = _stage_variables(ctx, model)
        commands = [c for _, rs in model.runs for c in rs.commands()]
        commands.extend(_onbuild_runs(ctx, model))
        for cmd, line in commands:
            for rule, simple in _SIMPLE.items():
                yield from _report(ctx, rule, cmd, line, simple(cmd))
            for rule, rpm in _RPM.items():
                yield from _report(ctx, rule, cmd, line, rpm(cmd, variables))


def _report(
    ctx: LintContext, rule: str, cmd: ShellCommand, line: int, open_: list[str] | None
) -> Iterator[Finding]:
    if not open_:
        return
    shown = ", ".join(open_[:5]) + (f" and {len(open_) - 5} more" if len(open_) > 5 else "")
    kind = "module streams" if "module" in cmd.args and rule in _RPM else "versions"
    yield ctx.finding(
        rule,
        f"{_what(cmd)} {shown}: no {kind} given, so each build installs whatever is newest then",
        line,
    )
