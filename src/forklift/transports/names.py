"""Transport names, as skopeo spells them, and opening sources and destinations by name.

==========================================  ==================================================
``NAME[:TAG]``, ``store:NAME``              the local store (also by image ID or digest)
``oci:DIR[:REF]``                           an OCI image layout directory
``oci-archive:FILE[:REF]``                  a tarred OCI image layout
``docker-archive:FILE[:NAME[:TAG]]``        a ``docker save`` tarball (``:@N`` picks the Nth)
``docker://REF``                            a registry (the registry client)
==========================================  ==================================================
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from forklift.errors import InvalidReference
from forklift.reference import Reference, parse_reference
from forklift.store.store import Store
from forklift.transports.base import ImageDestination, ImageSource

LOCAL_TRANSPORTS = ("store", "oci", "oci-archive", "docker-archive")
# Transports implemented by features above this layer, imported only when used:
# transport -> module exposing open_source(spec, **options) and open_destination(spec, **options).
EXTERNAL_TRANSPORTS: dict[str, str] = {"docker": "forklift.registry.client.transport"}


@dataclass(frozen=True)
class ImageName:
    """A parsed transport name: ``transport`` plus the transport-specific ``spec``."""

    transport: str
    spec: str

    def __str__(self) -> str:
        if self.transport == "store":
            return self.spec
        if self.transport == "docker":
            return f"docker://{self.spec}"
        return f"{self.transport}:{self.spec}"

    def path_and_ref(self) -> tuple[str, str | None]:
        """For file transports: the path and the optional reference after the first ':'."""
        path, sep, ref = self.spec.partition(":")
        if not path:
            raise InvalidReference(f"{self}: missing path")
        return path, (ref if sep and ref else None)


def parse_image_name(text: str) -> ImageName:
    """Split ``transport:spec``; a name without a known transport is a store reference."""
    if text.startswith("docker://"):
        spec = text[len("docker://") :]
        if not spec:
            raise InvalidReference(f"{text!r}: missing image reference after docker://")
        return ImageName("docker", spec)
    prefix, sep, rest = text.partition(":")
    if sep and prefix in LOCAL_TRANSPORTS:
        if not rest:
            raise InvalidReference(f"{text!r}: missing location after {prefix}:")
        return ImageName(prefix, rest)
    if sep and prefix in ("docker", "containers-storage", "dir", "docker-daemon"):
        raise InvalidReference(
            f"{text!r}: transport {prefix!r} is not supported "
            "(use docker://, oci:, oci-archive:, docker-archive: or a store name)"
        )
    return ImageName("store", text)


def docker_archive_ref(ref: str | None) -> tuple[Reference | None, int | None]:
    """``NAME:TAG`` or ``@N`` after a docker-archive path."""
    if not ref:
        return None, None
    if ref.startswith("@"):
        try:
            return None, int(ref[1:])
        except ValueError:
            raise InvalidReference(f"invalid docker-archive position {ref!r}") from None
    return parse_reference(ref), None


def open_source(name: str | ImageName, store: Store | None = None, **options: Any) -> ImageSource:
    """Open the image named ``name`` for reading."""
    # Each transport's module is imported only when used (start-up time of `push`/`copy`).
    n = name if isinstance(name, ImageName) else parse_image_name(name)
    if n.transport == "store":
        from forklift.transports import layout

        return layout.StoreSource(store or Store.open(), n.spec)
    if n.transport == "oci":
        from forklift.transports import layout

        path, ref = n.path_and_ref()
        return layout.OciDirSource(path, ref)
    if n.transport in ("oci-archive", "docker-archive"):
        from forklift.transports import archive
    if n.transport == "oci-archive":
        path, ref = n.path_and_ref()
        return archive.OciArchiveSource(path, ref)
    if n.transport == "docker-archive":
        path, ref = n.path_and_ref()
        named, position = docker_archive_ref(ref)
        return archive.DockerArchiveSource(path, str(named) if named else None, position=position)
    module = importlib.import_module(EXTERNAL_TRANSPORTS[n.transport])
    return module.open_source(n.spec, store=store, **options)


def open_destination(
    name: str | ImageName, store: Store | None = None, **options: Any
) -> ImageDestination:
    """Open ``name`` for writing an image into."""
    n = name if isinstance(name, ImageName) else parse_image_name(name)
    if n.transport in ("store", "oci"):
        from forklift.transports import layout
    elif n.transport in ("oci-archive", "docker-archive"):
        from forklift.transports import archive
    if n.transport == "store":
        stored = parse_reference(n.spec)
        if stored.digest is not None:
            raise InvalidReference(f"{n.spec}: cannot name a stored image with a digest; use a tag")
        return layout.StoreDestination(store or Store.open(), (stored,))
    if n.transport == "oci":
        path, ref = n.path_and_ref()
        return layout.OciDirDestination(path, ref)
    if n.transport == "oci-archive":
        path, ref = n.path_and_ref()
        return archive.OciArchiveDestination(path, ref)
    if n.transport == "docker-archive":
        path, ref = n.path_and_ref()
        named, position = docker_archive_ref(ref)
        if position is not None:
            raise InvalidReference(f"{n}: a position (@N) only selects images to read")
        return archive.DockerArchiveDestination(path, named)
    module = importlib.import_module(EXTERNAL_TRANSPORTS[n.transport])
    return module.open_destination(n.spec, store=store, **options)
