"""Faults between the client and a real distribution: cut connections, flipped bytes, 5xx, 429."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import DigestMismatch, TransportError
from forklift.oci import Digest
from forklift.registry.client import (
    ClientOptions,
    RateLimited,
    RegistryClient,
    ServerError,
    Unreachable,
)
from tests.registry_server.servers import Server, start_forklift

from .images import make_image, random_bytes, sha256
from .proxies import DOWN, UP, Cut, Flip, HttpFaultProxy, Rule, TcpProxy
from .servers import Distribution, http_get
from .test_client_ops import push_image

Make = Callable[..., RegistryClient]
SIZE = 1_000_000


@pytest.fixture
def stored_blob(registry: Distribution, make_client: Make, repo_name: str) -> tuple[str, bytes]:
    data = random_bytes(SIZE, seed=11)
    make_client(registry.host).upload_blob(
        repo_name, io.BytesIO(data), Digest.parse(sha256(data)), SIZE
    )
    return repo_name, data


def test_download_resumes_after_the_server_side_is_cut(
    registry: Distribution, make_client: Make, stored_blob: tuple[str, bytes]
) -> None:
    repo, data = stored_blob
    proxy = TcpProxy(registry.port, cut=Cut(DOWN, after=300_000, times=2))
    try:
        client = make_client(proxy.host)
        progress: list[int] = []
        sink = io.BytesIO()
        n = client.get_blob(
            repo, Digest.parse(sha256(data)), sink, size=SIZE, progress=progress.append
        )
        assert n == SIZE and sink.getvalue() == data
        assert proxy.cuts_done == 2
        assert progress == sorted(progress) and progress[-1] == SIZE
        # resumed with Range, not restarted: hardly more than the blob went through
        assert proxy.relayed[DOWN] < SIZE + 50_000
    finally:
        proxy.stop()


def test_chunked_upload_completes_after_the_client_side_is_cut(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    """distribution 2.8 cancels the upload session after a broken PATCH ("upload resumed at
    wrong offset"): the client must notice and start a new session, not fail."""
    data = random_bytes(SIZE, seed=12)
    proxy = TcpProxy(registry.port, cut=Cut(UP, after=450_000))
    try:
        options = ClientOptions(
            monolithic_max=100_000, chunk_size=256 * 1024, backoff_base=0.01, backoff_max=0.05
        )
        client = make_client(proxy.host, options=options)
        client.upload_blob(repo_name, io.BytesIO(data), Digest.parse(sha256(data)), SIZE)
        assert proxy.cuts_done == 1
    finally:
        proxy.stop()
    status, body = http_get(f"{registry.url}/v2/{repo_name}/blobs/{sha256(data)}")
    assert status == 200 and body == data


@pytest.fixture(scope="module")
def forklift_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_forklift(tmp_path_factory.mktemp("forklift-serve") / "root", "--access-log", "")
    yield server
    server.stop()


def test_chunked_upload_resumes_from_the_offset_the_registry_reports(
    forklift_registry: Server, make_client: Make, repo_name: str
) -> None:
    """distribution 2.8 cancels an upload after a broken PATCH (it then restarts, above);
    forklift serve keeps it, so the client must continue from the reported Range."""
    size = 3 * 1024 * 1024
    data = random_bytes(size, seed=14)
    # forklift serve asks for chunks of at least 1 MiB (OCI-Chunk-Min-Length): the client
    # must send 1 MiB chunks even though it was configured for 256 KiB
    proxy = TcpProxy(forklift_registry.port, cut=Cut(UP, after=1_500_000))
    try:
        options = ClientOptions(monolithic_max=100_000, chunk_size=256 * 1024, backoff_base=0.01)
        client = make_client(proxy.host, options=options)
        client.upload_blob(repo_name, io.BytesIO(data), Digest.parse(sha256(data)), size)
        assert proxy.cuts_done == 1
        # only the unconfirmed part of the cut chunk went again (< 1.5 MB - 1 MiB + headers);
        # a restart from zero would have sent 1.5 MB more
        assert proxy.relayed[UP] < size + 500_000
    finally:
        proxy.stop()
    url = f"http://{forklift_registry.host}/v2/{repo_name}/blobs/{sha256(data)}"
    assert http_get(url) == (200, data)


def test_monolithic_upload_retries_after_a_cut(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    data = random_bytes(200_000, seed=13)
    proxy = TcpProxy(registry.port, cut=Cut(UP, after=50_000))
    try:
        make_client(proxy.host).upload_blob(
            repo_name, io.BytesIO(data), Digest.parse(sha256(data)), len(data)
        )
        assert proxy.cuts_done == 1
    finally:
        proxy.stop()
    assert http_get(f"{registry.url}/v2/{repo_name}/blobs/{sha256(data)}") == (200, data)


def test_flipped_byte_is_a_digest_mismatch_and_nothing_is_kept(
    registry: Distribution, make_client: Make, stored_blob: tuple[str, bytes], tmp_path: Path
) -> None:
    repo, data = stored_blob
    proxy = TcpProxy(registry.port, flip=Flip(offset=200_000))
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    digest = Digest.parse(sha256(data))
    try:
        client = make_client(proxy.host)
        with pytest.raises(DigestMismatch) as info:
            client.download_blob(repo, digest, target_dir / "layer", what="layer")
    finally:
        proxy.stop()
    assert str(info.value).startswith(
        f"digest mismatch for layer {digest}: the registry sent different bytes"
    )
    assert list(target_dir.iterdir()) == []


def test_manifest_bytes_not_matching_their_digest_are_refused(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    image = make_image([b"manifest check"])
    push_image(make_client(registry.host), repo_name, image, "v1")
    tampered = image.manifest.replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
    assert tampered != image.manifest
    rules = [
        # by tag: the body does not hash to the Docker-Content-Digest sent with it
        Rule(
            "GET",
            "/manifests/v1",
            200,
            body=tampered,
            headers={"Docker-Content-Digest": image.manifest_digest},
        ),
        # by digest: the body does not hash to the digest asked for
        Rule("GET", f"/manifests/{image.manifest_digest}", 200, body=tampered),
    ]
    proxy = HttpFaultProxy(registry.port, rules)
    try:
        client = make_client(proxy.host)
        with pytest.raises(DigestMismatch) as info:
            client.get_manifest(repo_name, "v1")
        assert f"manifest {image.manifest_digest}: the registry sent different bytes" in str(
            info.value
        )
        with pytest.raises(DigestMismatch):
            client.get_manifest(repo_name, Digest.parse(image.manifest_digest))
        assert [r.hits for r in rules] == [1, 1]
        # the real registry, untampered, passes
        assert client.get_manifest(repo_name, "v1").data == image.manifest
    finally:
        proxy.stop()


def test_500_twice_then_ok(
    registry: Distribution, make_client: Make, stored_blob: tuple[str, bytes]
) -> None:
    repo, data = stored_blob
    rules = [Rule("GET", "/blobs/", 500, times=2), Rule("HEAD", "/blobs/", 503, times=2)]
    proxy = HttpFaultProxy(registry.port, rules)
    try:
        client = make_client(proxy.host)
        sink = io.BytesIO()
        client.get_blob(repo, Digest.parse(sha256(data)), sink)
        assert sink.getvalue() == data
        assert client.has_blob(repo, Digest.parse(sha256(data)))
        assert [r.hits for r in rules] == [2, 2]
    finally:
        proxy.stop()


def test_persistent_5xx_gives_up_with_a_server_error(
    registry: Distribution, make_client: Make
) -> None:
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "disk on fire"}]}).encode()
    proxy = HttpFaultProxy(registry.port, [Rule("GET", "/manifests/", 500, times=100, body=body)])
    try:
        client = make_client(proxy.host, options=ClientOptions(max_attempts=3, backoff_base=0.01))
        with pytest.raises(ServerError) as info:
            client.get_manifest("a/b", "v1")
        assert "disk on fire" in str(info.value)
        assert proxy.rules[0].hits == 3
    finally:
        proxy.stop()


