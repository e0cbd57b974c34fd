"""The database as an OCI artifact: ``forklift db push REF`` / ``forklift db pull REF``.

How air-gapped CI gets a database (the way trivy-db is distributed): one
machine runs ``db update`` and ``db push registry.local/forklift/vuln-db:1``;
the others ``db pull`` it from any OCI registry (``forklift serve`` included).

The artifact is an OCI image manifest with ``artifactType``
``application/vnd.forklift.vuln-db.v1``, the empty config, and one layer: the
SQLite file compressed with zstd (``application/vnd.forklift.vuln-db.layer.v1+zstd``),
annotated with its build time and sources. A pull verifies the layer's digest
while downloading, checks the file is a readable database of this forklift's
schema, and installs it atomically (a failed pull keeps the old database).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from forklift.errors import InvalidInput, StoreError
from forklift.oci import mediatypes as mt
from forklift.oci.digest import Digest
from forklift.scan.db.index import Database, default_path, install

ARTIFACT_TYPE = "application/vnd.forklift.vuln-db.v1"
LAYER_TYPE = "application/vnd.forklift.vuln-db.layer.v1+zstd"
EMPTY = b"{}"


@dataclass(frozen=True)
class Transferred:
    reference: str
    digest: str  # the manifest's
    size: int  # the compressed layer's


def _compress(src: Path, dst: Path) -> None:
    import zstandard

    cctx = zstandard.ZstdCompressor(level=10, threads=-1)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        cctx.copy_stream(fin, fout)


def push(reference: str, *, path: Path | None = None) -> Transferred:
    """Push the local database to ``reference`` (``host/repo:tag``)."""
    from forklift.reference import parse_reference
    from forklift.registry.client import RegistryClient

    db_path = path or default_path()
    with Database(db_path) as db:  # refuses a missing or foreign file
        built = db.built_at
        sources = [s.name for s in db.sources()]
    ref = parse_reference(reference)
    with tempfile.TemporaryDirectory(dir=db_path.parent, prefix=".push-") as tmp:
        blob = Path(tmp) / "vuln.db.zst"
        _compress(db_path, blob)
        with open(blob, "rb") as f:
            digest, size = Digest.of_file(f)
        empty = Digest.of(EMPTY)
        with RegistryClient.for_reference(ref) as client:
            client.push_blob(
                ref.repository, empty, len(EMPTY), lambda: _bytes_io(EMPTY), what="config"
            )
            client.push_blob(ref.repository, digest, size, lambda: _open(blob), what="database")
            manifest = {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "artifactType": ARTIFACT_TYPE,
                "config": {"mediaType": mt.OCI_EMPTY, "digest": str(empty), "size": len(EMPTY)},
                "layers": [
                    {
                        "mediaType": LAYER_TYPE,
                        "digest": str(digest),
                        "size": size,
                        "annotations": {"org.opencontainers.image.title": "vuln.db.zst"},
                    }
                ],
                "annotations": {
                    "org.opencontainers.image.created": built,
                    "dev.forklift.vuln-db.sources": ",".join(sources),
                },
            }
            data = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
            pushed = client.put_manifest(ref.repository, ref.tag or "latest", data, mt.OCI_MANIFEST)
    return Transferred(str(ref), str(pushed.digest), size)


def _open(path: Path) -> BinaryIO:
    return open(path, "rb")  # closed by push_blob


def _bytes_io(data: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(data)


def pull(reference: str, *, path: Path | None = None) -> Transferred:
    """Pull a database artifact from ``reference`` and install it."""
    import zstandard

    from forklift.oci.manifest import ImageManifest, parse_manifest
    from forklift.reference import parse_reference
    from forklift.registry.client import RegistryClient

    target = path or default_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    ref = parse_reference(reference)
    with RegistryClient.for_reference(ref) as client:
        got = client.get_manifest(ref.repository, ref.digest or ref.tag or "latest")
        manifest = parse_manifest(got.data, got.media_type, what=f"manifest of {reference}")
        if not isinstance(manifest, ImageManifest):
            raise InvalidInput(f"{reference}: an index, not a database artifact")
        raw = json.loads(got.data)
        layers = [layer for layer in manifest.layers if layer.media_type == LAYER_TYPE]
        if raw.get("artifactType") != ARTIFACT_TYPE or len(layers) != 1:
            raise InvalidInput(
                f"{reference}: not a forklift vulnerability database "
                f"(artifactType {raw.get('artifactType')!r})"
            )
        layer = layers[0]
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
            blob = Path(tmp) / "vuln.db.zst"
            client.download_blob(
                ref.repository, layer.digest, blob, size=layer.size, what="database"
            )
            fd, new_name = tempfile.mkstemp(dir=target.parent, prefix=".vuln.", suffix=".db.tmp")
            new = Path(new_name)
            try:
                with open(blob, "rb") as fin, os.fdopen(fd, "wb") as fout:
                    zstandard.ZstdDecompressor().copy_stream(fin, fout)
                try:
                    Database(new).close()  # a readable database of our schema
                except StoreError as exc:
                    raise InvalidInput(f"{reference}: {exc.message}") from None
                install(new, target)
            except BaseException:
                new.unlink(missing_ok=True)
                raise
    return Transferred(str(ref), str(got.digest), layer.size)
