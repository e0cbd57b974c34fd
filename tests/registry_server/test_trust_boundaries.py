"""What anonymous and hostile clients can do to `forklift serve`, tried for real.

Deeply nested JSON, user-name probing through bcrypt timing, long passwords,
unbounded metrics series, the token signing key's mode, token algorithms,
mounts under token auth, two servers on one address, the access log format.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from forklift.registry.server import jwt
from forklift.registry.server.auth import Auth, load_htpasswd
from forklift.registry.server.config import AuthConfig
from tests.helpers import free_port, run_cli
from tests.registry_server.conftest import need
from tests.registry_server.oci_client import OCI_MANIFEST, Reg, error_codes, random_blob
from tests.registry_server.servers import FORKLIFT, REPO, Server, start_forklift


def _htpasswd(path: Path, users: dict[str, str], cost: int = 5) -> Path:
    """An htpasswd file made by the real ``htpasswd -B`` tool."""
    lines = []
    for user, password in users.items():
        out = subprocess.run(
            [need("htpasswd"), "-Bbn", "-C", str(cost), user, password],
            capture_output=True,
            text=True,
            check=True,
        )
        lines.append(out.stdout.strip())
    path.write_text("\n".join(lines) + "\n")
    return path


def _bearer(server: Server, user: str, password: str, *scopes: str) -> str:
    r = httpx.get(
        f"{server.url}/token",
        params=[("service", "forklift"), *(("scope", s) for s in scopes)],
        auth=(user, password),
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


# -- item 7: deeply nested JSON ------------------------------------------------------------


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_manifest_is_manifest_invalid(module_registry: Server, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    body = opener * 100_000 + b"1" + closer * 100_000
    r = httpx.put(
        f"{module_registry.url}/v2/team/deep/manifests/v1",
        content=body,
        headers={"content-type": OCI_MANIFEST},
        timeout=60,
    )
    assert r.status_code == 400
    assert error_codes(r) == ["MANIFEST_INVALID"]
    assert "nested too deeply" in r.json()["errors"][0]["message"]
    # the server is fine afterwards
    assert httpx.get(f"{module_registry.url}/v2/").status_code == 200
    assert "Traceback" not in module_registry.log_text()


# -- items 9 and 10: htpasswd ----------------------------------------------------------------


def test_unknown_users_cost_the_same_bcrypt_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = _htpasswd(tmp_path / "users", {"alice": "wonderland"}, cost=6)
    auth = Auth(AuthConfig(htpasswd=users), tmp_path)
    checked: list[bytes] = []
    real = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        checked.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    header = "Basic " + base64.b64encode(b"mallory:guess").decode()
    assert auth.basic_user_blocking(header) is None
    # one full bcrypt check, at the cost of the real entries
    assert len(checked) == 1 and checked[0][4:7] == b"06$"
    checked.clear()
    header = "Basic " + base64.b64encode(b"alice:guess").decode()
    assert auth.basic_user_blocking(header) is None
    assert len(checked) == 1 and checked[0][4:7] == b"06$"
    auth.close()


def test_passwords_longer_than_72_bytes_log_in(tmp_path: Path) -> None:
    long_password = "p" * 50 + "ü" * 20 + "tail"  # 94 bytes in UTF-8
    assert len(long_password.encode()) > 72
    users = _htpasswd(tmp_path / "users", {"carol": long_password})
    server = start_forklift(tmp_path / "root", "--htpasswd", str(users), "--gc-interval", "0")
    try:
        assert httpx.get(f"{server.url}/v2/", auth=("carol", long_password)).status_code == 200
        assert httpx.get(f"{server.url}/v2/", auth=("carol", "p" * 50)).status_code == 401
    finally:
        server.stop()


# -- item 11: metrics ------------------------------------------------------------------------


def _series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("forklift_registry_requests")]


def test_metrics_series_are_bounded(module_registry: Server) -> None:
    with httpx.Client(base_url=module_registry.url) as client:
        # one request of each kind first; then many more of the same kinds, all distinct
        for i in range(3):
            client.request(f"ZZ{i}", f"/v2/x{i}/{os.urandom(4).hex()}/whatever")
            client.request("GET", f"/{os.urandom(6).hex()}")
        client.get("/metrics")  # the scrape counts itself
        before = _series(client.get("/metrics").text)
        for i in range(300):
            client.request(f"ZZ{1000 + i}", f"/v2/x{i}/{os.urandom(4).hex()}/whatever")
            client.request("GET", f"/{os.urandom(6).hex()}")
        after = _series(client.get("/metrics").text)
    assert len(after) == len(before)
    assert any('method="OTHER"' in line for line in after)
    assert not any("ZZ" in line for line in after)


def test_metrics_can_require_credentials(tmp_path: Path) -> None:
    users = _htpasswd(tmp_path / "users", {"prom": "scrape", "alice": "wonderland"})
    cfg = tmp_path / "r.yaml"
    cfg.write_text(f"auth: {{htpasswd: {users}}}\nmetrics: {{auth: true, accounts: [prom]}}\n")
    server = start_forklift(tmp_path / "root", "--config", str(cfg), "--gc-interval", "0")
    try:
        r = httpx.get(f"{server.url}/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic ")
        assert httpx.get(f"{server.url}/metrics", auth=("alice", "wonderland")).status_code == 403
        assert httpx.get(f"{server.url}/metrics", auth=("prom", "wrong")).status_code == 401
        r = httpx.get(f"{server.url}/metrics", auth=("prom", "scrape"))
        assert r.status_code == 200 and "forklift_registry_requests_total" in r.text
    finally:
        server.stop()


def test_metrics_can_be_turned_off_and_auth_needs_users(tmp_path: Path) -> None:
    (tmp_path / "off.yaml").write_text("metrics: {enabled: false}\n")
    server = start_forklift(tmp_path / "root", "--config", str(tmp_path / "off.yaml"))
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 404
    finally:
        server.stop()
    (tmp_path / "bad.yaml").write_text("metrics: {auth: true}\n")
    out = run_cli("serve", "--config", str(tmp_path / "bad.yaml"), "--root", str(tmp_path / "r2"))
    assert out.returncode == 2
    assert "metrics.auth needs users" in out.stderr and "Traceback" not in out.stderr


# -- item 12: the JWT signing key and algorithms --------------------------------------------


def test_signing_key_is_never_readable_by_others(tmp_path: Path) -> None:
    """strace shows every file the key is written through is created 0600."""
    key = tmp_path / "keys" / "token.pem"
    key.parent.mkdir()
    trace = tmp_path / "trace"
    code = (
        "import os; os.umask(0o022); from pathlib import Path; "
        "from forklift.registry.server import jwt; "
        f"jwt.load_or_create_key(Path({str(key)!r}))"
    )
    subprocess.run(
        [
            need("strace"),
            "-f",
            "-e",
            "trace=open,openat,creat,chmod,fchmod",
            "-o",
            str(trace),
            FORKLIFT[0],
            "-c",
            code,
        ],
        check=True,
        cwd=REPO,
        timeout=60,
    )
    created = [
        line
        for line in trace.read_text().splitlines()
        if str(key.parent) in line and "O_CREAT" in line
    ]
    assert created, "the key was never created"
    for line in created:
        mode = re.search(r"O_CREAT[^,]*, (0\d+)\)", line)
        assert mode is not None and int(mode.group(1), 8) & 0o077 == 0, line
    assert key.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (lambda: ec.generate_private_key(ec.SECP521R1()), "ES512"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    ],
    ids=["P-256", "P-384", "P-521", "RSA"],
)
def test_external_issuer_algorithms(tmp_path: Path, make_key, alg: str) -> None:
    key = make_key()
    pub = tmp_path / "issuer.pem"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    users = _htpasswd(tmp_path / "users", {"alice": "wonderland"})
    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        f"auth:\n  htpasswd: {users}\n  token:\n    trusted: [{{issuer: ext, key: {pub}}}]\n"
    )
    now = int(time.time())
    claims = {
        "iss": "ext",
        "sub": "robot",
        "aud": "forklift",
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now,
        "access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}],
    }
    token = jwt.sign(claims, key)
    header = json.loads(jwt.b64url_decode(token.split(".")[0]))
    assert header["alg"] == alg
    server = start_forklift(tmp_path / "root", "--config", str(cfg), "--gc-interval", "0")
    try:
        r = httpx.post(
            f"{server.url}/v2/team/app/blobs/uploads/",
            headers={"authorization": f"Bearer {token}"},
        )
        assert r.status_code == 202
        # the same claims under a header naming another algorithm: refused
        for other in ("ES256", "ES384", "RS256", "HS256", "none"):
            if other == alg:
                continue
            parts = token.split(".")
            forged_header = dict(header, alg=other)
            parts[0] = jwt.b64url(json.dumps(forged_header).encode())
            r = httpx.get(
                f"{server.url}/v2/team/app/tags/list",
                headers={"authorization": "Bearer " + ".".join(parts)},
            )
            assert r.status_code == 401, other
    finally:
        server.stop()


def test_tokens_verify_independently_of_our_verifier() -> None:
    """An ES384 token checks out with the cryptography library's own ECDSA verify."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    key = ec.generate_private_key(ec.SECP384R1())
    token = jwt.sign({"iss": "x", "aud": "y", "exp": time.time() + 60}, key)
    head, body, sig = token.split(".")
    raw = jwt.b64url_decode(sig)
    assert len(raw) == 96  # r || s, 48 bytes each for P-384 (RFC 7518 3.4)
    der = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    key.public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA384()))


