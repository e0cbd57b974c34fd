"""Stacking layers path by path: what each layer adds, changes and removes, and what is wasted.

Layers are read as tar streams (never unpacked) and applied to an in-memory
model of the filesystem that holds one small record per path: memory grows
with the number of paths, not with bytes.

Definitions (all sizes are regular-file content bytes, as the tar headers
state them; directories, links and device nodes count 0):

* A layer's *size* is the sum of its files' sizes (what dive calls the layer
  size). The image size is the sum over layers; the *user size* leaves out
  the first (base) layer.
* *Wasted bytes* are the bytes stored in some layer that are not visible in
  the final filesystem: every copy of a file that a later layer overwrote or
  deleted (whiteout, opaque directory, or a directory replaced by a file),
  plus copies shadowed by a second entry for the same path in one layer. So
  ``wasted = image size - final filesystem size`` exactly. Each wasted copy
  is attributed to the layer that added it and the layer that removed it.
* *Efficiency* is dive's score: for every path, collect one occurrence per
  layer in which the path is a leaf (a file, an empty directory entry, or a
  whiteout, sized as what it deletes in the layers below); the score is the
  sum over paths of the smallest occurrence divided by the sum of all
  occurrences (1.0 for an empty image). ``dive_wasted_bytes`` is dive's own
  waste figure: the summed occurrences of every path seen more than once
  (it counts a deleted file twice, once added and once as the whiteout).
  An opaque directory counts, for each lower child it hides that the layer
  does not re-create, as a whiteout of that child (dive has no rule here).
"""

from __future__ import annotations

import heapq
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from forklift.layers.entry import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, EntryType

_DIR = True
_FILE = False


class _Node:
    """One path of the stacked filesystem."""

    __slots__ = ("is_dir", "layer", "size")

    def __init__(self, is_dir: bool, size: int, layer: int) -> None:
        self.is_dir = is_dir
        self.size = size
        self.layer = layer


@dataclass(frozen=True)
class LayerStats:
    """What one layer did to the filesystem."""

    index: int
    size: int = 0
    entries: int = 0
    added: int = 0
    modified: int = 0
    removed: int = 0
    removed_bytes: int = 0


@dataclass(frozen=True)
class WasteItem:
    """One wasted copy: ``path`` added by layer ``added`` and hidden by layer ``removed``."""

    path: str
    size: int
    added: int
    removed: int
    kind: str  # "deleted" | "overwritten"


@dataclass
class WasteGroup:
    """All waste added by one layer and removed by another."""

    added: int
    removed: int
    kind: str
    bytes: int = 0
    files: int = 0
    largest: list[tuple[int, str]] = field(default_factory=list)


