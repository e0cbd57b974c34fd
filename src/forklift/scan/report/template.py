"""``--format template``: a Jinja2 template over the JSON report's data.

The template sees ``report`` (the JSON report as a dict: ``report.Results``,
``report.Metadata``...), ``result`` (the Python :class:`ScanResult`) and the
filter ``tojson``. ``--template @file`` reads the template from a file. Trivy's
templates are Go templates and do not carry over; the JSON names do.
"""

from __future__ import annotations

from pathlib import Path

from forklift.errors import ParseError, UsageError
from forklift.scan.findings import ScanResult
from forklift.scan.report.jsonreport import result_dict


def render_template(result: ScanResult, template: str) -> str:
    import jinja2

    if not template:
        raise UsageError("--format template needs --template TEXT or --template @FILE")
    name = "<template>"
    if template.startswith("@"):
        path = Path(template[1:])
        try:
            template = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--template {path}: {exc.strerror or exc}") from None
        name = str(path)
    env = jinja2.Environment(
        autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    try:
        return env.from_string(template).render(report=result_dict(result), result=result)
    except jinja2.TemplateSyntaxError as exc:
        raise ParseError(f"{name}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise ParseError(f"{name}: {exc.message}") from None