# -- item 3 of issue 11: mounts under token auth --------------------------------------------

TOKEN_RULES = """
auth:
  htpasswd: {users}
  token: {{}}
  access:
    - {{account: alice, repository: "team/*", actions: [pull, push, delete]}}
    - {{account: bob, repository: "bob/*", actions: [pull, push]}}
"""


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[Server]:
    users = _htpasswd(tmp_path / "users", {"alice": "wonderland", "bob": "builder"})
    cfg = tmp_path / "r.yaml"
    cfg.write_text(TOKEN_RULES.format(users=users))
    server = start_forklift(tmp_path / "root", "--config", str(cfg), "--gc-interval", "0")
    yield server
    server.stop()


def _mount(server: Server, token: str, target: str, digest: str, source: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/{target}/blobs/uploads/",
        params={"mount": digest, "from": source},
        headers={"authorization": f"Bearer {token}"},
    )


def test_mount_under_token_auth_asks_for_the_source(token_server: Server) -> None:
    token = _bearer(token_server, "alice", "wonderland", "repository:team/src:pull,push")
    reg = Reg(token_server.url, headers={"authorization": f"Bearer {token}"})
    data = random_blob(4000)
    d = reg.push_blob("team/src", data)
    reg.close()
    # a token for the target only: 401 whose challenge also asks for pull on the source
    target_only = _bearer(token_server, "alice", "wonderland", "repository:team/dst:pull,push")
    r = _mount(token_server, target_only, "team/dst", d, "team/src")
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    scope = re.search(r'scope="([^"]*)"', challenge).group(1).split()
    assert "repository:team/src:pull" in scope and "repository:team/dst:pull,push" in scope
    assert 'error="insufficient_scope"' in challenge
    # a client that follows the challenge mounts
    both = _bearer(token_server, "alice", "wonderland", *scope)
    r = _mount(token_server, both, "team/dst", d, "team/src")
    assert r.status_code == 201
    assert r.headers["location"] == f"/v2/team/dst/blobs/{d}"
    got = httpx.get(
        f"{token_server.url}/v2/team/dst/blobs/{d}", headers={"authorization": f"Bearer {both}"}
    )
    assert got.content == data


