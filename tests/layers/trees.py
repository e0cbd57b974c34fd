"""Helpers for the layer tests: sample trees, tree snapshots, hand-built tarballs."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import tarfile
from pathlib import Path
from typing import Any

IS_ROOT = os.geteuid() == 0

# A valid VFS_CAP_REVISION_2 security.capability value: effective flag set,
# permitted = CAP_NET_RAW (bit 13). Written from the layout in capability.h.
CAP_NET_RAW = (0x02000001).to_bytes(4, "little") + (1 << 13).to_bytes(4, "little") + bytes(12)


def snapshot(root: str | os.PathLike[str], *, mtimes: bool = True) -> dict[str, tuple[Any, ...]]:
    """Everything tar can carry about each path under ``root``, from the filesystem itself.

    Keys are paths relative to ``root`` as bytes-safe strings. Hard links show
    up as the first path (sorted) of their inode group.
    """
    base = os.fspath(root)
    out: dict[str, tuple[Any, ...]] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            try:
                names = sorted(os.listxattr(full, follow_symlinks=False))
            except OSError:
                names = []
            xattrs = tuple(
                (n, os.getxattr(full, n, follow_symlinks=False))
                for n in names
                if n != "security.selinux"
            )
            detail: Any = None
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    detail = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                detail = os.readlink(full)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                detail = (os.major(st.st_rdev), os.minor(st.st_rdev))
            mtime = st.st_mtime_ns // 10**9 if mtimes else None
            mode = stat.S_IMODE(st.st_mode) if not stat.S_ISLNK(st.st_mode) else None
            out[rel] = (kind, mode, st.st_uid, st.st_gid, detail, xattrs, mtime, None)
        dirnames.sort()
    for group in inodes.values():
        first = min(group)
        for rel in group:
            out[rel] = (*out[rel][:-1], first)
    return out


def make_sample_tree(root: Path, *, privileged: bool = IS_ROOT) -> Path:
    """A tree with every kind of thing a layer must carry (devices and owners only as root)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("sample\n")
    (root / "etc" / "empty").write_bytes(b"")
    (root / "bin").mkdir()
    tool = root / "bin" / "tool"
    tool.write_bytes(b"#!/bin/sh\necho tool\n")
    tool.chmod(0o4755)  # setuid survives
    (root / "bin" / "sg").write_bytes(b"sg")
    (root / "bin" / "sg").chmod(0o2711)
    (root / "data").mkdir()
    (root / "data" / "random.bin").write_bytes(hashlib.sha256(b"seed").digest() * 10_000)
    deep = root / "data" / ("d" * 60) / ("e" * 60) / ("f" * 60)
    deep.mkdir(parents=True)
    (deep / ("long-name-" + "x" * 140)).write_text("long path\n")
    (root / "data" / "ünïcödé.txt").write_text("unicode name\n")
    os.mkdir(os.path.join(os.fsencode(root / "data"), b"raw-\xff\xfe"))
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    ro = root / "readonly"
    ro.mkdir()
    (ro / "inside").write_text("in a read-only dir\n")
    ro.chmod(0o555)
    os.symlink("hostname", root / "etc" / "alias")
    os.symlink("/nonexistent/absolute/target", root / "dangling")
    os.symlink("../etc", root / "bin" / "etc-link")
    os.link(root / "etc" / "hostname", root / "data" / "hostname-hardlink")
    os.mkfifo(root / "fifo")
    os.setxattr(root / "etc" / "hostname", "user.comment", b"binary\x00\xffvalue")
    os.setxattr(root / "etc", "user.dir-attr", b"on a directory")
    # Sockets are skipped by layers. Bind through /proc/self/fd so a long tmp
    # path cannot exceed the 108-byte limit of AF_UNIX addresses.
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(f"/proc/self/fd/{dir_fd}/control.sock")
    finally:
        os.close(dir_fd)
    old = root / "data" / "old-file"
    old.write_text("before 1970\n")
    os.utime(old, (0, -86400))
    future = root / "data" / "future-file"
    future.write_text("after 2242\n")
    os.utime(future, (0, 9_000_000_000))
    if privileged:
        os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(root / "loop9", stat.S_IFBLK | 0o660, os.makedev(7, 9))
        os.chown(root / "data" / "random.bin", 1234, 5678)
        os.chown(root / "etc" / "alias", 42, 43, follow_symlinks=False)
        os.chown(root / "data" / "old-file", 3_000_000, 3_000_001)  # beyond ustar: PAX ids
        os.setxattr(tool, "security.capability", CAP_NET_RAW)  # file capabilities survive
    # Set directory mtimes last (adding children changed them) to fixed values.
    for i, d in enumerate(sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())):
        os.utime(d, (1_600_000_000, 1_600_000_000 + i))
    return root


def build_tar(
    members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    """A tar built by Python's tarfile (an independent writer) from raw TarInfos."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = fields.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o644)
    info.mtime = fields.pop("mtime", 1_700_000_000)
    for key, value in fields.items():
        setattr(info, key, value)
    return info
