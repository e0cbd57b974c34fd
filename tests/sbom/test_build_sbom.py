"""``forklift build --sbom``: the document is attached to the built image, pushed with it, listed
by the registry's referrers API (``forklift serve``), and valid."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from forklift.store.store import Store
from tests.helpers import run_cli
from tests.registry_server.servers import Server, start_forklift
from tests.sbom.validate import cyclonedx_schema_errors, spdx_tools_check

pytestmark = pytest.mark.root

STATUS = "Package: busybox-static\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.35.0-4+b3\n"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Server]:
    server = start_forklift(tmp_path / "registry", "--gc-interval", "0", "--access-log", "")
    yield server
    server.stop()


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "status").write_text(STATUS)
    (ctx / "METADATA").write_text("Metadata-Version: 2.1\nName: tool\nVersion: 0.3.0\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox:latest\n"
        "COPY status /var/lib/dpkg/status\n"
        "RUN mkdir -p /usr/lib/python3/site-packages/tool-0.3.0.dist-info\n"
        "COPY METADATA /usr/lib/python3/site-packages/tool-0.3.0.dist-info/METADATA\n"
    )
    return ctx


def test_build_attaches_an_spdx_sbom_that_push_carries(
    busybox_image: str, registry: Server, tmp_path: Path
) -> None:
    name = f"{registry.host}/sbom/app:1"
    out = tmp_path / "app.spdx.json"
    r = run_cli("build", "--progress", "plain", "--sbom", "--sbom-output", str(out), "-t", name,
                str(_context(tmp_path)))  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Attached an SBOM (spdx-json, 2 packages" in r.stderr
    store = Store.open()
    image = store.resolve(name)
    (att,) = [
        a for a in store.referrers(image.digest) if a.artifact_type == "application/spdx+json"
    ]
    manifest = store.get_manifest(att.digest)
    document = store.read_blob(manifest.layers[0].digest)  # type: ignore[union-attr]
    assert document == out.read_bytes()
    _, messages = spdx_tools_check(out)
    assert messages == []
    doc = json.loads(document)
    purls = {ref["referenceLocator"] for p in doc["packages"] for ref in p.get("externalRefs", [])}
    assert {
        "pkg:pypi/tool@0.3.0",
        "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bb3?arch=amd64",
    } <= purls
    layer_of_tool = next(p for p in doc["packages"] if p["name"] == "tool")
    assert any(a["comment"] == "forklift:layer:dockerfile=Dockerfile:4"
               for a in layer_of_tool["annotations"])  # fmt: skip
    # pushed: the registry lists the SBOM among the image's referrers
    run_cli("push", name, check=True)
    url = f"{registry.url}/v2/sbom/app/referrers/{image.digest}"
    listing = httpx.get(url).json()
    types = {m.get("artifactType") for m in listing["manifests"]}
    assert "application/spdx+json" in types


def test_build_cyclonedx_and_bad_combinations(busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    r = run_cli("build", "--progress", "plain", "--sbom", "--sbom-format", "cyclonedx-json",
                "-t", "app:cdx", str(ctx))  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    store = Store.open()
    image = store.resolve("app:cdx")
    (att,) = store.referrers(image.digest, "application/vnd.cyclonedx+json")
    manifest = store.get_manifest(att.digest)
    doc = json.loads(store.read_blob(manifest.layers[0].digest))  # type: ignore[union-attr]
    assert cyclonedx_schema_errors(doc) == []
    assert doc["metadata"]["component"]["name"] == "app:cdx"
    bad = run_cli("build", "--sbom-output", str(tmp_path / "x.json"), str(ctx))
    assert bad.returncode != 0 and "--sbom-output goes with --sbom" in bad.stderr
    oci = run_cli("build", "--sbom", "--output", f"type=oci,dest={tmp_path / 'out'}", str(ctx))
    assert oci.returncode != 0 and "needs the image in the store" in oci.stderr