def test_429_waits_for_retry_after(
    registry: Distribution, make_client: Make, stored_blob: tuple[str, bytes]
) -> None:
    repo, data = stored_blob
    rule = Rule("GET", "/blobs/", 429, times=1, headers={"Retry-After": "1"})
    proxy = HttpFaultProxy(registry.port, [rule])
    try:
        client = make_client(proxy.host)
        start = time.monotonic()
        sink = io.BytesIO()
        client.get_blob(repo, Digest.parse(sha256(data)), sink)
        elapsed = time.monotonic() - start
        assert sink.getvalue() == data and rule.hits == 1
        assert elapsed >= 0.95  # the backoff alone would be ~10 ms
    finally:
        proxy.stop()


def test_429_forever_says_rate_limited(registry: Distribution, make_client: Make) -> None:
    rule = Rule("GET", "/manifests/", 429, times=100, headers={"Retry-After": "0"})
    proxy = HttpFaultProxy(registry.port, [rule])
    try:
        client = make_client(proxy.host, options=ClientOptions(max_attempts=3, backoff_base=0.01))
        with pytest.raises(RateLimited) as info:
            client.get_manifest("a/b", "v1")
        assert str(info.value).startswith(f"rate limited by {proxy.host}")
        assert rule.hits == 3
    finally:
        proxy.stop()