class Stacker:
    """Apply layers one after the other; read results when done.

    Feed each layer with :meth:`add_layer` (an iterable of ``(path, type,
    size)`` with clean relative paths, as :class:`~forklift.layers.LayerEntry`
    has them). ``top`` bounds how many waste items and biggest files are kept.
    """

    def __init__(self, top: int = 20) -> None:
        self.top = top
        self.nodes: dict[str, _Node] = {"": _Node(_DIR, 0, -1)}
        self.children: dict[str, set[str]] = {"": set()}
        self.layers: list[LayerStats] = []
        # dive efficiency: path -> [cumulative, smallest, count]
        self.occurrences: dict[str, list[int]] = {}
        self.groups: dict[tuple[int, int, str], WasteGroup] = {}
        self.items: list[tuple[int, int, WasteItem]] = []  # min-heap of the largest
        self._seq = 0
        self.wasted = 0
        self.total = 0

    # -- waste and efficiency bookkeeping ----------------------------------

    def _waste(self, path: str, size: int, added: int, removed: int, kind: str) -> None:
        if size <= 0:
            return
        self.wasted += size
        key = (added, removed, kind)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = WasteGroup(added, removed, kind)
        group.bytes += size
        group.files += 1
        if len(group.largest) < 5:
            heapq.heappush(group.largest, (size, path))
        elif size > group.largest[0][0]:
            heapq.heapreplace(group.largest, (size, path))
        self._seq += 1
        item = (size, self._seq, WasteItem("/" + path, size, added, removed, kind))
        if len(self.items) < self.top:
            heapq.heappush(self.items, item)
        elif size > self.items[0][0]:
            heapq.heapreplace(self.items, item)

    def _occur(self, path: str, size: int) -> None:
        rec = self.occurrences.get(path)
        if rec is None:
            self.occurrences[path] = [size, size, 1]
        else:
            rec[0] += size
            if size < rec[1]:
                rec[1] = size
            rec[2] += 1

    # -- the filesystem model ----------------------------------------------

    def _subtree_size(self, path: str) -> int:
        node = self.nodes.get(path)
        if node is None:
            return 0
        if not node.is_dir:
            return node.size
        total = 0
        stack = [path]
        while stack:
            p = stack.pop()
            for child in self.children.get(p, ()):
                n = self.nodes[child]
                if n.is_dir:
                    stack.append(child)
                else:
                    total += n.size
        return total

    def _remove(self, path: str, layer: int, kind: str) -> tuple[int, int]:
        """Delete ``path`` and everything under it; record the waste. Returns (files, bytes)."""
        node = self.nodes.pop(path, None)
        if node is None:
            return 0, 0
        parent = posixpath.dirname(path)
        siblings = self.children.get(parent)
        if siblings is not None:
            siblings.discard(path)
        files = nbytes = 0
        stack = [(path, node)]
        while stack:
            p, n = stack.pop()
            if n.is_dir:
                for child in self.children.pop(p, ()):
                    cn = self.nodes.pop(child, None)
                    if cn is not None:
                        stack.append((child, cn))
            else:
                files += 1
                nbytes += n.size
                self._waste(p, n.size, n.layer, layer, kind)
        return files, nbytes

    def _ensure_parents(self, path: str, layer: int) -> None:
        parent = posixpath.dirname(path)
        missing: list[str] = []
        while parent not in self.nodes:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        top = self.nodes[parent]
        if not top.is_dir:
            # A file stands where a directory is needed: the layer replaces it.
            self._remove(parent, layer, "overwritten")
            self._put(parent, _DIR, 0, layer)
        for p in reversed(missing):
            self._put(p, _DIR, 0, layer)

    def _put(self, path: str, is_dir: bool, size: int, layer: int) -> None:
        self.nodes[path] = _Node(is_dir, size, layer)
        if is_dir:
            self.children.setdefault(path, set())
        self.children[posixpath.dirname(path)].add(path)

    # -- layers ----------------------------------------------------------------

    def add_layer(self, entries: Iterable[tuple[str, EntryType, int]]) -> LayerStats:
        """Apply one layer's entries (``path``, type, size) on top of the previous ones."""
        index = len(self.layers)
        items: dict[str, tuple[bool, int]] = {}
        whiteouts: list[str] = []
        opaques: list[str] = []
        size = count = 0
        for path, etype, esize in entries:
            if not path:
                continue
            count += 1
            name = posixpath.basename(path)
            if name.startswith(WHITEOUT_PREFIX):
                parent = posixpath.dirname(path)
                if name == OPAQUE_WHITEOUT:
                    opaques.append(parent)
                else:
                    whiteouts.append(posixpath.join(parent, name[len(WHITEOUT_PREFIX) :]))
                continue
            is_dir = etype is EntryType.DIR
            nbytes = esize if etype is EntryType.FILE else 0
            size += nbytes
            previous = items.get(path)
            if previous is not None and not previous[0]:
                # The same path twice in one tar: the first copy is shadowed.
                self._waste(path, previous[1], index, index, "overwritten")
            items[path] = (is_dir, nbytes)
        self.total += size
        added = modified = removed = removed_bytes = 0
        # Paths with entries of their own below them are not leaves in this layer.
        inner: set[str] = set()
        for path in (*items, *whiteouts, *(posixpath.join(d, OPAQUE_WHITEOUT) for d in opaques)):
            parent = posixpath.dirname(path)
            while parent and parent not in inner:
                inner.add(parent)
                parent = posixpath.dirname(parent)
        touched = set(items) | inner
        for d in opaques:
            for child in sorted(self.children.get(d, ())):
                hidden = self._subtree_size(child)
                if child not in touched:
                    self._occur(child, hidden)
                files, nbytes = self._remove(
                    child, index, "overwritten" if child in touched else "deleted"
                )
                removed += files
                removed_bytes += nbytes
        for target in whiteouts:
            hidden = self._subtree_size(target)
            if target in self.nodes:
                self._occur(target, hidden)
            files, nbytes = self._remove(target, index, "deleted")
            removed += files
            removed_bytes += nbytes
        for path in sorted(items):
            is_dir, nbytes = items[path]
            if not is_dir or path not in inner:
                self._occur(path, nbytes)
            existing = self.nodes.get(path)
            if existing is None:
                self._ensure_parents(path, index)
                self._put(path, is_dir, nbytes, index)
                if not is_dir:
                    added += 1
                continue
            if existing.is_dir and is_dir:
                continue
            if existing.is_dir:
                files, nb = self._remove(path, index, "overwritten")
                removed += files
                removed_bytes += nb
            else:
                self._waste(path, existing.size, existing.layer, index, "overwritten")
                self.children[posixpath.dirname(path)].discard(path)
                del self.nodes[path]
            self._put(path, is_dir, nbytes, index)
            if not is_dir:
                modified += 1
        stats = LayerStats(index, size, count, added, modified, removed, removed_bytes)
        self.layers.append(stats)
        return stats

    # -- results -------------------------------------------------------------------

    def final_size(self) -> int:
        """Bytes of regular files visible in the final filesystem."""
        return sum(n.size for n in self.nodes.values() if not n.is_dir)

    def final_files(self) -> int:
        return sum(1 for n in self.nodes.values() if not n.is_dir)

    def efficiency(self) -> tuple[float, int]:
        """dive's score and dive's wasted-bytes figure."""
        minimum = cumulative = dive_waste = 0
        for cum, low, count in self.occurrences.values():
            minimum += low
            cumulative += cum
            if count >= 2:
                dive_waste += cum
        score = 1.0 if cumulative == 0 else minimum / cumulative
        return score, dive_waste

    def waste_items(self) -> list[WasteItem]:
        """The largest wasted copies, biggest first."""
        return [it for _, _, it in sorted(self.items, key=lambda t: (-t[0], t[1]))]

    def waste_groups(self) -> list[WasteGroup]:
        """Waste per (adding layer, removing layer), most bytes first."""
        return sorted(self.groups.values(), key=lambda g: (-g.bytes, g.added, g.removed))

    def biggest_files(self, n: int) -> list[tuple[str, int, int]]:
        """``(path, size, layer)`` of the ``n`` largest files of the final filesystem (ties by path)."""
        best = heapq.nsmallest(
            n,
            (
                (-node.size, path, node.layer)
                for path, node in self.nodes.items()
                # symlinks, devices and empty files hold no bytes: never "biggest"
                if not node.is_dir and node.size > 0
            ),
        )
        return [("/" + p, -s, layer) for s, p, layer in best]

    def biggest_dirs(self, n: int) -> list[tuple[str, int, int]]:
        """``(path, bytes, files)`` of the ``n`` directories holding the most bytes."""
        sizes: dict[str, list[int]] = {}
        for path, node in self.nodes.items():
            if node.is_dir or not node.size:
                continue
            parent = posixpath.dirname(path)
            while True:
                rec = sizes.get(parent)
                if rec is None:
                    rec = sizes[parent] = [0, 0]
                rec[0] += node.size
                rec[1] += 1
                if not parent:
                    break
                parent = posixpath.dirname(parent)
        sizes.pop("", None)
        best = heapq.nsmallest(n, ((-v[0], k, v[1]) for k, v in sizes.items()))
        return [("/" + p, -s, files) for s, p, files in best]
