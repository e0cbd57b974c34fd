"""What a container runs with (:class:`ContainerSpec`) and its OCI runtime ``config.json``.

The defaults follow Docker's: the same 14 capabilities (cleared from the
effective and permitted sets for a non-root user, as Docker does since
20.10), the same masked and read-only ``/proc`` and ``/sys`` paths, ``/proc``,
``/dev`` (tmpfs with devpts, mqueue and a 64 MiB ``/dev/shm``), read-only
``/sys`` and ``/sys/fs/cgroup``, a device cgroup that denies everything but
the runtime's default devices, new mount/UTS/IPC/PID namespaces, and a new
network namespace unless the network is ``host``. No rlimits are set (the
process inherits forklift's), and ``no_new_privileges`` is on by default.

Networks: ``none`` is a new network namespace with only ``lo`` (up, as the
runtime brings it up); ``host`` shares the host's network; ``default`` means
``host``, as BuildKit's and buildah's RUN do when no CNI network is set up:
forklift has no bridge networking of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forklift.errors import UsageError
from forklift.oci.config import DEFAULT_PATH
from forklift.runtime.rootfs import ExecUser

OCI_VERSION = "1.0.2"

DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

NETWORKS = ("none", "host", "default")
SHM_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class BindMount:
    """A host file or directory at ``target`` in the container (read-write unless ``readonly``)."""

    source: str
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class TmpfsMount:
    """A fresh tmpfs at ``target``; ``size`` in bytes (None: the kernel's default, half of RAM)."""

    target: str
    size: int | None = None
    mode: int = 0o1777


Mount = BindMount | TmpfsMount


@dataclass(frozen=True)
class ContainerSpec:
    """Everything about one container process except its root filesystem.

    ``user`` is resolved in the rootfs when the bundle is made (``""`` is
    root). ``env`` is ``KEY=value`` strings, later entries winning; ``PATH``
    and ``HOME`` get Docker's defaults when missing. ``hostname`` empty means
    the container ID's first 12 characters. ``etc_files`` mounts generated
    ``/etc/hosts``, ``/etc/resolv.conf`` (from the host's) and
    ``/etc/hostname``; their mount points are removed again afterwards if the
    image did not have them, so they never end up in a layer.
    """

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    extra_groups: tuple[str, ...] = ()
    hostname: str = ""
    terminal: bool = False
    network: str = "none"
    mounts: tuple[Mount, ...] = ()
    readonly_rootfs: bool = False
    no_new_privileges: bool = True
    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    etc_files: bool = True
    #: With a host network, start ``/etc/hosts`` from the host's own file (``docker run
    #: --network host``). False writes only ``localhost`` and ``hostname`` whatever the
    #: network, so nothing about the host shows (a build's RUN, as BuildKit does).
    hosts_from_host: bool = True
    extra_hosts: tuple[tuple[str, str], ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.args:
            raise UsageError("no command specified")
        if self.network not in NETWORKS:
            raise UsageError(
                f"unknown network {self.network!r} (use one of: {', '.join(NETWORKS)})"
            )
        if not self.cwd.startswith("/"):
            raise UsageError(f"the working directory must be absolute, not {self.cwd!r}")
        for m in self.mounts:
            if not m.target.startswith("/"):
                raise UsageError(f"mount target must be an absolute path, not {m.target!r}")
            if isinstance(m, BindMount) and not m.source.startswith("/"):
                raise UsageError(f"bind mount source must be an absolute path, not {m.source!r}")

    @property
    def host_network(self) -> bool:
        """Whether the container shares the host's network namespace."""
        return self.network in ("host", "default")


def env_with_defaults(env: tuple[str, ...], home: str) -> list[str]:
    """``env`` (later entries win, first position kept) plus PATH and HOME when missing."""
    order: list[str] = []
    values: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment entry {item!r}")
        if key not in values:
            order.append(key)
        values[key] = value if sep else ""
    if "PATH" not in values:
        order.insert(0, "PATH")
        values["PATH"] = DEFAULT_PATH
    if "HOME" not in values:
        order.append("HOME")
        values["HOME"] = home or "/"
    return [f"{k}={values[k]}" for k in order]


def lookup_env(env: list[str] | tuple[str, ...], key: str) -> str | None:
    """The value of ``key`` in a ``KEY=value`` list (the last one wins)."""
    value = None
    for item in env:
        k, _, v = item.partition("=")
        if k == key:
            value = v
    return value


def oci_config(
    spec: ContainerSpec,
    rootfs: str,
    user: ExecUser,
    *,
    hostname: str,
    etc_files: dict[str, str] | None = None,
    cgroups_path: str | None = None,
) -> dict[str, Any]:
    """The runtime's ``config.json`` for ``spec`` with its user already resolved.

    ``etc_files`` maps container paths (``/etc/hosts``...) to host files to
    bind read-only over them; ``cgroups_path`` groups the container's cgroup.
    """
    caps = list(spec.capabilities)
    root_user = user.uid == 0
    process: dict[str, Any] = {
        "terminal": spec.terminal,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": list(spec.args),
        "env": env_with_defaults(spec.env, user.home),
        "cwd": spec.cwd,
        "capabilities": {
            "bounding": caps,
            # A non-root process gets no capabilities beyond its bounding set (Docker >= 20.10).
            "effective": caps if root_user else [],
            "permitted": caps if root_user else [],
            "inheritable": [],
            "ambient": [],
        },
        "noNewPrivileges": spec.no_new_privileges,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_SIZE}"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]
    for target, source in (etc_files or {}).items():
        mounts.append(
            {
                "destination": target,
                "type": "bind",
                "source": source,
                "options": ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"],
            }
        )
    for m in spec.mounts:
        if isinstance(m, BindMount):
            mounts.append(
                {
                    "destination": m.target,
                    "type": "bind",
                    "source": m.source,
                    "options": ["rbind", "rprivate", "ro" if m.readonly else "rw"],
                }
            )
        else:
            options = ["nosuid", "nodev", f"mode={m.mode:o}"]
            if m.size is not None:
                options.append(f"size={m.size}")
            mounts.append(
                {"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options}
            )
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if not spec.host_network:
        namespaces.append({"type": "network"})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
    }
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": spec.readonly_rootfs},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if spec.annotations:
        config["annotations"] = dict(spec.annotations)
    return config


def mount_targets(spec: ContainerSpec, etc_files: dict[str, str] | None = None) -> list[str]:
    """Every path the runtime mounts something over *on the rootfs* (not inside other mounts)."""
    targets = ["/proc", "/dev", "/sys"]
    targets.extend(etc_files or {})
    targets.extend(m.target for m in spec.mounts)
    return targets
