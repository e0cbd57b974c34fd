"""The image configuration: runtime defaults, root filesystem diff IDs and history.

Fields forklift does not model are kept in ``extra`` and written back, so a
config read from elsewhere survives a modification round trip.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field, replace
from typing import Any

from forklift.errors import InvalidDigest, InvalidInput
from forklift.oci import _fields as F
from forklift.oci import canonical
from forklift.oci.digest import Digest
from forklift.oci.platform import Platform

DOC = "image config"
#: The PATH a Linux container gets when its image sets none (docker, BuildKit and the
#: runtime spec all use this one).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Healthcheck:
    """Docker's HEALTHCHECK; durations in nanoseconds as Docker stores them."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    @classmethod
    def from_json(cls, value: Any, path: str) -> Healthcheck:
        d = F.obj(DOC, path, value)
        return cls(
            test=F.opt_str_list(DOC, path, d, "Test") or (),
            interval=F.opt_int(DOC, path, d, "Interval") or 0,
            timeout=F.opt_int(DOC, path, d, "Timeout") or 0,
            start_period=F.opt_int(DOC, path, d, "StartPeriod") or 0,
            start_interval=F.opt_int(DOC, path, d, "StartInterval") or 0,
            retries=F.opt_int(DOC, path, d, "Retries") or 0,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ):
            if value:
                out[key] = value
        return out


_CC_KEYS = {
    "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
    "Labels", "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell",
}  # fmt: skip


