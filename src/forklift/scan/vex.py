"""OpenVEX documents (https://openvex.dev): statements that a product is not affected.

A statement names a vulnerability (by id or an alias), the products it is about
(package URLs, or the image itself with its packages as ``subcomponents``) and
a status. ``not_affected`` and ``fixed`` suppress the finding (it is listed as
suppressed, with the justification or impact statement); ``affected`` and
``under_investigation`` leave it. When several statements apply, the last one
in the document (latest ``timestamp`` first) wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forklift.errors import InvalidInput
from forklift.oci import canonical
from forklift.scan.findings import Vulnerability

SUPPRESSING = ("not_affected", "fixed")


@dataclass(frozen=True)
class Statement:
    vulnerability: tuple[str, ...]  # its name and aliases
    products: tuple[str, ...]  # package URLs (or image references) it is about
    subcomponents: tuple[str, ...]
    status: str
    justification: str = ""
    impact: str = ""
    timestamp: str = ""
    index: int = 0


def _ids(p: Any) -> str:
    if isinstance(p, str):
        return p
    if isinstance(p, dict):
        return str(p.get("@id") or (p.get("identifiers") or {}).get("purl") or "")
    return ""


def _base(purl: str) -> str:
    return purl.split("#", 1)[0].split("?", 1)[0]


@dataclass(frozen=True)
class VexDocument:
    statements: tuple[Statement, ...]
    source: str

    def applies(self, v: Vulnerability, image_ids: tuple[str, ...] = ()) -> Statement | None:
        """The statement that decides about ``v`` (None if none speaks of it)."""
        purl = _base(v.package.purl)
        plain = purl.split("@", 1)[0]
        hits = []
        for st in self.statements:
            if not set(st.vulnerability) & set(v.ids):
                continue
            targets = {_base(p) for p in st.products} | {_base(p) for p in st.subcomponents}
            package_hit = purl in targets or plain in targets
            image_hit = bool(set(st.products) & set(image_ids)) and not st.subcomponents
            if package_hit or image_hit or not st.products:
                hits.append(st)
        if not hits:
            return None
        return max(hits, key=lambda s: (s.timestamp, s.index))


def parse(doc: Any, source: str) -> VexDocument:
    if not isinstance(doc, dict) or not isinstance(doc.get("statements"), list):
        raise InvalidInput(f"{source}: not an OpenVEX document (no statements)")
    out = []
    for i, st in enumerate(doc["statements"]):
        if not isinstance(st, dict):
            raise InvalidInput(f"{source}: statements[{i}] is not an object")
        vuln = st.get("vulnerability")
        if isinstance(vuln, dict):
            names = [str(vuln.get("name") or vuln.get("@id") or "")]
            names += [str(a) for a in vuln.get("aliases") or []]
        else:
            names = [str(vuln or "")]
        names = [n for n in names if n]
        status = str(st.get("status") or "")
        if not names or status not in ("not_affected", "affected", "fixed", "under_investigation"):
            raise InvalidInput(
                f"{source}: statements[{i}] needs a vulnerability and a valid status"
            )
        products = [_ids(p) for p in st.get("products") or []]
        subs = [
            _ids(s)
            for p in st.get("products") or []
            if isinstance(p, dict)
            for s in p.get("subcomponents") or []
        ]
        out.append(
            Statement(
                vulnerability=tuple(names),
                products=tuple(p for p in products if p),
                subcomponents=tuple(s for s in subs if s),
                status=status,
                justification=str(st.get("justification") or ""),
                impact=str(st.get("impact_statement") or st.get("status_notes") or ""),
                timestamp=str(st.get("timestamp") or doc.get("timestamp") or ""),
                index=i,
            )
        )
    return VexDocument(tuple(out), source)


def load(path: Path) -> VexDocument:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{path}: VEX document not found") from None
    return parse(canonical.loads(data, str(path)), str(path))
