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


# -- config: every key checked, with its place in the file ---------------------------------

UNKNOWN_KEYS_YAML = [
    ("auth:\n  htpaswd: users\n", "c.yaml:2:3: auth.htpaswd: unknown setting"),
    (
        "auth:\n  htpasswd: users\n  acess:\n    - {account: a, repository: b, actions: [pull]}\n",
        "c.yaml:3:3: auth.acess: unknown setting",
    ),
    ("gc: {interval: 1h, graze: 30m}\n", "c.yaml:1:20: gc.graze: unknown setting"),
    ("tls:\n  cert: a\n  kee: b\n", "c.yaml:3:3: tls.kee: unknown setting"),
    (
        "auth:\n  token:\n    realm: x\n    expirey: 5m\n",
        "c.yaml:4:5: auth.token.expirey: unknown setting",
    ),
    (
        "auth:\n  access:\n    - {account: a, repository: b, actions: [pull], extra: 1}\n",
        "c.yaml:3:52: auth.access[0].extra: unknown setting",
    ),
    (
        "auth:\n  token:\n    trusted:\n      - issuer: x\n        key: k\n        kid: 1\n",
        "c.yaml:6:9: auth.token.trusted[0].kid: unknown setting",
    ),
    ("storage: {sparse: true}\n", "c.yaml:1:11: storage.sparse: unknown setting"),
    ("metrics: {auth: yes please}\n", "c.yaml:1:17: metrics.auth: expected true or false"),
    ("gc:\n  interval: 10 minutes\n", "c.yaml:2:13: gc.interval: invalid duration"),
    ("gc:\n  grace: -5m\n", "c.yaml:2:10: gc.grace: invalid duration"),
    ("max_manifest_size: 1.5\n", "c.yaml:1:20: max_manifest_size: expected an integer"),
    ("- just\n- a list\n", "(top level): expected a mapping"),
]


@pytest.mark.parametrize(("text", "needle"), UNKNOWN_KEYS_YAML)
def test_every_key_is_checked_with_its_place_yaml(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ParseError) as err:
        load_config(tmp_path / "c.yaml")
    assert needle in str(err.value), str(err.value)


UNKNOWN_KEYS_TOML = [
    ('[auth]\nhtpaswd = "users"\n', "c.toml:2:1: auth.htpaswd: unknown setting"),
    ('[gc]\ninterval = "1h"\ngraze = "30m"\n', "c.toml:3:1: gc.graze: unknown setting"),
    ('tls = {cert = "a", kee = "b"}\n', "c.toml:1:20: tls.kee: unknown setting"),
    ('[auth.token]\n# a comment\nexpirey = "5m"\n', "c.toml:3:1: auth.token.expirey: unknown"),
    (
        '[[auth.access]]\naccount = "a"\nrepository = "b"\nactions = ["pull"]\n\n'
        '[[auth.access]]\naccount = "c"\nrepo = "d"\n',
        "c.toml:8:1: auth.access[1].repo: unknown setting",
    ),
    (
        'auth.access = [\n  {account = "a", repository = "b", actions = ["pull", "fly"]},\n]\n',
        "c.toml:2:56: auth.access[0].actions[1]: unknown action 'fly'",
    ),
    ('gc.interval = "soon"\n', "c.toml:1:15: gc.interval: invalid duration 'soon'"),
    ("bogus = 1\n", "c.toml:1:1: bogus: unknown setting"),
]


@pytest.mark.parametrize(("text", "needle"), UNKNOWN_KEYS_TOML)
def test_every_key_is_checked_with_its_place_toml(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ParseError) as err:
        load_config(tmp_path / "c.toml")
    assert needle in str(err.value), str(err.value)


def test_misspelled_auth_key_never_starts_an_open_registry(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("auth: {htpaswd: users}\n")
    out = subprocess.run(
        [*FORKLIFT, "serve", "--config", str(tmp_path / "c.yaml"), "--root", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert out.returncode != 0
    assert "auth.htpaswd: unknown setting" in out.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5h", 5400)],
)
def test_durations_in_the_config(tmp_path: Path, text: str, seconds: float) -> None:
    (tmp_path / "c.yaml").write_text(
        f"shutdown_timeout: {text}\ngc: {{interval: {text}, grace: {text}, upload_ttl: {text}}}\n"
        f"auth:\n  token: {{expiry: {text}}}\n"
    )
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.gc.interval, cfg.gc.grace, cfg.gc.upload_ttl) == (seconds, seconds, seconds)
    assert cfg.shutdown_timeout == seconds
    assert cfg.auth.token is not None and cfg.auth.token.expiry == seconds
    (tmp_path / "c.toml").write_text(f'[gc]\ninterval = "{text}"\ngrace = {seconds}\n')
    toml = load_config(tmp_path / "c.toml")
    assert (toml.gc.interval, toml.gc.grace) == (seconds, seconds)


def test_new_sections_load(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "storage: {sparse_index: true}\n"
        "auth: {htpasswd: u, automatic_mount: true, token: }\n"
        "metrics: {enabled: true, auth: true, accounts: [prom]}\n"
    )
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.sparse_index is True
    assert cfg.auth.automatic_mount is True and cfg.auth.mounts_without_from
    assert cfg.auth.token is not None  # "token:" with nothing under it: the defaults
    assert (cfg.metrics.auth, cfg.metrics.accounts) == (True, ("prom",))


# -- the core's validation regexes match whole strings --------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "busybox:v1\n",
        "busybox\n",
        "host:5000\n/app",
        "app@sha256:" + "a" * 64 + "\n",
        "app:v1\n@sha256:" + "a" * 64,
    ],
)
def test_references_with_a_trailing_newline_are_invalid(text: str) -> None:
    from forklift.errors import InvalidReference
    from forklift.reference import parse_reference

    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_digests_and_media_types_match_whole_strings() -> None:
    from forklift.errors import InvalidDigest
    from forklift.oci import Digest
    from forklift.oci import mediatypes as mt

    with pytest.raises(InvalidDigest):
        Digest.parse("sha256:" + "a" * 64 + "\n")
    with pytest.raises(InvalidDigest):
        Digest("sha256", "a" * 63 + "\n")
    assert not mt.is_valid("application/json\n")
    assert mt.is_valid("application/json")
    assert not names.is_tag("v1\n") and names.is_tag("v1")
    with pytest.raises(apierrors.APIError):
        names.check_repository("team/app\n")
    with pytest.raises(apierrors.APIError):
        names.check_upload_id("0f0f-1\n")