def test_whole_operation_timeout(registry: Distribution, make_client: Make) -> None:
    rule = Rule("GET", "/manifests/", 429, times=100, headers={"Retry-After": "30"})
    proxy = HttpFaultProxy(registry.port, [rule])
    try:
        options = ClientOptions(operation_timeout=1.0, max_retry_after=60)
        client = make_client(proxy.host, options=options)
        start = time.monotonic()
        with pytest.raises(TransportError) as info:
            client.get_manifest("a/b", "v1")
        assert "timed out after 1 s" in str(info.value)
        assert time.monotonic() - start < 3
    finally:
        proxy.stop()


def test_nothing_listening_is_a_clear_transport_error(make_client: Make) -> None:
    from .servers import free_port

    client = make_client(
        f"127.0.0.1:{free_port()}", options=ClientOptions(max_attempts=2, backoff_base=0.01)
    )
    with pytest.raises(TransportError) as info:
        client.ping()
    assert "cannot reach 127.0.0.1:" in str(info.value)


def test_failed_patch_and_put_are_resumed_in_the_same_session(
    registry: Distribution, make_client: Make, repo_name: str
) -> None:
    data = random_bytes(SIZE, seed=15)
    # the second chunk fails (distribution holds 300000 bytes: an unambiguous Range), then
    # the closing PUT
    rules = [
        Rule("PATCH", "/blobs/uploads/", 500, after=1),
        Rule("PUT", "/blobs/uploads/", 503),
    ]
    proxy = HttpFaultProxy(registry.port, rules)
    try:
        options = ClientOptions(monolithic_max=100_000, chunk_size=300_000, backoff_base=0.01)
        client = make_client(proxy.host, options=options)
        client.upload_blob(repo_name, io.BytesIO(data), Digest.parse(sha256(data)), SIZE)
        assert [r.hits for r in rules] == [1, 1]
        methods = [m for m, target in proxy.seen if "/blobs/uploads/" in target]
        # one session: the registry was asked where the upload stood, not restarted
        assert methods.count("POST") == 1
        assert "GET" in methods
    finally:
        proxy.stop()
    assert http_get(f"{registry.url}/v2/{repo_name}/blobs/{sha256(data)}") == (200, data)


def test_open_blob_is_a_resuming_verified_reader(
    registry: Distribution, make_client: Make, stored_blob: tuple[str, bytes]
) -> None:
    repo, data = stored_blob
    digest = Digest.parse(sha256(data))
    proxy = TcpProxy(registry.port, cut=Cut(DOWN, after=250_000))
    try:
        client = make_client(proxy.host)
        with client.open_blob(repo, digest, size=SIZE) as reader:
            parts = []
            while piece := reader.read(10_000):  # small reads straddle the cut
                parts.append(piece)
        assert b"".join(parts) == data and proxy.cuts_done == 1
        # a reader closed early releases its connection and the client stays usable
        reader = client.open_blob(repo, digest)
        assert len(reader.read(100)) == 100
        reader.close()
        assert client.has_blob(repo, digest)
    finally:
        proxy.stop()


