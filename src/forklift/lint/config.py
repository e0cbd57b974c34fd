"""``.forklift-lint.yaml``: ignored rules, severity overrides, trusted registries, threshold.

::

    ignored: [FL209, DL3008]          # forklift ids, slugs, hadolint ids or BuildKit names
    override:
      error: [FL101]
      info: [pip-no-cache-dir]
    trusted-registries: [docker.io, "*.corp.example"]
    failure-threshold: warning        # error | warning | info | style | none
    enable: []                        # rules that are off unless asked for
    disable-ignore-pragma: false      # true: ignore "# forklift-lint ignore=" comments

hadolint's key spellings (``trustedRegistries``, ``failure-threshold``,
``override``, ``ignored``) are accepted, so a ``.hadolint.yaml`` mostly works
as it is. Unknown keys and unknown rule names are errors: a typo in an ignore
list must not silently re-enable a rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from forklift.errors import Location, ParseError
from forklift.lint.catalog import lookup
from forklift.lint.findings import Severity, parse_threshold

CONFIG_NAMES = (".forklift-lint.yaml", ".forklift-lint.yml")
_KEYS = {
    "ignored": "ignored",
    "ignore": "ignored",
    "override": "override",
    "overrides": "override",
    "trusted-registries": "trusted",
    "trustedregistries": "trusted",
    "trusted_registries": "trusted",
    "failure-threshold": "threshold",
    "failure_threshold": "threshold",
    "failurethreshold": "threshold",
    "enable": "enable",
    "enabled": "enable",
    "disable-ignore-pragma": "no_pragma",
    "disableignorepragma": "no_pragma",
}


@dataclass(frozen=True)
class LintConfig:
    """How to lint: which rules to skip, severities to change, what counts as failure."""

    ignored: frozenset[str] = frozenset()
    overrides: Mapping[str, Severity] = field(default_factory=dict)
    trusted_registries: tuple[str, ...] = ()
    failure_threshold: Severity | None = Severity.WARNING
    enabled: frozenset[str] = frozenset()
    disable_ignore_pragma: bool = False
    source: str = ""

    @classmethod
    def from_mapping(cls, data: Any, source: str = "config") -> LintConfig:
        """Build a config from parsed YAML; raise :class:`ParseError` naming the problem."""
        if data is None:
            return cls(source=source)
        if not isinstance(data, dict):
            raise ParseError("the lint config must be a mapping", location=Location(source))
        values: dict[str, Any] = {}
        for key, value in data.items():
            canon = _KEYS.get(str(key).lower())
            if canon is None:
                raise ParseError(
                    f"unknown key {key!r} (expected one of: ignored, override, "
                    "trusted-registries, failure-threshold, enable, disable-ignore-pragma)",
                    location=Location(source),
                )
            values[canon] = value
        ignored = _rule_ids(values.get("ignored"), "ignored", source)
        enabled = _rule_ids(values.get("enable"), "enable", source)
        overrides: dict[str, Severity] = {}
        raw_over = values.get("override") or {}
        if not isinstance(raw_over, dict):
            raise ParseError(
                "override must map a severity to a list of rules", location=Location(source)
            )
        for sev_name, names in raw_over.items():
            try:
                sev = Severity.parse(str(sev_name))
            except Exception:
                raise ParseError(
                    f"override: unknown severity {sev_name!r} (error, warning, info, style)",
                    location=Location(source),
                ) from None
            for rid in _rule_ids(names, f"override.{sev_name}", source):
                overrides[rid] = sev
        trusted = values.get("trusted") or []
        if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
            raise ParseError(
                "trusted-registries must be a list of host names", location=Location(source)
            )
        threshold: Severity | None = Severity.WARNING
        if "threshold" in values:
            try:
                threshold = parse_threshold(str(values["threshold"]))
            except Exception:
                raise ParseError(
                    f"failure-threshold: {values['threshold']!r} is not error, warning, info, style or none",
                    location=Location(source),
                ) from None
        return cls(
            ignored=frozenset(ignored),
            overrides=overrides,
            trusted_registries=tuple(trusted),
            failure_threshold=threshold,
            enabled=frozenset(enabled),
            disable_ignore_pragma=bool(values.get("no_pragma", False)),
            source=source,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LintConfig:
        """Read a YAML config file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ParseError(
                f"cannot read lint config: {exc.strerror}", location=Location(str(p))
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            loc = Location(str(p), mark.line + 1, mark.column + 1) if mark else Location(str(p))
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ParseError(f"invalid YAML: {problem}", location=loc) from None
        return cls.from_mapping(data, str(p))


def _rule_ids(value: Any, key: str, source: str) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ParseError(f"{key} must be a list of rule names", location=Location(source))
    out: set[str] = set()
    for name in value:
        rules = lookup(str(name))
        if not rules:
            if str(name).upper().startswith("SC"):
                continue  # ShellCheck codes from a hadolint config: nothing to map them to
            raise ParseError(f"{key}: unknown rule {name!r}", location=Location(source))
        out.update(r.id for r in rules)
    return out


def find_config(*start_dirs: str | os.PathLike[str]) -> Path | None:
    """The first ``.forklift-lint.yaml`` in ``start_dirs`` (in order)."""
    for d in start_dirs:
        for name in CONFIG_NAMES:
            candidate = Path(d) / name
            if candidate.is_file():
                return candidate
    return None
