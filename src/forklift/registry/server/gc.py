"""Online garbage collection: runs while the registry serves pushes and pulls.

Order of a run (each step only removes things older than the grace period):

1. expire abandoned uploads (not touched for ``upload_ttl``) and upload files
   that have no session (a crash between creating the two);
2. optionally delete manifests that no tag reaches in their repository
   (children of tagged indexes and referrers of live manifests stay);
3. drop manifests no repository holds any more;
4. delete blobs that no manifest references and nobody used (uploaded,
   mounted, HEAD/GET) within the grace period, re-checking each one in a
   write transaction while holding the storage's sweep lock, so an upload
   committing the same digest or a manifest push referencing it either
   happens before (and the blob stays) or after (and re-creates/rejects);
5. delete blob files that have no metadata row (crash leftovers).

The grace period is what keeps an in-flight push safe: its blobs were
uploaded or checked (HEAD) moments ago, so they are younger than the grace.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from forklift.oci import Digest
from forklift.registry.server.metadata import MetadataStore
from forklift.registry.server.storage import StorageDriver


@dataclass
class GCReport:
    """What a run removed (or would remove, when dry)."""

    dry_run: bool
    uploads: list[str] = field(default_factory=list)
    untagged_manifests: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    freed_bytes: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "uploads": self.uploads,
            "untagged_manifests": self.untagged_manifests,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "orphan_files": self.orphan_files,
            "freed_bytes": self.freed_bytes,
        }


def collect(
    storage: StorageDriver,
    meta: MetadataStore,
    *,
    grace: float,
    upload_ttl: float,
    untagged: bool = False,
    dry_run: bool = False,
    now: float | None = None,
) -> GCReport:
    """Run one collection; blocking (call it from a worker thread in the server)."""
    now = time.time() if now is None else now
    cutoff = now - grace
    report = GCReport(dry_run)

    # 1. uploads
    expired = set(meta.uploads_before(now - upload_ttl))
    known = meta.upload_ids()
    for upload_id, _size, mtime in list(storage.iter_uploads()):
        if upload_id in expired or (upload_id not in known and mtime < cutoff):
            report.uploads.append(upload_id)
            if not dry_run:
                storage.delete_upload(upload_id)
                meta.delete_upload(upload_id)
    for upload_id in expired - set(report.uploads):
        report.uploads.append(upload_id)
        if not dry_run:
            meta.delete_upload(upload_id)

    # 2. untagged manifests
    dropped: dict[str, set[str]] = {}
    if untagged:
        for repo, digest in meta.untagged_manifests(cutoff):
            report.untagged_manifests.append(f"{repo}@{digest}")
            dropped.setdefault(digest, set()).add(repo)
            if not dry_run:
                meta.delete_manifest(repo, digest)

    # 3. manifests no repository holds
    report.manifests = meta.delete_orphan_manifests(cutoff, dry_run)

    # 4. unreferenced blobs
    if dry_run:
        # what steps 2-3 would have removed no longer protects its blobs
        doomed = set(report.manifests)
        doomed |= {d for d, repos in dropped.items() if meta.manifest_repos(d) <= repos}
        candidates = meta.unused_blobs(cutoff, frozenset(doomed))
    else:
        candidates = meta.unused_blobs(cutoff)
    if dry_run:
        for digest in candidates:
            report.blobs.append(digest)
            report.freed_bytes += meta.blob_size(digest) or 0
    else:
        for start in range(0, len(candidates), 64):
            with storage.sweep_lock():
                for digest in candidates[start : start + 64]:
                    size = meta.blob_size(digest) or 0
                    if meta.delete_blob_if_unused(digest, cutoff):
                        storage.delete_blob(Digest.parse(digest))
                        report.blobs.append(digest)
                        report.freed_bytes += size

    # 5. files without a row
    recorded = meta.all_blob_digests()
    for file_digest, size, mtime in list(storage.iter_blobs()):
        if str(file_digest) in recorded or mtime >= cutoff:
            continue
        report.orphan_files.append(str(file_digest))
        report.freed_bytes += size
        if not dry_run:
            with storage.sweep_lock():
                # re-check under the lock: a commit may have recorded it meanwhile
                if meta.blob_size(str(file_digest)) is None:
                    storage.delete_blob(file_digest)
    return report
