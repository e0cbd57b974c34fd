"""What a RUN step mounts: cache directories, secrets, tmpfs and bind sources.

(Its argv, heredocs included, comes from :meth:`RunCommand.plan` in the front end.)

Mounts (``RUN --mount``) never reach the layer: the runtime removes the mount
points it had to create, cache directories live under
``$FORKLIFT_HOME/cache/mounts/``, secrets are files on a tmpfs (or environment
variables) that appear neither in the cache key nor in the history. Everything
a step needs only while it runs (secrets, copies for ``rw`` binds and
``private`` caches, heredoc scripts) goes into the step's *scratch* directory
(:meth:`Snapshotter.scratch`), which a killed build leaves to the next
command's recovery rather than to ``/tmp``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from forklift import fsutil
from forklift.dockerfile.mounts import Mount
from forklift.errors import BuildError

if TYPE_CHECKING:  # the runtime is imported only when a RUN actually executes
    from forklift.runtime.spec import BindMount, TmpfsMount

SECRETS_DIR = "/run/secrets"
#: The host name every RUN step sees (``uname -n``, ``/etc/hostname``, ``/etc/hosts``),
#: whatever the network, so that neither the build machine's name nor a random one ends up
#: in a layer (as BuildKit does; packages such as exim4 record it).
SANDBOX_HOSTNAME = "buildkitsandbox"
#: The build argument that replaces it (BuildKit's).
HOSTNAME_ARG = "BUILDKIT_SANDBOX_HOSTNAME"


def sandbox_hostname(build_args: Mapping[str, str]) -> str:
    """The host name for RUN steps: ``--build-arg BUILDKIT_SANDBOX_HOSTNAME``, else the default."""
    return build_args.get(HOSTNAME_ARG) or SANDBOX_HOSTNAME


def cache_dir(home: Path, mount: Mount) -> Path:
    """Where a cache mount's contents persist between builds (per id, default: the target)."""
    ident = mount.id or mount.target
    return home / "cache" / "mounts" / hashlib.sha256(ident.encode()).hexdigest()[:32]


def mount_target(mount: Mount, workdir: str) -> str:
    if not mount.target:
        raise BuildError(f"RUN --mount type={mount.type}: target is required")
    target = (
        mount.target
        if mount.target.startswith("/")
        else posixpath.join(workdir or "/", mount.target)
    )
    return posixpath.normpath(target)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def prepare_cache(
    home: Path, mount: Mount, stack: contextlib.ExitStack, target: str, scratch: Path
) -> BindMount:
    """The bind mount of a cache directory (a throw-away copy in ``scratch`` for ``private``)."""
    from forklift.runtime.spec import BindMount

    directory = cache_dir(home, mount)
    fresh = not directory.exists()
    fsutil.private_dir(home / "cache")  # steps write there as root: setuid files, devices
    directory.mkdir(parents=True, exist_ok=True)
    if fresh:
        os.chmod(directory, mount.mode if mount.mode is not None else 0o755)
        os.chown(directory, mount.uid or 0, mount.gid or 0)
    if mount.sharing == "locked":
        stack.enter_context(_locked(directory.with_suffix(".lock")))
    elif mount.sharing == "private":
        # A private cache is a copy only this RUN uses; nothing is written back.
        tmp = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
        # Earlier steps wrote this cache: copy it without following or reading special files.
        fsutil.copy_tree(directory, tmp / "c")
        directory = tmp / "c"
    return BindMount(str(directory), target, readonly=mount.readonly)


def _secrets_dir(scratch: Path, stack: contextlib.ExitStack) -> Path:
    """``scratch/secrets``: a tmpfs, so secret values are never written to disk."""
    from forklift.runtime import overlay

    directory = scratch / "secrets"
    if not directory.is_dir():
        directory.mkdir(mode=0o700)
        overlay.mount_tmpfs(directory)
        stack.callback(overlay.unmount, directory)
    return directory


def prepare_secret(
    mount: Mount,
    secrets: dict[str, bytes],
    stack: contextlib.ExitStack,
    workdir: str,
    scratch: Path,
) -> tuple[BindMount | None, dict[str, str]]:
    """The bind mount (from a tmpfs in ``scratch``) and variables of a secret mount."""
    from forklift.runtime.spec import BindMount

    sid = mount.secret_id
    value = secrets.get(sid)
    if value is None:
        if mount.required:
            raise BuildError(
                f"secret {sid} is required but was not given (use --secret id={sid},src=FILE)"
            )
        return None, {}
    if mount.env:
        if mount.target:
            pass  # both: a file and a variable
        else:
            return None, {mount.env: value.decode(errors="replace")}
    path = Path(tempfile.mkdtemp(dir=_secrets_dir(scratch, stack))) / "secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400)
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    os.chmod(path, mount.mode if mount.mode is not None else 0o400)
    os.chown(path, mount.uid or 0, mount.gid or 0)
    target = mount_target(mount, workdir) if mount.target else f"{SECRETS_DIR}/{sid}"
    env = {mount.env: value.decode(errors="replace")} if mount.env else {}
    return BindMount(str(path), target, readonly=True), env


def prepare_tmpfs(mount: Mount, workdir: str) -> TmpfsMount:
    from forklift.runtime.spec import TmpfsMount

    return TmpfsMount(mount_target(mount, workdir), size=mount.size)


def writable_copy(source: str, scratch: Path) -> str:
    """A copy of ``source`` in ``scratch`` for an ``rw`` bind mount (its writes are thrown away).

    The source may be another stage's filesystem, which a container wrote: it is
    copied without following symlinks or reading device nodes and FIFOs.
    """
    tmp = Path(tempfile.mkdtemp(prefix="bind-", dir=scratch))
    name = "d" if os.path.isdir(source) else "f"
    fsutil.copy_tree(source, tmp / name)
    return str(tmp / name)
