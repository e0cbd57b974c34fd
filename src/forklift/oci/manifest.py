"""Image manifests and image indexes (OCI and Docker schema 2).

Parsed objects are views: the original bytes (``raw``) are what gets stored and
copied, so a manifest's digest never changes on the way through forklift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import InvalidInput, NotFound
from forklift.oci import _fields as F
from forklift.oci import canonical
from forklift.oci import mediatypes as mt
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.platform import Platform, best_match, format_platforms


@dataclass(frozen=True)
class ImageManifest:
    """An image manifest: one config and an ordered list of layers."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mt.OCI_MANIFEST
    subject: Descriptor | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    raw: bytes = field(default=b"", compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["config"] = self.config.to_json()
        out["layers"] = [layer.to_json() for layer in self.layers]
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        """The original bytes when parsed, else canonical JSON."""
        return self.raw or canonical.dumps(self.to_json())

    @property
    def digest(self) -> Digest:
        return Digest.of(self.to_bytes())

    def descriptor(self, **kwargs: Any) -> Descriptor:
        data = self.to_bytes()
        return Descriptor(self.media_type, Digest.of(data), len(data), **kwargs)

    @property
    def is_docker(self) -> bool:
        return self.media_type == mt.DOCKER_MANIFEST


@dataclass(frozen=True)
class ImageIndex:
    """An image index (or Docker manifest list): manifests for several platforms."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    subject: Descriptor | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    raw: bytes = field(default=b"", compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["manifests"] = [m.to_json() for m in self.manifests]
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return self.raw or canonical.dumps(self.to_json())

    @property
    def digest(self) -> Digest:
        return Digest.of(self.to_bytes())

    def descriptor(self, **kwargs: Any) -> Descriptor:
        data = self.to_bytes()
        return Descriptor(self.media_type, Digest.of(data), len(data), **kwargs)

    def find(
        self, platform: Platform, available: Callable[[Descriptor], bool] | None = None
    ) -> Descriptor | None:
        """The image for ``platform``: an exact match, else a compatible variant (arm/v7 runs v6).

        Only image manifests count (not nested indexes or attestations without a
        platform); ``available`` can narrow the choice (e.g. to what a store holds).
        """
        children = [d for d in self.manifests if available is None or available(d)]
        candidates = [d.platform if d.media_type in mt.IMAGE_MANIFESTS else None for d in children]
        i = best_match(candidates, platform)
        return None if i is None else children[i]

    def select(
        self,
        platform: Platform,
        where: str,
        available: Callable[[Descriptor], bool] | None = None,
    ) -> Descriptor:
        """:meth:`find`, or :class:`NotFound` naming the platforms ``where`` does have."""
        found = self.find(platform, available)
        if found is None:
            have = format_platforms(
                d.platform
                for d in self.manifests
                if d.media_type in mt.IMAGE_MANIFESTS and (available is None or available(d))
            )
            raise NotFound(f"{where} has no image for platform {platform} (it has: {have})")
        return found


Manifest = ImageManifest | ImageIndex


def detect_media_type(doc: dict[str, Any]) -> str | None:
    """The media type a manifest document declares, or infers from its shape."""
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc or "layers" in doc:
        return mt.OCI_MANIFEST
    return None


def parse_manifest(raw: bytes, media_type: str | None = None, what: str = "manifest") -> Manifest:
    """Parse manifest bytes strictly.

    ``media_type`` is what the container of the bytes claimed (a descriptor or a
    Content-Type header); when given, the document must agree with it.
    """
    doc = F.obj(what, "", canonical.loads(raw, what))
    schema = doc.get("schemaVersion")
    if schema == 1 or media_type in (mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED):
        raise InvalidInput(
            f"{what}: Docker schema 1 manifests are deprecated and not supported; "
            "re-push the image with a current client"
        )
    if schema != 2 or isinstance(schema, bool):
        raise F.fail(what, "schemaVersion", f"expected 2, got {schema!r}")
    found = detect_media_type(doc)
    if found is None:
        raise InvalidInput(
            f"{what}: neither an image manifest nor an index (no config, layers or manifests)"
        )
    declared_in_doc = doc.get("mediaType")
    if declared_in_doc is not None and not isinstance(declared_in_doc, str):
        raise F.fail(what, "mediaType", "expected a string")
    if found not in mt.MANIFESTS:
        raise InvalidInput(f"{what}: unknown manifest media type {found!r}")
    if media_type and media_type in mt.MANIFESTS and declared_in_doc and media_type != found:
        raise InvalidInput(f"{what}: declared as {media_type} but the document says {found}")
    if media_type and media_type in mt.MANIFESTS and not declared_in_doc:
        # An OCI manifest may omit mediaType; trust the container's claim when it fits the shape.
        if (media_type in mt.INDEXES) != (found in mt.INDEXES):
            raise InvalidInput(f"{what}: declared as {media_type} but shaped like {found}")
        found = media_type
    subject = None
    if doc.get("subject") is not None:
        subject = Descriptor.from_json(doc["subject"], what, "subject")
    annotations = F.opt_str_map(what, "", doc, "annotations") or {}
    artifact_type = F.opt_str(what, "", doc, "artifactType")
    if found in mt.INDEXES:
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise F.fail(what, "manifests", "expected an array")
        return ImageIndex(
            manifests=tuple(
                Descriptor.from_json(m, what, f"manifests[{i}]") for i, m in enumerate(items)
            ),
            media_type=found,
            subject=subject,
            annotations=annotations,
            artifact_type=artifact_type,
            raw=bytes(raw),
        )
    if "config" not in doc:
        raise F.fail(what, "config", "missing")
    layers = doc.get("layers")
    if layers is None:
        layers = []
    if not isinstance(layers, list):
        raise F.fail(what, "layers", "expected an array")
    if "manifests" in doc:
        raise F.fail(what, "manifests", "not allowed in an image manifest")
    return ImageManifest(
        config=Descriptor.from_json(doc["config"], what, "config"),
        layers=tuple(Descriptor.from_json(x, what, f"layers[{i}]") for i, x in enumerate(layers)),
        media_type=found,
        subject=subject,
        annotations=annotations,
        artifact_type=artifact_type,
        raw=bytes(raw),
    )
