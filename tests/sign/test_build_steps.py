"""``build --provenance`` (SLSA v1) and ``--sign-key``: recorded and signed after the build."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from forklift.store.store import Store
from tests.helpers import run_cli
from tests.registry_server.servers import Server

from .images import add_image
from .test_roundtrip import PW, keypair


def test_provenance_and_signing_travel_with_the_image(
    forklift_registry: Server, tmp_path: Path
) -> None:
    key, pub = keypair(tmp_path, "builder")
    store = Store.open()
    base = add_image(store, "example.com/base:1", "base")
    context = tmp_path / "ctx"
    context.mkdir()
    dockerfile = b"ARG GREETING=hi\nARG API_TOKEN\nFROM example.com/base:1\nLABEL greeting=$GREETING\nCOPY file.txt /\n"
    (context / "Dockerfile").write_bytes(dockerfile)
    (context / "file.txt").write_text("content\n")
    name = f"{forklift_registry.host}/built/app:1"
    run_cli(
        "build", "--progress", "plain", "--provenance", "--sign-key", str(key),
        "--build-arg", "GREETING=hello", "--build-arg", "API_TOKEN=s3cr3t",
        "-t", name, str(context),
        env=PW, check=True,
    )  # fmt: skip
    image = Store.open().resolve(name)
    kinds = sorted((a.tag or a.artifact_type or "") for a in Store.open().referrers(image.digest))
    assert kinds == sorted(
        [
            "sig",
            "att",
            "application/vnd.in-toto+json",
            "application/vnd.dev.cosign.artifact.att.v1+json",
        ]
    )
    out = run_cli(
        "verify-attestation", "--key", str(pub), "--type", "slsaprovenance1", "--format", "predicate", f"store:{name}",
        check=True,
    )  # fmt: skip
    (predicate,) = json.loads(out.stdout)
    definition = predicate["buildDefinition"]
    assert definition["externalParameters"]["buildArgs"] == {"GREETING": "hello"}  # no API_TOKEN
    deps = {d.get("name", d["uri"]): d["digest"] for d in definition["resolvedDependencies"]}
    assert deps["Dockerfile"] == {"sha256": hashlib.sha256(dockerfile).hexdigest()}
    assert deps["example.com/base:1"] == {"sha256": base.digest.split(":")[1]}
    assert "forklift:context" in deps
    assert predicate["runDetails"]["builder"]["id"].startswith("urn:forklift:builder:")
    # pushed, everything is in the registry and verifies there
    run_cli("push", name, check=True)
    run_cli("verify", "--key", str(pub), f"docker://{name}", check=True)
    run_cli(
        "verify-attestation",
        "--key",
        str(pub),
        "--type",
        "slsaprovenance1",
        f"docker://{name}",
        check=True,
    )


def test_sign_key_needs_a_name(tmp_path: Path) -> None:
    key, _ = keypair(tmp_path, "k")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    result = run_cli("build", "--sign-key", str(key), str(context), env=PW)
    assert result.returncode == 2 and "-t NAME" in result.stderr
