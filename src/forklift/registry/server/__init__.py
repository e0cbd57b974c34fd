"""``forklift serve``: an OCI Distribution Spec v1.1 registry server.

Public API:

- :class:`RegistryApp` - the ASGI application (any ASGI server can run it);
- :class:`ServerConfig` and :func:`load_config` - configuration (flags or YAML/TOML);
- :func:`run` - serve with granian until SIGTERM/SIGINT;
- :func:`collect` - one garbage collection over a storage driver + metadata store;
- :class:`StorageDriver` / :class:`FilesystemStorage` and :class:`MetadataStore` /
  :class:`SQLiteMetadata` - the two backend interfaces and their defaults;
- :func:`check_consistency` / :func:`check_root` - verify tags, manifests and blobs
  (of any backend pair / of a default root).
"""

from forklift.registry.server.app import RegistryApp
from forklift.registry.server.config import ServerConfig, load_config
from forklift.registry.server.fsck import check_consistency, check_root
from forklift.registry.server.gc import GCReport, collect
from forklift.registry.server.metadata import MetadataStore, SQLiteMetadata
from forklift.registry.server.runner import run
from forklift.registry.server.storage import FilesystemStorage, StorageDriver

__all__ = [
    "FilesystemStorage",
    "GCReport",
    "MetadataStore",
    "RegistryApp",
    "SQLiteMetadata",
    "ServerConfig",
    "StorageDriver",
    "check_consistency",
    "check_root",
    "collect",
    "load_config",
    "run",
]
