"""COPY and ADD: where selected files land, with which owner and mode.

Docker's rules, as BuildKit applies them:

* a relative destination is relative to WORKDIR; ``.``, ``./`` and a trailing
  ``/`` mean "into this directory";
* a directory source copies its *contents*; several sources need a destination
  ending in ``/``; a single file copied onto an existing directory goes inside it;
* symlinks in the destination path are followed inside the image (so
  ``COPY x /var/run/`` lands in ``/run`` when ``/var/run -> /run``);
* every copied entry and every directory created for the destination belongs to
  0:0 unless ``--chown``; ``--chmod`` (octal or symbolic) replaces the mode.

The layer is written from these items directly (no container needed).
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forklift.build.context import Selected
from forklift.build.rootview import Owner, RootView
from forklift.dockerfile.instructions import ChmodSpec
from forklift.errors import BuildError

if TYPE_CHECKING:
    from forklift.layers.source import LayerItem


@dataclass(frozen=True)
class Source:
    """One COPY/ADD source after selection: its entries, whether it named one file, its name."""

    selected: tuple[Selected, ...]
    single_file: bool
    name: str  # as written (for the basename of a single file and for messages)
    data: bytes | None = None  # heredoc content


def destination(dest: str, workdir: str) -> tuple[str, bool]:
    """The absolute destination and whether it names a directory explicitly."""
    explicit_dir = dest.endswith("/") or dest in (".", "./") or dest.endswith("/.")
    path = dest if dest.startswith("/") else posixpath.join(workdir or "/", dest)
    path = posixpath.normpath(path)
    if not path.startswith("/"):
        path = "/" + path
    return path, explicit_dir


def _mode(spec: ChmodSpec | None, current: int, is_dir: bool) -> int | None:
    return None if spec is None else spec.apply(current & 0o7777, is_dir)


def plan_copy(
    sources: list[Source],
    dest: str,
    workdir: str,
    view: RootView,
    *,
    owner: Owner | None = None,
    chmod: ChmodSpec | None = None,
    link: bool = False,
    now: int | None = None,
) -> list[LayerItem]:
    """The layer entries a COPY/ADD produces on top of the filesystem ``view``."""
    from forklift.layers.entry import EntryType  # the layer code is loaded on a cache miss
    from forklift.layers.source import LayerItem

    now = int(time.time()) if now is None else now
    uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
    dest_abs, explicit_dir = destination(dest, workdir)
    if len(sources) > 1 and not explicit_dir:
        raise BuildError(
            "when using COPY with more than one source file, the destination must be a directory and end with a /"
        )
    lower = RootView(None) if link else view
    many = len(sources) > 1 or any(not s.single_file for s in sources)
    into_dir = explicit_dir or many or lower.kind(dest_abs) == "d"
    target_dir = dest_abs if into_dir else posixpath.dirname(dest_abs)
    # Follow symlinks already in the image (never outside it) so entries land where they resolve.
    target_dir = lower.resolve(target_dir)
    items: list[LayerItem] = []
    # Directories created for the destination (missing ones only: existing ones keep their metadata).
    parts = [p for p in target_dir.split("/") if p]
    for i in range(len(parts)):
        path = "/" + "/".join(parts[: i + 1])
        kind = lower.kind(path)
        if kind is None:
            items.append(
                LayerItem(
                    path=path.lstrip("/"),
                    type=EntryType.DIR,
                    mode=0o755,
                    uid=uid,
                    gid=gid,
                    mtime=now,
                )
            )
        elif kind != "d":
            raise BuildError(
                f"cannot copy to {dest_abs}: {path} exists in the image and is not a directory"
            )
    for src in sources:
        if src.data is not None:
            target = (
                posixpath.join(target_dir, posixpath.basename(src.name)) if into_dir else dest_abs
            )
            if not into_dir:
                target = posixpath.join(target_dir, posixpath.basename(dest_abs))
            items.append(
                LayerItem(
                    path=target.lstrip("/"),
                    source=src.data,
                    mode=_mode(chmod, 0o644, False) or 0o644,
                    uid=uid,
                    gid=gid,
                    mtime=now,
                )
            )
            continue
        first_of_inode: dict[tuple[int, int], str] = {}
        for s in src.selected:
            if s.rel:
                target = posixpath.join(target_dir, s.rel)
            elif into_dir:
                target = posixpath.join(
                    target_dir, posixpath.basename(src.name.rstrip("/")) or "file"
                )
            else:
                target = posixpath.join(target_dir, posixpath.basename(dest_abs))
            if target == "/":
                continue  # the root directory itself is never an entry
            if s.kind == "f" and s.inode != (0, 0):
                other = first_of_inode.get(s.inode)
                if other is not None:
                    items.append(
                        LayerItem(path=target.lstrip("/"), type=EntryType.HARDLINK, linkname=other)
                    )
                    continue
                first_of_inode[s.inode] = target.lstrip("/")
            items.append(
                LayerItem(
                    path=target.lstrip("/"),
                    source=s.path,
                    uid=uid,
                    gid=gid,
                    mode=None if s.kind == "l" else _mode(chmod, s.mode, s.kind == "d"),
                )
            )
    # A later source wins over an earlier one for the same path, as copying in order would.
    return list({item.path: item for item in items}.values())
