"""What a build is asked to do (``forklift build`` flags as data, checked) and what it produced.

The checks docker's CLI makes before a build starts live here, in
:class:`BuildOptions`, so a Python caller gets them too: the context is a
directory, docker's rule for a relative ``-f``, ``SOURCE_DATE_EPOCH``,
``--rewrite-timestamp`` (needs an epoch), ``--build-context`` values and
``--output`` (:func:`parse_output`).
"""

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


OUTPUT_TYPES = ("image", "oci", "docker", "tar", "local")


@dataclass(frozen=True)
class Output:
    """Where the result goes (BuildKit's exporters).

    ``image``: the store only (the default). ``oci``/``docker``: an image
    archive file; ``tar``: the final stage's filesystem as one tar; for these
    three, ``dest`` ``-`` is standard output. ``local``: the final stage's
    filesystem written into the directory ``dest``.
    """

    type: str = "image"
    dest: str | None = None

    @property
    def to_stdout(self) -> bool:
        """Whether the result is written to standard output."""
        return self.dest == "-"


def parse_output(text: str) -> Output:
    """``-o``/``--output`` as docker takes it: ``type=T,dest=D``, a bare directory
    (``-o out`` means ``type=local,dest=out``) or ``-`` (a tar on standard output)."""
    if text == "-":
        return Output("tar", "-")
    if "=" not in text and "," not in text:
        return Output("local", text)
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"invalid --output {text!r}: expected type=...,dest=...")
        fields[key.strip()] = value.strip()
    kind = fields.pop("type", "image")
    dest = fields.pop("dest", None)
    fields.pop("name", None)  # accepted for compatibility (tags come from -t)
    if fields:
        raise UsageError(f"invalid --output {text!r}: unsupported key {next(iter(fields))!r}")
    if kind not in OUTPUT_TYPES:
        raise UsageError(f"unsupported output type {kind!r} (use {', '.join(OUTPUT_TYPES)})")
    if kind != "image" and not dest:
        what = "DIR" if kind == "local" else "FILE (or - for standard output)"
        raise UsageError(f"--output type={kind} needs dest={what}")
    if kind == "local" and dest == "-":
        raise UsageError("--output type=local writes a directory; use type=tar,dest=- for stdout")
    return Output(kind, dest)


def find_dockerfile(context: str, file: str | None) -> str:
    """The Dockerfile a build reads, by docker's rules.

    ``-f FILE``: relative to the current directory, else to the context (so
    both ``-f ctx/Dockerfile.dev`` and ``-f Dockerfile.dev`` work); without
    it ``CONTEXT/Dockerfile``, or ``CONTEXT/Containerfile`` when only that exists
    (podman's name). The path is returned even when nothing is there (reading
    it reports the name the user gave).
    """
    if file is not None:
        if os.path.isabs(file) or os.path.exists(file):
            return file
        candidate = os.path.join(context, file)
        return candidate if os.path.exists(candidate) else file
    default = os.path.join(context, "Dockerfile")
    alternative = os.path.join(context, "Containerfile")
    if not os.path.exists(default) and os.path.exists(alternative):
        return alternative
    return default


def parse_epoch(value: int | str) -> int:
    """``SOURCE_DATE_EPOCH``: whole seconds since 1970 (as reproducible-builds.org defines it)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise UsageError(f"SOURCE_DATE_EPOCH={value} is negative")
        return value
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH={text!r} is not a number of seconds")
    return int(text)


@dataclass(frozen=True)
class BuildOptions:
    """Everything ``forklift build`` can be told, checked as docker checks it.

    ``context`` is a directory; ``dockerfile`` a path (see :func:`find_dockerfile`)
    or ``dockerfile_text`` the file's content. ``build_contexts`` maps names to a
    directory or ``docker-image://REF``. ``source_date_epoch`` (seconds, or the
    text of ``SOURCE_DATE_EPOCH``) defaults to the ``SOURCE_DATE_EPOCH`` build
    arg; ``rewrite_timestamp`` needs it. ``client_options`` (a
    :class:`~forklift.registry.client.ClientOptions`) sets TLS, proxies and
    retries for pulls and ``ADD <url>``.

    Constructing one raises :class:`~forklift.errors.UsageError` for what no
    build could use, so Python callers get the CLI's checks.
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
    source_date_epoch: int | str | None = None
    rewrite_timestamp: bool = False
    compression: str = "gzip"
    runtime: str | None = None
    output: Output = field(default_factory=Output)
    jobs: int = 4
    client_options: Any = None
    #: the signature policy base images must pass (``forklift.sign.enforce.Enforcer``)
    image_policy: Any = None

    def __post_init__(self) -> None:
        if not os.path.isdir(self.context):
            raise UsageError(f"build context {self.context!r} is not a directory")
        if self.dockerfile_text is None:
            object.__setattr__(self, "dockerfile", find_dockerfile(self.context, self.dockerfile))
        epoch = self.source_date_epoch
        if epoch is None:
            epoch = self.build_args.get("SOURCE_DATE_EPOCH")
        if isinstance(epoch, str) and not epoch.strip():
            epoch = None
        object.__setattr__(self, "source_date_epoch", None if epoch is None else parse_epoch(epoch))
        if self.rewrite_timestamp and self.source_date_epoch is None:
            raise UsageError(
                "--rewrite-timestamp needs SOURCE_DATE_EPOCH (environment or --build-arg)"
            )
        for name, value in self.build_contexts.items():
            if not name:
                raise UsageError(f"--build-context ={value}: the name is empty")
            if not value.startswith("docker-image://") and not os.path.isdir(value):
                raise UsageError(
                    f"--build-context {name}={value}: not a directory or docker-image://REF"
                )
        if self.network not in ("default", "none", "host"):
            raise UsageError(f"network mode {self.network!r}: use default, none or host")
        if self.jobs < 1:
            raise UsageError(f"jobs must be at least 1, not {self.jobs}")

    @property
    def epoch(self) -> int | None:
        """``SOURCE_DATE_EPOCH`` in seconds, or None."""
        value = self.source_date_epoch
        return value if isinstance(value, int) else None


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
    """The built image: manifest digest, image ID (config digest), and what happened.

    ``exported`` says where ``--output`` put the result (``""`` for the store only);
    ``images`` are the images the build used (FROM, ``--from``), as the Dockerfile
    names them, with the manifest digests it used (what provenance records).
    """

    digest: Digest
    image_id: Digest
    tags: tuple[Reference, ...]
    steps: tuple[StepReport, ...]
    warnings: tuple[str, ...] = ()
    exported: str = ""
    images: tuple[tuple[str, Digest], ...] = ()

    @property
    def cached_steps(self) -> int:
        return sum(1 for s in self.steps if s.cached)
