"""What every package analyzer shares: the context it reports in, and the purl helper."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from packageurl import PackageURL, normalize

from forklift.sbom.fsview import Analyzer, Found
from forklift.sbom.model import LayerRef, OSInfo, Package


@dataclass
class Context:
    """What an analyzer knows when it turns found files into packages."""

    os: OSInfo | None = None
    layers: Sequence[LayerRef] = ()
    #: absolute paths of files the OS package manager owns (canonical: usrmerge applied)
    owned: frozenset[str] | set[str] = field(default_factory=set)
    #: maps an absolute path through the image's top-level directory symlinks
    canonical: Callable[[str], str] = lambda p: p
    warnings: list[str] = field(default_factory=list)

    def layer(self, index: int) -> LayerRef | None:
        """The layer ``index`` (None for a directory, which has no layers)."""
        if 0 <= index < len(self.layers):
            return self.layers[index]
        return None

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def is_owned(self, path: str) -> bool:
        """Whether the OS package manager installed the file at ``path`` (absolute)."""
        return bool(self.owned) and (path in self.owned or self.canonical(path) in self.owned)


class PackageAnalyzer(Analyzer):
    """An analyzer that reports packages once the whole image has streamed."""

    #: OS package databases run first: their files decide what language analyzers skip
    os_level = False

    @abstractmethod
    def packages(self, found: list[Found], ctx: Context) -> list[Package]:
        """The packages these found files describe."""


def purl(
    kind: str,
    name: str,
    version: str,
    namespace: str | None = None,
    qualifiers: dict[str, str] | None = None,
    subpath: str | None = None,
) -> str:
    """A package URL string (empty qualifiers left out)."""
    quals = {k: v for k, v in (qualifiers or {}).items() if v} or None
    # packageurl's own normalization and encoding, called once (PackageURL(...).to_string()
    # runs it twice, which shows on images with tens of thousands of packages)
    t, ns, n, v, q, sp = normalize(kind, namespace or None, name, version or None, quals,
                                   subpath or None, encode=True)  # fmt: skip
    if not n or not isinstance(q, str | None):
        return PackageURL(type=kind, namespace=namespace or None, name=name,
                          version=version or None, qualifiers=quals, subpath=subpath or None).to_string()  # fmt: skip
    parts = ["pkg:", t or kind, "/"]
    if ns:
        parts += [ns, "/"]
    parts.append(n)
    if v:
        parts += ["@", v]
    if q:
        parts += ["?", q]
    if sp:
        parts += ["#", sp]
    return "".join(parts)


def distro_qualifier(os: OSInfo | None) -> str:
    """``debian-12``, ``alpine-3.19.1``: the distro a package was built for."""
    if os is None:
        return ""
    if os.version_id:
        return f"{os.id}-{os.version_id}"
    return os.id
