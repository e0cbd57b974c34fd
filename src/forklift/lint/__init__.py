"""Dockerfile linting: best-practice rules plus BuildKit's build checks.

Python API::

    from forklift.lint import lint_dockerfile, LintConfig

    result = lint_dockerfile(text, filename="Dockerfile")
    for f in result.findings:
        print(f.location, f.severity.label, f.rule, f.message, f.fix)
    if result.has_errors():          # what `forklift build --check` stops on
        ...

Rules and their ids are in :mod:`forklift.lint.catalog`; output formats in
:mod:`forklift.lint.report`.
"""

from forklift.lint.catalog import RULES, RuleInfo, lookup
from forklift.lint.config import LintConfig, find_config
from forklift.lint.engine import lint_dockerfile, lint_file
from forklift.lint.findings import Finding, LintResult, Severity, parse_threshold

__all__ = [
    "RULES",
    "Finding",
    "LintConfig",
    "LintResult",
    "RuleInfo",
    "Severity",
    "find_config",
    "lint_dockerfile",
    "lint_file",
    "lookup",
    "parse_threshold",
]
