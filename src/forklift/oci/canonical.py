"""Canonical JSON: the same document always gives the same bytes (and digest).

Keys are sorted, separators compact, non-ASCII kept as UTF-8. Documents read
from elsewhere are never re-encoded: their original bytes are what is stored
and copied, so their digests never change.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes | str, what: str = "document") -> Any:
    """Decode JSON, turning any decoding error into a one-line :class:`InvalidInput`.

    Every JSON document from outside goes through here: a document nested deeper
    than the interpreter's recursion limit (a few hundred levels; no real manifest,
    config, token or credentials file comes near) is rejected, not a crash.
    """
    from forklift.errors import InvalidInput

    try:
        if isinstance(data, bytes | bytearray):
            data = bytes(data).decode("utf-8")
        return json.loads(data)
    except RecursionError:
        raise InvalidInput(f"{what}: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{what}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
