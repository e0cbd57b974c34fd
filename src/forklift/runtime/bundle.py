"""An OCI runtime bundle: ``config.json`` plus the generated /etc files, for a mounted rootfs.

The bundle directory holds ``config.json``, ``hosts``, ``resolv.conf``,
``hostname`` and the runtime's log; the root filesystem is referenced by its
absolute path (the overlay's merged dir), not copied.

Mount points the runtime would have to create on the rootfs (``/proc`` in an
image without one, ``/etc/hosts``, a ``-v`` target) are recorded as *stubs*
before the run and removed afterwards if they are still empty, with their
parent's mtime put back, so a build's RUN layer never contains them (as
BuildKit does).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from forklift import fsutil
from forklift.errors import RuntimeFailure
from forklift.runtime.rootfs import ExecUser, resolve_in_root, resolve_user
from forklift.runtime.spec import ContainerSpec, mount_targets, oci_config

CONFIG = "config.json"


@dataclass(frozen=True)
class Stub:
    """A mount target that did not exist on the rootfs before the run.

    Paths are relative to the rootfs, as component tuples, never host paths:
    after the run they are looked up again from a descriptor of the root
    without following symlinks, because the container may have replaced any
    directory on the way by a symlink to a host directory.
    """

    top: tuple[str, ...]  # the highest missing component
    chain: tuple[tuple[str, ...], ...]  # it and every missing component below it, deepest last
    parent_times: tuple[int, int] | None  # (atime_ns, mtime_ns) of the existing parent


@dataclass(frozen=True)
class Bundle:
    """A written bundle: where it is, who runs in it, and the stubs to clean after the run."""

    path: Path
    rootfs: Path
    user: ExecUser
    hostname: str
    config: dict[str, object]
    stubs: tuple[Stub, ...]

    @property
    def log_path(self) -> Path:
        """Where the runtime writes its own errors (JSON lines)."""
        return self.path / "runtime.log"


def _hosts_file(spec: ContainerSpec, hostname: str) -> str:
    lines: list[str]
    if not spec.hosts_from_host:
        # BuildKit's file for RUN, whatever the network: nothing of the host's.
        lines = [
            f"127.0.0.1\tlocalhost {hostname}",
            "::1\tlocalhost ip6-localhost ip6-loopback",
        ]
        lines.extend(f"{ip}\t{name}" for name, ip in spec.extra_hosts)
        return "\n".join(lines) + "\n"
    if spec.host_network:
        try:
            lines = Path("/etc/hosts").read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        if not any(line.split()[1:2] == ["localhost"] for line in lines if line.strip()):
            lines.insert(0, "127.0.0.1\tlocalhost")
    else:
        lines = [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
        ]
    if not any(hostname in line.split()[1:] for line in lines if not line.startswith("#")):
        lines.append(f"127.0.0.1\t{hostname}")
    lines.extend(f"{ip}\t{name}" for name, ip in spec.extra_hosts)
    return "\n".join(lines) + "\n"


def _resolv_conf(spec: ContainerSpec) -> str:
    try:
        text = Path("/etc/resolv.conf").read_text(errors="replace")
    except OSError:
        return ""
    if spec.host_network:
        return text
    # In a network namespace of its own, the host's loopback resolvers are unreachable.
    kept = [
        line
        for line in text.splitlines()
        if not (line.split()[:1] == ["nameserver"] and _is_loopback(line.split()[1:2]))
    ]
    return "\n".join(kept) + "\n"


def _is_loopback(address: list[str]) -> bool:
    return bool(address) and (address[0].startswith("127.") or address[0] == "::1")


def find_stubs(rootfs: Path, targets: list[str]) -> tuple[Stub, ...]:
    """The mount targets that do not exist on ``rootfs`` yet (see module docs).

    Runs before the container starts, on a tree nothing else writes.
    """
    stubs: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    times: dict[tuple[str, ...], tuple[int, int] | None] = {}
    for target in targets:
        real = resolve_in_root(rootfs, target)
        try:
            parts = real.relative_to(rootfs).parts
        except ValueError:
            continue
        missing: list[tuple[str, ...]] = []
        for i in range(1, len(parts) + 1):
            if missing or not os.path.lexists(rootfs.joinpath(*parts[:i])):
                missing.append(parts[:i])
        if not missing:
            continue
        top = missing[0]
        chain = stubs.setdefault(top, [])
        chain.extend(p for p in missing if p not in chain)
        if top not in times:
            try:
                st = os.stat(rootfs.joinpath(*top[:-1]), follow_symlinks=False)
                times[top] = (st.st_atime_ns, st.st_mtime_ns)
            except OSError:
                times[top] = None
    return tuple(
        Stub(top, tuple(sorted(chain, key=len)), times[top]) for top, chain in stubs.items()
    )


def remove_stubs(rootfs: str | os.PathLike[str], stubs: tuple[Stub, ...]) -> None:
    """Remove stub mount points that are still empty (deepest first); restore parent mtimes.

    Everything is resolved from a descriptor of ``rootfs`` without following
    symlinks or crossing mounts (:func:`forklift.fsutil.open_dir_beneath`): what
    the container moved, replaced or linked elsewhere is left as it is.
    """
    if not stubs:
        return
    try:
        root_fd = fsutil.open_root(rootfs)
    except OSError:
        return
    try:
        for stub in stubs:
            for parts in sorted(stub.chain, key=len, reverse=True):
                with contextlib.suppress(OSError), fsutil.dir_beneath(root_fd, parts[:-1]) as pfd:
                    fsutil.remove_if_empty(pfd, parts[-1])
            if stub.parent_times is None:
                continue
            with contextlib.suppress(OSError), fsutil.dir_beneath(root_fd, stub.top[:-1]) as pfd:
                if fsutil.lstat_at(pfd, stub.top[-1]) is None:
                    os.utime(pfd, ns=stub.parent_times)
    finally:
        os.close(root_fd)


def create_cwd(rootfs: Path, cwd: str) -> None:
    """Create the working directory (root-owned, 0755) inside the rootfs if it is missing."""
    real = resolve_in_root(rootfs, cwd)
    if real.is_dir():
        return
    try:
        real.mkdir(mode=0o755, parents=True)
    except FileExistsError:
        raise RuntimeFailure(f"working directory {cwd} exists and is not a directory") from None


def create_bundle(
    directory: str | os.PathLike[str],
    spec: ContainerSpec,
    rootfs: str | os.PathLike[str],
    *,
    container_id: str,
    cgroups_path: str | None = None,
) -> Bundle:
    """Write the bundle for running ``spec`` on the mounted ``rootfs`` into ``directory``."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    root = Path(rootfs).resolve()
    user = resolve_user(root, spec.user, spec.extra_groups)
    if spec.hostname:
        hostname = spec.hostname
    elif spec.host_network:
        hostname = os.uname().nodename
    else:
        hostname = container_id[:12]
    etc: dict[str, str] = {}
    if spec.etc_files:
        for name, content in (
            ("hosts", _hosts_file(spec, hostname)),
            ("resolv.conf", _resolv_conf(spec)),
            ("hostname", hostname + "\n"),
        ):
            file = path / name
            file.write_text(content)
            os.chmod(file, 0o644)
            etc[f"/etc/{name}"] = str(file)
    create_cwd(root, spec.cwd)
    stubs = find_stubs(root, mount_targets(spec, etc))
    config = oci_config(
        spec, str(root), user, hostname=hostname, etc_files=etc, cgroups_path=cgroups_path
    )
    # No fsync: a bundle lives only as long as its run and is rewritten for every run.
    (path / CONFIG).write_text(json.dumps(config, indent=1))
    return Bundle(path, root, user, hostname, config, stubs)