@dataclass(frozen=True)
class ContainerConfig:
    """The ``config`` object: what a container of the image runs with by default.

    ``None`` means "not set" (which differs from an empty list for Cmd/Entrypoint).
    """

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    args_escaped: bool = False
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any, path: str = "config") -> ContainerConfig:
        d = F.obj(DOC, path, value)
        hc = None
        if d.get("Healthcheck") is not None:
            hc = Healthcheck.from_json(d["Healthcheck"], f"{path}.Healthcheck")
        return cls(
            user=F.opt_str(DOC, path, d, "User") or "",
            exposed_ports=F.opt_set(DOC, path, d, "ExposedPorts") or (),
            env=F.opt_str_list(DOC, path, d, "Env") or (),
            entrypoint=F.opt_str_list(DOC, path, d, "Entrypoint"),
            cmd=F.opt_str_list(DOC, path, d, "Cmd"),
            volumes=F.opt_set(DOC, path, d, "Volumes") or (),
            working_dir=F.opt_str(DOC, path, d, "WorkingDir") or "",
            labels=F.opt_str_map(DOC, path, d, "Labels") or {},
            stop_signal=F.opt_str(DOC, path, d, "StopSignal") or "",
            args_escaped=F.opt_bool(DOC, path, d, "ArgsEscaped") or False,
            healthcheck=hc,
            on_build=F.opt_str_list(DOC, path, d, "OnBuild") or (),
            shell=F.opt_str_list(DOC, path, d, "Shell") or (),
            extra={k: v for k, v in d.items() if k not in _CC_KEYS},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.args_escaped:
            out["ArgsEscaped"] = True
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_json()
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.shell:
            out["Shell"] = list(self.shell)
        return out

    def env_dict(self) -> dict[str, str]:
        """Env as a mapping (later entries win, as in Docker)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def with_env(self, key: str, value: str) -> ContainerConfig:
        """A copy with ``key=value`` set, replacing an existing entry in place."""
        entries = list(self.env)
        for i, item in enumerate(entries):
            if item.partition("=")[0] == key:
                entries[i] = f"{key}={value}"
                break
        else:
            entries.append(f"{key}={value}")
        return replace(self, env=tuple(entries))


@dataclass(frozen=True)
class History:
    """One entry of the image history (one per Dockerfile step)."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    @classmethod
    def from_json(cls, value: Any, path: str) -> History:
        d = F.obj(DOC, path, value)
        return cls(
            created=F.opt_str(DOC, path, d, "created"),
            created_by=F.opt_str(DOC, path, d, "created_by"),
            author=F.opt_str(DOC, path, d, "author"),
            comment=F.opt_str(DOC, path, d, "comment"),
            empty_layer=F.opt_bool(DOC, path, d, "empty_layer") or False,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (
            ("created", self.created),
            ("created_by", self.created_by),
            ("author", self.author),
            ("comment", self.comment),
        ):
            if value is not None:
                out[key] = value
        if self.empty_layer:
            out["empty_layer"] = True
        return out


_TOP_KEYS = {
    "created", "author", "architecture", "os", "os.version", "os.features",
    "variant", "config", "rootfs", "history",
}  # fmt: skip


@dataclass(frozen=True)
class ImageConfig:
    """An OCI image configuration (also Docker's ``container.image.v1``)."""

    architecture: str
    os: str
    diff_ids: tuple[Digest, ...] = ()
    config: ContainerConfig = field(default_factory=ContainerConfig)
    history: tuple[History, ...] = ()
    created: str | None = None
    author: str | None = None
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        """Parse config bytes strictly."""
        return cls.from_json(canonical.loads(data, DOC))

    @classmethod
    def from_json(cls, value: Any) -> ImageConfig:
        d = F.obj(DOC, "", value)
        rootfs = F.obj(DOC, "rootfs", d.get("rootfs", {"type": "layers", "diff_ids": []}))
        rtype = F.opt_str(DOC, "rootfs", rootfs, "type")
        if rtype not in (None, "layers"):
            raise F.fail(DOC, "rootfs.type", f"expected 'layers', got {rtype!r}")
        diff_ids = []
        for i, text in enumerate(F.opt_str_list(DOC, "rootfs", rootfs, "diff_ids") or ()):
            try:
                diff_ids.append(Digest.parse(text))
            except InvalidDigest as exc:
                raise F.fail(DOC, f"rootfs.diff_ids[{i}]", exc.message) from None
        history_raw = d.get("history") or []
        if not isinstance(history_raw, list):
            raise F.fail(DOC, "history", "expected an array")
        config = ContainerConfig()
        if d.get("config") is not None:
            config = ContainerConfig.from_json(d["config"])
        return cls(
            architecture=F.opt_str(DOC, "", d, "architecture") or "",
            os=F.opt_str(DOC, "", d, "os") or "",
            diff_ids=tuple(diff_ids),
            config=config,
            history=tuple(History.from_json(h, f"history[{i}]") for i, h in enumerate(history_raw)),
            created=F.opt_str(DOC, "", d, "created"),
            author=F.opt_str(DOC, "", d, "author"),
            variant=F.opt_str(DOC, "", d, "variant") or "",
            os_version=F.opt_str(DOC, "", d, "os.version") or "",
            os_features=F.opt_str_list(DOC, "", d, "os.features") or (),
            extra={k: v for k, v in d.items() if k not in _TOP_KEYS},
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out["architecture"] = self.architecture
        out["os"] = self.os
        if self.created is not None:
            out["created"] = self.created
        if self.author is not None:
            out["author"] = self.author
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        out["config"] = self.config.to_json()
        out["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d in self.diff_ids]}
        if self.history:
            out["history"] = [h.to_json() for h in self.history]
        return out

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes of this config."""
        return canonical.dumps(self.to_json())

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version, self.os_features)


def created_timestamp(epoch: int | None = None) -> str:
    """RFC 3339 UTC time: ``SOURCE_DATE_EPOCH`` (or ``epoch``) when set, else now."""
    if epoch is None and os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        try:
            epoch = int(os.environ["SOURCE_DATE_EPOCH"])
        except ValueError:
            raise InvalidInput(
                f"SOURCE_DATE_EPOCH={os.environ['SOURCE_DATE_EPOCH']!r} is not an integer"
            ) from None
    moment = (
        _dt.datetime.fromtimestamp(epoch, _dt.UTC)
        if epoch is not None
        else _dt.datetime.now(_dt.UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{moment.microsecond:06d}Z" if epoch is None else "Z"
    )
