"""Which layer and Dockerfile line a finding came from, and what the fix says."""

from __future__ import annotations

from forklift.sbom.model import Ecosystem, LayerRef, Package
from forklift.scan.attribution import base_layer_count, in_base_image, step, vulnerability_fix
from forklift.scan.db.model import Severity, Status
from forklift.scan.findings import Vulnerability

LAYERS = (
    LayerRef(0, "sha256:a", created_by="/bin/sh -c #(nop) ADD file:123 in / "),
    LayerRef(
        1,
        "sha256:b",
        created_by="RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit",
    ),
    LayerRef(
        2,
        "sha256:c",
        created_by="RUN /bin/sh -c pip install requests==2.20.0",
        dockerfile="Dockerfile",
        line=4,
    ),
    LayerRef(3, "sha256:d", created_by="COPY . /app", dockerfile="build/Containerfile", line=7),
)


def vuln(layer: LayerRef, fixed: str = "2.31.0", status: Status = Status.FIXED) -> Vulnerability:
    pkg = Package("requests", "2.20.0", Ecosystem.PYPI, "pkg:pypi/requests@2.20.0", layer=layer)
    return Vulnerability("CVE-1", (), pkg, "2.20.0", fixed, status, Severity.HIGH, "ghsa")


def test_base_layers_are_those_before_the_first_dockerfile_line() -> None:
    assert base_layer_count(LAYERS) == 2
    assert [in_base_image(layer, LAYERS) for layer in LAYERS] == [True, True, False, False]
    assert base_layer_count(LAYERS[:2]) is None and in_base_image(LAYERS[0], LAYERS[:2]) is None


def test_steps_and_fixes() -> None:
    assert step(LAYERS[2]) == "Dockerfile:4 RUN pip install requests==2.20.0"
    assert step(LAYERS[3]) == "build/Containerfile:7 COPY . /app"
    assert step(LAYERS[0]).startswith("layer 0 (ADD file:123")
    assert vulnerability_fix(vuln(LAYERS[1]), LAYERS).startswith("upgrade the base image (FROM)")
    assert (
        vulnerability_fix(vuln(LAYERS[2]), LAYERS)
        == "install requests >= 2.31.0 in the step at Dockerfile:4"
    )
    assert (
        vulnerability_fix(vuln(LAYERS[2], "", Status.WILL_NOT_FIX), LAYERS)
        == "no fix yet (will not fix)"
    )
    assert "base image" in vulnerability_fix(vuln(LAYERS[0], "", Status.AFFECTED), LAYERS)
