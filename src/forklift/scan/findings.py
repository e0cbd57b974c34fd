"""What a scan finds: vulnerabilities, secrets, suppressed findings, the whole result.

Pure data, shared by the matchers, the filters and every reporter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forklift.sbom.model import Inventory, LayerRef, OSInfo, Package
from forklift.scan.db.model import CVSS, Severity, Status


@dataclass(frozen=True)
class Vulnerability:
    """One vulnerability of one installed package (all its aliases merged)."""

    id: str  # the CVE when there is one, else the GHSA, else the record's id
    aliases: tuple[str, ...]  # every other id (PYSEC, GHSA, DSA/DLA, ...)
    package: Package
    installed: str  # the version compared (the source version for distribution packages)
    fixed: str  # fixed version(s), "" when there is no fix
    status: Status
    severity: Severity
    severity_source: str  # "debian", "ghsa", "cvss:3.1", ...
    title: str = ""
    url: str = ""
    references: tuple[str, ...] = ()
    cvss: tuple[CVSS, ...] = ()
    sources: tuple[str, ...] = ()  # database sources that reported it
    published: str = ""
    note: str = ""  # the distribution's remark (Debian no-dsa reason)

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    @property
    def layer(self) -> LayerRef | None:
        return self.package.layer


@dataclass(frozen=True)
class Secret:
    """A credential found in a layer's file or in the image config."""

    rule: str  # "aws-access-key-id", "private-key", ...
    category: str  # "AWS", "GitHub", "AsymmetricPrivateKey", ...
    title: str
    severity: Severity
    target: str  # "/path/in/image" or "config:Env", "config:history[3]", "config:Labels"
    line: int  # 1-based line of the match (0 for config values)
    match: str  # the line with the secret masked
    layer: LayerRef | None = None
    deleted_by: LayerRef | None = None  # a later layer deleted or replaced the file
    fix: str = ""


@dataclass(frozen=True)
class Suppressed:
    """A finding left out of the report, and why (kept for JSON/SARIF/CycloneDX)."""

    finding: Vulnerability | Secret
    reason: str  # "ignorefile .trivyignore:3", "vex not_affected: ...", "severity", "unfixed"
    statement: str = ""


@dataclass(frozen=True)
class Target:
    """One group of findings, as Trivy's table shows them: the OS, or one language."""

    name: str  # "debian 12.5 (bookworm)", "Python", "Node.js"
    cls: str  # "os-pkgs" | "lang-pkgs" | "secret" | "config"
    type: str  # "debian", "alpine", "python-pkg", "node-pkg", ...
    vulnerabilities: tuple[Vulnerability, ...] = ()
    secrets: tuple[Secret, ...] = ()
    packages: int = 0


@dataclass(frozen=True)
class ScanResult:
    """Everything one scan found (after filters), with what was suppressed."""

    artifact: str  # the image name, directory or SBOM file
    artifact_type: str  # "container_image" | "filesystem" | "sbom"
    inventory: Inventory
    targets: tuple[Target, ...] = ()
    suppressed: tuple[Suppressed, ...] = ()
    warnings: tuple[str, ...] = ()
    db_built_at: str = ""
    created_at: str = ""
    image_config: dict[str, object] = field(default_factory=dict)

    @property
    def os(self) -> OSInfo | None:
        return self.inventory.os

    @property
    def vulnerabilities(self) -> tuple[Vulnerability, ...]:
        return tuple(v for t in self.targets for v in t.vulnerabilities)

    @property
    def secrets(self) -> tuple[Secret, ...]:
        return tuple(s for t in self.targets for s in t.secrets)

    @property
    def failed(self) -> bool:
        """True if anything is left after the filters (what ``--exit-code`` acts on)."""
        return bool(self.vulnerabilities or self.secrets)
