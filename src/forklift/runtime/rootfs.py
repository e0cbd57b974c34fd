"""Looking things up inside a container's root filesystem before it runs.

Paths are resolved the way the container will see them: symlinks are
followed *inside* the root (an absolute target starts again at the root,
``..`` never climbs above it), so an image cannot make forklift read host
files by shipping ``/etc/passwd -> /../../etc/shadow``.

User resolution follows Docker (runc's ``GetExecUser``): ``user``, ``uid``,
``user:group``, ``uid:gid`` and mixes; names are looked up in the image's
``/etc/passwd`` and ``/etc/group``, numbers need no entry; the primary group
and home come from the passwd entry; supplementary groups are the groups
that list the user as a member, but only when no group was given explicitly.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from forklift import fsutil
from forklift.errors import RuntimeFailure
from forklift.oci.config import DEFAULT_PATH

_MAX_ID = 2**31 - 1


def resolve_in_root(root: str | os.PathLike[str], path: str) -> Path:
    """The host path of ``path`` as the container sees it, every symlink resolved inside ``root``.

    Components that do not exist are appended as they are (so the result can
    name something to be created). Raises :class:`RuntimeFailure` on a
    symlink loop. (A :class:`~pathlib.Path` wrapper of
    :func:`forklift.fsutil.resolve_in_root`.)
    """
    try:
        rel = fsutil.resolve_in_root(os.fspath(root), path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RuntimeFailure(f"too many levels of symbolic links resolving {path}") from None
        raise
    return Path(root, rel) if rel else Path(root)


def read_file_in_root(
    root: str | os.PathLike[str], path: str, limit: int = 4 << 20
) -> bytes | None:
    """The content of a regular file inside the root, or None if there is none."""
    real = resolve_in_root(root, path)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- passwd / group


@dataclass(frozen=True)
class PasswdEntry:
    """One line of /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class GroupEntry:
    """One line of /etc/group."""

    name: str
    gid: int
    members: tuple[str, ...]


def _id(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def parse_passwd(data: bytes) -> list[PasswdEntry]:
    """Entries of an /etc/passwd file; malformed lines are skipped (as libc does)."""
    out = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 4:
            continue
        uid, gid = _id(f[2]), _id(f[3])
        if uid is None or gid is None:
            continue
        out.append(
            PasswdEntry(f[0], uid, gid, f[5] if len(f) > 5 else "", f[6] if len(f) > 6 else "")
        )
    return out


def parse_group(data: bytes) -> list[GroupEntry]:
    """Entries of an /etc/group file; malformed lines are skipped."""
    out = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 3:
            continue
        gid = _id(f[2])
        if gid is None:
            continue
        members = tuple(m for m in (f[3].split(",") if len(f) > 3 else []) if m)
        out.append(GroupEntry(f[0], gid, members))
    return out


@dataclass(frozen=True)
class ExecUser:
    """Who the container process runs as."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"
    name: str | None = None


def resolve_user(
    rootfs: str | os.PathLike[str], user: str, extra_groups: tuple[str, ...] = ()
) -> ExecUser:
    """Resolve ``user`` (``""``, ``name``, ``uid``, ``name:group``, ``uid:gid``...) in the rootfs.

    ``extra_groups`` (names or ids, like ``docker run --group-add``) are added
    to the supplementary groups. Raises :class:`RuntimeFailure` for a name
    that is not in the image.
    """
    user_part, _, group_part = user.partition(":")
    passwd_data = read_file_in_root(rootfs, "/etc/passwd")
    group_data = read_file_in_root(rootfs, "/etc/group")
    users = parse_passwd(passwd_data) if passwd_data is not None else []
    groups = parse_group(group_data) if group_data is not None else []

    uid, gid, home, matched = 0, 0, "/", None
    wanted_uid = _id(user_part)
    if user_part and wanted_uid is None and user_part.isdigit():
        raise RuntimeFailure(f"user id {user_part} is out of range")
    for entry in users:
        if (user_part == "" and entry.uid == 0) or (
            user_part != ""
            and (entry.uid == wanted_uid if wanted_uid is not None else entry.name == user_part)
        ):
            uid, gid, home, matched = entry.uid, entry.gid, entry.home or "/", entry.name
            break
    else:
        if user_part and wanted_uid is None:
            raise RuntimeFailure(
                f"unable to find user {user_part}: no matching entries in passwd file"
            )
        if wanted_uid is not None:
            uid = wanted_uid

    additional: list[int] = []
    if group_part:
        wanted_gid = _id(group_part)
        for g in groups:
            if (g.gid == wanted_gid) if wanted_gid is not None else (g.name == group_part):
                gid = g.gid
                break
        else:
            if wanted_gid is None:
                raise RuntimeFailure(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            gid = wanted_gid
    elif matched is not None:
        additional = [g.gid for g in groups if matched in g.members]

    for extra in extra_groups:
        wanted = _id(extra)
        for g in groups:
            if g.name == extra or g.gid == wanted:
                additional.append(g.gid)
                break
        else:
            if wanted is None:
                raise RuntimeFailure(f"unable to find group {extra}")
            additional.append(wanted)

    # The primary group is always a supplementary group too (runc, podman and BuildKit do this
    # since CVE-2023-25173): otherwise a process could setgroups() its primary group away and
    # get past files whose group permissions deny that group.
    additional.insert(0, gid)
    unique = list(dict.fromkeys(additional))  # first occurrence of each, in order
    return ExecUser(uid, gid, tuple(unique), home, matched)


# --------------------------------------------------------------------------- executables


def find_executable(
    rootfs: str | os.PathLike[str], name: str, path_env: str | None, cwd: str = "/"
) -> tuple[str | None, str | None]:
    """Look ``name`` up as the container's exec would: returns (path in container, problem).

    ``problem`` is None when an executable regular file was found; else a
    Docker-like reason: ``executable file not found in $PATH``, ``no such
    file or directory``, ``permission denied`` or ``is a directory``.
    """
    if "/" in name:
        full = name if name.startswith("/") else f"{cwd.rstrip('/')}/{name}"
        return name, _check_exec(rootfs, full)
    for directory in (path_env if path_env is not None else DEFAULT_PATH).split(":"):
        base = directory or "."
        candidate = f"{base}/{name}" if base.startswith("/") else f"{cwd.rstrip('/')}/{base}/{name}"
        if _check_exec(rootfs, candidate) is None:
            return candidate, None
    return None, "executable file not found in $PATH"


def _check_exec(rootfs: str | os.PathLike[str], path: str) -> str | None:
    real = resolve_in_root(rootfs, path)
    try:
        st = os.stat(real, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return "no such file or directory"
    except OSError as exc:
        return exc.strerror.lower() if exc.strerror else "cannot be read"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        return "permission denied"
    return None
