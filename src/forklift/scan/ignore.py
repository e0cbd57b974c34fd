"""Ignore files, as Trivy reads them: ``.trivyignore`` and ``.trivyignore.yaml``.

Plain form, one id per line, ``#`` comments, an optional expiry::

    CVE-2023-1234
    CVE-2023-5678 exp:2025-01-31     # ignored until the end of that day
    aws-access-key-id                # a secret rule

YAML form (chosen by the ``.yaml``/``.yml`` extension)::

    vulnerabilities:
      - id: CVE-2023-1234
        paths: ["usr/lib/python3/dist-packages/foo"]   # the package's file (glob)
        purls: ["pkg:pypi/foo@1.0"]                    # the package URL (qualifiers ignored)
        statement: accepted risk
        expired_at: 2025-01-31
    secrets:
      - id: aws-access-key-id
        paths: ["app/.env"]

An id matches a finding's id or any of its aliases (Trivy matches the id only;
here ``GHSA-...`` also ignores the CVE it aliases). An entry past its expiry
date no longer ignores anything.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from forklift.errors import Location, ParseError
from forklift.scan.findings import Secret, Vulnerability


@dataclass(frozen=True)
class Rule:
    id: str
    where: str  # "file:line" for messages
    paths: tuple[str, ...] = ()
    purls: tuple[str, ...] = ()
    expires: date | None = None
    statement: str = ""
    kind: str = ""  # "vulnerability" | "secret" | "" (plain file: either)


@dataclass(frozen=True)
class IgnoreRules:
    rules: tuple[Rule, ...]

    def match(self, finding: Vulnerability | Secret, today: date | None = None) -> Rule | None:
        """The rule that ignores ``finding``, if any."""
        day = today or date.today()
        for r in self.rules:
            if r.expires is not None and day > r.expires:
                continue
            if isinstance(finding, Vulnerability):
                if r.kind == "secret" or r.id not in finding.ids:
                    continue
                if r.paths and not _path_match(r.paths, finding.package.location):
                    continue
                if r.purls and not _purl_match(r.purls, finding.package.purl):
                    continue
                return r
            if r.kind == "vulnerability" or r.id != finding.rule:
                continue
            if r.paths and not _path_match(r.paths, finding.target):
                continue
            return r
        return None


def _path_match(patterns: tuple[str, ...], path: str) -> bool:
    p = path.lstrip("/")
    return any(
        fnmatch.fnmatchcase(p, pat.lstrip("/")) or p.startswith(pat.strip("/") + "/")
        for pat in patterns
    )


def _strip_qualifiers(purl: str) -> str:
    return purl.split("#", 1)[0].split("?", 1)[0]


def _purl_match(purls: tuple[str, ...], purl: str) -> bool:
    mine = _strip_qualifiers(purl)
    for p in purls:
        want = _strip_qualifiers(p)
        if want == mine or ("@" not in want and mine.split("@", 1)[0] == want):
            return True
    return False


def _date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ParseError(f"{where}: invalid date {value!r} (expected YYYY-MM-DD)") from None


def parse_plain(text: str, name: str) -> IgnoreRules:
    rules = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        expires = None
        for extra in fields[1:]:
            if extra.startswith("exp:"):
                expires = _date(extra[4:], f"{name}:{n}")
        rules.append(Rule(fields[0], f"{name}:{n}", expires=expires))
    return IgnoreRules(tuple(rules))


def parse_yaml(text: str, name: str) -> IgnoreRules:
    import yaml

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParseError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
            location=Location(name, mark.line + 1 if mark else 0),
        ) from None
    if not isinstance(doc, dict):
        raise ParseError(
            "expected a mapping with 'vulnerabilities' and/or 'secrets'", location=Location(name)
        )
    rules = []
    for section, kind in (("vulnerabilities", "vulnerability"), ("secrets", "secret")):
        entries = doc.get(section) or []
        if not isinstance(entries, list):
            raise ParseError(f"'{section}' must be a list", location=Location(name))
        for i, e in enumerate(entries):
            where = f"{name}: {section}[{i}]"
            if not isinstance(e, dict) or not e.get("id"):
                raise ParseError(f"{where}: each entry needs an 'id'")
            paths = e.get("paths") or []
            purls = e.get("purls") or []
            if not isinstance(paths, list) or not isinstance(purls, list):
                raise ParseError(f"{where}: 'paths' and 'purls' must be lists")
            rules.append(
                Rule(
                    str(e["id"]),
                    where,
                    paths=tuple(str(p) for p in paths),
                    purls=tuple(str(p) for p in purls),
                    expires=_date(e["expired_at"], where) if e.get("expired_at") else None,
                    statement=str(e.get("statement") or ""),
                    kind=kind,
                )
            )
    return IgnoreRules(tuple(rules))


def load(path: Path) -> IgnoreRules:
    """Read an ignore file (YAML by extension, else the plain form)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParseError("ignore file not found", location=Location(str(path))) from None
    except UnicodeDecodeError:
        raise ParseError("ignore file is not UTF-8 text", location=Location(str(path))) from None
    if path.suffix in (".yaml", ".yml"):
        return parse_yaml(text, str(path))
    return parse_plain(text, str(path))
