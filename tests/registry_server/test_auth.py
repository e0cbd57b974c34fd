"""Auth through real clients: htpasswd (skopeo/podman login), Docker token auth, external issuers, TLS."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from forklift.registry.server import jwt
from tests.registry_server.conftest import need
from tests.registry_server.images import make_layout
from tests.registry_server.oci_client import Reg, error_codes
from tests.registry_server.servers import Server, start_forklift
from tests.registry_server.test_clients import skopeo


def _htpasswd(path: Path, users: dict[str, str]) -> Path:
    lines = []
    for user, password in users.items():
        out = subprocess.run(
            [need("htpasswd"), "-Bbn", user, password], capture_output=True, text=True, check=True
        )
        lines.append(out.stdout.strip())
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    make_layout(src, layers=2, seed=11)
    return src


@pytest.fixture
def basic_server(tmp_path: Path):
    users = _htpasswd(tmp_path / "htpasswd", {"alice": "wonderland", "bob": "builder"})
    server = start_forklift(tmp_path / "root", "--htpasswd", str(users), "--gc-interval", "0")
    yield server
    server.stop()


def test_htpasswd_requires_credentials(basic_server: Server) -> None:
    r = httpx.get(f"{basic_server.url}/v2/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")
    assert error_codes(r) == ["UNAUTHORIZED"]
    r = httpx.get(f"{basic_server.url}/v2/", auth=("alice", "wrong"))
    assert r.status_code == 401
    r = httpx.get(f"{basic_server.url}/v2/", auth=("alice", "wonderland"))
    assert r.status_code == 200
    r = httpx.get(f"{basic_server.url}/v2/x/manifests/latest")
    assert r.status_code == 401


def test_skopeo_login_and_copy_with_htpasswd(
    basic_server: Server, layout: Path, tmp_path: Path
) -> None:
    authfile = tmp_path / "auth.json"
    ref = f"docker://{basic_server.host}/secure/app:v1"
    denied = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--authfile",
        str(authfile),
        f"oci:{layout}:latest",
        ref,
        check=False,
    )
    assert denied.returncode != 0
    assert (
        "unauthorized" in denied.stderr.lower()
        or "authentication required" in denied.stderr.lower()
    )
    skopeo(
        "login",
        "--tls-verify=false",
        "--authfile",
        str(authfile),
        "-u",
        "alice",
        "-p",
        "wonderland",
        basic_server.host,
    )
    skopeo(
        "copy", "--dest-tls-verify=false", "--authfile", str(authfile), f"oci:{layout}:latest", ref
    )
    info = json.loads(
        skopeo("inspect", "--tls-verify=false", "--authfile", str(authfile), ref).stdout
    )
    assert len(info["Layers"]) == 2
    # without the authfile nothing can be read
    anon = skopeo(
        "inspect", "--tls-verify=false", "--authfile", str(tmp_path / "none.json"), ref, check=False
    )
    assert anon.returncode != 0
    bad = skopeo(
        "login",
        "--tls-verify=false",
        "--authfile",
        str(tmp_path / "b.json"),
        "-u",
        "alice",
        "-p",
        "nope",
        basic_server.host,
        check=False,
    )
    assert bad.returncode != 0


@pytest.mark.root
def test_podman_login_with_htpasswd(basic_server: Server, tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    ok = subprocess.run(
        [
            need("podman"),
            "login",
            "--tls-verify=false",
            "--authfile",
            str(authfile),
            "-u",
            "bob",
            "-p",
            "builder",
            basic_server.host,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert basic_server.host in json.loads(authfile.read_text())["auths"]
    bad = subprocess.run(
        [
            need("podman"),
            "login",
            "--tls-verify=false",
            "--authfile",
            str(tmp_path / "x.json"),
            "-u",
            "bob",
            "-p",
            "wrong",
            basic_server.host,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0


TOKEN_CONFIG = """
auth:
  htpasswd: {htpasswd}
  anonymous_pull: {anon}
  token:
    service: forklift-test
    issuer: forklift-test-issuer
    expiry: 120
    trusted:
      - issuer: external-issuer
        key: {external}
  access:
    - account: alice
      repository: "team/*"
      actions: [pull, push, delete]
    - account: bob
      repository: "team/*"
      actions: [pull]
