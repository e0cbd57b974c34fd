"""Finding and cleaning what a killed forklift process left behind (``kill -9``, a crash).

Everything the runtime creates under ``$FORKLIFT_HOME`` is named after its
owner, so it can be told apart from what live processes use:

* a build's containers (``run/<runtime>/fk-<stem>-<hex>``, their bundles in
  ``run/bundles/``), mount workspaces and scratch directories
  (``snapshots/active/m-<stem>-*``, ``s-<stem>-*``) and unpack stagings
  (``snapshots/tmp/<chain>-<stem>-*``) carry the stem of a snapshot *lease*
  (``snapshots/leases/<stem>.lock``), which its process holds flocked for as
  long as it lives;
* a ``forklift run`` container (``containers/<id>``, runtime state
  ``run/<runtime>/<id>``) has a record naming the PID and start time of the
  process supervising it.

:class:`RuntimeCollector` is the store's :class:`~forklift.store.store.Collector`
for all of this: ``leftovers`` lists what belongs to dead owners, ``recover``
kills and deletes their containers (``runc delete --force``), unmounts their
overlays and tmpfs mounts and removes their directories, and ``prune``
collects unpacked snapshots nothing needs. The CLI hands it to the store, so
every command cleans up after killed ones before it starts, ``fsck`` reports
them and ``prune`` removes them.

Order matters: the names of what exists are listed *before* the leases are
read. A process publishes its lease before it names anything after it, so a
name seen before the read whose lease is not live at the read belongs to a
process that is gone.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forklift import fsutil
from forklift.errors import ForkliftError
from forklift.runtime import overlay
from forklift.store.store import Leftover, Store

# forklift.runtime.snapshots (owner_of, read_leases, remove_tree) is imported only when
# something was found: every command runs this sweep, and usually there is nothing.

_CONTAINER_ID_LEN = 64
_RUNTIMES = ("runc", "crun")  # forklift.runtime.oci_runtime.RUNTIMES, without its imports


@dataclass(frozen=True)
class _Seen:
    """Names that exist, listed before the leases are read."""

    containers: tuple[tuple[str, str], ...]  # (runtime, id)
    mounts: tuple[str, ...]
    directories: tuple[Path, ...]  # workspaces, scratch dirs, stagings, bundles
    partial_leases: tuple[Path, ...]
    #: any file in the leases directory (live leases, or dead ones to reap)
    leases: bool = False

    def nothing(self) -> bool:
        """Nothing any process left or holds: no container, mount, directory or lease."""
        return not (
            self.containers or self.mounts or self.directories or self.partial_leases or self.leases
        )


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class RuntimeCollector:
    """The runtime's state under a store's home, for :class:`~forklift.store.store.Store`."""

    def leftovers(self, store: Store) -> list[Leftover]:
        return self._sweep(store, act=False)

    def recover(self, store: Store) -> list[Leftover]:
        return self._sweep(store, act=True)

    def prune(self, store: Store, *, dry_run: bool) -> dict[str, int]:
        from forklift.runtime.snapshots import Snapshotter, wanted_chains

        report = Snapshotter(store).prune(wanted_chains(store), dry_run=dry_run)
        return {"snapshots": len(report.removed), "temporary directories": report.stale_temporaries}

    # -- the sweep ---------------------------------------------------------------

    def _see(self, home: Path) -> _Seen:
        run = home / "run"
        snapshots = home / "snapshots"
        containers = [
            (rt, cid) for rt in _RUNTIMES for cid in _listdir(run / rt) if cid != "bundles"
        ]
        directories = [snapshots / "active" / n for n in _listdir(snapshots / "active")]
        directories += [snapshots / "tmp" / n for n in _listdir(snapshots / "tmp")]
        directories += [run / "bundles" / n for n in _listdir(run / "bundles")]
        leases = snapshots / "leases"
        lease_names = _listdir(leases)
        partial = [leases / n for n in lease_names if n.startswith(".new-")]
        return _Seen(
            tuple(containers),
            tuple(overlay.mounts_under(home)),
            tuple(directories),
            tuple(partial),
            leases=bool(lease_names),
        )

    def _sweep(self, store: Store, *, act: bool) -> list[Leftover]:
        home = store.home
        seen = self._see(home)
        records = _ContainerRecords(store)
        if seen.nothing() and not records.present:
            return []
        from forklift.runtime.snapshots import owner_of, read_leases, remove_tree

        leases = read_leases(home / "snapshots" / "leases", reap=act)

        def dead(name: str) -> str | None:
            """Who owned ``name``, if it is dead; None while its owner lives (or is unknown)."""
            stem = owner_of(name)
            if stem is not None:
                return None if stem in leases.live else f"process {stem.split('-')[0]}"
            return None

        found: list[Leftover] = []
        # 1. Containers first: they use the mounts.
        for runtime, cid in seen.containers:
            if len(cid) == _CONTAINER_ID_LEN and "-" not in cid:
                owner = records.dead_owner(cid)
            else:
                owner = dead(cid)  # an ID named after no lease is left alone
            if owner is None:
                continue
            found.append(Leftover("container", f"{runtime}:{cid}", owner))
            if act:
                _delete_container(home, runtime, cid)
        # 2. forklift run containers (records, their mounts and directories).
        if act:
            found += records.recover()
        else:
            found += records.leftovers()
        # 3. Mounts under workspaces, scratch dirs and stagings of dead processes.
        rel_mounts = []
        base = Path(os.path.realpath(home))
        for point in seen.mounts:
            rel = Path(point).relative_to(base).parts
            if len(rel) >= 3 and rel[0] == "snapshots" and rel[1] in ("active", "tmp"):
                owner = dead(rel[2])
                if owner is not None:
                    rel_mounts.append((point, owner))
        for point, owner in rel_mounts:
            found.append(Leftover("mount", point, owner))
            if act:
                with contextlib.suppress(ForkliftError):
                    overlay.unmount(point)
        # 4. Their directories.
        for path in seen.directories:
            owner = dead(path.name)
            if owner is None:
                continue
            found.append(Leftover("directory", str(path), owner))
            if act:
                remove_tree(path)
        for path in seen.partial_leases:
            if fsutil.abandoned(path):
                found.append(Leftover("temporary file", str(path), "a killed process"))
                if act:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        return found


class _ContainerRecords:
    """``forklift run`` containers, read only when there are any (the module is larger)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._containers: Any = None
        root = store.home / "containers"
        self.present = root.is_dir() and any(len(n) == _CONTAINER_ID_LEN for n in _listdir(root))

    def _get(self) -> Any:
        if self._containers is None:
            from forklift.runtime.containers import Containers

            self._containers = Containers(self.store)
        return self._containers

    def dead_owner(self, cid: str) -> str | None:
        """Who ran container ``cid`` if that process is gone (or nobody knows it)."""
        if not self.present:
            return "an unknown process"
        with contextlib.suppress(ForkliftError):
            record = self._get()._read(cid)
            if record is not None and record.status in ("created", "running"):
                if record.supervisor_alive():
                    return None
                return f"process {record.pid} (forklift run)"
        return "an unknown process"

    def leftovers(self) -> list[Leftover]:
        return self._get().leftovers() if self.present else []

    def recover(self) -> list[Leftover]:
        return self._get().recover() if self.present else []


def _delete_container(home: Path, runtime: str, cid: str) -> None:
    """Kill and delete a container in forklift's private runtime state, and its bundle."""
    from forklift.runtime.oci_runtime import find_runtime
    from forklift.runtime.snapshots import remove_tree

    try:
        rt = find_runtime(runtime, home=home)
    except ForkliftError:
        # No binary to ask: its processes cannot be running from this install either.
        remove_tree(home / "run" / runtime / cid)
    else:
        rt.delete(cid)
    remove_tree(home / "run" / "bundles" / cid)


__all__ = ["RuntimeCollector"]