def test_mount_without_rights_on_the_source_uploads_instead(token_server: Server) -> None:
    token = _bearer(token_server, "alice", "wonderland", "repository:team/src:pull,push")
    reg = Reg(token_server.url, headers={"authorization": f"Bearer {token}"})
    d = reg.push_blob("team/src", random_blob(100))
    reg.close()
    # bob may not read team/src: no 401 loop, no mount, an upload session
    bobs = _bearer(token_server, "bob", "builder", "repository:bob/app:pull,push")
    r = _mount(token_server, bobs, "bob/app", d, "team/src")
    assert r.status_code == 202
    assert r.headers["location"].startswith("/v2/bob/app/blobs/uploads/")
    assert (
        httpx.get(
            f"{token_server.url}/v2/bob/app/blobs/{d}", headers={"authorization": f"Bearer {bobs}"}
        ).status_code
        == 404
    )


def test_automatic_mount_is_opt_in_under_auth(tmp_path: Path) -> None:
    users = _htpasswd(tmp_path / "users", {"alice": "wonderland"})
    for flag, expected in (("--no-automatic-mount", 202), ("--automatic-mount", 201)):
        server = start_forklift(
            tmp_path / f"root{flag}", "--htpasswd", str(users), flag, "--gc-interval", "0"
        )
        try:
            reg = Reg(server.url, auth=("alice", "wonderland"))
            d = reg.push_blob("team/one", random_blob(300))
            r = reg.req("POST", "/v2/team/two/blobs/uploads/", params={"mount": d})
            assert r.status_code == expected
            reg.close()
        finally:
            server.stop()


