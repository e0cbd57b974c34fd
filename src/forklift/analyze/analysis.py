"""``analyze_image``: stream every layer of an image through the stacker and report.

Each layer blob is read once, as a stream: its digest is verified while it is
read (a mismatch is an error, never a silently wrong report), it is
decompressed on the fly (gzip, zstd or plain), and only the tar headers are
looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from forklift.analyze.source import ImageLayers, Step, open_image, verified_blob
from forklift.analyze.stack import LayerStats, Stacker
from forklift.layers import open_layer
from forklift.layers.entry import EntryType
from forklift.layers.tarformat import TarReader
from forklift.oci.descriptor import Descriptor
from forklift.oci.platform import Platform
from forklift.transports import ImageSource

_CACHE_DIRS = (
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/apk",
    "var/cache/yum",
    "var/cache/dnf",
    "root/.cache",
    "root/.npm",
    "usr/local/share/.cache",
    "tmp",
)


@dataclass(frozen=True)
class LayerReport:
    """One layer: the step that made it and what it did to the filesystem."""

    index: int
    descriptor: Descriptor
    step: Step
    stats: LayerStats


@dataclass(frozen=True)
class WasteReport:
    """Bytes one layer added that a later one removed, with the fix."""

    added: LayerReport
    removed: LayerReport
    kind: str
    bytes: int
    files: int
    examples: tuple[tuple[str, int], ...]
    fix: str


@dataclass(frozen=True)
class ItemReport:
    """One wasted file copy."""

    path: str
    size: int
    kind: str
    added: LayerReport
    removed: LayerReport


@dataclass(frozen=True)
class Analysis:
    """The result of analysing one image. Sizes are content bytes (see :mod:`.stack`)."""

    image: ImageLayers
    layers: tuple[LayerReport, ...]
    total_size: int
    user_size: int
    final_size: int
    final_files: int
    wasted_bytes: int
    efficiency: float
    dive_wasted_bytes: int
    waste: tuple[WasteReport, ...]
    items: tuple[ItemReport, ...]
    biggest_files: tuple[tuple[str, int, int], ...]
    biggest_dirs: tuple[tuple[str, int, int], ...]
    paths: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def user_wasted_percent(self) -> float:
        """Wasted bytes over the bytes added on top of the base layer (dive's ratio, 0..)."""
        return self.wasted_bytes / self.user_size if self.user_size else 0.0


def _entries(reader: TarReader) -> Iterator[tuple[str, EntryType, int]]:
    for entry in reader:
        yield entry.path, entry.type, entry.size


def fix_for(added: LayerReport, removed: LayerReport, examples: list[tuple[str, int]]) -> str:
    """What to change so the bytes never land in a layer."""
    a, r = added.step.instruction, removed.step.instruction
    where_a = f"line {added.step.line}" if added.step.line else f"layer {added.index}"
    paths = [p.lstrip("/") for p, _ in examples]
    if paths and all(p.startswith(_CACHE_DIRS) for p in paths):
        return (
            f"clean the cache in the same RUN that creates it ({where_a}), "
            "or use RUN --mount=type=cache for it"
        )
    if a.upper().startswith(("COPY", "ADD")) and r.upper().startswith("RUN"):
        return (
            f"do not copy these files in ({where_a}): narrow the COPY or add them to "
            ".dockerignore, or build in a builder stage and COPY --from only the result"
        )
    if removed.index == added.index:
        return f"the layer at {where_a} holds the same path twice; write it once"
    return (
        f"remove the files in the same RUN that creates them ({where_a}), "
        "or use a builder stage and COPY --from only what the image needs"
    )


def analyze_source(
    src: ImageSource,
    image: ImageLayers,
    *,
    top: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> Analysis:
    """Analyse an opened image (see :func:`analyze_image`)."""
    stacker = Stacker(top=top)
    reports: list[LayerReport] = []
    for i, desc in enumerate(image.layers):
        if progress is not None:
            progress(i, len(image.layers))
        blob = verified_blob(src, desc)
        try:
            stream = open_layer(blob, f"layer {desc.digest}")  # type: ignore[arg-type]
            reader = TarReader(stream, f"layer {desc.digest}")
            stats = stacker.add_layer(_entries(reader))
            reader.drain()  # read to the end of the blob: this checks its digest
            blob.verify_rest()
        finally:
            close = getattr(blob._raw, "close", None)
            if close is not None:
                close()
        reports.append(LayerReport(i, desc, image.steps[i], stats))
    score, dive_waste = stacker.efficiency()
    waste: list[WasteReport] = []
    for g in stacker.waste_groups():
        examples = sorted(((p, s) for s, p in g.largest), key=lambda t: -t[1])
        examples = [("/" + p, s) for p, s in examples]
        waste.append(
            WasteReport(
                reports[g.added],
                reports[g.removed],
                g.kind,
                g.bytes,
                g.files,
                tuple(examples),
                fix_for(reports[g.added], reports[g.removed], examples),
            )
        )
    items = tuple(
        ItemReport(it.path, it.size, it.kind, reports[it.added], reports[it.removed])
        for it in stacker.waste_items()
    )
    total = stacker.total
    base = reports[0].stats.size if reports else 0
    return Analysis(
        image=image,
        layers=tuple(reports),
        total_size=total,
        user_size=total - base,
        final_size=stacker.final_size(),
        final_files=stacker.final_files(),
        wasted_bytes=stacker.wasted,
        efficiency=score,
        dive_wasted_bytes=dive_waste,
        waste=tuple(waste),
        items=items,
        biggest_files=tuple(stacker.biggest_files(top)),
        biggest_dirs=tuple(stacker.biggest_dirs(top)),
        paths=len(stacker.nodes) - 1,
    )


def analyze_image(
    name: str,
    *,
    platform: Platform | str | None = None,
    top: int = 20,
    store: object | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Analysis:
    """Analyse the image ``name`` (store name, ``oci:``, ``oci-archive:``,
    ``docker-archive:`` or ``docker://``): per-layer changes, waste, efficiency,
    biggest files and directories. ``top`` bounds the lists.
    """
    with open_image(name, platform=platform, store=store) as (src, image):
        return analyze_source(src, image, top=top, progress=progress)
