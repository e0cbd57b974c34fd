"""Endpoint choice: TLS verification, custom CAs, certs.d, and when plain HTTP is allowed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forklift.errors import TransportError, UsageError
from forklift.registry.client import ClientOptions, RegistryClient, normalize_registry
from forklift.transports.registry.hosts import api_host, credential_key, is_local, matches_insecure

from .servers import Distribution, KeyPair, make_keypair, start_distribution

Make = Callable[..., RegistryClient]


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Distribution, KeyPair]]:
    keys = make_keypair("forklift test registry", san_ips=("127.0.0.1",))
    reg = start_distribution(tmp_path_factory.mktemp("distribution-tls"), tls=keys)
    yield reg, keys
    reg.stop()


def test_verified_tls_with_a_ca_bundle(
    tls_registry: tuple[Distribution, KeyPair], make_client: Make, tmp_path: Path
) -> None:
    reg, keys = tls_registry
    ca = tmp_path / "ca.pem"
    ca.write_bytes(keys.cert_pem)
    options = ClientOptions(insecure_localhost=False, ca_bundle=ca)
    ping = make_client(reg.host, options=options).ping()
    assert ping.base_url == f"https://{reg.host}"


def test_unknown_ca_is_refused_when_verifying(
    tls_registry: tuple[Distribution, KeyPair], make_client: Make
) -> None:
    reg, _ = tls_registry
    options = ClientOptions(insecure_localhost=False, max_attempts=1)
    with pytest.raises(TransportError) as info:
        make_client(reg.host, options=options).ping()
    assert "TLS" in str(info.value) or "certificate" in str(info.value).lower()


def test_certs_d_directory_supplies_the_ca(
    tls_registry: tuple[Distribution, KeyPair], make_client: Make, tmp_path: Path
) -> None:
    reg, keys = tls_registry
    certs_d = tmp_path / "certs.d"
    (certs_d / reg.host).mkdir(parents=True)
    (certs_d / reg.host / "ca.crt").write_bytes(keys.cert_pem)
    options = ClientOptions(insecure_localhost=False, cert_dirs=(str(certs_d),))
    assert make_client(reg.host, options=options).ping().base_url.startswith("https://")


def test_localhost_is_insecure_by_default_like_docker(
    tls_registry: tuple[Distribution, KeyPair], registry: Distribution, make_client: Make
) -> None:
    reg, _ = tls_registry
    # TLS without verification for a loopback registry ...
    assert make_client(reg.host).ping().base_url == f"https://{reg.host}"
    # ... and plain HTTP when the registry does not speak TLS
    assert make_client(registry.host).ping().base_url == f"http://{registry.host}"


def test_plain_http_only_for_insecure_registries() -> None:
    with pytest.raises(UsageError) as info:
        RegistryClient("registry.example.com", options=ClientOptions(plain_http=True))
    assert "refusing plain HTTP to registry.example.com" in str(info.value)
    listed = ClientOptions(plain_http=True, insecure_registries=frozenset({"registry.example.com"}))
    client = RegistryClient("registry.example.com", options=listed)
    client.close()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("Quay.IO", "quay.io"),
        ("https://ghcr.io/v2/", "ghcr.io"),
        ("localhost:5000/some/path", "localhost:5000"),
        ("[::1]:5000", "[::1]:5000"),
    ],
)
def test_normalize_registry(text: str, want: str) -> None:
    assert normalize_registry(text) == want


def test_hub_endpoints_and_keys() -> None:
    assert api_host("docker.io") == "registry-1.docker.io"
    assert credential_key("docker.io") == "https://index.docker.io/v1/"
    assert api_host("ghcr.io") == "ghcr.io" and credential_key("ghcr.io") == "ghcr.io"


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.9.8.7", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("registry.example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_local(host: str, local: bool) -> None:
    assert is_local(host) is local


def test_insecure_list_matches_host_port_host_and_cidr() -> None:
    listed = frozenset({"reg.internal:5000", "other.internal", "10.1.0.0/16"})
    assert matches_insecure("reg.internal:5000", listed)
    assert not matches_insecure("reg.internal:5001", listed)
    assert matches_insecure("other.internal:443", listed)
    assert matches_insecure("10.1.2.3:5000", listed)
    assert not matches_insecure("10.2.0.1", listed)


def test_insecure_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORKLIFT_INSECURE_REGISTRIES", "a.example:5000, b.example")
    options = ClientOptions()
    assert options.is_insecure("a.example:5000") and options.is_insecure("b.example")
    assert not options.is_insecure("c.example")
