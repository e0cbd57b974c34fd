#!/usr/bin/env python3
"""One registry transfer with forklift's client library, as a process the bench can time.

The push/pull CLI verbs arrive with the docker:// transport (phase 2); until
then the bench drives ``forklift.registry.client`` directly, four blobs at a
time (the default concurrency), exactly as the copy engine will.

Usage:
  registry_client_worker.py push  HOST REPO:TAG LAYOUT_DIR
  registry_client_worker.py pull  HOST REPO:TAG OUT_DIR
  registry_client_worker.py mount HOST SRC_REPO:TAG DST_REPO:TAG
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from forklift.oci import Digest
from forklift.registry.client import RegistryClient, bounded_map


def push(client: RegistryClient, repo: str, tag: str, layout: Path) -> None:
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    blobs = layout / "blobs" / "sha256"
    manifest = (blobs / desc["digest"].split(":", 1)[1]).read_bytes()
    doc = json.loads(manifest)

    def one(d: dict[str, object]) -> str:
        digest = Digest.parse(str(d["digest"]))
        path = blobs / digest.hex
        return client.push_blob(repo, digest, int(d["size"]), lambda: path.open("rb")).how  # type: ignore[call-overload]

    bounded_map(one, [doc["config"], *doc["layers"]], limit=client.options.concurrency)
    client.put_manifest(repo, tag, manifest, desc["mediaType"])


def pull(client: RegistryClient, repo: str, tag: str, out: Path) -> None:
    got = client.get_manifest(repo, tag)
    doc = json.loads(got.data)
    out.mkdir(parents=True, exist_ok=True)

    def one(d: dict[str, object]) -> int:
        digest = Digest.parse(str(d["digest"]))
        return client.download_blob(repo, digest, out / digest.hex, size=int(d["size"]))  # type: ignore[call-overload]

    bounded_map(one, [doc["config"], *doc["layers"]], limit=client.options.concurrency)
    (out / "manifest.json").write_bytes(got.data)


def mount(client: RegistryClient, src: str, dst: str, tag: str) -> None:
    got = client.get_manifest(src, tag)
    doc = json.loads(got.data)

    def one(d: dict[str, object]) -> str:
        digest = Digest.parse(str(d["digest"]))

        def never() -> object:
            raise AssertionError("mount-copy must not upload")

        return client.push_blob(dst, digest, int(d["size"]), never, mount_from=(src,)).how  # type: ignore[arg-type, call-overload]

    bounded_map(one, [doc["config"], *doc["layers"]], limit=client.options.concurrency)
    client.put_manifest(dst, tag, got.data, got.media_type)


def main() -> None:
    action, host, ref = sys.argv[1:4]
    repo, _, tag = ref.partition(":")
    with RegistryClient(host) as client:
        if action == "push":
            push(client, repo, tag, Path(sys.argv[4]))
        elif action == "pull":
            pull(client, repo, tag, Path(sys.argv[4]))
        elif action == "mount":
            dst_repo, _, _ = sys.argv[4].partition(":")
            mount(client, repo, dst_repo, tag)
        else:
            raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
