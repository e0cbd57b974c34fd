"""Credentials never leave the registry's origin (issue 10, item 4).

A hostile registry on 127.0.0.1 points the client at another host,
127.0.0.2 (another address, so another origin): an upload ``Location``, a
redirect of a blob download, a ``Link`` to the next page of tags, a token
service. The other host is a real server that records every header it gets;
the tests assert it never saw the user's password or token, and that the
registry itself did (so the credentials were really in play).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forklift.errors import NotFound
from forklift.oci import Digest
from forklift.registry.client import (
    AuthenticationRequired,
    ClientOptions,
    Credentials,
    RegistryClient,
)
from tests.helpers import run_cli

from .fakes import FakeServer, Reply, Seen, basic
from .images import random_bytes, sha256
from .servers import make_keypair

Make = Callable[..., RegistryClient]

USER, PASSWORD = "alice", "s3cret-password"
TOKEN = "registry-token-for-alice"
BLOB = random_bytes(200_000, seed=41)
BLOB_DIGEST = sha256(BLOB)


def leaked(seen: list[Seen]) -> list[str]:
    """Every header (or body) of ``seen`` that carries the password or the token."""
    out = []
    for s in seen:
        for name, value in s.headers.items():
            if name == "authorization" or PASSWORD in value or TOKEN in value:
                out.append(f"{s.method} {s.target}: {name}: {value}")
        if PASSWORD.encode() in s.body or TOKEN.encode() in s.body:
            out.append(f"{s.method} {s.target}: body")
    return out


class Other:
    """127.0.0.2: takes uploads, serves blobs (a "CDN"), pages of tags; records all."""

    def __init__(self) -> None:
        self.server = FakeServer(self.respond, address="127.0.0.2")

    def respond(self, seen: Seen) -> Reply:
        if seen.method in ("PATCH", "POST"):
            # a relative Location: resolved against this host, not the registry
            return Reply(202, {"Location": seen.path})
        if seen.method == "PUT":
            return Reply(201, {"Docker-Content-Digest": BLOB_DIGEST})
        if seen.path.startswith("/cdn/"):
            return Reply(200, {"Content-Type": "application/octet-stream"}, BLOB)
        if "/tags/list" in seen.path:
            return Reply(200, {"Content-Type": "application/json"}, b'{"tags":["b"]}')
        return Reply(404)


class Hostile:
    """A registry on 127.0.0.1 that wants ``USER``/``PASSWORD`` (Basic, or Bearer
    from ``realm``) and sends the client to ``other`` wherever the API lets it."""

    def __init__(self, other: Other, *, scheme: str = "basic", realm: str | None = None):
        self.other = other
        self.scheme = scheme
        self.server = FakeServer(self.respond)
        self.realm = realm or f"{self.server.url}/token"

    def challenge(self) -> Reply:
        if self.scheme == "basic":
            header = 'Basic realm="hostile"'
        else:
            header = f'Bearer realm="{self.realm}",service="hostile"'
        return Reply(401, {"WWW-Authenticate": header}, b'{"errors":[{"code":"UNAUTHORIZED"}]}')

    def authorized(self, seen: Seen) -> bool:
        want = basic(USER, PASSWORD) if self.scheme == "basic" else f"Bearer {TOKEN}"
        return seen.headers.get("authorization") == want

    def respond(self, seen: Seen) -> Reply:
        other = self.other.server.url
        if seen.path == "/token":
            if seen.headers.get("authorization") != basic(USER, PASSWORD):
                return Reply(401)
            return Reply(
                200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode()
            )
        if not self.authorized(seen):
            return self.challenge()
        if seen.path == "/v2/":
            return Reply(200, {"Content-Type": "application/json"}, b"{}")
        if seen.method == "HEAD" and "/blobs/" in seen.path:
            return Reply(404)
        if seen.method == "POST" and seen.path.endswith("/blobs/uploads/"):
            return Reply(202, {"Location": f"{other}/upload/1?state=x"})
        if seen.method == "GET" and "/blobs/" in seen.path:
            return Reply(307, {"Location": f"{other}/cdn/{BLOB_DIGEST}"})
        if seen.method == "GET" and seen.path.endswith("/tags/list"):
            link = f'<{other}/v2/team/app/tags/list?last=a>; rel="next"'
            return Reply(200, {"Content-Type": "application/json", "Link": link}, b'{"tags":["a"]}')
        if seen.method == "PUT" and "/manifests/" in seen.path:
            return Reply(201, {"Docker-Content-Digest": sha256(seen.body)})
        return Reply(404)


@pytest.fixture
def other() -> Iterator[Other]:
    o = Other()
    yield o
    o.server.stop()


def hostile(other: Other, **kwargs: object) -> Hostile:
    return Hostile(other, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def stop_later() -> Iterator[list[FakeServer]]:
    servers: list[FakeServer] = []
    yield servers
    for s in servers:
        s.stop()


CREDS = Credentials(USER, PASSWORD)


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
@pytest.mark.parametrize("monolithic_max", [1_000_000, 50_000], ids=["monolithic", "chunked"])
def test_upload_location_on_another_host_gets_no_credentials(
    other: Other,
    stop_later: list[FakeServer],
    make_client: Make,
    scheme: str,
    monolithic_max: int,
) -> None:
    reg = hostile(other, scheme=scheme)
    stop_later.append(reg.server)
    options = ClientOptions(monolithic_max=monolithic_max, chunk_size=60_000, backoff_base=0.01)
    client = make_client(reg.server.host, credentials=CREDS, options=options)
    client.upload_blob("team/app", io.BytesIO(BLOB), Digest.parse(BLOB_DIGEST), len(BLOB))

    # the bytes went to the other host (so the test exercised that path) ...
    sent = b"".join(s.body for s in other.server.requests() if s.method in ("PUT", "PATCH"))
    assert sent == BLOB
    # ... without the password or the token
    assert leaked(other.server.seen) == []
    # while the registry itself got them on the upload's POST
    posts = reg.server.requests("POST")
    assert posts and all(reg.authorized(p) for p in posts)


def test_blob_redirect_to_a_cdn_gets_no_credentials(
    other: Other, stop_later: list[FakeServer], make_client: Make
) -> None:
    reg = hostile(other, scheme="bearer")
    stop_later.append(reg.server)
    client = make_client(reg.server.host, credentials=CREDS)
    got = client.fetch_blob_bytes("team/app", Digest.parse(BLOB_DIGEST))
    assert got == BLOB
    assert [s.path for s in other.server.seen] == [f"/cdn/{BLOB_DIGEST}"]
    assert leaked(other.server.seen) == []
    assert any(reg.authorized(s) for s in reg.server.requests("GET") if "/blobs/" in s.path)


def test_next_page_link_on_another_host_gets_no_credentials(
    other: Other, stop_later: list[FakeServer], make_client: Make
) -> None:
    reg = hostile(other, scheme="basic")
    stop_later.append(reg.server)
    client = make_client(reg.server.host, credentials=CREDS)
    assert list(client.list_tags("team/app")) == ["a", "b"]
    assert [s.path for s in other.server.seen] == ["/v2/team/app/tags/list"]
    assert leaked(other.server.seen) == []


def test_a_401_from_another_host_does_not_change_the_registrys_challenge(
    stop_later: list[FakeServer], make_client: Make
) -> None:
    """A CDN answering 401 with its own challenge must not become the registry's."""
    cdn = FakeServer(
        lambda s: Reply(401, {"WWW-Authenticate": 'Basic realm="cdn"'}), address="127.0.0.2"
    )
    stop_later.append(cdn)

    def respond(seen: Seen) -> Reply:
        if seen.headers.get("authorization") != basic(USER, PASSWORD):
            return Reply(401, {"WWW-Authenticate": 'Basic realm="registry"'})
        if seen.path == "/v2/":
            return Reply(200)
        return Reply(307, {"Location": f"{cdn.url}/blob"})

    reg = FakeServer(respond)
    stop_later.append(reg)
    client = make_client(reg.host, credentials=CREDS)
    with pytest.raises(AuthenticationRequired):
        client.fetch_blob_bytes("team/app", Digest.parse(BLOB_DIGEST))
    challenge = client.session.auth.challenge
    assert challenge is not None and challenge.params.get("realm") == "registry"
    assert leaked(cdn.seen) == []
    # asked once: the client did not retry the CDN with the registry's credentials
    assert len(cdn.seen) == 1


