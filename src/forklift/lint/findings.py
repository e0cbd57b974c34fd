"""What the linter reports: severities, findings and the result of linting one file."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from forklift.errors import UsageError


class Severity(enum.IntEnum):
    """How much a finding matters; ordered so ``>=`` compares against a threshold."""

    STYLE = 1
    INFO = 2
    WARNING = 3
    ERROR = 4

    @property
    def label(self) -> str:
        """The lower-case name used in output and config (``warning``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``error|warning|info|style`` (case-insensitive) to a severity."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise UsageError(
                f"unknown severity {text!r} (use error, warning, info or style)"
            ) from None


#: Values ``--failure-threshold`` accepts; ``none`` never fails.
THRESHOLDS = ("error", "warning", "info", "style", "none")


def parse_threshold(text: str) -> Severity | None:
    """A failure threshold: a severity, or ``None`` for ``none`` (never fail)."""
    if text.strip().lower() == "none":
        return None
    return Severity.parse(text)


@dataclass(frozen=True)
class Finding:
    """One problem found in a Dockerfile.

    ``rule`` is the stable id (``FL205``), ``name`` its slug
    (``apt-lists-not-removed``); ``line``/``column`` are 1-based (column 0 when
    only the line is known) and ``end_line`` is the last line of the
    instruction or construct the finding is about. ``fix`` says concretely what
    to change.
    """

    rule: str
    name: str
    severity: Severity
    message: str
    file: str
    line: int
    column: int = 0
    end_line: int = 0
    fix: str = ""

    @property
    def location(self) -> str:
        """``file:line:col`` (or ``file:line``) for messages."""
        if self.column:
            return f"{self.file}:{self.line}:{self.column}"
        return f"{self.file}:{self.line}"

    def sort_key(self) -> tuple[str, int, int, str]:
        """File order, then position, then rule id."""
        return (self.file, self.line, self.column, self.rule)


@dataclass(frozen=True)
class LintResult:
    """The findings for one Dockerfile, after ignores and severity overrides."""

    file: str
    findings: tuple[Finding, ...] = ()
    #: findings suppressed by inline pragmas or the config (for ``--show-ignored``-style output)
    suppressed: tuple[Finding, ...] = field(default=(), repr=False)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """Findings of severity ``error`` (what ``forklift build --check`` stops on)."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def has_errors(self) -> bool:
        """True when any finding is an error."""
        return any(f.severity is Severity.ERROR for f in self.findings)

    def fails(self, threshold: Severity | None) -> bool:
        """True when a finding reaches ``threshold`` (``None`` never fails)."""
        if threshold is None:
            return False
        return any(f.severity >= threshold for f in self.findings)
