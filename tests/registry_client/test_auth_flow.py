"""Auth against real servers: distribution with htpasswd, and with a JWT token service."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable

import pytest

from forklift.errors import NotFound
from forklift.oci import Digest
from forklift.registry.client import (
    AuthenticationRequired,
    Credentials,
    CredentialStore,
    Denied,
    RegistryClient,
)

from .conftest import USERS, alice
from .images import make_image, random_bytes, sha256
from .proxies import HttpFaultProxy, Rule
from .servers import Distribution, TokenServer
from .test_client_ops import push_image

Make = Callable[..., RegistryClient]
TokenSetup = tuple[TokenServer, Distribution]


# -- htpasswd (Basic) ------------------------------------------------------------------------


def test_basic_auth_anonymous_is_told_to_log_in(
    htpasswd_registry: Distribution, make_client: Make
) -> None:
    client = make_client(htpasswd_registry.host, credentials=CredentialStore())
    with pytest.raises(AuthenticationRequired) as info:
        client.get_manifest("any/repo", "latest")
    host = htpasswd_registry.host
    assert str(info.value) == f"authentication required for {host}: run forklift login {host}"


def test_basic_auth_wrong_password(htpasswd_registry: Distribution, make_client: Make) -> None:
    client = make_client(
        htpasswd_registry.host, credentials=Credentials("alice", "not-her-password")
    )
    with pytest.raises(AuthenticationRequired) as info:
        client.get_manifest("any/repo", "latest")
    assert "run forklift login" in str(info.value)
    assert info.value.hint and "rejected" in info.value.hint
    assert "not-her-password" not in str(info.value) + (info.value.hint or "")


def test_basic_auth_with_stored_credentials(
    htpasswd_registry: Distribution, make_client: Make, repo_name: str
) -> None:
    CredentialStore().store(htpasswd_registry.host, alice())
    client = make_client(htpasswd_registry.host)  # looks credentials up in ~/.docker/config.json
    image = make_image([b"basic layer"])
    digest = push_image(client, repo_name, image, "v1")
    assert client.get_manifest(repo_name, "v1").digest == digest
    assert client.ping().auth_scheme == "basic"


# -- bearer tokens -----------------------------------------------------------------------------


def test_bearer_push_pull_with_scoped_cached_tokens(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    client = make_client(reg.host, credentials=alice())
    image = make_image([b"layer one", random_bytes(30_000, seed=7)])
    digest = push_image(client, repo_name, image, "v1")
    first = tokens.count()
    assert 1 <= first <= 2
    assert all(r.user == "alice" and r.params["service"] == tokens.service for r in tokens.requests)
    assert f"repository:{repo_name}:pull,push" in {s for r in tokens.requests for s in r.scopes}
    # more work on the same repository reuses the cached tokens
    push_image(client, repo_name, image, "v2")
    assert client.get_manifest(repo_name, "v2").digest == digest
    sink = io.BytesIO()
    client.get_blob(repo_name, Digest.parse(image.layers[1].digest), sink)
    assert sink.getvalue() == image.layers[1].data
    assert tokens.count() == first


def test_anonymous_bearer_pull_of_public_repository(
    token_setup: TokenSetup, make_client: Make
) -> None:
    tokens, reg = token_setup
    image = make_image([b"public layer"])
    push_image(make_client(reg.host, credentials=alice()), "public/app", image, "latest")
    anon = make_client(reg.host, credentials=CredentialStore())
    assert anon.get_manifest("public/app", "latest").data == image.manifest
    assert tokens.requests[-1].user is None and tokens.requests[-1].scopes == [
        "repository:public/app:pull"
    ]
    with pytest.raises(AuthenticationRequired) as info:
        anon.get_manifest("private/app", "latest")
    assert f"run forklift login {reg.host}" in str(info.value)


def test_token_expiry_is_honoured(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    tokens.expires_in = 1
    client = make_client(reg.host, credentials=alice())
    missing = Digest.parse(sha256(b"nothing"))
    assert client.stat_blob(repo_name, missing) is None
    before = tokens.count()
    assert client.stat_blob(repo_name, missing) is None
    assert tokens.count() == before  # still fresh
    time.sleep(1.1)
    assert client.stat_blob(repo_name, missing) is None
    assert tokens.count() == before + 1


def test_missing_expires_in_defaults_to_60_seconds(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    tokens.expires_in = None
    client = make_client(reg.host, credentials=alice())
    missing = Digest.parse(sha256(b"nothing"))
    for _ in range(3):
        client.stat_blob(repo_name, missing)
    assert tokens.count() == 1


def test_rejected_token_is_refreshed_once(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    image = make_image([b"refresh"])
    push_image(make_client(reg.host, credentials=alice()), repo_name, image, "v1")
    tokens.requests.clear()
    tokens.spoil_next = 1  # the next token is expired by the time the registry sees it
    client = make_client(reg.host, credentials=alice())
    assert client.get_manifest(repo_name, "v1").data == image.manifest
    assert tokens.count() == 2
    # a token service that only ever issues bad tokens: one retry, then a clear error
    tokens.spoil_next = 100
    fresh = make_client(reg.host, credentials=alice())
    with pytest.raises(AuthenticationRequired):
        fresh.get_manifest(repo_name, "v1")
    assert tokens.count() == 4


def test_insufficient_scope_is_denied_with_the_scope(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    tokens.policy = lambda user, kind, name, actions: (
        [a for a in actions if a == "pull"] if user == "reader" else actions
    )
    client = make_client(reg.host, credentials=Credentials("reader", USERS["reader"]))
    data = b"reader cannot push"
    with pytest.raises(Denied) as info:
        client.upload_blob(repo_name, io.BytesIO(data), Digest.parse(sha256(data)), len(data))
    assert str(info.value) == f"denied: insufficient scope (repository:{repo_name}:pull,push)"


def test_wrong_password_at_the_token_service(token_setup: TokenSetup, make_client: Make) -> None:
    _, reg = token_setup
    client = make_client(reg.host, credentials=Credentials("alice", "wrong"))
    with pytest.raises(AuthenticationRequired) as info:
        client.get_manifest("x/y", "latest")
    assert "run forklift login" in str(info.value) and "wrong" not in str(info.value)


def test_mount_asks_for_pull_on_the_source(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    client = make_client(reg.host, credentials=alice())
    data = random_bytes(10_000, seed=8)
    digest = Digest.parse(sha256(data))
    client.upload_blob(f"{repo_name}/src", io.BytesIO(data), digest, len(data))
    assert client.mount_blob(f"{repo_name}/dst", digest, f"{repo_name}/src") is None
    scopes = tokens.requests[-1].scopes
    assert f"repository:{repo_name}/dst:pull,push" in scopes
    assert f"repository:{repo_name}/src:pull" in scopes
    assert client.has_blob(f"{repo_name}/dst", digest)


def test_catalog_scope(token_setup: TokenSetup, make_client: Make, repo_name: str) -> None:
    tokens, reg = token_setup
    client = make_client(reg.host, credentials=alice())
    push_image(client, repo_name, make_image([b"cat"]), "x")
    assert repo_name in list(client.catalog())
    assert ["registry:catalog:*"] in [r.scopes for r in tokens.requests]


def test_login_gets_an_identity_token_then_uses_oauth2_post(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    push_image(make_client(reg.host, credentials=alice()), repo_name, make_image([b"oauth"]), "v1")
    stored = make_client(reg.host, credentials=CredentialStore()).login(alice())
    assert stored.identity_token and stored.password == ""
    login_request = tokens.requests[-1]
    assert login_request.params.get("offline_token") == "true" and login_request.scopes == []
    client = make_client(reg.host, credentials=stored)
    assert client.get_manifest(repo_name, "v1")
    post = tokens.requests[-1]
    assert post.method == "POST" and post.params["grant_type"] == "refresh_token"
    assert post.params["scope"] == f"repository:{repo_name}:pull"
    assert post.params["service"] == tokens.service


def test_token_service_that_refuses_get_gets_the_oauth2_form(
    token_setup: TokenSetup, make_client: Make, repo_name: str
) -> None:
    tokens, reg = token_setup
    tokens.get_allowed = False
    client = make_client(reg.host, credentials=alice())
    push_image(client, repo_name, make_image([b"post only"]), "v1")
    assert {r.method for r in tokens.requests} == {"POST"}
    assert {r.params["grant_type"] for r in tokens.requests} == {"password"}


def test_registry_403_is_denied_with_scope(registry: Distribution, make_client: Make) -> None:
    body = json.dumps(
        {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
    ).encode()
    proxy = HttpFaultProxy(registry.port, [Rule("GET", "/manifests/", 403, times=10, body=body)])
    try:
        client = make_client(proxy.host)
        with pytest.raises(Denied) as info:
            client.get_manifest("team/app", "v1")
        assert str(info.value) == (
            "denied: requested access to the resource is denied (repository:team/app:pull)"
        )
        with pytest.raises(NotFound):
            client.get_blob("team/app", Digest.parse(sha256(b"z")), io.BytesIO())
    finally:
        proxy.stop()


def test_secrets_never_reach_the_logs(
    token_setup: TokenSetup,
    htpasswd_registry: Distribution,
    make_client: Make,
    repo_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    _, reg = token_setup
    basic = make_client(htpasswd_registry.host, credentials=alice())
    push_image(basic, repo_name, make_image([b"logged"]), "v1")
    stored = make_client(reg.host, credentials=CredentialStore()).login(alice())
    push_image(make_client(reg.host, credentials=stored), repo_name, make_image([b"t"]), "v1")
    assert caplog.records  # debug logging was on
    text = caplog.text
    assert USERS["alice"] not in text
    assert stored.identity_token not in text
    assert base64.b64encode(f"alice:{USERS['alice']}".encode()).decode() not in text
    assert "Bearer ey" not in text  # no JWT from an Authorization header