def test_password_never_goes_to_a_plain_http_token_service_on_another_host(
    other: Other, stop_later: list[FakeServer], make_client: Make
) -> None:
    realm_server = FakeServer(
        lambda s: Reply(200, {"Content-Type": "application/json"}, b'{"token":"anonymous"}'),
        address="127.0.0.2",
    )
    stop_later.append(realm_server)
    reg = hostile(other, scheme="bearer", realm=f"{realm_server.url}/token")
    stop_later.append(reg.server)

    client = make_client(reg.server.host, credentials=CREDS)
    with pytest.raises(AuthenticationRequired) as info:
        client.get_manifest("team/app", "v1")
    assert "refusing to send the credentials" in str(info.value)
    assert f"{realm_server.url}/token" in str(info.value)
    assert realm_server.seen == []

    # anonymous clients have nothing to leak: they still ask that service for a token
    anonymous = make_client(reg.server.host, credentials=Credentials("", ""))
    with pytest.raises(AuthenticationRequired):
        anonymous.get_manifest("team/app", "v1")  # the registry wants alice's token
    assert realm_server.seen and leaked(realm_server.seen) == []


def test_a_token_service_listed_as_insecure_gets_the_password_over_http(
    other: Other, stop_later: list[FakeServer], make_client: Make
) -> None:
    realm_server = FakeServer(
        lambda s: Reply(
            200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode()
        ),
        address="127.0.0.2",
    )
    stop_later.append(realm_server)
    reg = hostile(other, scheme="bearer", realm=f"{realm_server.url}/token")
    stop_later.append(reg.server)
    options = ClientOptions(insecure_registries=frozenset({realm_server.host}))
    client = make_client(reg.server.host, credentials=CREDS, options=options)
    with pytest.raises(NotFound):  # the fake registry has no manifest
        client.get_manifest("team/app", "v1")
    assert [s.headers.get("authorization") for s in realm_server.seen] == [basic(USER, PASSWORD)]


