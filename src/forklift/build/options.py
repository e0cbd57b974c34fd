"""What a build is asked to do (``forklift build`` flags as data) and what it produced."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forklift.errors import UsageError
from forklift.oci.digest import Digest
from forklift.oci.platform import Platform
from forklift.reference import Reference


@dataclass(frozen=True)
class Secret:
    """A build secret: from a file (``src``) or an environment variable (``env``)."""

    id: str
    src: str | None = None
    env: str | None = None

    def read(self) -> bytes:
        if self.src is not None:
            with open(self.src, "rb") as f:
                return f.read()
        assert self.env is not None
        value = os.environ.get(self.env)
        if value is None:
            raise UsageError(f"secret {self.id}: environment variable {self.env} is not set")
        return value.encode()


def parse_secret(text: str) -> Secret:
    """``id=X,src=FILE`` / ``id=X,env=VAR`` / ``id=X`` (env var X, or file when ``type=file``)."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"invalid --secret {text!r}: expected key=value pairs")
        fields[key.strip().lower()] = value.strip()
    sid = fields.pop("id", "")
    src = fields.pop("src", None) or fields.pop("source", None)
    env = fields.pop("env", None)
    kind = fields.pop("type", "")
    if fields:
        raise UsageError(f"invalid --secret {text!r}: unknown key {next(iter(fields))!r}")
    if not sid:
        raise UsageError(f"invalid --secret {text!r}: id is required")
    if src is None and env is None:
        if kind == "file":
            raise UsageError(f"invalid --secret {text!r}: type=file needs src=")
        env = sid  # Docker: a bare id means the environment variable of that name
    if src is not None and not os.path.isfile(src):
        raise UsageError(f"secret {sid}: file {src} not found")
    return Secret(sid, src, env)


@dataclass(frozen=True)
class Output:
    """Where the result goes: the store (``image``), or an ``oci``/``docker`` archive file."""

    type: str = "image"
    dest: str | None = None


def parse_output(text: str) -> Output:
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            # docker allows a bare path meaning a local directory export; not supported here
            raise UsageError(f"invalid --output {text!r}: expected type=...,dest=...")
        fields[key.strip()] = value.strip()
    kind = fields.pop("type", "image")
    dest = fields.pop("dest", None)
    fields.pop("name", None)  # accepted for compatibility (tags come from -t)
    if fields:
        raise UsageError(f"invalid --output {text!r}: unsupported key {next(iter(fields))!r}")
    if kind not in ("image", "oci", "docker"):
        raise UsageError(f"unsupported output type {kind!r} (use image, oci or docker)")
    if kind != "image" and not dest:
        raise UsageError(f"--output type={kind} needs dest=FILE")
    return Output(kind, dest)


@dataclass(frozen=True)
class BuildOptions:
    """Everything ``forklift build`` can be told.

    ``context`` is a directory; ``dockerfile`` a path (default
    ``<context>/Dockerfile``) or ``dockerfile_text`` the file's content.
    ``build_contexts`` maps names to a directory or ``docker-image://REF``.
    """

    context: str
    dockerfile: str | None = None
    dockerfile_text: str | None = None
    tags: tuple[Reference, ...] = ()
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    pull: bool = False
    platform: Platform | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    network: str = "default"
    build_contexts: Mapping[str, str] = field(default_factory=dict)
    source_date_epoch: int | None = None
    rewrite_timestamp: bool = False
    compression: str = "gzip"
    runtime: str | None = None
    output: Output = field(default_factory=Output)
    jobs: int = 4
    #: the signature policy base images must pass (``forklift.sign.enforce.Enforcer``)
    image_policy: Any = None


@dataclass(frozen=True)
class StepReport:
    """One step of the build as it happened (for output and tests)."""

    stage: str
    instruction: str
    line: int
    cached: bool
    reason: str = ""


@dataclass(frozen=True)
class BuildResult:
    """The built image: manifest digest, image ID (config digest), and what happened."""

    digest: Digest
    image_id: Digest
    tags: tuple[Reference, ...]
    steps: tuple[StepReport, ...]
    warnings: tuple[str, ...] = ()

    @property
    def cached_steps(self) -> int:
        return sum(1 for s in self.steps if s.cached)
