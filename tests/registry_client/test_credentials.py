"""Credentials: docker's config.json, containers' auth.json, and the credential-helper protocol.

The helper is a real executable (``docker-credential-fltest``) placed on PATH;
it keeps its secrets in a JSON file and logs the arguments it was started with.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from forklift.errors import InvalidInput, ParseError
from forklift.registry.client import Credentials, CredentialsError, CredentialStore

HELPER = """#!{python}
import json, os, sys
db_path = os.environ["FLTEST_DB"]
with open(os.environ["FLTEST_LOG"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
db = json.load(open(db_path)) if os.path.exists(db_path) else {{}}
action = sys.argv[1]
data = sys.stdin.read()
if action == "get":
    url = data.strip()
    if url not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": url, **db[url]}}))
elif action == "store":
    doc = json.loads(data)
    if doc["Username"] == "explode":
        print("keychain is locked")
        sys.exit(1)
    db[doc["ServerURL"]] = {{"Username": doc["Username"], "Secret": doc["Secret"]}}
    json.dump(db, open(db_path, "w"))
elif action == "erase":
    url = data.strip()
    if url not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    del db[url]
    json.dump(db, open(db_path, "w"))
"""


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Install docker-credential-fltest on PATH; returns (its secrets db, its argv log)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "docker-credential-fltest"
    exe.write_text(HELPER.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    db, log = tmp_path / "helper-db.json", tmp_path / "helper-log.jsonl"
    monkeypatch.setenv("FLTEST_DB", str(db))
    monkeypatch.setenv("FLTEST_LOG", str(log))
    return db, log


def docker_config(home: Path) -> Path:
    return home / ".docker" / "config.json"


def write_config(home: Path, doc: dict[str, object]) -> Path:
    path = docker_config(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_store_writes_base64_auth_0600_and_keeps_other_keys(isolated_env: Path) -> None:
    write_config(isolated_env, {"proxies": {"default": {"httpProxy": "http://p:3128"}}})
    store = CredentialStore()
    where = store.store("localhost:5000", Credentials("bob", "s3cr3t:with:colons"))
    path = docker_config(isolated_env)
    assert where.config == path and where.helper is None
    doc = json.loads(path.read_text())
    assert doc["auths"]["localhost:5000"] == {"auth": b64("bob:s3cr3t:with:colons")}
    assert doc["proxies"] == {"default": {"httpProxy": "http://p:3128"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]  # no temp files left
    got = store.get("localhost:5000")
    assert got is not None
    assert (got.username, got.password) == ("bob", "s3cr3t:with:colons")


def test_docker_hub_uses_the_legacy_index_key(isolated_env: Path) -> None:
    store = CredentialStore()
    store.store("docker.io", Credentials("hubuser", "hubpass"))
    doc = json.loads(docker_config(isolated_env).read_text())
    assert list(doc["auths"]) == ["https://index.docker.io/v1/"]
    for alias in (
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "https://index.docker.io/v1/",
    ):
        got = store.get(alias)
        assert got is not None and got.username == "hubuser", alias


def test_url_shaped_keys_match_their_host(isolated_env: Path) -> None:
    write_config(isolated_env, {"auths": {"https://reg.example.com/v2/": {"auth": b64("u:p")}}})
    got = CredentialStore().get("reg.example.com")
    assert got is not None and (got.username, got.password) == ("u", "p")
    assert CredentialStore().get("other.example.com") is None


def test_identity_token_entry(isolated_env: Path) -> None:
    write_config(
        isolated_env, {"auths": {"r.io": {"auth": b64("u:"), "identitytoken": "refresh-1"}}}
    )
    got = CredentialStore().get("r.io")
    assert got is not None and got.identity_token == "refresh-1" and got.username == "u"


def test_docker_config_env_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfgdir = tmp_path / "elsewhere"
    monkeypatch.setenv("DOCKER_CONFIG", str(cfgdir))
    CredentialStore().store("r.io", Credentials("u", "p"))
    assert (cfgdir / "config.json").exists()
    assert CredentialStore().get("r.io") is not None


def test_containers_auth_files_and_precedence(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run" / "containers"
    run.mkdir(parents=True)
    (run / "auth.json").write_text(
        json.dumps(
            {
                "auths": {
                    "quay.example": {"auth": b64("xdg:1")},
                    "quay.example/team": {"auth": b64("team:2")},
                    "quay.example/team/app": {"auth": b64("app:3")},
                }
            }
        )
    )
    store = CredentialStore()
    assert store.get("quay.example").username == "xdg"  # type: ignore[union-attr]
    assert store.get("quay.example", "team/app").username == "app"  # type: ignore[union-attr]
    assert store.get("quay.example", "team/other").username == "team"  # type: ignore[union-attr]
    # docker's config (what forklift login writes) wins over podman's runtime file
    write_config(isolated_env, {"auths": {"quay.example": {"auth": b64("docker:4")}}})
    assert store.get("quay.example").username == "docker"  # type: ignore[union-attr]
    # ... but an explicit $REGISTRY_AUTH_FILE wins over both
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"auths": {"quay.example": {"auth": b64("explicit:5")}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert store.get("quay.example").username == "explicit"  # type: ignore[union-attr]
    assert store.remaining_elsewhere("quay.example") == explicit


def test_malformed_config_reports_file_line_column(isolated_env: Path) -> None:
    path = docker_config(isolated_env)
    path.parent.mkdir(parents=True)
    path.write_text('{\n  "auths": {\n    "r.io": {"auth": "x"},,\n  }\n}\n')
    with pytest.raises(ParseError) as info:
        CredentialStore().get("r.io")
    assert str(info.value).startswith(f"{path}:3:")


def test_deeply_nested_config_is_a_one_line_error(isolated_env: Path) -> None:
    path = docker_config(isolated_env)
    path.parent.mkdir(parents=True)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidInput) as info:
        CredentialStore().get("r.io")
    assert str(info.value) == f"{path}: JSON nested too deeply"


def test_deeply_nested_helper_answer_is_a_one_line_error(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "deep-bin"
    bindir.mkdir()
    exe = bindir / "docker-credential-deep"
    exe.write_text(f"#!{sys.executable}\nprint('[' * 100000 + ']' * 100000)\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    write_config(isolated_env, {"credsStore": "deep"})
    with pytest.raises(CredentialsError) as info:
        CredentialStore().get("r.io")
    assert "docker-credential-deep get returned invalid JSON" in str(info.value)


def test_bad_base64_is_reported_without_the_secret(isolated_env: Path) -> None:
    write_config(isolated_env, {"auths": {"r.io": {"auth": "not base64 hunter2!"}}})
    with pytest.raises(InvalidInput) as info:
        CredentialStore().get("r.io")
    assert "r.io" in str(info.value) and "hunter2" not in str(info.value)


def test_repr_hides_secrets() -> None:
    text = repr(Credentials("u", "hunter2", "tok-123"))
    assert "hunter2" not in text and "tok-123" not in text and "'u'" in text


def test_creds_store_helper_protocol(isolated_env: Path, helper: tuple[Path, Path]) -> None:
    db, log = helper
    write_config(isolated_env, {"credsStore": "fltest"})
    store = CredentialStore()
    where = store.store("docker.io", Credentials("hubuser", "pa55-word"))
    assert where.helper == "fltest"
    # the secret went to the helper, the file only remembers the registry (as docker does)
    assert json.loads(db.read_text()) == {
        "https://index.docker.io/v1/": {"Username": "hubuser", "Secret": "pa55-word"}
    }
    doc = json.loads(docker_config(isolated_env).read_text())
    assert doc["auths"] == {"https://index.docker.io/v1/": {}}
    assert "pa55-word" not in docker_config(isolated_env).read_text()
    got = store.get("docker.io")
    assert got is not None and (got.username, got.password) == ("hubuser", "pa55-word")
    assert got.source == "docker-credential-fltest"
    assert store.get("unknown.example") is None  # "credentials not found" -> None
    assert store.erase("docker.io") is True
    assert json.loads(db.read_text()) == {}
    assert store.erase("docker.io") is False
    # the helper only ever saw its action as argument: secrets travel on stdin
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c[1:] for c in calls] == [["store"], ["get"], ["get"], ["erase"], ["erase"]]
    assert all("pa55-word" not in " ".join(c) for c in calls)


def test_cred_helpers_per_registry_and_identity_tokens(
    isolated_env: Path, helper: tuple[Path, Path]
) -> None:
    db, _ = helper
    db.write_text(json.dumps({"ghcr.example": {"Username": "<token>", "Secret": "refresh-abc"}}))
    write_config(
        isolated_env,
        {
            "credsStore": "missing-helper",
            "credHelpers": {"ghcr.example": "fltest"},
            "auths": {"plain.example": {"auth": b64("p:q")}},
        },
    )
    store = CredentialStore()
    got = store.get("ghcr.example")
    assert got is not None and got.identity_token == "refresh-abc" and got.password == ""
    # auths entries are read before falling back to credsStore
    assert store.get("plain.example").username == "p"  # type: ignore[union-attr]
    with pytest.raises(CredentialsError) as info:
        store.get("elsewhere.example")
    assert "docker-credential-missing-helper not found" in str(info.value)


def test_helper_failure_is_one_line_without_secret(
    isolated_env: Path, helper: tuple[Path, Path]
) -> None:
    write_config(isolated_env, {"credHelpers": {"r.io": "fltest"}})
    with pytest.raises(CredentialsError) as info:
        CredentialStore().store("r.io", Credentials("explode", "topsecret"))
    message = str(info.value)
    assert "keychain is locked" in message and "topsecret" not in message and "\n" not in message


def test_erase_removes_every_alias_and_reports_nothing_to_erase(isolated_env: Path) -> None:
    write_config(
        isolated_env,
        {"auths": {"r.io": {"auth": b64("a:b")}, "https://r.io": {"auth": b64("c:d")}}},
    )
    store = CredentialStore()
    assert store.erase("r.io") is True
    assert json.loads(docker_config(isolated_env).read_text())["auths"] == {}
    assert store.get("r.io") is None
    assert store.erase("r.io") is False
