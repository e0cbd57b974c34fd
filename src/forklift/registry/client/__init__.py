"""The registry client: talk to any OCI distribution registry, verified and resumable.

The machinery (session, auth, transfers, :class:`RegistryClient`, the
``docker://`` transport) lives in :mod:`forklift.transports.registry`, beside
the other transports; this package holds the verbs built on it
(:mod:`forklift.registry.client.images`: pull, push, inspect, tags, catalog,
delete) and re-exports the public API, so ``from forklift.registry.client
import RegistryClient`` keeps working. The modules that moved can still be
imported under their old names (``forklift.registry.client.session`` is
``forklift.transports.registry.session``).

Public API (what the ``docker://`` transport and the CLI build on):

* :class:`RegistryClient` - one registry: ``ping``, ``login``, ``get_manifest``
  / ``resolve`` / ``head_manifest`` / ``put_manifest`` / ``delete_manifest``,
  ``list_tags``, ``catalog``, ``referrers``, ``stat_blob`` / ``has_blob``,
  ``get_blob`` (verified stream into a writer), ``open_blob`` (a readable
  stream, verified before EOF), ``download_blob`` (atomic file),
  ``upload_blob``, ``mount_blob``, ``push_blob`` (HEAD, mount, upload),
  ``delete_blob``.
* :class:`ClientOptions` - TLS, insecure registries, timeouts, retries, sizes.
* :class:`CredentialStore` / :class:`Credentials` - docker's config.json,
  containers' auth.json and ``docker-credential-*`` helpers.
* :class:`BlobLocations` - which repositories are known to hold which blobs.
* :func:`bounded_map` - run blob transfers a few at a time.
* :class:`Deadline` - a whole-operation time limit for a series of calls.
"""

import importlib
import importlib.machinery
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

# name -> module of forklift.transports.registry that defines it; imported on first
# use (PEP 562), so `import forklift.registry.client.images` loads only what it needs.
_EXPORTS: dict[str, str] = {
    "DEFAULT_CONCURRENCY": "concurrency",
    "MANIFEST_ACCEPT": "client",
    "AuthenticationRequired": "errors",
    "BlobLocations": "blob_locations",
    "BlobPush": "client",
    "BlobReader": "download",
    "BlobWriter": "download",
    "Challenge": "challenge",
    "ClientOptions": "options",
    "CredentialStore": "credentials",
    "Credentials": "credentials",
    "CredentialsError": "credentials",
    "Deadline": "retry",
    "Denied": "errors",
    "ManifestResponse": "client",
    "PingResult": "session",
    "PushedManifest": "client",
    "RateLimited": "errors",
    "Referrers": "client",
    "RegistryClient": "client",
    "RegistryStatusError": "errors",
    "ServerError": "errors",
    "StoredCredentials": "credentials",
    "Unreachable": "errors",
    "UploadSession": "upload",
    "bounded_map": "concurrency",
    "normalize_registry": "hosts",
    "parse_challenges": "challenge",
    "pull_scope": "auth",
    "push_scope": "auth",
    "referrers_tag": "client",
    "repository_scope": "auth",
}


if TYPE_CHECKING:  # what type checkers and IDEs see
    from forklift.transports.registry.auth import pull_scope, push_scope, repository_scope
    from forklift.transports.registry.blob_locations import BlobLocations
    from forklift.transports.registry.challenge import Challenge, parse_challenges
    from forklift.transports.registry.client import (
        MANIFEST_ACCEPT,
        BlobPush,
        ManifestResponse,
        PushedManifest,
        Referrers,
        RegistryClient,
        referrers_tag,
    )
    from forklift.transports.registry.concurrency import DEFAULT_CONCURRENCY, bounded_map
    from forklift.transports.registry.credentials import (
        Credentials,
        CredentialsError,
        CredentialStore,
        StoredCredentials,
    )
    from forklift.transports.registry.download import BlobReader, BlobWriter
    from forklift.transports.registry.errors import (
        AuthenticationRequired,
        Denied,
        RateLimited,
        RegistryStatusError,
        ServerError,
        Unreachable,
    )
    from forklift.transports.registry.hosts import normalize_registry
    from forklift.transports.registry.options import ClientOptions
    from forklift.transports.registry.retry import Deadline
    from forklift.transports.registry.session import PingResult
    from forklift.transports.registry.upload import UploadSession

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"forklift.transports.registry.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# Modules that moved to forklift.transports.registry, importable under their old names.
_MOVED = frozenset(
    {
        "attachments", "auth", "blob_locations", "body", "challenge", "client", "concurrency",
        "credentials", "download", "errors", "hosts", "httpclient", "options", "pagination",
        "retry", "session", "transport", "upload",
    }
)  # fmt: skip


class _MovedModuleFinder:
    """``import forklift.registry.client.X`` gives ``forklift.transports.registry.X``.

    The same module object under both names (not a copy), so state and
    monkeypatches are shared; the old name is only an alias in ``sys.modules``.
    A meta path finder and loader by protocol (``find_spec``, ``create_module``,
    ``exec_module``): ``importlib.abc`` would load ``importlib.resources`` and
    ``tempfile`` into every registry command for nothing.
    """

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, leaf = fullname.rpartition(".")
        if package != __name__ or leaf not in _MOVED:
            return None
        # a Loader by protocol, not by inheritance (see the class docstring)
        return importlib.machinery.ModuleSpec(fullname, self)  # type: ignore[arg-type]

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        leaf = module.__name__.rpartition(".")[2]
        # the import system returns whatever sys.modules holds under the name afterwards
        sys.modules[module.__name__] = importlib.import_module(
            f"forklift.transports.registry.{leaf}"
        )


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
