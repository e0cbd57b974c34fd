"""``docker://``: the inventory streams from a registry, fetching only the chosen platform's blobs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from forklift.sbom import inventory
from tests.helpers import run_cli
from tests.registry_server.servers import Server, start_forklift


def _layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    return gzip.compress(raw.getvalue(), mtime=0), diff_id


def multi_arch_layout(root: Path) -> tuple[str, dict[str, list[str]]]:
    """An OCI layout with an index of two images; returns its name and each arch's blob digests."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(data: bytes) -> dict[str, object]:
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return {"digest": "sha256:" + h, "size": len(data)}

    entries, owned = [], {}
    for arch, package in (("amd64", "only-on-amd64"), ("arm64", "only-on-arm64")):
        status = f"Package: {package}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: 1.0\n"
        base, base_id = _layer({"etc/os-release": b"ID=debian\nVERSION_ID=12\n"})
        pkgs, pkgs_id = _layer(
            {"var/lib/dpkg/status": status.encode(), f"{arch}.txt": arch.encode()}
        )
        layers = [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(b)}
            for b in (base, pkgs)
        ]
        config = put(
            json.dumps(
                {
                    "architecture": arch,
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [base_id, pkgs_id]},
                }
            ).encode()
        )
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": layers,
            }
        ).encode()
        m = put(manifest)
        owned[arch] = [str(config["digest"]), str(layers[1]["digest"])]
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **m,
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": entries,
            }
        ).encode()
    )
    (root / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        **index,
                        "annotations": {"org.opencontainers.image.ref.name": "multi"},
                    }
                ],
            }
        )
    )
    return f"oci:{root}:multi", owned  # fmt: skip


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Server]:
    log = tmp_path / "access.log"
    server = start_forklift(tmp_path / "registry", "--gc-interval", "0", "--access-log", str(log))
    server.extra["log"] = log
    yield server
    server.stop()


def test_docker_transport_fetches_only_the_platform_it_reads(registry: Server, tmp_path: Path,
                                                             home: Path) -> None:  # fmt: skip
    name, owned = multi_arch_layout(tmp_path / "layout")
    remote = f"docker://{registry.host}/multi/app:1"
    run_cli("copy", "--all-platforms", "-q", name, remote, check=True)
    log = Path(str(registry.extra["log"]))
    before = len(log.read_text().splitlines())
    inv = inventory(remote, platform="linux/arm64")
    assert [(p.name, p.arch) for p in inv.packages] == [("only-on-arm64", "arm64")]
    assert inv.platform == "linux/arm64"

    def fetched() -> set[str]:
        requests = [json.loads(line) for line in log.read_text().splitlines()[before:]]
        return {
            r["path"].rsplit("/", 1)[1]
            for r in requests
            if "/blobs/" in r["path"] and r["method"] == "GET"
        }

    # the server logs a request after its response is sent: wait for the last lines
    deadline = time.monotonic() + 10
    while not set(owned["arm64"]) <= fetched() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(owned["arm64"]) <= fetched()
    assert not fetched() & set(owned["amd64"])  # nothing of the other platform was downloaded
    cli = run_cli("sbom", remote, "--platform", "linux/amd64", "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert [p["name"] for p in json.loads(cli.stdout)["packages"]] == ["only-on-amd64"]
