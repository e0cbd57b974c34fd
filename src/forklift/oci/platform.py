"""Platforms (os/architecture/variant) with the normalisation registries use.

``linux/arm64`` and ``linux/arm64/v8`` are the same platform; so are
``linux/amd64`` and ``linux/amd64/v1``, and ``linux/arm`` and ``linux/arm/v7``.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import _fields as F

_ARCH_ALIASES = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "arm": ("arm", ""),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "x86": ("386", ""),
    "386": ("386", ""),
}
# variant an architecture has when none is named
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7", "amd64": "v1"}


@dataclass(frozen=True)
class Platform:
    """An image platform. Compare normalised platforms with :meth:`matches`."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` (as ``--platform`` takes it)."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InvalidInput(
                f"invalid platform {text!r}: expected os/arch or os/arch/variant, e.g. linux/amd64"
            )
        return cls(parts[0].lower(), parts[1].lower(), parts[2].lower() if len(parts) == 3 else "")

    @classmethod
    def from_json(cls, value: Any, doc: str = "platform", path: str = "platform") -> Platform:
        d = F.obj(doc, path, value)
        return cls(
            os=F.req_str(doc, path, d, "os"),
            architecture=F.req_str(doc, path, d, "architecture"),
            variant=F.opt_str(doc, path, d, "variant") or "",
            os_version=F.opt_str(doc, path, d, "os.version") or "",
            os_features=F.opt_str_list(doc, path, d, "os.features") or (),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out

    def normalized(self) -> Platform:
        """The canonical spelling: arch aliases resolved, default variants filled in."""
        arch, implied = _ARCH_ALIASES.get(
            self.architecture.lower(), (self.architecture.lower(), "")
        )
        variant = (self.variant or implied).lower()
        if arch == "arm64" and variant in ("8", "v8", ""):
            variant = "v8"
        elif arch == "arm" and variant in ("5", "6", "7", "8"):
            variant = "v" + variant
        elif not variant:
            variant = _DEFAULT_VARIANT.get(arch, "")
        return Platform(self.os.lower(), arch, variant, self.os_version, self.os_features)

    def matches(self, other: Platform) -> bool:
        """True when both name the same platform after normalisation (os.version ignored)."""
        a, b = self.normalized(), other.normalized()
        return (a.os, a.architecture, a.variant) == (b.os, b.architecture, b.variant)

    def can_run(self, other: Platform) -> bool:
        """True if a host of this platform runs ``other`` natively (arm/v7 runs arm/v6, ...)."""
        a, b = self.normalized(), other.normalized()
        if (a.os, a.architecture) != (b.os, b.architecture):
            return False
        if a.variant == b.variant:
            return True
        if (
            a.architecture in ("arm", "amd64")
            and a.variant[1:].isdigit()
            and b.variant[1:].isdigit()
        ):
            return int(b.variant[1:]) <= int(a.variant[1:])
        return False

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    """The platform of this machine (``linux/amd64``, ``linux/arm64/v8``, ...)."""
    machine = _platform.machine().lower()
    arch, variant = _ARCH_ALIASES.get(machine, (machine, ""))
    if machine.startswith("armv"):
        arch, variant = "arm", "v" + machine[4]
    if arch == "arm64":
        variant = "v8"
    # amd64 stays without a variant: that is how images and users spell it.
    return Platform("linux", arch, variant)


def best_match(candidates: Sequence[Platform | None], want: Platform) -> int | None:
    """Index of the candidate that best fits ``want``: an exact match, else a compatible one."""
    for i, p in enumerate(candidates):
        if p is not None and p.matches(want):
            return i
    compatible = [
        (int(p.normalized().variant[1:] or 0), i)
        for i, p in enumerate(candidates)
        if p is not None and want.can_run(p) and p.normalized().variant[1:].isdigit()
    ]
    if compatible:
        return max(compatible)[1]
    return None


def format_platforms(platforms: Iterable[Platform | None]) -> str:
    return ", ".join(str(p) for p in platforms if p is not None) or "none"