def test_an_https_token_service_on_another_host_gets_the_password(
    other: Other, stop_later: list[FakeServer], make_client: Make, tmp_path: Path
) -> None:
    keys = make_keypair("token service", san_ips=("127.0.0.2",))
    got: list[str] = []

    def issue(seen: Seen) -> Reply:
        got.append(seen.headers.get("authorization", ""))
        return Reply(
            200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode()
        )

    realm_server = FakeServer(issue, address="127.0.0.2", tls=keys)
    stop_later.append(realm_server)
    assert realm_server.url.startswith("https://")
    reg = hostile(other, scheme="bearer", realm=f"{realm_server.url}/token")
    stop_later.append(reg.server)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(keys.cert_pem)
    # verified TLS for the token service, although the registry is a loopback one
    options = ClientOptions(
        ca_bundle=ca, insecure_registries=frozenset({reg.server.host}), insecure_localhost=False
    )
    client = make_client(reg.server.host, credentials=CREDS, options=options)
    assert list(client.list_tags("team/app")) == ["a", "b"]
    assert got == [basic(USER, PASSWORD)]
    # and the token then went to the registry, never to the other host
    assert leaked(other.server.seen) == []


def test_push_through_the_cli_keeps_the_password_home(
    other: Other, stop_later: list[FakeServer], busybox_image: str, isolated_env: Path
) -> None:
    reg = hostile(other, scheme="basic")
    stop_later.append(reg.server)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = isolated_env / ".docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {reg.server.host: {"auth": auth}}}))
    result = run_cli("push", "-q", busybox_image, f"{reg.server.host}/team/app:1")
    assert result.returncode == 0, result.stderr
    assert other.server.requests("PUT")  # the blobs went to the other host
    assert leaked(other.server.seen) == []
    assert any(reg.authorized(s) for s in reg.server.requests("POST"))
