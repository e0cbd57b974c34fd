"""Settings of the registry client: TLS, timeouts, retries, transfer sizes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from forklift.transports.registry.hosts import is_local, matches_insecure

MiB = 1024 * 1024

# Where docker and podman look for per-registry CA certificates and client
# certificates (``<dir>/<host:port>/ca.crt``, ``client.cert`` + ``client.key``).
DEFAULT_CERT_DIRS: tuple[str, ...] = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def _env_insecure() -> frozenset[str]:
    raw = os.environ.get("FORKLIFT_INSECURE_REGISTRIES", "")
    return frozenset(x.strip() for x in raw.split(",") if x.strip())


@dataclass(frozen=True)
class ClientOptions:
    """How a :class:`~forklift.transports.registry.client.RegistryClient` talks to registries.

    ``insecure_registries`` lists hosts (``host:port``, ``host`` or CIDR
    ranges) that may be reached over plain HTTP or unverified TLS; loopback
    hosts are insecure too unless ``insecure_localhost`` is false. The
    environment variable ``FORKLIFT_INSECURE_REGISTRIES`` (comma-separated)
    adds to the list. ``plain_http`` forces (True) or forbids (False) plain
    HTTP; None picks it as docker does (HTTPS first, plain HTTP fallback only
    for insecure hosts).
    """

    insecure_registries: frozenset[str] = field(default_factory=_env_insecure)
    insecure_localhost: bool = True
    plain_http: bool | None = None
    ca_bundle: Path | None = None
    cert_dirs: tuple[str, ...] = DEFAULT_CERT_DIRS
    user_agent: str = "forklift"
    # per-request network timeouts (seconds)
    connect_timeout: float = 30.0
    read_timeout: float = 120.0
    # a whole operation (one client call, retries and resumes included); None = no limit
    operation_timeout: float | None = None
    # retries of 5xx, 429 and connection errors
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 15.0
    max_retry_after: float = 60.0
    # blobs up to this size are uploaded in one PUT; larger ones in PATCH chunks
    monolithic_max: int = 8 * MiB
    chunk_size: int = 64 * MiB
    manifest_max_size: int = 4 * MiB
    max_connections: int = 16
    concurrency: int = 4

    def is_insecure(self, registry: str) -> bool:
        """True if ``registry`` may use plain HTTP or unverified TLS."""
        if self.insecure_localhost and is_local(registry):
            return True
        return matches_insecure(registry, self.insecure_registries)
