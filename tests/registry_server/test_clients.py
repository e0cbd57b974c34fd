"""Real clients against `forklift serve`: skopeo (copy, inspect, list-tags, delete) and podman."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.registry_server.conftest import need
from tests.registry_server.images import make_layout
from tests.registry_server.servers import Server


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([need("skopeo"), *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def _index(layout: Path) -> dict:
    return json.loads((layout / "index.json").read_text())


def _blob_files(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def test_skopeo_copy_in_and_out(registry: Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    digests = make_layout(src, layers=4, layer_size=256 * 1024, seed=1)
    ref = f"docker://{registry.host}/team/app:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{src}:latest", ref)

    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{out}:copied")
    # byte-identical round trip: same manifest digest, same blobs
    assert _index(out)["manifests"][0]["digest"] == digests["manifest"]
    assert _blob_files(out) == _blob_files(src)

    info = json.loads(skopeo("inspect", "--tls-verify=false", ref).stdout)
    assert info["Digest"] == digests["manifest"]
    assert len(info["Layers"]) == 4
    assert info["Architecture"] == "amd64"


def test_skopeo_list_tags_and_delete(registry: Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_layout(src, layers=2, seed=2)
    for tag in ("one", "two", "three"):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"oci:{src}:latest",
            f"docker://{registry.host}/lt/app:{tag}",
        )
    tags = json.loads(
        skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/lt/app").stdout
    )
    assert sorted(tags["Tags"]) == ["one", "three", "two"]

    # skopeo delete resolves the tag and deletes the manifest by digest: all its tags go
    skopeo("delete", "--tls-verify=false", f"docker://{registry.host}/lt/app:two")
    gone = skopeo(
        "inspect", "--tls-verify=false", f"docker://{registry.host}/lt/app:one", check=False
    )
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr.lower()


def test_skopeo_multi_arch_index_round_trip(registry: Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    digests = make_layout(src, layers=2, seed=3, archs=("amd64", "arm64", "ppc64le"))
    ref = f"docker://{registry.host}/multi/app:all"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{src}:latest", ref)
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout)
    assert [m["platform"]["architecture"] for m in raw["manifests"]] == [
        "amd64",
        "arm64",
        "ppc64le",
    ]

    out = tmp_path / "out"
    skopeo("copy", "--all", "--src-tls-verify=false", ref, f"oci:{out}:back")
    assert _index(out)["manifests"][0]["digest"] == digests["index"]
    assert _blob_files(out) == _blob_files(src)
    # one architecture on its own
    arm = json.loads(
        skopeo("inspect", "--tls-verify=false", "--override-arch", "arm64", ref).stdout
    )
    assert arm["Architecture"] == "arm64"
    assert arm["Digest"] == digests["index"]  # skopeo reports the digest the tag names
    raw_arm = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        f"docker://{registry.host}/multi/app@{digests['arm64']}",
    )
    assert json.loads(raw_arm.stdout)["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_skopeo_copy_between_repositories_mounts_blobs(registry: Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_layout(src, layers=3, seed=4)
    skopeo(
        "copy", "--dest-tls-verify=false", f"oci:{src}:latest", f"docker://{registry.host}/a/one:x"
    )
    blobs_before = sorted((registry.root / "blobs" / "sha256").rglob("*"))
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{registry.host}/a/one:x",
        f"docker://{registry.host}/b/two:y",
    )
    # the second repository shares the stored blobs: nothing new on disk
    assert sorted((registry.root / "blobs" / "sha256").rglob("*")) == blobs_before
    log = registry.log_text()
    assert "mount=" not in log or '"status":201' in log
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/b/two:y", f"oci:{out}:z")
    assert _blob_files(out) == _blob_files(src)


@pytest.fixture
def podman_dirs(tmp_path: Path):
    # podman refuses a runroot longer than 50 characters: use a short private dir
    runroot = Path(tempfile.mkdtemp(prefix="fkpm"))
    yield tmp_path / "podman-root", runroot
    shutil.rmtree(runroot, ignore_errors=True)


def _podman(dirs: tuple[Path, Path], *args: str) -> subprocess.CompletedProcess[str]:
    root, runroot = dirs
    cmd = [
        need("podman"),
        "--root",
        str(root),
        "--runroot",
        str(runroot),
        "--runtime",
        "runc",
        "--storage-driver",
        "vfs",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@pytest.mark.root
def test_podman_pull_and_push(
    registry: Server, tmp_path: Path, podman_dirs: tuple[Path, Path]
) -> None:
    src = tmp_path / "src"
    make_layout(src, layers=2, seed=5)
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{src}:latest",
        f"docker://{registry.host}/pm/img:in",
    )
    _podman(podman_dirs, "pull", "--tls-verify=false", f"{registry.host}/pm/img:in")
    _podman(podman_dirs, "tag", f"{registry.host}/pm/img:in", f"{registry.host}/pm/pushed:out")
    _podman(podman_dirs, "push", "--tls-verify=false", f"{registry.host}/pm/pushed:out")
    info = json.loads(
        skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/pm/pushed:out").stdout
    )
    assert len(info["Layers"]) == 2
    # podman pushed the same layer content (it may recompress, so compare via config diff_ids)
    cfg = json.loads(
        skopeo(
            "inspect", "--config", "--tls-verify=false", f"docker://{registry.host}/pm/pushed:out"
        ).stdout
    )
    orig = json.loads(
        skopeo(
            "inspect", "--config", "--tls-verify=false", f"docker://{registry.host}/pm/img:in"
        ).stdout
    )
    assert cfg["rootfs"]["diff_ids"] == orig["rootfs"]["diff_ids"]
