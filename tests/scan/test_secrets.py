"""Secret rules: what they find, what they must not find, and that a secret is never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forklift.oci.config import ContainerConfig, History, ImageConfig
from forklift.scan.secrets.detect import mask, scan_bytes, scan_config

AWS_ID = "AKIAZ7VRSQ5BDKQ3TOKA"
AWS_SECRET = "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"
GH = "ghp_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDhDE0Vd7Xq8hTrGd0kM6dKPE0bR0dFqbFg3Qm0uT5bXQAAAJgAAAAAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)

CASES = [
    ("home/app/.aws/credentials", f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
     {("aws-access-key-id", 2), ("aws-secret-access-key", 3)}),
    ("root/.ssh/id_ed25519", KEY, {("private-key", 1)}),
    ("app/sa.json", json.dumps({"type": "service_account", "project_id": "p",
                                "private_key": KEY.replace("OPENSSH ", "")}), {("gcp-service-account", 1)}),
    ("app/config.yml", f"token: {GH}\n", {("github-pat", 1)}),
    ("app/ci.env", "GITLAB=glpat-Ab12Cd34Ef56Gh78Ij90\n", {("gitlab-pat", 1)}),
    ("root/.npmrc", "//registry.npmjs.org/:_authToken=npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\n",
     {("npm-access-token", 1)}),
    ("root/.pypirc", "[pypi]\npassword = pypi-AgEIcHlwaS5vcmcCJDQ2ZjYwNjdjLTg4ZmUtNDk3Yi04NWYyLWQ2OTJkNzE3ZTg0NQ\n",
     {("pypi-upload-token", 2)}),
    ("root/.docker/config.json", json.dumps({"auths": {"registry.local:5000": {"auth": "dXNlcjpzM2NyZXQ="}}}),
     {("docker-config-auth", 1)}),
    ("root/.git-credentials", "https://me:hunter2secret@github.com\n", {("git-credentials", 1)}),
    ("srv/app/.env", "DEBUG=1\nDATABASE_PASSWORD=s3cr3t-passw0rd\n", {("dotenv-secret", 2)}),
]  # fmt: skip

CLEAN = [
    ("usr/share/doc/x/README", "see AKIAIOSFODNN7EXAMPLE in the AWS docs\n"),  # the documented example
    ("etc/app.conf", "password = ${DB_PASSWORD}\naws_secret_access_key = <your secret here>\n"),
    ("srv/app/.env.example", "DATABASE_PASSWORD=changeme\n"),
    ("srv/app/.env", "API_KEY=${API_KEY}\nTOKEN=\n"),
    ("docs/keys.md", "Keys look like -----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----\n"),
    ("etc/ssl/certs/ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB" + "A" * 200 + "\n-----END CERTIFICATE-----\n"),
    ("root/.docker/config.json", json.dumps({"auths": {"ghcr.io": {}}, "credsStore": "pass"})),
    ("app/main.py", "token = os.environ['GITHUB_TOKEN']\nsecret = get_secret()\n"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rules_find_secrets_and_mask_them(
    path: str, text: str, expected: set[tuple[str, int]]
) -> None:
    hits = scan_bytes(text.encode(), path)
    assert {(h.rule.id, h.line) for h in hits} == expected
    for h in hits:
        for secret in (
            AWS_ID,
            AWS_SECRET,
            GH,
            "s3cr3t-passw0rd",
            "hunter2secret",
            "dXNlcjpzM2NyZXQ=",
        ):
            assert secret not in h.text


@pytest.mark.parametrize(("path", "text"), CLEAN, ids=[c[0] for c in CLEAN])
def test_no_false_positives(path: str, text: str) -> None:
    assert scan_bytes(text.encode(), path) == []


def test_mask_keeps_four_characters_at_most() -> None:
    assert mask(AWS_ID.encode()) == "AKIA" + "*" * 16
    assert mask(b"short1") == "s*****"
    assert len(mask(b"x" * 500)) == 20


def test_no_false_positives_in_the_corpus_dockerfiles(corpus: Path) -> None:
    files = [f for f in (corpus / "dockerfiles").rglob("*") if f.is_file()]
    assert len(files) > 1000
    hits = [(f.name, h.rule.id) for f in files for h in scan_bytes(f.read_bytes(), f.name)]
    assert hits == []


def test_config_env_history_and_labels() -> None:
    config = ImageConfig(
        architecture="amd64",
        os="linux",
        config=ContainerConfig(
            env=("PATH=/usr/bin", f"GITHUB_TOKEN={GH}", "DB_PASSWORD=hunter2hunter2", "PASSWORD_FILE=/run/secrets/db",
                 "API_KEY="),
            labels={"ci.token": GH},
        ),
        history=(History(created_by="/bin/sh -c #(nop) ADD file:abc in /"),
                 History(created_by=f"RUN |1 NPM_TOKEN=npm_{'x1' * 18} /bin/sh -c npm ci")),
    )  # fmt: skip
    found = {(s.rule, s.target) for s in scan_config(config, ())}
    assert found == {
        ("github-pat", "config:Env[1]"),
        ("env-secret", "config:Env[2]"),
        ("github-pat", "config:Labels[ci.token]"),
        ("npm-access-token", "config:history[1]"),
    }
    for s in scan_config(config, ()):
        assert GH not in s.match and "hunter2hunter2" not in s.match
        assert "rotate" in s.fix
