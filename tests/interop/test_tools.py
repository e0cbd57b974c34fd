"""Interoperability with the real tools: skopeo, umoci and podman read what forklift writes and back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from forklift.store import OciLayout, Store


def sh(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_podman_loads_and_runs_what_forklift_saves(
    busybox_image: str, tmp_path: Path, cli, podman
) -> None:
    archive = tmp_path / "bb.tar"
    assert cli("save", "-o", str(archive), busybox_image).returncode == 0
    loaded = podman("load", "-i", str(archive))
    assert "busybox:latest" in loaded.stdout + loaded.stderr
    out = podman("run", "--rm", "--network", "none", "busybox:latest", "echo", "hello from busybox")
    assert out.stdout.strip() == "hello from busybox"


def test_skopeo_round_trip_oci_and_docker_archive(busybox_image: str, tmp_path: Path, cli) -> None:
    # forklift -> OCI layout -> skopeo -> docker-archive -> forklift
    assert cli("copy", "-q", busybox_image, f"oci:{tmp_path / 'layout'}:bb").returncode == 0
    sh(
        "skopeo",
        "copy",
        "-q",
        f"oci:{tmp_path / 'layout'}:bb",
        f"docker-archive:{tmp_path / 'sk.tar'}:sk/bb:1",
    )
    result = cli("load", "-i", str(tmp_path / "sk.tar"))
    assert "Loaded image: sk/bb:1" in result.stdout, result.stderr
    store = Store.open()
    ours, theirs = store.resolve(busybox_image), store.resolve("sk/bb:1")
    assert ours.config and theirs.config
    assert ours.config.diff_ids == theirs.config.diff_ids  # same filesystem content
    # forklift docker-archive -> skopeo -> OCI layout: skopeo reads our archive
    assert cli("save", "-o", str(tmp_path / "ours.tar"), busybox_image).returncode == 0
    sh(
        "skopeo",
        "copy",
        "-q",
        f"docker-archive:{tmp_path / 'ours.tar'}",
        f"oci:{tmp_path / 'back'}:x",
    )
    cfg = json.loads(sh("skopeo", "inspect", "--config", f"oci:{tmp_path / 'back'}:x").stdout)
    assert cfg["rootfs"]["diff_ids"] == [str(d) for d in ours.config.diff_ids]


def test_manifest_digest_survives_a_skopeo_written_layout(
    busybox_image: str, tmp_path: Path, cli
) -> None:
    assert cli("save", "-o", str(tmp_path / "a.tar"), busybox_image).returncode == 0
    sh("skopeo", "copy", "-q", f"docker-archive:{tmp_path / 'a.tar'}", f"oci:{tmp_path / 'sk'}:v1")
    [entry] = OciLayout(tmp_path / "sk").read_index().manifests
    assert cli("copy", "-q", f"oci:{tmp_path / 'sk'}:v1", "fromskopeo:v1").returncode == 0
    assert Store.open().resolve("fromskopeo:v1").digest == entry.digest
    # and out again: the same bytes, the same digest
    assert cli("copy", "-q", "fromskopeo:v1", f"oci:{tmp_path / 'again'}:v1").returncode == 0
    [again] = OciLayout(tmp_path / "again").read_index().manifests
    assert again.digest == entry.digest


def test_skopeo_and_umoci_read_the_store_itself(
    busybox_image: str, home: Path, tmp_path: Path
) -> None:
    ref = "docker.io/library/busybox:latest"
    inspected = json.loads(sh("skopeo", "inspect", f"oci:{home}:{ref}").stdout)
    assert inspected["Digest"] == str(Store.open().resolve(busybox_image).digest)
    names = sh("umoci", "ls", "--layout", str(home)).stdout.split()
    assert ref in names
    sh("umoci", "unpack", "--image", f"{home}:{ref}", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle" / "rootfs" / "bin" / "busybox").is_file()
    assert (tmp_path / "bundle" / "rootfs" / "bin" / "sh").is_symlink()


def test_oci_archive_is_read_by_skopeo(busybox_image: str, tmp_path: Path, cli) -> None:
    out = tmp_path / "img.oci.tar"
    assert cli("save", "--format", "oci", "-o", str(out), busybox_image).returncode == 0
    inspected = json.loads(sh("skopeo", "inspect", f"oci-archive:{out}:latest").stdout)
    assert inspected["Digest"] == str(Store.open().resolve(busybox_image).digest)
