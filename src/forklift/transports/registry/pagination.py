"""RFC 8288 ``Link`` headers, as registries use them to page tag and catalog lists."""

from __future__ import annotations

import re

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]*(?:=\s*(?:\"[^\"]*\"|[^;,]*))?)*)")
_PARAM = re.compile(r";\s*([^=;,\s]+)\s*(?:=\s*(\"[^\"]*\"|[^;,]*))?")


def next_link(header_values: list[str]) -> str | None:
    """The target of the first ``rel="next"`` link among ``Link`` header values, if any."""
    for value in header_values:
        for m in _LINK.finditer(value):
            target, params = m.group(1), m.group(2)
            for p in _PARAM.finditer(params):
                if p.group(1).lower() != "rel":
                    continue
                rels = (p.group(2) or "").strip().strip('"').lower().split()
                if "next" in rels:
                    return target.strip()
    return None
