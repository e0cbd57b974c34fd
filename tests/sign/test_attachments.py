"""Artifacts attached to images: kept by the store, carried by push/copy/pull, listed remotely.

Attached manifests are written by hand here (``tests.sign.images``); what the
registries hold afterwards is read with plain HTTP (httpx), not forklift's client.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from forklift.errors import NotFound, UsageError
from forklift.oci.digest import Digest
from forklift.store.store import Store
from tests.helpers import run_cli
from tests.registry_server.servers import Server

from .images import add_image, put, referrer_doc, sig_doc

SPDX = "application/spdx+json"


def _attach_both(store: Store, name: str = "example.com/app:1") -> tuple[Digest, str, str]:
    image = add_image(store, name)
    subject = Digest.parse(image.digest)
    sig = sig_doc(b'{"critical":{"image":{}}}', "c2lnMQ==")
    sbom = referrer_doc(image, SPDX, b'{"spdxVersion":"SPDX-2.3"}')
    with store.writing():
        put(store, sig)
        put(store, sbom)
    store.attach(subject, sig.raw, tag="sig")
    store.attach(subject, sbom.raw)
    return subject, sig.digest, sbom.digest


def test_store_keeps_attachments_with_their_image() -> None:
    store = Store.open()
    subject, sig, sbom = _attach_both(store)
    found = {str(a.digest): a for a in store.referrers(subject)}
    assert set(found) == {sig, sbom}
    assert found[sig].tag == "sig" and found[sbom].tag is None
    assert found[sbom].artifact_type == SPDX
    assert found[sbom].descriptor.annotations == {"org.example.note": "attached"}
    assert [str(a.digest) for a in store.referrers(subject, SPDX)] == [sbom]
    # attachments are not images
    assert [str(i.digest) for i in store.images()] == [str(subject)]
    # prune keeps them while the image lives
    store.prune()
    assert len(store.referrers(subject)) == 2
    assert store.has_blob(Digest.parse(sbom))
    # removing the image removes what is attached to it, blobs included
    store.remove("example.com/app:1")
    assert store.referrers(subject) == []
    assert not store.has_blob(Digest.parse(sig))
    assert not store.has_blob(Digest.parse(sbom))
    index = json.loads((store.home / "index.json").read_text())
    assert index["manifests"] == []


def test_a_second_signature_is_appended_not_replacing() -> None:
    store = Store.open()
    image = add_image(store, "example.com/app:1")
    subject = Digest.parse(image.digest)
    first = sig_doc(b'{"n":1}', "Zmlyc3Q=")
    second = sig_doc(b'{"n":2}', "c2Vjb25k")
    with store.writing():
        put(store, first)
        put(store, second)
    store.attach(subject, first.raw, tag="sig")
    store.attach(subject, second.raw, tag="sig")
    store.attach(subject, second.raw, tag="sig")  # again: nothing new
    (only,) = store.referrers(subject)
    layers = json.loads(store.read_blob(only.digest))["layers"]
    assert [x["annotations"]["dev.cosignproject.cosign/signature"] for x in layers] == [
        "Zmlyc3Q=",
        "c2Vjb25k",
    ]


def test_attach_refuses_what_does_not_fit() -> None:
    store = Store.open()
    image = add_image(store, "example.com/app:1")
    other = add_image(store, "example.com/other:1", seed="two")
    sbom = referrer_doc(other, SPDX, b"{}")
    with store.writing():
        put(store, sbom)
    with pytest.raises(UsageError, match="refers to"):
        store.attach(Digest.parse(image.digest), sbom.raw)
    sig = sig_doc(b"{}", "eA==")
    with pytest.raises(NotFound, match="not stored"):
        store.attach(Digest.parse(image.digest), sig.raw, tag="sig")
    with store.writing():
        put(store, sig)
    with pytest.raises(UsageError, match="tag-layout"):
        store.attach(Digest.parse(image.digest), sig.raw)


def test_copy_to_an_oci_layout_and_back_carries_attachments(tmp_path: Path) -> None:
    store = Store.open()
    subject, sig, sbom = _attach_both(store)
    run_cli("copy", "example.com/app:1", f"oci:{tmp_path}/layout:app", check=True)
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    assert {m["digest"] for m in index["manifests"]} == {str(subject), sig, sbom}
    # the layout is still one image for readers that name none
    run_cli("copy", f"oci:{tmp_path}/layout", "example.com/back:1", check=True)
    other = Store(tmp_path / "second-home")
    run_cli(
        "copy",
        f"oci:{tmp_path}/layout:app",
        "example.com/back:2",
        env={"FORKLIFT_HOME": str(other.home)},
        check=True,
    )
    assert {str(a.digest) for a in other.referrers(subject)} == {sig, sbom}


def test_archives_cannot_hold_attachments_and_copy_says_nothing_breaks(tmp_path: Path) -> None:
    store = Store.open()
    _attach_both(store)
    result = run_cli("copy", "example.com/app:1", f"oci-archive:{tmp_path}/a.tar", check=True)
    assert result.returncode == 0


def _tags(server: Server, repo: str) -> set[str]:
    return set(httpx.get(f"{server.url}/v2/{repo}/tags/list").json()["tags"])


def _manifest(server: Server, repo: str, ref: str, accept: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v2/{repo}/manifests/{ref}", headers={"Accept": accept})


def test_push_carries_attachments_to_each_kind_of_registry(any_registry: Server) -> None:
    store = Store.open()
    subject, sig, sbom = _attach_both(store)
    repo = f"attach/{any_registry.kind}-push"
    run_cli("push", "example.com/app:1", f"{any_registry.host}/{repo}:1", check=True)
    hexd = subject.hex
    tags = _tags(any_registry, repo)
    assert f"sha256-{hexd}.sig" in tags
    got = _manifest(
        any_registry, repo, f"sha256-{hexd}.sig", "application/vnd.oci.image.manifest.v1+json"
    )
    assert Digest.of(got.content) == Digest.parse(sig)
    referrers = httpx.get(f"{any_registry.url}/v2/{repo}/referrers/{subject}")
    if any_registry.kind == "forklift":
        # the referrers API lists the SBOM; no fallback tag was needed
        assert referrers.status_code == 200
        assert [m["digest"] for m in referrers.json()["manifests"]] == [sbom]
        assert f"sha256-{hexd}" not in tags
    else:
        # distribution 2.8.2 has no referrers API: the tag schema's index lists it
        assert referrers.status_code == 404
        index = _manifest(
            any_registry, repo, f"sha256-{hexd}", "application/vnd.oci.image.index.v1+json"
        )
        listed = index.json()["manifests"]
        assert [m["digest"] for m in listed] == [sbom]
        assert listed[0]["artifactType"] == SPDX


def test_copy_between_registries_and_pull_carry_attachments(
    forklift_registry: Server, distribution: Server, tmp_path: Path
) -> None:
    store = Store.open()
    subject, sig, sbom = _attach_both(store)
    run_cli("push", "example.com/app:1", f"{forklift_registry.host}/attach/copy:1", check=True)
    run_cli(
        "copy",
        f"docker://{forklift_registry.host}/attach/copy:1",
        f"docker://{distribution.host}/attach/copied:1",
        check=True,
    )
    assert f"sha256-{subject.hex}.sig" in _tags(distribution, "attach/copied")
    # and back, from the tag fallback to the referrers API
    run_cli(
        "copy",
        f"docker://{distribution.host}/attach/copied:1",
        f"docker://{forklift_registry.host}/attach/back:1",
        check=True,
    )
    referrers = httpx.get(f"{forklift_registry.url}/v2/attach/back/referrers/{subject}").json()
    assert [m["digest"] for m in referrers["manifests"]] == [sbom]
    from forklift.registry.client.images import pull_image

    fresh = Store(tmp_path / "fresh")
    pulled = pull_image(f"{distribution.host}/attach/copied:1", fresh, referrers=True)
    assert {str(a.digest) for a in pulled.copy.attachments} == {sig, sbom}
    assert {str(a.digest) for a in fresh.referrers(subject)} == {sig, sbom}
    # the registry client lists referrers with the fallback
    from forklift.registry.client import RegistryClient

    with RegistryClient(distribution.host) as client:
        listed = client.referrers("attach/copied", subject)
        assert listed.from_fallback_tag and [str(d.digest) for d in listed.manifests] == [sbom]
