"""Pushing large blobs from the store streams them (no chunk buffered in memory) and still
resumes after a cut: the bytes already sent are read again from the store's file."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from forklift.oci import Digest
from forklift.oci.digest import VerifyingReader
from forklift.registry.client import BlobLocations, ClientOptions
from forklift.store.store import Store
from forklift.transports.copy import copy_image
from forklift.transports.layout import StoreSource
from forklift.transports.registry.transport import RegistryDestination
from forklift.transports.registry.upload import PIECE, _Source
from tests.registry_client.images import random_bytes, sha256
from tests.registry_client.proxies import UP, Cut, TcpProxy
from tests.registry_client.servers import http_get
from tests.registry_server.servers import start_forklift

from .conftest import Fk, load_into_store
from .images import make_test_image


class CountingStream:
    """A non-seekable stream that records how far it has been read."""

    def __init__(self, data: bytes) -> None:
        self.raw = io.BytesIO(data)
        self.read_upto = 0

    def read(self, n: int = -1) -> bytes:
        out = self.raw.read(n)
        self.read_upto += len(out)
        return out


def test_a_reopenable_stream_is_streamed_and_read_once() -> None:
    data = random_bytes(5 * PIECE + 123, seed=71)
    stream = CountingStream(data)
    reopened: list[int] = []

    def reopen(offset: int) -> io.BytesIO:
        reopened.append(offset)
        f = io.BytesIO(data)
        f.seek(offset)
        return f

    source = _Source(stream, len(data), reopen)  # type: ignore[arg-type]
    pieces = source.pieces(0, len(data))
    first = next(pieces)
    # streamed: only the first piece was taken from the stream, nothing buffered ahead
    assert first == data[:PIECE] and stream.read_upto == PIECE
    sent = first + next(pieces)
    # a connection breaks here; the registry says it holds 1.5 pieces: resend from there
    held = PIECE + PIECE // 2
    assert source.can_restart_at(held) and not source.can_restart_at(len(sent) + 1)
    rest = b"".join(source.pieces(held, len(data) - held))
    assert sent[:held] + rest == data
    assert reopened == [held]
    assert stream.read_upto == len(data)  # every byte of the stream read exactly once
    source.check_end()


@pytest.fixture(scope="module")
def kept_sessions(tmp_path_factory: pytest.TempPathFactory):
    """forklift serve: it keeps an upload session after a broken PATCH (distribution drops it)."""
    server = start_forklift(tmp_path_factory.mktemp("serve") / "root", "--access-log", "")
    yield server
    server.stop()


@pytest.mark.parametrize("kind", ["distribution", "forklift"])
def test_chunked_push_from_the_store_resumes_after_a_cut(
    kind: str,
    request: pytest.FixtureRequest,
    fk: Fk,
    repo_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = request.getfixturevalue("registry" if kind == "distribution" else "kept_sessions")
    from forklift.transports.registry import transport

    reread: list[int] = []
    real = transport._reopener

    def spy(path: Path):  # type: ignore[no-untyped-def]
        inner = real(path)

        def reopen(offset: int):  # type: ignore[no-untyped-def]
            reread.append(offset)
            return inner(offset)

        return reopen

    monkeypatch.setattr(transport, "_reopener", spy)
    image = make_test_image((3_200_000,), seed=72)
    load_into_store(tmp_path, "big:1", [image])
    layer = image.image.layers[0]
    proxy = TcpProxy(reg.port, cut=Cut(UP, after=1_700_000))
    options = ClientOptions(
        monolithic_max=100_000, chunk_size=1024 * 1024, backoff_base=0.01, backoff_max=0.05
    )
    try:
        with (
            StoreSource(Store.open(), "big:1") as src,
            RegistryDestination(
                f"{proxy.host}/{repo_name}:1",
                options=options,
                blob_locations=BlobLocations(tmp_path / "locations.db"),
            ) as dst,
        ):
            result = copy_image(src, dst)
            dst.commit()
    finally:
        proxy.stop()
    assert proxy.cuts_done == 1
    assert result.blobs_copied == 2 and dst.blob_results[Digest.parse(layer.digest)] == "uploaded"
    assert str(dst.pushed.digest) == image.manifest_digest  # type: ignore[union-attr]
    assert http_get(f"http://{reg.host}/v2/{repo_name}/blobs/{layer.digest}") == (200, layer.data)
    # the bytes the cut lost were read again from the store's file, chunk by chunk
    assert reread and reread == sorted(reread)
    if kind == "forklift":
        # resumed where the registry stood (a whole chunk was confirmed), not from the start
        assert reread[0] >= 1024 * 1024
        assert proxy.relayed[UP] < len(layer.data) + 1_200_000
    else:
        # distribution dropped the session: a new one, from byte 0
        assert reread[0] == 0


def test_a_corrupt_store_blob_is_never_committed_to_the_registry(registry, repo_name: str) -> None:
    """The verifying stream fails before the closing PUT, even when streaming."""
    from forklift.errors import DigestMismatch
    from forklift.registry.client import RegistryClient

    data = random_bytes(2_000_000, seed=73)
    digest = Digest.parse(sha256(data))
    bad = bytearray(data)
    bad[-1] ^= 1
    stream = VerifyingReader(io.BytesIO(bytes(bad)), digest, len(data), "layer")

    def reopen(offset: int) -> io.BytesIO:
        f = io.BytesIO(bytes(bad))
        f.seek(offset)
        return f

    options = ClientOptions(monolithic_max=100_000)
    with RegistryClient(registry.host, options=options, blob_locations=BlobLocations()) as c:
        with pytest.raises(DigestMismatch):
            c.upload_blob(repo_name, stream, digest, len(data), reopen=reopen)  # type: ignore[arg-type]
        assert not c.has_blob(repo_name, digest)
