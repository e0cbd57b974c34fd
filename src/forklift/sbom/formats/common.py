"""What the document writers share: the timestamp, stable identifiers, the image's purl."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

from forklift.errors import UsageError
from forklift.sbom.model import Inventory, Package

TOOL = "forklift"


def tool_version() -> str:
    from forklift import __version__

    return __version__


def timestamp() -> str:
    """``SOURCE_DATE_EPOCH`` when set (reproducible documents), else now; RFC 3339 UTC."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        try:
            epoch = int(raw)
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={raw!r} is not an integer") from None
    else:
        epoch = int(time.time())
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def package_id(p: Package) -> str:
    """16 hex digits that identify a package within a document, stable across runs."""
    key = "\x00".join(p.key)
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def document_uuid(inv: Inventory) -> uuid.UUID:
    """The same UUID for the same image and the same findings."""
    h = hashlib.sha256()
    h.update((inv.digest or inv.target).encode("utf-8", "surrogateescape"))
    for p in inv.packages:
        h.update(b"\x00" + "\x01".join(p.key).encode("utf-8", "surrogateescape"))
    return uuid.uuid5(uuid.NAMESPACE_URL, "forklift-sbom:" + h.hexdigest())


def image_purl(inv: Inventory) -> str:
    """``pkg:oci/NAME@sha256:...?arch=...&repository_url=...`` for an image (purl's oci type)."""
    if not inv.digest:
        return ""
    from packageurl import PackageURL

    name = inv.target
    for prefix in ("docker://", "oci:", "oci-archive:", "docker-archive:"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    repository = ""
    base = name.split("@", 1)[0]
    last = base.rsplit("/", 1)[-1]
    if ":" in last:  # a tag, or oci:dir:ref
        base = base[: len(base) - len(last) + last.index(":")]
    if "/" in base and not base.startswith(("/", ".")):
        repository = base
    simple = base.rstrip("/").rsplit("/", 1)[-1].lower() or "image"
    quals = {}
    if inv.platform:
        parts = inv.platform.split("/")
        if len(parts) > 1:
            quals["arch"] = parts[1]
    if repository:
        quals["repository_url"] = repository
    return PackageURL(
        type="oci", name=simple, version=inv.digest, qualifiers=quals or None
    ).to_string()


def layer_props(p: Package) -> list[tuple[str, str]]:
    """The layer a package came from, as ``forklift:layer:*`` name/value pairs."""
    layer = p.layer
    if layer is None:
        return []
    out = [("forklift:layer:index", str(layer.index)), ("forklift:layer:digest", layer.digest)]
    if layer.diff_id:
        out.append(("forklift:layer:diffID", layer.diff_id))
    if layer.created_by:
        out.append(("forklift:layer:createdBy", layer.created_by))
    if layer.line is not None:
        out.append(
            ("forklift:layer:dockerfile", f"{layer.dockerfile or 'Dockerfile'}:{layer.line}")
        )
    return out
