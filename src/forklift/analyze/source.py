"""Opening an image for analysis: manifest, config, and which step made each layer.

Any transport name works (store names, ``oci:``, ``oci-archive:``,
``docker-archive:``, ``docker://``); a multi-platform index is narrowed to one
platform (this host's unless told). Each layer is paired with its history
entry: the ``created_by`` instruction and, when the image was built by
forklift, the Dockerfile line, read from the history ``comment``:

* ``forklift: Dockerfile:12`` (also ``forklift: path/to/Containerfile:12``), or
* ``forklift.dockerfile.line=12`` anywhere in the comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from forklift.errors import InvalidInput
from forklift.oci import mediatypes as mt
from forklift.oci.config import ImageConfig
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest, VerifyingReader
from forklift.oci.manifest import ImageIndex, ImageManifest, parse_manifest
from forklift.oci.platform import Platform, host_platform
from forklift.transports import ImageSource, open_source

_COMMENT_LINE = re.compile(r"forklift:\s*(?P<file>[^\s:][^:]*):(?P<line>\d+)")
_COMMENT_KV = re.compile(r"forklift\.dockerfile\.line=(?P<line>\d+)")


def dockerfile_line(comment: str | None) -> tuple[str, int] | None:
    """The (file, line) a history comment points at, if it carries one."""
    if not comment:
        return None
    m = _COMMENT_LINE.search(comment)
    if m:
        return m.group("file").strip(), int(m.group("line"))
    m = _COMMENT_KV.search(comment)
    if m:
        return "Dockerfile", int(m.group("line"))
    return None


@dataclass(frozen=True)
class Step:
    """The build step that made a layer: its instruction and where it came from."""

    created_by: str = ""
    comment: str = ""
    dockerfile: str = ""
    line: int | None = None

    @property
    def instruction(self) -> str:
        """``created_by`` without BuildKit's ``/bin/sh -c #(nop)`` and ``# buildkit`` noise."""
        text = self.created_by.strip()
        for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c #(nop)"):
            if text.startswith(prefix):
                return text[len(prefix) :].strip()
        if text.startswith("/bin/sh -c "):
            text = "RUN " + text[len("/bin/sh -c ") :]
        if text.endswith(" # buildkit"):
            text = text[: -len(" # buildkit")]
        return text


@dataclass(frozen=True)
class ImageLayers:
    """What analysis needs of an image: its layers in order with their steps."""

    name: str
    digest: Digest
    platform: str
    layers: tuple[Descriptor, ...]
    steps: tuple[Step, ...]
    config: ImageConfig | None
    config_digest: str = ""  # the image ID


def _steps(config: ImageConfig | None, count: int) -> tuple[Step, ...]:
    steps: list[Step] = []
    if config is not None:
        for h in config.history:
            if h.empty_layer:
                continue
            where = dockerfile_line(h.comment)
            steps.append(
                Step(
                    created_by=h.created_by or "",
                    comment=h.comment or "",
                    dockerfile=where[0] if where else "",
                    line=where[1] if where else None,
                )
            )
    # Images without (enough) history still get a step per layer.
    while len(steps) < count:
        steps.append(Step())
    return tuple(steps[:count])


def resolve_image(src: ImageSource, name: str, platform: Platform | None = None) -> ImageLayers:
    """Read ``src``'s manifest (narrowing an index) and config."""
    raw, media_type = src.get_manifest()
    manifest = parse_manifest(raw, media_type, what=f"manifest of {name}")
    digest = Digest.of(raw)
    if isinstance(manifest, ImageIndex):
        child = manifest.select(platform or host_platform(), name)
        raw, _ = src.get_manifest(child.digest)
        manifest = parse_manifest(raw, child.media_type, what=f"manifest {child.digest}")
        digest = child.digest
    if not isinstance(manifest, ImageManifest):
        raise InvalidInput(f"{name}: nested indexes are not supported")
    config: ImageConfig | None = None
    if manifest.config.media_type in mt.CONFIGS:
        with src.open_blob(manifest.config) as f:
            data = VerifyingReader(f, manifest.config.digest, manifest.config.size, "config").read()
        config = ImageConfig.parse(data)
    plat = str(config.platform) if config is not None else ""
    layers = tuple(manifest.layers)
    return ImageLayers(
        name, digest, plat, layers, _steps(config, len(layers)), config, str(manifest.config.digest)
    )


@contextmanager
def open_image(
    name: str, *, platform: Platform | str | None = None, store: object | None = None
) -> Iterator[tuple[ImageSource, ImageLayers]]:
    """Open ``name`` with any transport and resolve it to one image's layers."""
    plat = Platform.parse(platform) if isinstance(platform, str) else platform
    src = open_source(name, store=store)  # type: ignore[arg-type]
    try:
        yield src, resolve_image(src, name, plat)
    finally:
        src.close()


def verified_blob(src: ImageSource, desc: Descriptor) -> VerifyingReader:
    """A stream of a layer blob that raises DigestMismatch if its bytes are not ``desc``'s."""
    raw: BinaryIO = src.open_blob(desc)
    return VerifyingReader(raw, desc.digest, desc.size, "layer")