"""


@pytest.fixture
def external_key(tmp_path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "external.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key


def _token_server(tmp_path: Path, anon: bool) -> Server:
    users = _htpasswd(tmp_path / "htpasswd", {"alice": "wonderland", "bob": "builder"})
    cfg = tmp_path / "registry.yaml"
    cfg.write_text(
        TOKEN_CONFIG.format(
            htpasswd=users, anon=str(anon).lower(), external=tmp_path / "external.pem"
        )
    )
    return start_forklift(tmp_path / "root", "--config", str(cfg), "--gc-interval", "0")


@pytest.fixture
def token_server(tmp_path: Path, external_key: ec.EllipticCurvePrivateKey):
    server = _token_server(tmp_path, anon=False)
    yield server
    server.stop()


def test_token_challenge_and_endpoint(token_server: Server) -> None:
    r = httpx.get(f"{token_server.url}/v2/team/app/manifests/latest")
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{token_server.url}/token"' in challenge
    assert 'service="forklift-test"' in challenge
    assert 'scope="repository:team/app:pull"' in challenge

    r = httpx.get(
        f"{token_server.url}/token",
        params={"service": "forklift-test", "scope": "repository:team/app:pull,push"},
        auth=("bob", "builder"),
    )
    assert r.status_code == 200
    token = r.json()["token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    # bob may only pull: the token grants what the rules allow, not what was asked
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    assert claims["aud"] == "forklift-test"
    assert claims["exp"] - claims["iat"] == 120

    # a pull-only token cannot push: 401 with insufficient_scope
    r = httpx.post(
        f"{token_server.url}/v2/team/app/blobs/uploads/",
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = httpx.get(
        f"{token_server.url}/token",
        params={"scope": "repository:team/app:pull"},
        auth=("bob", "bad"),
    )
    assert r.status_code == 401


def test_token_auth_through_skopeo(token_server: Server, layout: Path, tmp_path: Path) -> None:
    ref = f"docker://{token_server.host}/team/app:v1"
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wonderland",
        f"oci:{layout}:latest",
        ref,
    )
    info = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", "bob:builder", ref).stdout)
    assert len(info["Layers"]) == 2
    # bob may pull but not push
    push = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "bob:builder",
        f"oci:{layout}:latest",
        f"docker://{token_server.host}/team/bobs:v1",
        check=False,
    )
    assert push.returncode != 0
    # alice has no rule outside team/*
    other = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wonderland",
        f"oci:{layout}:latest",
        f"docker://{token_server.host}/other/app:v1",
        check=False,
    )
    assert other.returncode != 0
    # no credentials at all: nothing readable
    anon = skopeo("inspect", "--tls-verify=false", "--no-creds", ref, check=False)
    assert anon.returncode != 0
    authfile = tmp_path / "auth.json"
    skopeo(
        "login",
        "--tls-verify=false",
        "--authfile",
        str(authfile),
        "-u",
        "alice",
        "-p",
        "wonderland",
        token_server.host,
    )
    skopeo("delete", "--tls-verify=false", "--authfile", str(authfile), ref)


def test_anonymous_pull_with_token_auth(
    tmp_path: Path, external_key: ec.EllipticCurvePrivateKey, layout: Path
) -> None:
    server = _token_server(tmp_path, anon=True)
    try:
        ref = f"docker://{server.host}/team/open:v1"
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wonderland",
            f"oci:{layout}:latest",
            ref,
        )
        info = json.loads(skopeo("inspect", "--tls-verify=false", "--no-creds", ref).stdout)
        assert len(info["Layers"]) == 2
        push = skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-no-creds",
            f"oci:{layout}:latest",
            f"docker://{server.host}/team/anon:v1",
            check=False,
        )
        assert push.returncode != 0
    finally:
        server.stop()


def _claims(
    issuer: str, actions: list[str], aud: str = "forklift-test", exp: float | None = None
) -> dict:
    now = int(time.time())
    return {
        "iss": issuer,
        "sub": "ci-robot",
        "aud": aud,
        "exp": int(exp if exp is not None else now + 60),
        "nbf": now - 5,
        "iat": now,
        "access": [{"type": "repository", "name": "team/ext", "actions": actions}],
    }


def test_external_issuer_tokens(
    token_server: Server, external_key: ec.EllipticCurvePrivateKey
) -> None:
    reg = Reg(token_server.url)
    good = jwt.sign(_claims("external-issuer", ["pull", "push"]), external_key)
    reg.http.headers["authorization"] = f"Bearer {good}"
    d, _, _ = reg.push_image("team/ext", "v1")
    assert reg.req("GET", "/v2/team/ext/manifests/v1").headers["docker-content-digest"] == d

    def status(token: str) -> int:
        return httpx.get(
            f"{token_server.url}/v2/team/ext/tags/list",
            headers={"authorization": f"Bearer {token}"},
        ).status_code

    stranger = ec.generate_private_key(ec.SECP256R1())
    assert status(jwt.sign(_claims("external-issuer", ["pull"]), stranger)) == 401  # unknown key
    assert status(jwt.sign(_claims("someone-else", ["pull"]), external_key)) == 401  # wrong issuer
    assert status(jwt.sign(_claims("external-issuer", ["pull"], aud="other"), external_key)) == 401
    assert (
        status(jwt.sign(_claims("external-issuer", ["pull"], exp=time.time() - 600), external_key))
        == 401
    )
    tampered = good.split(".")
    tampered[1] = jwt.b64url(
        json.dumps(_claims("external-issuer", ["pull", "push", "delete"])).encode()
    )
    assert status(".".join(tampered)) == 401
    assert status(good) == 200
    reg.close()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(tmp_path: Path, layout: Path) -> None:
    cert, key = _self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    server = start_forklift(
        tmp_path / "root",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--gc-interval",
        "0",
        verify=trust,
    )
    try:
        assert server.url.startswith("https://")
        r = httpx.get(f"{server.url}/v2/", verify=trust)
        assert r.status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/v2/")  # an untrusted certificate is refused
        certs = tmp_path / "certs.d"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(cert.read_bytes())
        ref = f"docker://{server.host}/tls/app:v1"
        skopeo("copy", "--dest-cert-dir", str(certs), f"oci:{layout}:latest", ref)
        info = json.loads(skopeo("inspect", "--cert-dir", str(certs), ref).stdout)
        assert len(info["Layers"]) == 2
    finally:
        server.stop()
