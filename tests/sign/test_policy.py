"""The signature policy: pull, copy, run, build's FROM and forklift serve refuse what is not signed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from forklift.errors import ParseError
from forklift.reference import parse_reference
from forklift.sign.policy import parse_policy
from forklift.store.store import Store
from tests.helpers import assert_no_traceback, run_cli
from tests.registry_server.servers import Server, start_forklift

from .images import add_image
from .test_roundtrip import PW, keypair, push_image


def write_policy(
    path: Path, scopes: dict[str, list[dict]], default: str = "insecureAcceptAnything"
) -> Path:
    path.write_text(json.dumps({"default": [{"type": default}], "transports": {"docker": scopes}}))
    return path


def signed_by(pub: Path, identity: str = "matchRepository") -> list[dict]:
    return [{"type": "sigstoreSigned", "keyPath": str(pub), "signedIdentity": {"type": identity}}]


def test_pull_refuses_unsigned_and_accepts_signed(
    forklift_registry: Server, tmp_path: Path
) -> None:
    key, pub = keypair(tmp_path, "k")
    ref, digest = push_image(forklift_registry, "policy/pull", "p1")
    policy = write_policy(
        tmp_path / "policy.json", {f"{forklift_registry.host}/policy": signed_by(pub)}
    )
    fresh = {"FORKLIFT_HOME": str(tmp_path / "fresh")}
    refused = run_cli("pull", "--policy", str(policy), ref, env=fresh)
    assert refused.returncode == 1
    assert_no_traceback(refused)
    assert "refused by the policy" in refused.stderr and "no signatures found" in refused.stderr
    # nothing was stored
    assert Store(tmp_path / "fresh").images() == []
    run_cli("sign", "--key", str(key), ref, env=PW, check=True)
    run_cli("pull", "--policy", str(policy), ref, env=fresh, check=True)
    stored = Store(tmp_path / "fresh")
    (image,) = stored.images()
    assert str(image.digest) == digest
    # the signature the policy checked is kept with the image
    assert [a.tag for a in stored.referrers(image.digest)] == ["sig"]
    # the result is cached per digest: a second pull needs no signature any more
    cache = tmp_path / "fresh" / "sign" / "verified"
    assert len(os.listdir(cache)) == 1
    run_cli("pull", "--policy", str(policy), ref, env=fresh, check=True)
    # other scopes of the policy are untouched by it
    other_ref, _ = push_image(forklift_registry, "elsewhere/pull", "p2")
    run_cli("pull", "--policy", str(policy), other_ref, env=fresh, check=True)
    # the config's policy is found without a flag; --insecure-policy skips it
    conf = tmp_path / "xdg" / "forklift"
    conf.mkdir(parents=True)
    (conf / "policy.json").write_text((policy).read_text())
    env = {**fresh, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    unsigned, _ = push_image(forklift_registry, "policy/unsigned", "p3")
    assert run_cli("pull", unsigned, env=env).returncode == 1
    run_cli("pull", "--insecure-policy", unsigned, env=env, check=True)


def test_verify_flag_needs_a_policy() -> None:
    result = run_cli("pull", "--verify", "127.0.0.1:1/x:1")
    assert result.returncode == 2 and "--verify needs a policy" in result.stderr


def test_hostile_verify_arguments_are_one_line_errors(tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    root.write_text("[" * 100_000)
    deep = run_cli(
        "verify", "--trusted-root", str(root), "--certificate-identity", "a",
        "--certificate-oidc-issuer", "b", "x:1",
    )  # fmt: skip
    assert deep.returncode != 0
    assert_no_traceback(deep)
    root.write_text('{"tlogs": []}')
    bad_re = run_cli(
        "verify", "--trusted-root", str(root), "--certificate-identity-regexp", "([",
        "--certificate-oidc-issuer", "b", "x:1",
    )  # fmt: skip
    assert bad_re.returncode == 2 and "invalid regular expression" in bad_re.stderr


def test_copy_refuses_unsigned(forklift_registry: Server, tmp_path: Path) -> None:
    ref, _ = push_image(forklift_registry, "policy/copy", "c1")
    policy = write_policy(tmp_path / "p.json", {}, default="reject")
    result = run_cli("copy", "--policy", str(policy), f"docker://{ref}", f"oci:{tmp_path}/out:1")
    assert result.returncode == 1 and "rejects everything" in result.stderr
    assert not (tmp_path / "out").exists()


def test_identity_rules(forklift_registry: Server, tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "k")
    ref, digest = push_image(forklift_registry, "policy/ident", "i1")
    run_cli("sign", "--key", str(key), ref, env=PW, check=True)
    # the same digest under another tag: the signature names :1
    two = ref.replace(":1", ":2")
    run_cli("push", "example.com/i1:1", two, check=True)
    scope = f"{forklift_registry.host}/policy/ident"
    exact = write_policy(tmp_path / "exact.json", {scope: signed_by(pub, "matchRepoDigestOrExact")})
    repo = write_policy(tmp_path / "repo.json", {scope: signed_by(pub, "matchRepository")})
    env = {"FORKLIFT_HOME": str(tmp_path / "h")}
    run_cli("pull", "--policy", str(exact), ref, env=env, check=True)
    refused = run_cli("pull", "--policy", str(exact), two, env=env)
    assert refused.returncode == 1 and "not exactly" in refused.stderr
    run_cli("pull", "--policy", str(repo), two, env=env, check=True)
    # by digest, matchRepoDigestOrExact compares repositories
    run_cli("pull", "--policy", str(exact), f"{scope}@{digest}", env=env, check=True)


def test_policy_files_are_checked_when_loaded(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="signedBy"):
        parse_policy(b'{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}')
    with pytest.raises(ParseError, match="non-empty list"):
        parse_policy(b'{"default":[]}')
    with pytest.raises(ParseError, match="keyPaths must be a list"):
        parse_policy(b'{"default":[{"type":"sigstoreSigned","keyPaths":"/etc/k.pub"}]}')
    with pytest.raises(ParseError, match="invalid regular expression"):
        parse_policy(
            b'{"default":[{"type":"sigstoreSigned","trustedRootPath":"/dev/null",'
            b'"fulcio":{"oidcIssuer":"i"},"subjectRegexp":"(["}]}'
        )
    with pytest.raises(ParseError, match="cannot read"):
        parse_policy(b'{"default":[{"type":"sigstoreSigned","keyPath":"/nonexistent.pub"}]}')
    policy = parse_policy(
        json.dumps(
            {
                "default": [{"type": "reject"}],
                "transports": {
                    "docker": {
                        "reg.example.com": [{"type": "insecureAcceptAnything"}],
                        "reg.example.com/team/app:1": [{"type": "reject"}],
                        "*.example.org": [{"type": "insecureAcceptAnything"}],
                    }
                },
            }
        ).encode()
    )
    assert (
        policy.requirements_for(parse_reference("reg.example.com/team/app:1"))[0]
        == "reg.example.com/team/app:1"
    )
    assert (
        policy.requirements_for(parse_reference("reg.example.com/team/app:2"))[0]
        == "reg.example.com"
    )
    assert policy.requirements_for(parse_reference("a.b.example.org/x"))[0] == "*.example.org"
    assert policy.requirements_for(parse_reference("docker.io/library/busybox"))[0] == "default"


def test_build_from_refuses_unsigned_base(forklift_registry: Server, tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "k")
    store = Store.open()
    name = f"{forklift_registry.host}/policy/base:1"
    add_image(store, name, "b1")
    policy = write_policy(tmp_path / "p.json", {f"{forklift_registry.host}/policy": signed_by(pub)})
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {name}\nLABEL built=yes\n")
    refused = run_cli("build", "--policy", str(policy), "--progress", "plain", str(context))
    assert refused.returncode == 1
    assert "FROM" in refused.stderr and "refused by the policy" in refused.stderr
    run_cli("sign", "--key", str(key), name, env=PW, check=True)
    run_cli(
        "build",
        "--policy",
        str(policy),
        "--progress",
        "plain",
        "-t",
        "built:1",
        str(context),
        check=True,
    )
    assert Store.open().resolve("built:1") is not None


@pytest.mark.root
def test_run_refuses_unsigned_image(busybox_image: str, tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "k")
    policy = write_policy(tmp_path / "p.json", {"docker.io/library/busybox": signed_by(pub)})
    refused = run_cli("run", "--rm", "--policy", str(policy), busybox_image, "true")
    assert refused.returncode == 125 and "refused by the policy" in refused.stderr
    run_cli("sign", "--key", str(key), busybox_image, env=PW, check=True)
    ran = run_cli("run", "--rm", "--policy", str(policy), busybox_image, "echo", "signed")
    assert ran.returncode == 0 and ran.stdout.strip() == "signed", ran.stderr


def test_serve_protects_repositories(tmp_path: Path) -> None:
    key, pub = keypair(tmp_path, "k")
    policy = tmp_path / "server-policy.json"
    policy.write_text(
        json.dumps(
            {
                "default": [{"type": "insecureAcceptAnything"}],
                "transports": {"docker": {"secure": signed_by(pub)}},
            }
        )
    )
    server = start_forklift(
        tmp_path / "root",
        "--gc-interval",
        "0",
        "--access-log",
        "",
        "--signature-policy",
        str(policy),
    )
    try:
        store = Store.open()
        add_image(store, "example.com/s1:1", "s1")
        refused = run_cli("push", "example.com/s1:1", f"{server.host}/secure/app:1")
        assert refused.returncode != 0
        assert_no_traceback(refused)
        assert "needs a signature" in refused.stderr
        tags = httpx.get(f"{server.url}/v2/secure/app/tags/list")
        assert tags.status_code == 404 or "1" not in (tags.json().get("tags") or [])
        # unprotected repositories take anything
        run_cli("push", "example.com/s1:1", f"{server.host}/open/app:1", check=True)
        # signed in the store, then pushed: the signature goes first and the tag is accepted
        signed_name = f"{server.host}/secure/app:1"
        add_image(store, signed_name, "s1")
        run_cli("sign", "--key", str(key), signed_name, env=PW, check=True)
        run_cli("push", signed_name, check=True)
        run_cli("verify", "--key", str(pub), f"docker://{signed_name}", check=True)
        fresh = {"FORKLIFT_HOME": str(tmp_path / "fresh")}
        run_cli("pull", signed_name, env=fresh, check=True)
    finally:
        server.stop()
    # an image that got into a protected repository before the policy is not served by tag
    plain = start_forklift(tmp_path / "root2", "--gc-interval", "0", "--access-log", "")
    try:
        run_cli("push", "example.com/s1:1", f"{plain.host}/secure/old:1", check=True)
    finally:
        plain.stop()
    server = start_forklift(
        tmp_path / "root2",
        "--gc-interval",
        "0",
        "--access-log",
        "",
        "--signature-policy",
        str(policy),
    )
    try:
        resp = httpx.get(
            f"{server.url}/v2/secure/old/manifests/1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert resp.status_code == 403
        assert resp.json()["errors"][0]["code"] == "DENIED"
        assert "needs a signature" in resp.json()["errors"][0]["message"]
    finally:
        server.stop()
