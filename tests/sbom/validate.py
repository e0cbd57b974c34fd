"""Validation of SBOM documents: the official JSON schemas, then the formats' own Python libraries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "data" / "schemas"


def _load(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text())


def cyclonedx_schema_errors(doc: Any) -> list[str]:
    """Errors of ``doc`` against bom-1.6.schema.json (with the SPDX id list and JSF it references)."""
    registry: Registry = Registry()
    for name in ("spdx.schema.json", "jsf-0.82.schema.json", "bom-1.6.schema.json"):
        schema = _load(name)
        registry = registry.with_resource(name, Resource.from_contents(schema))
    validator = jsonschema.Draft7Validator(_load("bom-1.6.schema.json"), registry=registry)
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(doc)]


def spdx_schema_errors(doc: Any) -> list[str]:
    """Errors of ``doc`` against the SPDX 2.3 JSON schema."""
    validator = jsonschema.Draft7Validator(_load("spdx-2.3.schema.json"))
    return [f"{list(e.absolute_path)}: {e.message[:300]}" for e in validator.iter_errors(doc)]


def spdx_tools_check(path: Path) -> tuple[Any, list[str]]:
    """Parse with spdx-tools and run its full validation; (document, messages)."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = parse_file(str(path))
    return document, [m.validation_message for m in validate_full_spdx_document(document)]


def cyclonedx_lib_check(text: str) -> tuple[Any, Any]:
    """cyclonedx-python-lib: its strict JSON validation and its deserializer; (error, Bom)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return error, Bom.from_json(json.loads(text))  # type: ignore[attr-defined]
