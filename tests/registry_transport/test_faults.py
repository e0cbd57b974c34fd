"""Faults under the CLI verbs, through phase 1's proxies: broken connections resume,
flipped bytes are refused with nothing stored, 5xx is retried, --timeout bounds it all,
and registry errors are one line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import assert_no_traceback
from tests.registry_client.proxies import DOWN, UP, Cut, Flip, HttpFaultProxy, Rule, TcpProxy
from tests.registry_client.servers import http_get

from .conftest import Fk, load_into_store, store_blob_files
from .images import SampleImage, make_test_image


@pytest.fixture
def big_image() -> SampleImage:
    """Layers large enough that a cut or a flip at 600 kB lands inside one."""
    return make_test_image((1_500_000, 1_100_000), seed=51)


def _push(fk: Fk, tmp_path: Path, image: SampleImage, ref: str) -> None:
    load_into_store(tmp_path, "src:1", [image])
    fk("push", "-q", "src:1", ref, check=True)


def test_pull_resumes_after_connections_are_cut(
    registry, fk: Fk, repo_name: str, tmp_path: Path, big_image: SampleImage
) -> None:
    _push(fk, tmp_path, big_image, f"{registry.host}/{repo_name}:1")
    proxy = TcpProxy(registry.port, cut=Cut(DOWN, after=600_000, times=2))
    home = tmp_path / "pull-home"
    try:
        out = fk("pull", "-q", f"{proxy.host}/{repo_name}:1", env={"FORKLIFT_HOME": str(home)})
    finally:
        proxy.stop()
    assert out.returncode == 0, out.stderr
    assert proxy.cuts_done == 2
    stored = store_blob_files(home)
    for blob in big_image.image.layers:
        assert stored[blob.digest] == blob.data
    assert fk("fsck", env={"FORKLIFT_HOME": str(home)}).returncode == 0


def test_flipped_byte_is_a_digest_mismatch_and_nothing_is_stored(
    registry, fk: Fk, repo_name: str, tmp_path: Path, big_image: SampleImage
) -> None:
    _push(fk, tmp_path, big_image, f"{registry.host}/{repo_name}:1")
    proxy = TcpProxy(registry.port, flip=Flip(offset=600_000))
    home = tmp_path / "pull-home"
    env = {"FORKLIFT_HOME": str(home)}
    try:
        out = fk("pull", f"{proxy.host}/{repo_name}:1", env=env)
    finally:
        proxy.stop()
    assert out.returncode != 0
    assert_no_traceback(out)
    assert "digest mismatch for layer sha256:" in out.stderr
    assert f"{proxy.host}/{repo_name} sent different bytes" in out.stderr
    # nothing half-written is visible: no image, no bad layer, no partial file
    assert json.loads(fk("images", "--format", "json", env=env).stdout) == []
    stored = store_blob_files(home)
    for blob in big_image.image.layers:
        assert stored.get(blob.digest, blob.data) == blob.data
    partial = [p for p in home.rglob("*") if p.is_file() and p.name.endswith(".partial")]
    assert partial == []
    assert fk("fsck", env=env).returncode == 0


def test_push_resumes_after_the_upload_is_cut(
    registry, fk: Fk, repo_name: str, tmp_path: Path, big_image: SampleImage
) -> None:
    load_into_store(tmp_path, "src:1", [big_image])
    proxy = TcpProxy(registry.port, cut=Cut(UP, after=800_000))
    try:
        out = fk("push", "-q", "src:1", f"{proxy.host}/{repo_name}:1")
    finally:
        proxy.stop()
    assert out.returncode == 0, out.stderr
    assert proxy.cuts_done == 1
    for blob in big_image.image.layers:
        assert http_get(f"{registry.url}/v2/{repo_name}/blobs/{blob.digest}") == (200, blob.data)


def test_server_errors_are_retried(
    registry, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    _push(fk, tmp_path, small_image, f"{registry.host}/{repo_name}:1")
    proxy = HttpFaultProxy(
        registry.port,
        [Rule("GET", "/manifests/", 500, times=2), Rule("GET", "/blobs/sha256", 503, times=2)],
    )
    try:
        out = fk("pull", "-q", f"{proxy.host}/{repo_name}:1",
                 env={"FORKLIFT_HOME": str(tmp_path / "h")})  # fmt: skip
    finally:
        proxy.stop()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == small_image.manifest_digest
    assert [r.hits for r in proxy.rules] == [2, 2]


def test_timeout_bounds_the_whole_operation(
    registry, fk: Fk, repo_name: str, tmp_path: Path, small_image: SampleImage
) -> None:
    _push(fk, tmp_path, small_image, f"{registry.host}/{repo_name}:1")
    # the registry keeps asking to come back in 30 s: only --timeout ends the wait
    proxy = HttpFaultProxy(
        registry.port, [Rule("GET", "/manifests/", 503, times=1000, headers={"Retry-After": "30"})]
    )
    try:
        start = time.monotonic()
        out = fk("pull", "--timeout", "2", f"{proxy.host}/{repo_name}:1")
        elapsed = time.monotonic() - start
    finally:
        proxy.stop()
    assert out.returncode != 0
    assert_no_traceback(out)
    assert "timed out after 2 s" in out.stderr
    assert elapsed < 12


def test_registry_errors_are_one_line(htpasswd_registry, fk: Fk, repo_name: str) -> None:
    host = htpasswd_registry.host
    out = fk("pull", f"{host}/{repo_name}:1")
    assert out.returncode != 0
    assert_no_traceback(out)
    assert out.stderr.splitlines()[0] == (
        f"Error: authentication required for {host}: run forklift login {host}"
    )
    fk("login", "-u", "alice", "--password-stdin", host, input=b"wonderland", check=True)
    missing = fk("pull", f"{host}/{repo_name}:nope")
    assert missing.stderr.splitlines() == [f"Error: {repo_name}:nope not found in {host}"]
    tags = fk("tags", f"{host}/{repo_name}")
    assert tags.returncode != 0 and len(tags.stderr.splitlines()) <= 2
    bad = fk("push", "no-such-image:1", f"{host}/{repo_name}:1")
    assert bad.returncode != 0 and bad.stderr.startswith("Error: image no-such-image:1 not in")
