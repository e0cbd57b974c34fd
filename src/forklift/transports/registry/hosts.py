"""Registry host names: API endpoints, credential keys, and which hosts may use plain HTTP.

A reference's domain (``docker.io``, ``localhost:5000``) is not always the
host the API lives on, nor the key credentials are stored under: Docker Hub's
API is ``registry-1.docker.io`` and docker keeps its credentials under the
legacy ``https://index.docker.io/v1/``.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from forklift.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# The key docker (and its credential helpers) use for Docker Hub credentials.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
# Every name docker treats as Docker Hub when looking up credentials.
DOCKER_HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)


def normalize_registry(name: str) -> str:
    """The canonical registry name for ``name``.

    Accepts what users type and what config files hold: a bare host
    (``localhost:5000``), a URL (``https://ghcr.io/v2/``) or a Docker Hub alias.
    Docker Hub is always ``docker.io``; host names are lower-cased.
    """
    text = name.strip()
    if not text:
        raise UsageError("registry name is empty")
    if "://" in text:
        parts = urlsplit(text)
        host = parts.netloc
    else:
        host = text.split("/", 1)[0]
    host = host.lower()
    if not host:
        raise UsageError(f"invalid registry name {name!r}")
    if host in DOCKER_HUB_ALIASES:
        return DOCKER_HUB
    return host


def api_host(registry: str) -> str:
    """The host serving the registry API for ``registry`` (Docker Hub's differs)."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def credential_key(registry: str) -> str:
    """The key docker writes credentials under for ``registry``."""
    return DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry


def split_host_port(host: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) -> (host without brackets, port or None)."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, None
        name, rest = host[1:end], host[end + 1 :]
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        return name, port
    name, sep, port_text = host.rpartition(":")
    if sep and port_text.isdigit() and ":" not in name:
        return name, int(port_text)
    return host, None


def is_local(registry: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (with any port).

    Docker treats these as insecure registries by default: plain HTTP is
    allowed and TLS certificates are not verified.
    """
    host, _ = split_host_port(registry)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def matches_insecure(registry: str, insecure: frozenset[str]) -> bool:
    """True if ``registry`` is listed (by host:port, host, or a CIDR containing its IP)."""
    if not insecure:
        return False
    host, _ = split_host_port(registry)
    if registry in insecure or host in insecure:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in insecure:
        if "/" in entry:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


Origin = tuple[str, str, int]


def url_origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an absolute http(s) URL, default ports filled in.

    Two URLs with the same origin reach the same server the same way; anything
    else (another host, another port, plain HTTP instead of HTTPS) is another
    party. None for URLs that are not absolute http(s) URLs.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    if port is None:
        port = 443 if scheme == "https" else 80
    return scheme, parts.hostname.lower(), port


def origin_host_port(origin: Origin) -> str:
    """``host:port`` of an origin (IPv6 in brackets), as insecure-registry lists spell it."""
    _, host, port = origin
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
