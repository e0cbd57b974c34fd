"""Which layer and Dockerfile line brought a finding in, and what would fix it.

When forklift built the image, each layer's history entry names its Dockerfile
line; the layers before the first such entry came from the base image
(``FROM``). A finding in a base layer is fixed by a newer base image; one
installed by a build step is fixed in that step.
"""

from __future__ import annotations

from collections.abc import Sequence

from forklift.sbom.model import LayerRef
from forklift.scan.findings import Vulnerability


def base_layer_count(layers: Sequence[LayerRef]) -> int | None:
    """How many bottom layers come from the base image (None if the history does not say)."""
    for i, layer in enumerate(layers):
        if layer.line is not None:
            return i
    return None


def in_base_image(layer: LayerRef | None, layers: Sequence[LayerRef]) -> bool | None:
    """True if ``layer`` came from the base image (None when unknown)."""
    if layer is None:
        return None
    base = base_layer_count(layers)
    if base is None:
        return None
    return layer.index < base


def step(layer: LayerRef | None) -> str:
    """``Dockerfile:12 RUN apt-get install ...`` or ``layer 3 (RUN ...)``."""
    if layer is None:
        return ""
    instr = " ".join(layer.created_by.split())
    for prefix in ("/bin/sh -c #(nop) ", "/bin/sh -c "):
        if instr.startswith(prefix):
            instr = ("" if "#(nop)" in prefix else "RUN ") + instr[len(prefix) :]
    instr = instr.removesuffix(" # buildkit")
    if instr.startswith("RUN /bin/sh -c "):  # BuildKit's form of a shell-form RUN
        instr = "RUN " + instr[len("RUN /bin/sh -c ") :]
    if len(instr) > 80:
        instr = instr[:77] + "..."
    if layer.line is not None:
        return f"{layer.dockerfile or 'Dockerfile'}:{layer.line} {instr}".strip()
    return f"layer {layer.index}" + (f" ({instr})" if instr else "")


def vulnerability_fix(v: Vulnerability, layers: Sequence[LayerRef]) -> str:
    """One sentence: what to change so this finding goes away."""
    base = in_base_image(v.package.layer, layers)
    if not v.fixed:
        what = v.status.value.replace("_", " ")
        if base:
            return f"no fix yet ({what}); it comes from the base image"
        return f"no fix yet ({what})"
    target = f"{v.package.name} >= {v.fixed.split(', ')[0]}"
    if base:
        return f"upgrade the base image (FROM): {v.package.name} comes from it; fixed in {v.fixed}"
    if v.package.layer is not None and v.package.layer.line is not None:
        return f"install {target} in the step at {v.package.layer.dockerfile or 'Dockerfile'}:{v.package.layer.line}"
    return f"upgrade to {target}"
