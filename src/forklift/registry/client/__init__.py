"""The registry client: talk to any OCI distribution registry, verified and resumable.

Public API (what the ``docker://`` transport and the CLI build on):

* :class:`RegistryClient` - one registry: ``ping``, ``login``, ``get_manifest``
  / ``resolve`` / ``head_manifest`` / ``put_manifest`` / ``delete_manifest``,
  ``list_tags``, ``catalog``, ``referrers``, ``stat_blob`` / ``has_blob``,
  ``get_blob`` (verified stream into a writer), ``open_blob`` (a readable
  stream, verified before EOF), ``download_blob`` (atomic file), ``upload_blob``, ``mount_blob``, ``push_blob`` (HEAD, mount, upload),
  ``delete_blob``.
* :class:`ClientOptions` - TLS, insecure registries, timeouts, retries, sizes.
* :class:`CredentialStore` / :class:`Credentials` - docker's config.json,
  containers' auth.json and ``docker-credential-*`` helpers.
* :class:`BlobLocations` - which repositories are known to hold which blobs.
* :func:`bounded_map` - run blob transfers a few at a time.
* :class:`Deadline` - a whole-operation time limit for a series of calls.
"""

# first: httpx without its CLI module (start-up time; see _httpx)
from forklift.registry.client import _httpx  # noqa: F401  # isort: skip
from forklift.registry.client.auth import pull_scope, push_scope, repository_scope
from forklift.registry.client.blob_locations import BlobLocations
from forklift.registry.client.challenge import Challenge, parse_challenges
from forklift.registry.client.client import (
    MANIFEST_ACCEPT,
    BlobPush,
    ManifestResponse,
    PushedManifest,
    Referrers,
    RegistryClient,
    referrers_tag,
)
from forklift.registry.client.concurrency import DEFAULT_CONCURRENCY, bounded_map
from forklift.registry.client.credentials import (
    Credentials,
    CredentialsError,
    CredentialStore,
    StoredCredentials,
)
from forklift.registry.client.download import BlobReader, BlobWriter
from forklift.registry.client.errors import (
    AuthenticationRequired,
    Denied,
    RateLimited,
    RegistryStatusError,
    ServerError,
    Unreachable,
)
from forklift.registry.client.hosts import normalize_registry
from forklift.registry.client.options import ClientOptions
from forklift.registry.client.retry import Deadline
from forklift.registry.client.session import PingResult
from forklift.registry.client.upload import UploadSession

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MANIFEST_ACCEPT",
    "AuthenticationRequired",
    "BlobLocations",
    "BlobPush",
    "BlobReader",
    "BlobWriter",
    "Challenge",
    "ClientOptions",
    "CredentialStore",
    "Credentials",
    "CredentialsError",
    "Deadline",
    "Denied",
    "ManifestResponse",
    "PingResult",
    "PushedManifest",
    "RateLimited",
    "Referrers",
    "RegistryClient",
    "RegistryStatusError",
    "ServerError",
    "StoredCredentials",
    "Unreachable",
    "UploadSession",
    "bounded_map",
    "normalize_registry",
    "parse_challenges",
    "pull_scope",
    "push_scope",
    "referrers_tag",
    "repository_scope",
]
