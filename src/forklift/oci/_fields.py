"""Strict field readers for JSON documents: each failure names the field path."""

from __future__ import annotations

from typing import Any

from forklift.errors import InvalidInput


class FieldError(InvalidInput):
    """A JSON document has a missing or mistyped field."""


def fail(doc: str, path: str, problem: str) -> FieldError:
    return FieldError(f"{doc}: field '{path}': {problem}" if path else f"{doc}: {problem}")


def _type_name(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def obj(doc: str, path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(doc, path, f"expected an object, got {_type_name(value)}")
    return value


def opt_str(doc: str, path: str, d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise fail(doc, _join(path, key), f"expected a string, got {_type_name(v)}")
    return v


def req_str(doc: str, path: str, d: dict[str, Any], key: str) -> str:
    v = opt_str(doc, path, d, key)
    if v is None:
        raise fail(doc, _join(path, key), "missing")
    return v


def opt_int(doc: str, path: str, d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise fail(doc, _join(path, key), f"expected an integer, got {_type_name(v)}")
    return v


def opt_bool(doc: str, path: str, d: dict[str, Any], key: str) -> bool | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise fail(doc, _join(path, key), f"expected true or false, got {_type_name(v)}")
    return v


def opt_str_list(doc: str, path: str, d: dict[str, Any], key: str) -> tuple[str, ...] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, list):
        raise fail(doc, _join(path, key), f"expected an array of strings, got {_type_name(v)}")
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise fail(
                doc, f"{_join(path, key)}[{i}]", f"expected a string, got {_type_name(item)}"
            )
    return tuple(v)


def opt_str_map(doc: str, path: str, d: dict[str, Any], key: str) -> dict[str, str] | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise fail(doc, _join(path, key), f"expected an object of strings, got {_type_name(v)}")
    for k, item in v.items():
        if not isinstance(item, str):
            raise fail(doc, f"{_join(path, key)}.{k}", f"expected a string, got {_type_name(item)}")
    return dict(v)


def opt_set(doc: str, path: str, d: dict[str, Any], key: str) -> tuple[str, ...] | None:
    """Docker's "set" objects (ExposedPorts, Volumes): keys matter, values are ``{}``."""
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise fail(doc, _join(path, key), f"expected an object, got {_type_name(v)}")
    return tuple(v)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
