"""Config files (YAML/TOML equal to flags, errors with locations), JWT, htpasswd, names, metadata."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.errors import ParseError
from forklift.registry.server import apierrors, jwt, names
from forklift.registry.server.auth import Auth, Identity, Need, load_htpasswd, parse_scope
from forklift.registry.server.config import AccessRule, AuthConfig, load_config
from forklift.registry.server.metadata import NewManifest, SQLiteMetadata
from tests.registry_server.servers import FORKLIFT, REPO

YAML = """
root: data
addr: 0.0.0.0:5001
delete_enabled: false
max_manifest_size: 1000
access_log: ""
auth:
  htpasswd: users
  anonymous_pull: true
  access:
    - {account: alice, repository: "team/*", actions: ["*"]}
gc:
  interval: 60
  grace: 120
  untagged: true
  upload_ttl: 600
"""

TOML = """
root = "data"
addr = "0.0.0.0:5001"
delete_enabled = false
max_manifest_size = 1000
access_log = ""

[auth]
htpasswd = "users"
anonymous_pull = true
access = [{account = "alice", repository = "team/*", actions = ["*"]}]

[gc]
interval = 60
grace = 120
untagged = true
upload_ttl = 600
"""


def test_yaml_and_toml_configs_are_equivalent(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(YAML)
    (tmp_path / "c.toml").write_text(TOML)
    a = load_config(tmp_path / "c.yaml")
    b = load_config(tmp_path / "c.toml")
    assert a == b
    assert a.root == tmp_path / "data"
    assert a.host_port == ("0.0.0.0", 5001)
    assert a.delete_enabled is False
    assert a.auth.htpasswd == tmp_path / "users"
    assert a.auth.access == (AccessRule("alice", "team/*", ("pull", "push", "delete")),)
    assert (a.gc.interval, a.gc.grace, a.gc.untagged, a.gc.upload_ttl) == (60, 120, True, 600)


def test_default_bind_is_loopback_only_without_auth(tmp_path: Path) -> None:
    (tmp_path / "none.yaml").write_text("root: x\n")
    assert load_config(tmp_path / "none.yaml").host_port == ("127.0.0.1", 5000)
    (tmp_path / "auth.yaml").write_text("auth: {htpasswd: users}\n")
    assert load_config(tmp_path / "auth.yaml").host_port == ("0.0.0.0", 5000)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("root: [unclosed\n", "c.yaml:2:1"),
        ("bogus: 1\n", "bogus: unknown setting"),
        ("gc: {grace: soon}\n", "c.yaml:1:13: gc.grace: invalid duration 'soon'"),
        ("auth: {access: [{account: a, repository: b, actions: [fly]}]}\n", "unknown action 'fly'"),
    ],
)
def test_config_errors_name_the_place(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ParseError) as err:
        load_config(tmp_path / "c.yaml")
    assert needle in str(err.value)


def test_cli_reports_config_errors_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("gc:\n  grace: [1,\n")
    out = subprocess.run(
        [*FORKLIFT, "serve", "--config", str(tmp_path / "bad.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith(f"Error: {tmp_path / 'bad.yaml'}:")
    assert "Traceback" not in out.stderr
    out = subprocess.run(
        [*FORKLIFT, "serve", "gc", "--root", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert out.returncode == 2 and "--dry-run or --now" in out.stderr


@settings(max_examples=25, deadline=None)
@given(
    sub=st.text(min_size=1, max_size=20),
    actions=st.lists(st.sampled_from(["pull", "push", "delete"]), unique=True),
)
def test_jwt_round_trip_and_tamper(sub: str, actions: list[str]) -> None:
    key = _EC_KEY
    now = int(time.time())
    claims = {
        "iss": "me",
        "sub": sub,
        "aud": "svc",
        "exp": now + 60,
        "access": [{"type": "repository", "name": "a", "actions": actions}],
    }
    token = jwt.sign(claims, key)
    trusted = [jwt.TrustedKey("me", key.public_key())]
    assert jwt.verify(token, trusted, "svc") == claims
    head, body, sig = token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    with pytest.raises(jwt.TokenInvalid):
        jwt.verify(f"{head}.{body}.{flipped}", trusted, "svc")
    with pytest.raises(jwt.TokenInvalid):
        jwt.verify(token, trusted, "other-service")


_EC_KEY = ec.generate_private_key(ec.SECP256R1())


def test_jwt_rsa_keys() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": "r", "aud": "svc", "exp": time.time() + 30}
    token = jwt.sign(claims, key)
    assert jwt.verify(token, [jwt.TrustedKey("r", key.public_key())], "svc")["iss"] == "r"
    # the EC key of another issuer does not verify it
    with pytest.raises(jwt.TokenInvalid):
        jwt.verify(token, [jwt.TrustedKey("r", _EC_KEY.public_key())], "svc")
    kid = jwt.key_id(key.public_key())
    assert len(kid.split(":")) == 12 and all(len(p) == 4 for p in kid.split(":"))


def test_htpasswd_parsing(tmp_path: Path) -> None:
    f = tmp_path / "h"
    f.write_text(
        "# comment\nalice:$2y$05$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234\n\nbob:{SHA}xyz\n"
    )
    with pytest.raises(ParseError) as err:
        load_htpasswd(f)
    assert f"{f}:4:5" in str(err.value) and "bcrypt" in str(err.value)


def test_access_rules_add_up(tmp_path: Path) -> None:
    auth = Auth(
        AuthConfig(
            htpasswd=None,
            anonymous_pull=True,
            access=(
                AccessRule("alice", "team/*", ("pull", "push")),
                AccessRule("*", "public/*", ("pull",)),
                AccessRule("alice", "team/secret", ("delete",)),
            ),
        ),
        tmp_path,
    )
    auth.mode = "htpasswd"
    assert auth.allowed_actions("alice", "team/secret") == {"pull", "push", "delete"}
    assert auth.allowed_actions("bob", "public/x") == {"pull"}
    assert auth.allowed_actions("bob", "team/x") == set()
    assert auth.allowed_actions(None, "team/x") == {"pull"}  # anonymous_pull
    assert auth.permits(Identity("alice"), Need("repository", "team/a", "push"))
    assert not auth.permits(Identity("bob"), Need("repository", "team/a", "push"))
    assert parse_scope("repository:a/b:pull,push") == [
        Need("repository", "a/b", "pull"),
        Need("repository", "a/b", "push"),
    ]
    assert parse_scope("repository:host:5000/x:pull") == [Need("repository", "host:5000/x", "pull")]
    assert parse_scope("weird") == []


@given(st.text(max_size=40))
def test_repository_names_never_contain_path_tricks(name: str) -> None:
    try:
        names.check_repository(name)
    except apierrors.APIError as exc:
        assert exc.code == "NAME_INVALID"
        return
    parts = name.split("/")
    assert all(p and p not in (".", "..") for p in parts)
    assert not name.startswith("/") and "\\" not in name and "\x00" not in name


def _manifest(
    digest: str, blobs: tuple[tuple[str, int], ...] = (), children: tuple[str, ...] = ()
) -> NewManifest:
    return NewManifest(
        digest, "application/vnd.oci.image.manifest.v1+json", b"{}", blobs, children, None, None, {}
    )


def test_metadata_put_manifest_is_all_or_nothing(tmp_path: Path) -> None:
    meta = SQLiteMetadata(tmp_path / "m.db")
    meta.add_blob("r", "sha256:" + "a" * 64, 10)
    result = meta.put_manifest(
        "r",
        _manifest("sha256:" + "1" * 64, (("sha256:" + "a" * 64, 10), ("sha256:" + "b" * 64, 5))),
        ["t"],
    )
    assert result.missing_blobs == ("sha256:" + "b" * 64,)
    assert meta.get_manifest("r", "t", by_digest=False) is None
    assert meta.list_tags("r", None, None) == []
    ok = meta.put_manifest(
        "r", _manifest("sha256:" + "2" * 64, (("sha256:" + "a" * 64, 10),)), ["t"]
    )
    assert ok.ok
    assert meta.get_manifest("r", "t", by_digest=False).digest == "sha256:" + "2" * 64
    # a referenced blob is never "unused", however old
    assert meta.unused_blobs(time.time() + 10) == []
    assert not meta.delete_blob_if_unused("sha256:" + "a" * 64, time.time() + 10)
    meta.close()
