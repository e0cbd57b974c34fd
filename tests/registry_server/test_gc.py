"""Garbage collection: what it removes, what it must keep, and safety while clients push and pull."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx

from forklift.registry.server.fsck import check_root
from tests.registry_server.oci_client import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Reg,
    desc,
    digest,
    dumps,
    random_blob,
)
from tests.registry_server.servers import FORKLIFT, REPO, Server, start_forklift


def gc_cli(root: Path, *args: str) -> dict:
    out = subprocess.run(
        [*FORKLIFT, "serve", "gc", "--root", str(root), "--json", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _files(root: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (root / "blobs" / "sha256").rglob("*") if p.is_file()}


def _image(reg: Reg, name: str, tag: str | None, shared: bytes) -> tuple[str, list[str]]:
    config = dumps({"architecture": "amd64", "os": "linux", "id": random_blob(4).hex()})
    own = random_blob(2000)
    for b in (config, own, shared):
        reg.push_blob(name, b)
    m = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(OCI_CONFIG, config),
            "layers": [desc(OCI_LAYER, shared), desc(OCI_LAYER, own)],
        }
    )
    assert reg.push_manifest(name, tag or digest(m), m).status_code == 201
    return digest(m), [digest(config), digest(own)]


def test_gc_removes_only_unreferenced_blobs(registry: Server) -> None:
    reg = Reg(registry.url)
    shared = random_blob(5000)
    a, a_only = _image(reg, "gc/app", "a", shared)
    b, b_only = _image(reg, "gc/app", "b", shared)
    stray = random_blob(100)  # uploaded, never referenced
    reg.push_blob("gc/app", stray)
    assert reg.req("DELETE", f"/v2/gc/app/manifests/{a}").status_code == 202

    # a long grace period protects everything recent
    assert gc_cli(registry.root, "--now")["blobs"] == []

    dry = gc_cli(registry.root, "--dry-run", "--grace", "0")
    assert set(dry["blobs"]) == {*a_only, digest(stray)}
    assert dry["manifests"] == [a]
    assert set(a_only) <= _files(registry.root)  # a dry run removes nothing

    done = gc_cli(registry.root, "--now", "--grace", "0")
    assert set(done["blobs"]) == {*a_only, digest(stray)}
    files = _files(registry.root)
    assert not set(a_only) & files
    assert {digest(shared), *b_only} <= files
    r = reg.req("GET", "/v2/gc/app/manifests/b", headers={"accept": OCI_MANIFEST})
    assert digest(r.content) == b
    assert reg.req("GET", f"/v2/gc/app/blobs/{digest(shared)}").content == shared
    assert check_root(registry.root) == []
    reg.close()


def test_gc_untagged_keeps_index_children_and_referrers(registry: Server) -> None:
    reg = Reg(registry.url)
    shared = random_blob(300)
    old, old_only = _image(reg, "gc/tags", "latest", shared)
    new, _ = _image(reg, "gc/tags", "latest", shared)  # re-tag: `old` is now untagged
    child, child_blobs = _image(reg, "gc/tags", None, shared)
    index = dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc(OCI_MANIFEST, b"x")]}
    )
    body = reg.req(
        "GET", f"/v2/gc/tags/manifests/{child}", headers={"accept": OCI_MANIFEST}
    ).content
    index = dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc(OCI_MANIFEST, body)]}
    )
    assert reg.push_manifest("gc/tags", "multi", index, OCI_INDEX).status_code == 201
    reg.push_blob("gc/tags", b"{}")
    sig = random_blob(50)
    reg.push_blob("gc/tags", sig)
    referrer = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": desc(OCI_EMPTY, b"{}"),
            "layers": [desc("application/octet-stream", sig)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": new, "size": 1},
        }
    )
    assert reg.push_manifest("gc/tags", digest(referrer), referrer).status_code == 201

    report = gc_cli(registry.root, "--now", "--grace", "0", "--untagged")
    assert report["untagged_manifests"] == [f"gc/tags@{old}"]
    assert set(old_only) <= set(report["blobs"])
    for kept in (new, child, digest(referrer)):
        assert (
            reg.req(
                "HEAD",
                f"/v2/gc/tags/manifests/{kept}",
                headers={"accept": f"{OCI_MANIFEST},{OCI_INDEX}"},
            ).status_code
            == 200
        )
    assert reg.req("HEAD", f"/v2/gc/tags/manifests/{old}").status_code == 404
    assert {*child_blobs, digest(sig)} <= _files(registry.root)
    assert check_root(registry.root) == []
    reg.close()


def test_abandoned_uploads_expire(registry: Server) -> None:
    reg = Reg(registry.url)
    loc = reg.location(reg.req("POST", "/v2/gc/up/blobs/uploads/"))
    assert reg.http.patch(loc, content=b"partial").status_code == 202
    upload_id = loc.rsplit("/", 1)[1]
    assert gc_cli(registry.root, "--now")["uploads"] == []  # still fresh
    assert gc_cli(registry.root, "--now", "--upload-ttl", "0")["uploads"] == [upload_id]
    assert not (registry.root / "uploads" / upload_id).exists()
    assert reg.http.get(loc).status_code == 404
    reg.close()


def test_gc_while_clients_push_and_pull(tmp_path: Path) -> None:
    """GC runs in a loop (background every 0.2 s with a 2 s grace, plus the CLI) while clients
    push, re-push (HEAD then skip), delete and pull; nothing referenced is ever lost."""
    root = tmp_path / "root"
    server = start_forklift(root, "--gc-interval", "0.2", "--gc-grace", "2s", "--access-log", "")
    shared = random_blob(20_000)
    stop = threading.Event()
    keep: dict[str, str] = {}
    errors: list[str] = []
    stats = {"pushes": 0, "pulls": 0, "gc": 0}

    def pusher(w: int) -> None:
        with httpx.Client(base_url=server.url, timeout=20) as c:
            n = 0
            while not stop.is_set():
                name = f"soak/w{w}"
                config = dumps({"os": "linux", "architecture": "amd64", "n": f"{w}-{n}"})
                own = random_blob(30_000)
                for b in (config, shared, own):
                    if c.head(f"/v2/{name}/blobs/{digest(b)}").status_code == 200:
                        continue  # the client skips what the registry has: GC must not race it
                    loc = c.post(f"/v2/{name}/blobs/uploads/").headers["location"]
                    r = c.put(loc, params={"digest": digest(b)}, content=b)
                    if r.status_code != 201:
                        errors.append(f"upload {r.status_code} {r.text}")
                m = dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": desc(OCI_CONFIG, config),
                        "layers": [desc(OCI_LAYER, shared), desc(OCI_LAYER, own)],
                    }
                )
                tag = f"keep{n}" if n % 2 == 0 else f"tmp{n}"
                r = c.put(
                    f"/v2/{name}/manifests/{tag}", content=m, headers={"content-type": OCI_MANIFEST}
                )
                if r.status_code != 201:
                    errors.append(f"manifest {r.status_code} {r.text}")
                    continue
                stats["pushes"] += 1
                if tag.startswith("keep"):
                    keep[f"{name}:{tag}"] = digest(m)
                else:
                    c.delete(f"/v2/{name}/manifests/{digest(m)}")
                n += 1

    def puller() -> None:
        with httpx.Client(base_url=server.url, timeout=20) as c:
            while not stop.is_set():
                if not keep:
                    time.sleep(0.05)
                    continue
                ref, want = random.choice(list(keep.items()))
                name, tag = ref.split(":")
                r = c.get(f"/v2/{name}/manifests/{tag}", headers={"accept": OCI_MANIFEST})
                if r.status_code != 200 or digest(r.content) != want:
                    errors.append(f"pull {ref}: {r.status_code}")
                    continue
                for layer in r.json()["layers"]:
                    b = c.get(f"/v2/{name}/blobs/{layer['digest']}")
                    if b.status_code != 200 or digest(b.content) != layer["digest"]:
                        errors.append(f"blob {layer['digest']}: {b.status_code}")
                stats["pulls"] += 1

    def cli_gc() -> None:
        while not stop.is_set():
            gc_cli(root, "--now", "--grace", "2s")
            stats["gc"] += 1

    threads = [threading.Thread(target=pusher, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=puller) for _ in range(2)]
    threads.append(threading.Thread(target=cli_gc))
    try:
        for t in threads:
            t.start()
        time.sleep(20)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    try:
        assert errors == []
        assert stats["pushes"] > 20 and stats["pulls"] > 20 and stats["gc"] > 3, stats
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "forklift_registry_gc_runs_total 0" not in metrics
        # tmp images were deleted and their own blobs collected; every kept tag is whole
        time.sleep(2.1)
        gc_cli(root, "--now", "--grace", "2s")
        assert check_root(root) == []
        with httpx.Client(base_url=server.url, timeout=20) as c:
            for ref, want in keep.items():
                name, tag = ref.split(":")
                r = c.get(f"/v2/{name}/manifests/{tag}", headers={"accept": OCI_MANIFEST})
                assert digest(r.content) == want
    finally:
        server.stop()


def test_gc_untagged_never_deletes_a_manifest_re_pushed_under_a_new_tag(tmp_path: Path) -> None:
    """GC with untagged collection races clients that untag a manifest and push it again.

    Each client owns a repository holding an "anchor" image (tagged for good,
    so the blobs stay) and a manifest M that it pushes under tag t<i>, reads
    back, then untags, making M fair game for GC, over and over. GC runs in a
    loop with no grace period, in another thread with its own database
    connection, as ``forklift serve gc`` would. A push that answered 201 must
    leave its tag readable until the client itself deletes it. Before the fix,
    GC picked M while untagged and deleted it, with the new tag, afterwards.
    """
    from forklift.registry.server.gc import collect
    from forklift.registry.server.metadata import SQLiteMetadata
    from forklift.registry.server.storage import FilesystemStorage

    root = tmp_path / "root"
    server = start_forklift(root, "--gc-interval", "0", "--access-log", "")
    stop = threading.Event()
    collected: list[str] = []
    gc_errors: list[BaseException] = []

    def gc_loop() -> None:
        meta = SQLiteMetadata(root / "metadata.db")
        storage = FilesystemStorage(root)
        try:
            while not stop.is_set():
                report = collect(storage, meta, grace=0, upload_ttl=3600, untagged=True)
                collected.extend(report.untagged_manifests)
        except BaseException as exc:
            gc_errors.append(exc)
        finally:
            meta.close()

    lost: list[str] = []
    # anchors first, before GC runs: their blobs stay referenced throughout
    cycled = {f"race/w{w}": _anchor(server, f"race/w{w}") for w in range(4)}
    threads = [threading.Thread(target=gc_loop)]
    for name, manifest in cycled.items():
        threads.append(
            threading.Thread(target=_untag_and_push, args=(server, name, manifest, lost))
        )
    try:
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join(300)
    finally:
        stop.set()
        threads[0].join(60)
        server.stop()
    assert gc_errors == []
    assert lost == []
    # GC did take the untagged manifests between pushes, many times
    assert len(collected) > 50, len(collected)
    assert check_root(root) == []


def _anchor(server: Server, name: str) -> bytes:
    """Blobs plus a tagged "anchor" image in ``name``; returns another manifest of the blobs."""
    config = dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    layer = random_blob(3000)

    def image(note: str) -> bytes:
        return dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc(OCI_CONFIG, config),
                "layers": [desc(OCI_LAYER, layer)],
                "annotations": {"note": note},
            }
        )

    reg = Reg(server.url)
    try:
        reg.push_blob(name, config)
        reg.push_blob(name, layer)
        assert reg.push_manifest(name, "anchor", image("anchor")).status_code == 201
    finally:
        reg.close()
    return image("cycled")


def _untag_and_push(
    server: Server, name: str, manifest: bytes, lost: list[str], rounds: int = 150
) -> None:
    reg = Reg(server.url)
    try:
        for i in range(rounds):
            tag = f"t{i}"
            r = reg.push_manifest(name, tag, manifest)
            if r.status_code != 201:
                lost.append(f"{name}:{tag} push {r.status_code} {r.text}")
                continue
            got = reg.req("GET", f"/v2/{name}/manifests/{tag}")
            if got.status_code != 200 or got.content != manifest:
                lost.append(f"{name}:{tag} read back {got.status_code}")
            reg.req("DELETE", f"/v2/{name}/manifests/{tag}")
    except BaseException as exc:
        lost.append(f"{name}: {exc!r}")
    finally:
        reg.close()
