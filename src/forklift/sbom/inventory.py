"""``inventory(image)``: every package in an image, from one streamed pass over its layers.

1. The layers stream bottom-up through a :class:`~forklift.sbom.fsview.FinalView`
   (digests verified as they are read); the analyzers parse the files they
   asked for.
2. The distribution comes from ``os-release``; the OS package databases report
   their packages and, with them, the files the package manager owns.
3. The language analyzers report theirs, except packages whose metadata file
   the OS package manager owns (Debian's ``python3-*`` are dpkg packages, not
   PyPI ones a second time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from forklift.analyze.source import ImageLayers, open_image, verified_blob
from forklift.layers import open_layer
from forklift.layers.tarformat import TarReader
from forklift.oci.descriptor import Descriptor
from forklift.oci.platform import Platform
from forklift.sbom.analyzers import default_analyzers
from forklift.sbom.analyzers.base import Context, PackageAnalyzer
from forklift.sbom.analyzers.osrelease import OSReleaseAnalyzer
from forklift.sbom.fsview import Analyzer, FinalView, LayerFeeder, walk_rootfs
from forklift.sbom.model import Inventory, LayerRef, Package
from forklift.transports import ImageSource

Progress = Callable[[int, int], None]


def _stream_layer(src: ImageSource, desc: Descriptor, apply: Callable[[TarReader], None]) -> None:
    """Run ``apply`` over one layer's tar stream; the blob's digest is checked to the end."""
    blob = verified_blob(src, desc)
    try:
        label = f"layer {desc.digest}"
        reader = TarReader(open_layer(blob, label), label)  # type: ignore[arg-type]
        apply(reader)
        reader.drain()
        blob.verify_rest()
    finally:
        close = getattr(blob._raw, "close", None)
        if close is not None:
            close()


def layer_refs(image: ImageLayers) -> tuple[LayerRef, ...]:
    """Each layer with its digests and the history step that made it."""
    diff_ids = image.config.diff_ids if image.config is not None else ()
    out = []
    for i, desc in enumerate(image.layers):
        step = image.steps[i]
        out.append(
            LayerRef(
                index=i,
                digest=str(desc.digest),
                diff_id=str(diff_ids[i]) if i < len(diff_ids) else "",
                created_by=step.created_by,
                dockerfile=step.dockerfile if step.line is not None else "",
                line=step.line,
            )
        )
    return tuple(out)


def scan_layers(
    src: ImageSource,
    image: ImageLayers,
    view: FinalView,
    progress: Progress | None = None,
) -> None:
    """Stream every layer of ``image`` bottom-up through ``view``."""
    for i, desc in enumerate(image.layers):
        if progress is not None:
            progress(i, len(image.layers))
        feeder = LayerFeeder(view, i)
        _stream_layer(src, desc, lambda r, f=feeder: f.feed(r.headers(), r.read))  # type: ignore[misc]
        if feeder.pending:  # hard links to files the first pass did not keep
            _stream_layer(src, desc, lambda r, f=feeder: f.resolve(r.headers(), r.read))  # type: ignore[misc]
    if progress is not None:
        progress(len(image.layers), len(image.layers))


def collect(
    view: FinalView,
    layers: Sequence[LayerRef] = (),
    *,
    with_files: bool = True,
) -> tuple[Context, list[Package]]:
    """Turn what the view kept into packages (OS databases first, then languages)."""
    analyzers = view.dispatch.analyzers
    osr = next((a for a in analyzers if isinstance(a, OSReleaseAnalyzer)), None)
    found_os = view.found(osr) if osr is not None else []
    links = OSReleaseAnalyzer.links(found_os)

    def canonical(path: str) -> str:
        top, sep, rest = path[1:].partition("/")
        target = links.get(top)
        return f"/{target}{sep}{rest}" if target is not None else path

    ctx = Context(
        os=OSReleaseAnalyzer.os_info(found_os),
        layers=tuple(layers),
        canonical=canonical,
        warnings=list(view.warnings),
    )
    packages: list[Package] = []
    owned: set[str] = set()
    pkg_analyzers = [a for a in analyzers if isinstance(a, PackageAnalyzer)]
    for a in pkg_analyzers:
        if a.os_level:
            for p in a.packages(view.found(a), ctx):
                packages.append(p)
                owned.update(canonical(f) for f in p.files)
    ctx.owned = owned
    for a in pkg_analyzers:
        if not a.os_level:
            for p in a.packages(view.found(a), ctx):
                # "/app/x.jar!/BOOT-INF/lib/y.jar": the outer file decides
                if p.location and ctx.is_owned(p.location.partition("!/")[0]):
                    continue  # installed by the OS package manager: reported as that package
                packages.append(p)
    if not with_files:
        packages = [_without_files(p) for p in packages]
    unique: dict[tuple[str, str, str, str], Package] = {}
    for p in packages:
        unique.setdefault(p.key, p)
    return ctx, sorted(unique.values(), key=lambda p: p.key)


def _without_files(p: Package) -> Package:
    from dataclasses import replace

    return replace(p, files=()) if p.files else p


def inventory_source(
    src: ImageSource,
    image: ImageLayers,
    *,
    analyzers: Sequence[Analyzer] | None = None,
    with_files: bool = True,
    progress: Progress | None = None,
) -> Inventory:
    """The inventory of an already opened image (see :func:`inventory`)."""
    view = FinalView(analyzers if analyzers is not None else default_analyzers())
    scan_layers(src, image, view, progress)
    return image_inventory(image, view, with_files=with_files)


def image_inventory(image: ImageLayers, view: FinalView, *, with_files: bool) -> Inventory:
    """The inventory of ``image`` once every layer has been fed to ``view``."""
    refs = layer_refs(image)
    ctx, packages = collect(view, refs, with_files=with_files)
    return Inventory(
        target=image.name,
        digest=str(image.digest),
        config_digest=image.config_digest,
        platform=image.platform,
        os=ctx.os,
        layers=refs,
        packages=tuple(packages),
        warnings=tuple(ctx.warnings),
    )


def inventory(
    image: str,
    *,
    platform: Platform | str | None = None,
    store: object | None = None,
    with_files: bool = True,
    progress: Progress | None = None,
) -> Inventory:
    """Every package in ``image`` (a store name, ``oci:``, ``oci-archive:``,
    ``docker-archive:`` or ``docker://`` name), read without unpacking it.

    ``platform`` picks one image of a multi-platform index (default: this host's).
    ``with_files=False`` leaves out the files each package owns (smaller output).
    """
    with open_image(image, platform=platform, store=store) as (src, layers):
        return inventory_source(src, layers, with_files=with_files, progress=progress)


def inventory_rootfs(
    directory: str,
    *,
    analyzers: Sequence[Analyzer] | None = None,
    with_files: bool = True,
) -> Inventory:
    """Every package in a root filesystem directory (symlinks are not followed)."""
    import os

    if not os.path.isdir(directory):
        from forklift.errors import NotFound

        raise NotFound(f"{directory}: no such directory")
    view = FinalView(analyzers if analyzers is not None else default_analyzers())
    walk_rootfs(directory, view)
    ctx, packages = collect(view, (), with_files=with_files)
    return Inventory(
        target=os.path.abspath(directory),
        os=ctx.os,
        packages=tuple(packages),
        warnings=tuple(ctx.warnings),
    )
