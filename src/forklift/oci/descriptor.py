"""Content descriptors: media type + digest + size (+ platform, annotations, ...)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import InvalidDigest
from forklift.oci import _fields as F
from forklift.oci import mediatypes as mt
from forklift.oci.digest import Digest
from forklift.oci.platform import Platform


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None
    data: bytes | None = None

    @classmethod
    def of(cls, media_type: str, content: bytes, **kwargs: Any) -> Descriptor:
        """A descriptor for ``content`` (hashes it with sha256)."""
        return cls(media_type, Digest.of(content), len(content), **kwargs)

    @classmethod
    def from_json(cls, value: Any, doc: str = "descriptor", path: str = "") -> Descriptor:
        """Parse a descriptor strictly; errors name ``doc`` and the field path."""
        d = F.obj(doc, path, value)
        media_type = F.req_str(doc, path, d, "mediaType")
        if not mt.is_valid(media_type):
            raise F.fail(doc, _p(path, "mediaType"), f"invalid media type {media_type!r}")
        try:
            digest = Digest.parse(F.req_str(doc, path, d, "digest"))
        except InvalidDigest as exc:
            raise F.fail(doc, _p(path, "digest"), exc.message) from None
        size = F.opt_int(doc, path, d, "size")
        if size is None:
            raise F.fail(doc, _p(path, "size"), "missing")
        if size < 0:
            raise F.fail(doc, _p(path, "size"), f"negative size {size}")
        data = None
        raw = F.opt_str(doc, path, d, "data")
        if raw is not None:
            try:
                data = base64.b64decode(raw, validate=True)
            except binascii.Error:
                raise F.fail(doc, _p(path, "data"), "not valid base64") from None
            if len(data) != size or Digest.of(data, digest.algorithm) != digest:
                raise F.fail(doc, _p(path, "data"), "embedded data does not match digest and size")
        platform = None
        if d.get("platform") is not None:
            platform = Platform.from_json(d["platform"], doc, _p(path, "platform"))
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=F.opt_str_list(doc, path, d, "urls") or (),
            annotations=F.opt_str_map(doc, path, d, "annotations") or {},
            platform=platform,
            artifact_type=F.opt_str(doc, path, d, "artifactType"),
            data=data,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.data is not None:
            out["data"] = base64.b64encode(self.data).decode()
        return out

    @property
    def kind(self) -> str:
        """What the blob is, for messages: ``config``, ``manifest``, ``layer`` or ``blob``."""
        if self.media_type in mt.CONFIGS:
            return "config"
        if self.media_type in mt.MANIFESTS:
            return "manifest"
        if self.media_type in mt.LAYERS:
            return "layer"
        return "blob"

    @property
    def is_manifest(self) -> bool:
        return self.media_type in mt.IMAGE_MANIFESTS

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES


def _p(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