def test_open_blob_raises_instead_of_eof_on_bad_bytes(
    registry: Distribution, make_client: Make, stored_blob: tuple[str, bytes]
) -> None:
    repo, data = stored_blob
    digest = Digest.parse(sha256(data))
    proxy = TcpProxy(registry.port, flip=Flip(offset=300_000))
    try:
        reader = make_client(proxy.host).open_blob(repo, digest, size=SIZE, what="layer")
        got = bytearray()
        with pytest.raises(DigestMismatch), reader:
            while piece := reader.read(65536):
                got += piece
        # every byte arrived (one of them wrong), but EOF was never reported
        assert len(got) == SIZE and bytes(got) != data
    finally:
        proxy.stop()


# -- failing fast: retry only what another attempt can get past ------------------------


class Attempts:
    """Counts the requests a client's session sends and the pauses before retries.

    A spy, not a mock: every request still goes out over the real network.
    """

    def __init__(self, client: RegistryClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        self.pauses = 0
        session = client.session
        send, pause = session.http.send, session._pause

        def counting_send(method: str, url: str, **kwargs: Any) -> Any:
            self.sent.append(url)
            return send(method, url, **kwargs)

        def counting_pause(*args: Any, **kwargs: Any) -> None:
            self.pauses += 1
            pause(*args, **kwargs)

        monkeypatch.setattr(session.http, "send", counting_send)
        monkeypatch.setattr(session, "_pause", counting_pause)


def test_a_refused_connection_is_not_retried(
    make_client: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .servers import free_port

    host = f"127.0.0.1:{free_port()}"
    client = make_client(host, options=ClientOptions())  # the default: 6 attempts
    attempts = Attempts(client, monkeypatch)
    with pytest.raises(Unreachable) as info:
        client.ping()
    assert f"cannot reach {host}" in str(info.value)
    assert "Connection refused" in str(info.value)
    # HTTPS, then plain HTTP (a loopback registry may use either); no second try of either
    assert attempts.sent == [f"https://{host}/v2/", f"http://{host}/v2/"]
    assert attempts.pauses == 0


def test_a_name_that_does_not_resolve_is_not_retried(
    make_client: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # .invalid never resolves (RFC 6761); listed as insecure so plain HTTP would be a
    # candidate too, but a name that did not resolve for HTTPS will not for HTTP either
    options = ClientOptions(insecure_registries=frozenset({"nosuch.invalid"}))
    client = make_client("nosuch.invalid", options=options)
    attempts = Attempts(client, monkeypatch)
    with pytest.raises(Unreachable) as info:
        client.get_manifest("x", "latest")
    assert "cannot reach nosuch.invalid" in str(info.value)
    assert attempts.sent == ["https://nosuch.invalid/v2/"]
    assert attempts.pauses == 0


def test_a_connection_closed_before_the_answer_is_retried(
    registry: Distribution, make_client: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the proxy closes the first two connections as soon as the request arrives
    proxy = TcpProxy(registry.port, cut=Cut(UP, after=0, times=2))
    try:
        client = make_client(proxy.host, options=replace(FAST_RETRY, plain_http=True))
        attempts = Attempts(client, monkeypatch)
        assert client.ping().base_url == f"http://{proxy.host}"
        assert attempts.pauses == 2
        assert proxy.connections == 3
    finally:
        proxy.stop()


FAST_RETRY = ClientOptions(backoff_base=0.01, backoff_max=0.05)


@pytest.mark.parametrize(
    "args",
    [
        ("pull", "nosuch.invalid/x"),
        ("pull", "127.0.0.1:{port}/x"),
        ("copy", "docker://127.0.0.1:{port}/x", "oci:{tmp}/out"),
    ],
    ids=["dns", "refused", "copy-refused"],
)
def test_cli_reports_an_unreachable_registry_in_one_line(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    from tests.helpers import assert_no_traceback, free_port, run_cli

    port = free_port()
    argv = [a.format(port=port, tmp=tmp_path) for a in args]
    result = run_cli(*argv)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "cannot reach " in result.stderr


def test_from_an_unreachable_registry_fails_the_build_in_one_line(tmp_path: Path) -> None:
    from tests.helpers import assert_no_traceback, free_port, run_cli

    (tmp_path / "Dockerfile").write_text(f"FROM 127.0.0.1:{free_port()}/nosuch/image\n")
    result = run_cli("build", "-q", "-t", "x", str(tmp_path))
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "could not be pulled: cannot reach 127.0.0.1:" in result.stderr
