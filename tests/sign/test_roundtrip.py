"""sign / verify / attest through the CLI against forklift serve and CNCF distribution 2.8.2.

What the registries hold afterwards is read with httpx; the format check at the
end decrypts a key forklift wrote and verifies a signature forklift stored with
plain hashlib / pynacl / cryptography calls written from the format description.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.secret import SecretBox

from forklift.store.store import Store
from tests.helpers import assert_no_traceback, run_cli
from tests.registry_server.servers import Server

from .images import OCI_MANIFEST, add_image

PW = {"COSIGN_PASSWORD": "correct horse"}


def keypair(tmp_path: Path, name: str, password: str = "correct horse") -> tuple[Path, Path]:
    prefix = tmp_path / name
    run_cli(
        "key",
        "generate",
        "--output-key-prefix",
        str(prefix),
        env={"COSIGN_PASSWORD": password},
        check=True,
    )
    return Path(f"{prefix}.key"), Path(f"{prefix}.pub")


def push_image(server: Server, repo: str, seed: str = "one") -> tuple[str, str]:
    """A small image pushed to ``server``; (reference, manifest digest)."""
    store = Store.open()
    doc = add_image(store, f"example.com/{seed}:1", seed)
    ref = f"{server.host}/{repo}:1"
    run_cli("push", f"example.com/{seed}:1", ref, check=True)
    return ref, doc.digest


def sig_manifest(server: Server, repo: str, digest: str) -> dict:
    tag = "sha256-" + digest.split(":")[1] + ".sig"
    resp = httpx.get(f"{server.url}/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_sign_verify_second_signature_either_key(any_registry: Server, tmp_path: Path) -> None:
    k1, p1 = keypair(tmp_path, "one")
    k2, p2 = keypair(tmp_path, "two")
    _, p3 = keypair(tmp_path, "three")
    repo = f"signed/{any_registry.kind}"
    ref, digest = push_image(any_registry, repo)
    # unsigned: refused with a one-line reason
    result = run_cli("verify", "--key", str(p1), ref)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "no signatures found" in result.stderr
    signed = run_cli("sign", "--key", str(k1), "-a", "team=blue", ref, env=PW, check=True)
    assert digest in signed.stderr  # signing a tag signs the digest it names, and says so
    run_cli("verify", "--key", str(p1), ref, check=True)
    run_cli("sign", "--key", str(k2), ref, env=PW, check=True)
    run_cli("sign", "--key", str(k2), ref, env=PW, check=True)
    layers = sig_manifest(any_registry, repo, digest)["layers"]
    # appended, not replaced; a signature made twice is stored twice only if its bytes differ
    assert len(layers) >= 2
    assert {layer["mediaType"] for layer in layers} == {
        "application/vnd.dev.cosign.simplesigning.v1+json"
    }
    for pub in (p1, p2):
        out = run_cli("verify", "--key", str(pub), "--format", "json", ref, check=True)
        payloads = json.loads(out.stdout)
        assert all(p["critical"]["image"]["docker-manifest-digest"] == digest for p in payloads)
        assert all(p["critical"]["identity"]["docker-reference"] == ref for p in payloads)
    refused = run_cli("verify", "--key", str(p3), ref)
    assert refused.returncode == 1 and "does not verify with the given key" in refused.stderr
    # annotations
    run_cli("verify", "--key", str(p1), "-a", "team=blue", ref, check=True)
    wrong = run_cli("verify", "--key", str(p1), "-a", "team=red", ref)
    assert wrong.returncode == 1 and "annotation team" in wrong.stderr
    # exact identity
    run_cli("verify", "--key", str(p1), "--identity", ref, ref, check=True)
    other = run_cli("verify", "--key", str(p1), "--identity", ref.replace(":1", ":2"), ref)
    assert other.returncode == 1 and "not for" in other.stderr


def test_referrers_layout_is_found_alone(any_registry: Server, tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "k")
    repo = f"referrers/{any_registry.kind}"
    ref, digest = push_image(any_registry, repo, "two")
    run_cli("sign", "--key", str(key), "--referrers-only", ref, env=PW, check=True)
    tags = httpx.get(f"{any_registry.url}/v2/{repo}/tags/list").json()["tags"]
    assert f"sha256-{digest.split(':')[1]}.sig" not in tags
    run_cli("verify", "--key", str(pub), ref, check=True)


def test_sign_in_the_store_then_push_carries_it(forklift_registry: Server, tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "k")
    store = Store.open()
    add_image(store, f"{forklift_registry.host}/local/app:1", "three")
    name = f"{forklift_registry.host}/local/app:1"
    out = run_cli("sign", "--key", str(key), name, env=PW, check=True)
    assert "local store" in out.stderr
    run_cli("verify", "--key", str(pub), f"store:{name}", check=True)
    run_cli("push", name, check=True)
    run_cli("verify", "--key", str(pub), f"docker://{name}", check=True)


def test_copy_between_registries_carries_signatures_and_attestations(
    forklift_registry: Server, distribution: Server, tmp_path: Path
) -> None:
    key, pub = keypair(tmp_path, "k")
    ref, digest = push_image(forklift_registry, "carry/src", "four")
    run_cli("sign", "--key", str(key), ref, env=PW, check=True)
    predicate = tmp_path / "provenance.json"
    predicate.write_text(
        json.dumps({"buildType": "https://example.com/test", "builder": {"id": "t"}})
    )
    run_cli(
        "attest",
        "--key",
        str(key),
        "--predicate",
        str(predicate),
        "--type",
        "slsaprovenance1",
        ref,
        env=PW,
        check=True,
    )
    dst = f"{distribution.host}/carry/dst:1"
    run_cli("copy", f"docker://{ref}", f"docker://{dst}", check=True)
    # the signature layout changes nothing about the identity: it names the source repository
    run_cli("verify", "--key", str(pub), "--identity", ref, dst, check=True)
    printed = run_cli(
        "verify-attestation",
        "--key",
        str(pub),
        "--type",
        "slsaprovenance1",
        "--format",
        "predicate",
        dst,
        check=True,
    )
    assert json.loads(printed.stdout) == [
        {"buildType": "https://example.com/test", "builder": {"id": "t"}}
    ]
    tags = httpx.get(f"{distribution.url}/v2/carry/dst/tags/list").json()["tags"]
    hexd = digest.split(":")[1]
    assert {f"sha256-{hexd}.sig", f"sha256-{hexd}.att", f"sha256-{hexd}"} <= set(tags)
    # a different predicate type is not accepted in its place
    other = run_cli("verify-attestation", "--key", str(pub), "--type", "cyclonedx", dst)
    assert other.returncode == 1 and "predicate" in other.stderr


def test_key_and_signature_follow_the_format_description(
    forklift_registry: Server, tmp_path: Path
) -> None:
    """Decrypt forklift's key and check its stored signature with the primitives alone."""
    key, pub = keypair(tmp_path, "fmt", password="s3cret")
    ref, digest = push_image(forklift_registry, "format/check", "five")
    run_cli("sign", "--key", str(key), ref, env={"COSIGN_PASSWORD": "s3cret"}, check=True)

    lines = key.read_text().strip().splitlines()
    assert lines[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"
    assert lines[-1] == "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----"
    doc = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert doc["kdf"]["name"] == "scrypt" and doc["cipher"]["name"] == "nacl/secretbox"
    params = doc["kdf"]["params"]
    assert (params["r"], params["p"]) == (8, 1) and 1 << 15 <= params["N"] <= 1 << 17
    salt = base64.b64decode(doc["kdf"]["salt"])
    nonce = base64.b64decode(doc["cipher"]["nonce"])
    assert len(salt) == 32 and len(nonce) == 24
    box_key = hashlib.scrypt(
        b"s3cret", salt=salt, n=params["N"], r=8, p=1, dklen=32, maxmem=256 * 1024 * 1024
    )
    der = SecretBox(box_key).decrypt(base64.b64decode(doc["ciphertext"]), nonce)
    private = serialization.load_der_private_key(der, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1"
    public = serialization.load_pem_public_key(pub.read_bytes())
    assert public.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]

    layer = sig_manifest(forklift_registry, "format/check", digest)["layers"][0]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    body = httpx.get(f"{forklift_registry.url}/v2/format/check/blobs/{layer['digest']}").content
    assert "sha256:" + hashlib.sha256(body).hexdigest() == layer["digest"]
    payload = json.loads(body)
    assert payload["critical"]["type"] == "cosign container image signature"
    assert payload["critical"]["image"]["docker-manifest-digest"] == digest
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    public.verify(signature, body, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr, call-arg]


@pytest.mark.parametrize("password", [None, ""])
def test_password_sources(tmp_path: Path, password: str | None) -> None:
    if password is None:
        # no COSIGN_PASSWORD and no terminal: refuse instead of hanging
        result = run_cli("key", "generate", "--output-key-prefix", str(tmp_path / "k"))
        assert result.returncode == 2 and "COSIGN_PASSWORD" in result.stderr
        assert_no_traceback(result)
        return
    # an empty COSIGN_PASSWORD is a password
    keypair(tmp_path, "empty", password="")
    store = Store.open()
    add_image(store, "example.com/pw:1", "six")
    run_cli(
        "sign",
        "--key",
        str(tmp_path / "empty.key"),
        "example.com/pw:1",
        env={"COSIGN_PASSWORD": ""},
        check=True,
    )
    wrong = run_cli(
        "sign",
        "--key",
        str(tmp_path / "empty.key"),
        "example.com/pw:1",
        env={"COSIGN_PASSWORD": "x"},
    )
    assert wrong.returncode == 1 and "wrong password" in wrong.stderr
