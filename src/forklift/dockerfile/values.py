"""What an instruction's values mean: signals, ports, platforms, image names, secret-looking names.

Each parser here is the one forklift has for its value, used by the front end's
single pass (:mod:`forklift.dockerfile.dispatch`) and therefore by the builder,
``--print`` and the linter alike. Each follows the Go code BuildKit runs for
the same value, including its error wording:

* :func:`parse_signal` - ``STOPSIGNAL`` (moby/sys ``signal.ParseSignal`` on Linux);
* :func:`parse_expose` - one ``EXPOSE`` word (BuildKit's ``parsePort``);
* :func:`parse_platform` - ``FROM --platform`` (containerd ``platforms.Parse``);
* :func:`reference_problem` - a base image name (distribution/reference);
* :func:`looks_secret` - BuildKit's ``SecretsUsedInArgOrEnv`` name test.

Errors are ``ValueError`` with the message BuildKit prints; the caller adds the
location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forklift.dockerfile.gocompat import go_quote
from forklift.errors import InvalidReference
from forklift.oci.platform import Platform, host_platform
from forklift.reference import parse_reference

# -- STOPSIGNAL ---------------------------------------------------------------------------

# moby/sys/signal's Linux table (without the SIG prefix): names, then the real-time range
# it spells out (RTMIN..RTMIN+15, RTMAX-14..RTMAX), nothing else.
_SIGNAL_NAMES = frozenset(
    [
        "ABRT",
        "ALRM",
        "BUS",
        "CHLD",
        "CLD",
        "CONT",
        "FPE",
        "HUP",
        "ILL",
        "INT",
        "IO",
        "IOT",
        "KILL",
        "PIPE",
        "POLL",
        "PROF",
        "PWR",
        "QUIT",
        "SEGV",
        "STKFLT",
        "STOP",
        "SYS",
        "TERM",
        "TRAP",
        "TSTP",
        "TTIN",
        "TTOU",
        "URG",
        "USR1",
        "USR2",
        "VTALRM",
        "WINCH",
        "XCPU",
        "XFSZ",
    ]
)
_RT_SIGNALS = frozenset(
    ["RTMIN", "RTMAX"] + [f"RTMIN+{i}" for i in range(1, 16)] + [f"RTMAX-{i}" for i in range(1, 15)]
)
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")


def parse_signal(text: str) -> str:
    """Check a ``STOPSIGNAL`` value; return it unchanged (the image stores it as written).

    A decimal number is any non-zero int (Go's ``strconv.Atoi``), as BuildKit
    accepts it; a name is looked up without case and without ``SIG``.
    """
    if _GO_INT.match(text):
        value = int(text)
        if value != 0 and -(2**63) <= value < 2**63:
            return text
        raise ValueError(f"invalid signal: {text}")
    name = text.upper().removeprefix("SIG")
    if name in _SIGNAL_NAMES or name in _RT_SIGNALS:
        return text
    raise ValueError(f"invalid signal: {text}")


# -- EXPOSE -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExposedPorts:
    """One ``EXPOSE`` word: the ``port/proto`` entries it adds, and what the checks look at.

    ``proto`` is the protocol as written (``tcp`` when none); ``host_part`` says
    the word also named an IP address or a host port, which EXPOSE ignores.
    """

    ports: tuple[str, ...]
    proto: str
    host_part: bool


def _port_number(text: str) -> int:
    if not _GO_INT.match(text):
        raise ValueError(text)
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def _port_range(text: str) -> tuple[int, int]:
    if text == "":
        raise ValueError("empty string specified for ports")
    start, dash, end = text.partition("-")
    first = _port_number(start)
    if not dash or start == end:
        return first, first
    last = _port_number(end)
    if last < first:
        raise ValueError(f"invalid port range: {text}")
    return first, last


def parse_expose(word: str) -> ExposedPorts:
    """``[ip:][hostport:]port[-port][/proto]`` -> the ports it exposes (ranges expanded)."""
    parts = word.split(":")
    if len(parts) == 1:
        ip, host, container = "", "", parts[0]
    elif len(parts) == 2:
        ip, host, container = "", parts[0], parts[1]
    else:
        ip, host, container = ":".join(parts[:-2]), parts[-2], parts[-1]
    port, _, proto = container.partition("/")
    if port == "":
        raise ValueError(f"invalid port: {go_quote(word)}: no port specified")
    if proto.lower() not in ("", "tcp", "udp", "sctp"):
        raise ValueError(f"invalid port: {go_quote(word)}: invalid proto: {proto}")
    proto = proto or "tcp"
    if ip.startswith("["):
        inner = ip[1:]
        if not inner.endswith("]"):
            raise ValueError(f"invalid IP address {ip}")
        ip = inner[:-1]
    if ip:
        import ipaddress  # rarely needed: imported here to keep builds starting fast

        try:
            if "%" in ip:
                raise ValueError(ip)
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"invalid IP address: {ip}") from None
    try:
        first, last = _port_range(port)
    except ValueError:
        raise ValueError(f"invalid containerPort: {port}") from None
    if host:
        try:
            host_first, host_last = _port_range(host)
        except ValueError:
            raise ValueError(f"invalid hostPort: {host}") from None
        if last - first != host_last - host_first and last != first:
            raise ValueError(
                f"invalid ranges specified for container and host Ports: {port} and {host}"
            )
    ports = tuple(f"{p}/{proto.lower()}" for p in range(first, last + 1))
    return ExposedPorts(ports, proto, bool(ip or host))


# -- platforms ----------------------------------------------------------------------------

_SPECIFIER = re.compile(r"[A-Za-z0-9_.-]+\Z")
_OS_PART = re.compile(r"([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?\Z")
# the same expression in Go's syntax, as containerd's message quotes it
_OS_PART_GO = r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$"
_KNOWN_OS = frozenset(
    [
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "windows",
        "zos",
    ]
)
_KNOWN_ARCH = frozenset(
    [
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    ]
)


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return arch, variant


def parse_platform(text: str) -> Platform:
    """An ``os[/arch[/variant]]`` specifier, as containerd's ``platforms.Parse`` reads it."""
    what = f"{go_quote(text)}"
    if "*" in text:
        raise ValueError(f"{what}: wildcards not yet supported: invalid argument")
    parts = text.split("/", 3)
    os_match = _OS_PART.match(parts[0])
    if os_match is None:
        raise ValueError(
            f"{go_quote(parts[0])} is an invalid OS component of {what}: OSAndVersion specifier "
            f"component must match {go_quote(_OS_PART_GO)}: invalid argument"
        )
    for part in parts[1:]:
        if not _SPECIFIER.match(part):
            raise ValueError(
                f"{go_quote(part)} is an invalid component of {what}: platform specifier "
                'component must match "^[A-Za-z0-9_.-]+$": invalid argument'
            )
    os_name = os_match.group(1).lower()
    os_name = "darwin" if os_name == "macos" else os_name
    os_version = os_match.group(2) or ""
    host = host_platform()
    if len(parts) == 1:
        if os_name in _KNOWN_OS:
            return Platform(os_name, host.architecture, host.variant, os_version)
        arch, variant = _normalize_arch(parts[0], "")
        if arch == "arm" and variant == "v7":
            variant = ""
        if arch in _KNOWN_ARCH:
            return Platform(host.os, arch, variant)
        raise ValueError(f"{what}: unknown operating system or architecture: invalid argument")
    if len(parts) == 2:
        arch, variant = _normalize_arch(parts[1], "")
        if arch == "arm" and variant == "v7":
            variant = ""
        return Platform(os_name, arch, variant, os_version)
    if len(parts) == 3:
        arch, variant = _normalize_arch(parts[1], parts[2])
        if arch == "arm64" and variant == "":
            variant = "v8"
        return Platform(os_name, arch, variant, os_version)
    raise ValueError(f"{what}: cannot parse platform specifier: invalid argument")


# -- image names ------------------------------------------------------------------------


def reference_problem(name: str) -> str | None:
    """distribution/reference's complaint about a base image name, or ``None`` if it parses."""
    try:
        parse_reference(name)
        return None
    except InvalidReference:
        pass
    try:
        parse_reference(name.lower())
    except InvalidReference:
        return "invalid reference format"
    repo = name.split("@", 1)[0]
    if repo.rfind(":") > repo.rfind("/"):
        repo = repo[: repo.rfind(":")]
    first, _, rest = repo.partition("/")
    if not rest:
        path = "library/" + repo
    elif "." in first or ":" in first or first == "localhost":
        path = rest
    else:
        path = repo
    return f"invalid reference format: repository name ({path}) must be lowercase"


# -- secret-looking names -----------------------------------------------------------------

_SECRET = re.compile(
    r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)"
)
_SECRET_ALLOW = re.compile(r"(?i)(?:_|^)(?:public|file|version)(?:_|$)")


def looks_secret(name: str) -> bool:
    """BuildKit's test for secret-looking ARG/ENV names (``API_KEY``, ``db_password``)."""
    return bool(_SECRET.search(name)) and not _SECRET_ALLOW.search(name)


# -- ADD sources --------------------------------------------------------------------------


def is_http_source(src: str) -> bool:
    """An ``ADD`` source that is a URL to download (BuildKit: an ``http(s)://`` prefix)."""
    return src.startswith(("http://", "https://"))


def is_git_source(src: str) -> bool:
    """An ``ADD`` source that names a Git repository (``git@host:x``, ``git://``, ``*.git``)."""
    return src.startswith(("git@", "git://")) or ".git#" in src or src.rstrip("/").endswith(".git")
