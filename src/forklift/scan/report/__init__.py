"""Reporters: the same :class:`~forklift.scan.findings.ScanResult` as a table, JSON,
SARIF 2.1.0, a CycloneDX 1.6 vulnerability report, or a Jinja2 template."""

from __future__ import annotations

from typing import Any

from forklift.scan.findings import ScanResult

FORMATS = ("table", "json", "sarif", "cyclonedx", "template")


def render(
    result: ScanResult, fmt: str, *, template: str | None = None, console: Any = None
) -> str:
    """The report as text (the table is rendered for ``console``'s width)."""
    if fmt == "json":
        from forklift.scan.report.jsonreport import render_json

        return render_json(result)
    if fmt == "sarif":
        from forklift.scan.report.sarif import render_sarif

        return render_sarif(result)
    if fmt == "cyclonedx":
        from forklift.scan.report.cyclonedx import render_cyclonedx

        return render_cyclonedx(result)
    if fmt == "template":
        from forklift.scan.report.template import render_template

        return render_template(result, template or "")
    from forklift.scan.report.table import render_table

    return render_table(result, console)
