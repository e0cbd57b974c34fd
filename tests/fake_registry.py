"""A small registry on 127.0.0.1 serving one image, whose layer blobs can stall half-way.

For fault tests: a pull that is killed or interrupted while it downloads. The
server speaks just enough of the distribution API for ``forklift pull``
(``/v2/``, manifests, blobs); a stalling blob sends its headers and the first
``stall_after`` bytes, then waits until :meth:`StallingRegistry.release` (or
the server stops).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from forklift.oci import mediatypes as mt
from forklift.oci.digest import Digest


@dataclass
class StallingRegistry:
    """What the server serves, and the switches of the test."""

    manifest: bytes
    blobs: dict[str, bytes]
    stall: set[str] = field(default_factory=set)  # digests that stall
    stall_after: int = 65536
    released: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)  # a client is stuck
    port: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def release(self) -> None:
        self.released.set()


def image_documents(layers: list[bytes]) -> tuple[bytes, dict[str, bytes]]:
    """A manifest and its blobs for an image of gzip ``layers`` (diff IDs from their tars)."""
    import gzip

    diff_ids = [str(Digest.of(gzip.decompress(layer))) for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {"Cmd": ["sh"]},
        }
    ).encode()
    blobs = {str(Digest.of(config)): config}
    descriptors = []
    for layer in layers:
        blobs[str(Digest.of(layer))] = layer
        descriptors.append(
            {"mediaType": mt.OCI_LAYER_GZIP, "digest": str(Digest.of(layer)), "size": len(layer)}
        )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {
                "mediaType": mt.OCI_CONFIG,
                "digest": str(Digest.of(config)),
                "size": len(config),
            },
            "layers": descriptors,
        }
    ).encode()
    return manifest, blobs


@contextmanager
def stalling_registry(registry: StallingRegistry) -> Iterator[StallingRegistry]:
    """Serve ``registry`` on a random port of 127.0.0.1 for the ``with`` block."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/v2/":
                self._send(200, b"{}", {"Content-Type": "application/json"})
                return
            if "/manifests/" in path:
                self._send(
                    200,
                    registry.manifest,
                    {
                        "Content-Type": mt.OCI_MANIFEST,
                        "Docker-Content-Digest": str(Digest.of(registry.manifest)),
                    },
                )
                return
            if "/blobs/" in path:
                digest = path.rsplit("/", 1)[1]
                blob = registry.blobs.get(digest)
                if blob is None:
                    self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', {})
                    return
                if digest not in registry.stall or self.command == "HEAD":
                    self._send(200, blob, {"Content-Type": "application/octet-stream"})
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob[: registry.stall_after])
                self.wfile.flush()
                registry.stalled.set()
                registry.released.wait(120)
                try:
                    self.wfile.write(blob[registry.stall_after :])
                except OSError:
                    pass
                return
            self._send(404, b"{}", {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    registry.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        registry.release()
        server.shutdown()
        server.server_close()
