"""Interop with upstream skopeo 1.19 built with sigstore (../shared/tools/skopeo-sigstore).

skopeo signs while pushing (``--sign-by-sigstore-private-key``), forklift
verifies; forklift signs, skopeo verifies by copying under a ``sigstoreSigned``
policy. Both registries: forklift serve and CNCF distribution 2.8.2.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from forklift.store.store import Store
from tests.helpers import need_tools, run_cli
from tests.registry_server.servers import Server

from .images import add_image
from .test_roundtrip import PW, keypair


@pytest.fixture
def skopeo() -> Path:
    return need_tools() / "skopeo-sigstore" / "skopeo"


def _config(tmp_path: Path, server: Server, pub: Path) -> tuple[Path, Path, Path]:
    regd = tmp_path / "registries.d"
    regd.mkdir(exist_ok=True)
    (regd / "sigstore.yaml").write_text(
        f"docker:\n  {server.host}:\n    use-sigstore-attachments: true\n"
    )
    push_policy = tmp_path / "push-policy.json"
    push_policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "default": [{"type": "reject"}],
                "transports": {
                    "docker": {
                        server.host: [
                            {
                                "type": "sigstoreSigned",
                                "keyPath": str(pub.resolve()),
                                "signedIdentity": {"type": "matchRepository"},
                            }
                        ]
                    }
                },
            }
        )
    )
    return regd, push_policy, policy


def _skopeo(skopeo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(skopeo), *args], capture_output=True, text=True, timeout=300)


def _oci_layout(tmp_path: Path, seed: str) -> Path:
    store = Store.open()
    add_image(store, f"example.com/{seed}:1", seed)
    layout = tmp_path / f"layout-{seed}"
    run_cli("copy", f"example.com/{seed}:1", f"oci:{layout}:v1", check=True)
    return layout


def test_skopeo_signs_forklift_verifies(skopeo: Path, any_registry: Server, tmp_path: Path) -> None:
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text("skopeo-pass\n")
    gen = _skopeo(
        skopeo,
        "generate-sigstore-key",
        "--output-prefix",
        str(tmp_path / "sk"),
        "--passphrase-file",
        str(pass_file),
    )
    assert gen.returncode == 0, gen.stderr
    regd, push_policy, _ = _config(tmp_path, any_registry, tmp_path / "sk.pub")
    ref = f"{any_registry.host}/interop/skopeo-signed-{any_registry.kind}:1"
    copied = _skopeo(
        skopeo,
        "--policy", str(push_policy),
        "--registries.d", str(regd),
        "copy", "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key", str(tmp_path / "sk.private"),
        "--sign-passphrase-file", str(pass_file),
        f"oci:{_oci_layout(tmp_path, 'skopeo')}:v1",
        f"docker://{ref}",
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    out = run_cli("verify", "--key", str(tmp_path / "sk.pub"), "--format", "json", ref, check=True)
    (payload,) = json.loads(out.stdout)
    assert payload["critical"]["identity"]["docker-reference"] == ref
    assert payload["optional"]["creator"].startswith("containers/image")
    # its private key decrypts with forklift too, and forklift's signature joins skopeo's
    run_cli(
        "sign", "--key", str(tmp_path / "sk.private"), ref,
        env={"COSIGN_PASSWORD": "skopeo-pass"}, check=True,
    )  # fmt: skip
    out = run_cli("verify", "--key", str(tmp_path / "sk.pub"), "--format", "json", ref, check=True)
    assert len(json.loads(out.stdout)) == 2
    # a wrong key is refused
    _, other_pub = keypair(tmp_path, "other")
    refused = run_cli("verify", "--key", str(other_pub), ref)
    assert refused.returncode == 1


def test_forklift_signs_skopeo_verifies(skopeo: Path, any_registry: Server, tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "fk")
    _, other_pub = keypair(tmp_path, "other")
    store = Store.open()
    add_image(store, "example.com/fk:1", "forklift")
    ref = f"{any_registry.host}/interop/forklift-signed-{any_registry.kind}:1"
    run_cli("push", "example.com/fk:1", ref, check=True)
    regd, _, policy = _config(tmp_path, any_registry, pub)
    out = tmp_path / "out"

    def skopeo_accepts(policy_file: Path) -> subprocess.CompletedProcess[str]:
        return _skopeo(
            skopeo,
            "--policy", str(policy_file),
            "--registries.d", str(regd),
            "copy", "--src-tls-verify=false", "--remove-signatures",
            f"docker://{ref}", f"oci:{out}:1",
        )  # fmt: skip

    unsigned = skopeo_accepts(policy)
    assert unsigned.returncode != 0 and "signature" in unsigned.stderr.lower()
    run_cli("sign", "--key", str(key), ref, env=PW, check=True)
    accepted = skopeo_accepts(policy)
    assert accepted.returncode == 0, accepted.stderr
    # skopeo's own verdict depends on the key: with another key the policy rejects it
    elsewhere = tmp_path / "other-policy"
    elsewhere.mkdir()
    _, _, other_policy = _config(elsewhere, any_registry, other_pub)
    rejected = skopeo_accepts(other_policy)
    assert rejected.returncode != 0
