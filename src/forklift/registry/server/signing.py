"""``forklift serve --signature-policy FILE``: protected repositories accept and serve signed images only.

The policy file is the one ``forklift pull`` reads (containers-policy.json
format), with scopes written as repository paths (``team/app``,
``team/app:1``, ``team``): a registry does not know the host name its clients
use. For a repository whose requirements include ``sigstoreSigned``:

* a manifest ``PUT`` under a tag is refused (403 ``DENIED``) unless a signature
  that satisfies the policy is already in the repository, so push the
  signature first (``forklift push`` does: attachments before the tag);
  signatures themselves (``sha256-<hex>.sig`` tags, manifests with a
  ``subject``) and pushes by digest are accepted;
* a ``GET``/``HEAD`` of a manifest by tag is refused unless it is signed.

A ``reject`` scope refuses both. Results are cached per digest under the
storage root. The signature's docker-reference must name the same
repository path (the host is not compared).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from forklift.errors import ForkliftError, InvalidInput
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.oci.manifest import Manifest, parse_manifest
from forklift.oci.referrers import Attachment, attachment_tag, parse_attachment_tag
from forklift.registry.server import apierrors
from forklift.transports.base import ImageSource


class _RepositorySource(ImageSource):
    """One repository of this registry, read straight from its metadata and storage."""

    def __init__(self, meta: Any, storage: Any, repo: str) -> None:
        self.meta, self.storage, self.repo = meta, storage, repo
        self.description = f"repository {repo}"

    def get_manifest(self, digest: Digest | None = None) -> tuple[bytes, str]:
        rec = self.meta.get_manifest(self.repo, str(digest), True)
        if rec is None:
            raise InvalidInput(f"manifest {digest} is not in {self.repo}")
        return rec.body, rec.media_type

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        if self.meta.repo_blob_size(self.repo, str(desc.digest)) is None:
            raise InvalidInput(f"blob {desc.digest} is not in {self.repo}")
        return self.storage.open_blob(desc.digest)

    def list_attachments(
        self, subject: Digest, *, tags: tuple[str, ...] | None = None
    ) -> list[Attachment]:
        found = [
            Attachment(
                subject,
                Descriptor(
                    r.media_type,
                    Digest.parse(r.digest),
                    r.size,
                    annotations=dict(r.annotations),
                    artifact_type=r.artifact_type,
                ),
            )
            for r in self.meta.referrers(self.repo, str(subject), None)
        ]
        for suffix in tags if tags is not None else ("sig",):
            rec = self.meta.get_manifest(self.repo, attachment_tag(subject, suffix), False)
            if rec is not None:
                desc = Descriptor(rec.media_type, Digest.parse(rec.digest), len(rec.body))
                found.append(Attachment(subject, desc, suffix))
        return found


class SignaturePolicy:
    """The server's view of a policy file."""

    def __init__(self, path: Path, root: Path) -> None:
        from forklift.sign.cache import VerificationCache
        from forklift.sign.enforce import Enforcer
        from forklift.sign.policy import read_policy

        self.policy = read_policy(path)
        self.enforcer = Enforcer(self.policy, VerificationCache(root / "policy"))

    def _requirements(self, repo: str, tag: str | None) -> tuple[str, tuple[Any, ...]]:
        scopes = self.policy.scopes
        candidates = [f"{repo}:{tag}"] if tag else []
        parts = repo.split("/")
        candidates += ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
        for scope in candidates:
            if scope in scopes:
                return scope, scopes[scope]
        return "default", self.policy.default

    def protects(self, repo: str) -> bool:
        return any(r.type != "insecureAcceptAnything" for r in self._requirements(repo, None)[1])

    def check(
        self,
        meta: Any,
        storage: Any,
        repo: str,
        tag: str | None,
        digest: Digest,
        media_type: str,
        size: int,
    ) -> None:
        """Raise 403 DENIED unless ``repo``'s policy accepts the manifest ``digest``."""
        from forklift.reference import parse_reference
        from forklift.sign.targets import Target
        from forklift.sign.verify import verify_image

        scope, reqs = self._requirements(repo, tag)
        shown = f"{repo}{':' + tag if tag else ''}@{digest}"
        for req in reqs:
            if req.type == "insecureAcceptAnything":
                continue
            if req.type == "reject":
                raise apierrors.denied(f"policy ({scope}) rejects {shown}")
            cache = self.enforcer.cache
            if cache is not None and cache.hit(digest, req.fingerprint, repo):
                continue

            def same_repository(signed: str, repo: str = repo) -> str | None:
                try:
                    path = parse_reference(signed, default_tag=False).path
                except InvalidInput:
                    return f"the signature names {signed!r}"
                return None if path == repo else f"the signature is for {path}, not {repo}"

            options = self.enforcer._verify_options(req, same_repository)
            source = _RepositorySource(meta, storage, repo)
            target = Target(source, digest, Descriptor(media_type, digest, size), None, "registry")
            try:
                verify_image(target, options)
            except ForkliftError as exc:
                raise apierrors.denied(
                    f"policy ({scope}) needs {req.describe()} for {shown}: {exc.message}"
                ) from None
            if cache is not None:
                cache.record(digest, req.fingerprint, repo)

    def check_push(
        self,
        meta: Any,
        storage: Any,
        repo: str,
        tag: str,
        digest: Digest,
        manifest: Manifest,
        size: int,
    ) -> None:
        """A manifest about to be tagged: signatures and artifacts pass, images need signing."""
        if manifest.subject is not None or parse_attachment_tag(tag) is not None:
            return
        if tag.startswith("sha256-") and len(tag) == 71:
            return  # the referrers tag schema's index
        self.check(meta, storage, repo, tag, digest, manifest.media_type, size)

    def check_pull(self, meta: Any, storage: Any, repo: str, tag: str) -> None:
        """A manifest asked for by tag."""
        if parse_attachment_tag(tag) is not None or (tag.startswith("sha256-") and len(tag) == 71):
            return
        if not self.protects(repo):
            return
        rec = meta.get_manifest(repo, tag, False)
        if rec is None:
            return  # the route answers 404
        try:
            manifest = parse_manifest(rec.body, rec.media_type)
        except ForkliftError:
            return
        if manifest.subject is not None:
            return
        self.check(
            meta, storage, repo, tag, Digest.parse(rec.digest), rec.media_type, len(rec.body)
        )