# -- item 14: one address, one server -------------------------------------------------------


def test_a_second_server_on_the_same_address_is_refused(tmp_path: Path) -> None:
    first = start_forklift(tmp_path / "one", "--gc-interval", "0")
    try:
        out = run_cli("serve", "--root", str(tmp_path / "two"), "--addr", first.host)
        assert out.returncode == 1
        assert "address already in use" in out.stderr
        assert "Traceback" not in out.stderr
        # the first one still answers, and is the only one
        for _ in range(20):
            assert httpx.get(f"{first.url}/v2/").status_code == 200
        assert not (tmp_path / "two" / "metadata.db").exists()
    finally:
        first.stop()


def test_a_port_held_by_another_program_is_refused(tmp_path: Path) -> None:
    port = free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        out = run_cli("serve", "--root", str(tmp_path / "r"), "--addr", f"127.0.0.1:{port}")
        assert out.returncode == 1 and "address already in use" in out.stderr
    finally:
        holder.close()


# -- the access log -----------------------------------------------------------------------------


def test_access_log_timestamps_are_rfc3339(tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    server = start_forklift(tmp_path / "root", "--access-log", str(log), "--gc-interval", "0")
    try:
        before = datetime.datetime.now(datetime.UTC)
        httpx.get(f"{server.url}/v2/")
        after = datetime.datetime.now(datetime.UTC)
        httpx.get(f"{server.url}/v2/_catalog", params={"n": "2", "last": "a/b"})
    finally:
        server.stop()
    first, listing = (json.loads(line) for line in log.read_text().splitlines()[-2:])
    # the query is part of what was asked: a listing's page is in the log
    assert (listing["path"], listing["query"]) == ("/v2/_catalog", "n=2&last=a%2Fb")
    assert first["query"] == ""
    entry = first
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])
    ts = datetime.datetime.fromisoformat(entry["ts"])
    assert before - datetime.timedelta(seconds=1) <= ts <= after + datetime.timedelta(seconds=1)


def test_htpasswd_loader_keeps_hashes_as_written(tmp_path: Path) -> None:
    users = _htpasswd(tmp_path / "users", {"dave": "x" * 80})
    assert load_htpasswd(users)["dave"].startswith((b"$2y$", b"$2b$"))
