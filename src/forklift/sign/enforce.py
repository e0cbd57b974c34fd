"""Applying the policy to images: what pull, copy, run, build's FROM and serve call.

:class:`Enforcer` judges an image (in a registry, the store, or any transport
source) by the policy scope of its name; a refusal is a :class:`PolicyDenied`
saying which scope and why. Successes are cached per digest
(:mod:`.cache`), so a build with ten signed bases, or a second pull of the
same digest, verifies nothing again. The copy engine calls
:meth:`Enforcer.check_source` (the ``ImagePolicy`` protocol of
:mod:`forklift.transports.base`) before it moves a byte.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from forklift.errors import PolicyDenied, VerificationError
from forklift.oci.descriptor import Descriptor
from forklift.oci.digest import Digest
from forklift.reference import Reference
from forklift.sign.cache import VerificationCache
from forklift.sign.policy import Policy, Requirement, read_policy
from forklift.sign.policyfile import default_policy_path
from forklift.sign.targets import Target
from forklift.transports.base import ImageSource


class Enforcer:
    """A policy plus the cache of what it already accepted."""

    def __init__(self, policy: Policy, cache: VerificationCache | None = None) -> None:
        self.policy = policy
        self.cache = cache
        self._options: dict[str, Any] = {}

    # -- building verification options --------------------------------------------------------

    def _verify_options(self, req: Requirement, identity: Callable[[str], str | None]) -> Any:
        from forklift.sign.verify import VerifyOptions

        if req.keys:
            from forklift.sign.keys import load_public_key

            keys = tuple(load_public_key(k) for k in req.keys)
            return VerifyOptions(keys=keys, identity_check=identity)
        from forklift.sign.keyless import IdentityPolicy

        return VerifyOptions(
            trusted_root=self._trusted_root(req),
            certificate=IdentityPolicy(req.subject, req.subject_regexp, req.oidc_issuer, None),
            identity_check=identity,
        )

    def _trusted_root(self, req: Requirement) -> Any:
        key = req.fingerprint
        if key not in self._options:
            from forklift.sign import trustroot

            if req.trusted_root is not None:
                self._options[key] = trustroot.parse_trusted_root(
                    req.trusted_root, "trustedRootPath"
                )
            else:
                self._options[key] = _root_from_pems(req.ca_pem or b"", req.rekor_pem or b"")
        return self._options[key]

    # -- judging ------------------------------------------------------------------------------

    def check(self, target: Target, name: Reference | None = None) -> bool:
        """Raise :class:`PolicyDenied` unless ``target`` satisfies its scope's requirements.

        Returns True if a signature was verified now (False: nothing needed, or cached).
        """
        verified = False
        ref = name if name is not None else target.reference
        scope, reqs = self.policy.requirements_for(ref)
        shown = f"{ref.familiar() if ref is not None else 'image'}@{target.digest}"
        for req in reqs:
            if req.type == "insecureAcceptAnything":
                continue
            if req.type == "reject":
                raise PolicyDenied(
                    f"{shown} is refused: the policy ({scope}) rejects everything there",
                    hint=f"policy file {self.policy.path}",
                )
            label = str(ref) if ref is not None else ""
            if self.cache is not None and self.cache.hit(target.digest, req.fingerprint, label):
                continue
            from forklift.sign.verify import verify_image  # only on a cache miss: start-up time

            options = self._verify_options(req, _identity_rule(req, ref))
            try:
                verify_image(target, options)
            except VerificationError as exc:
                raise PolicyDenied(
                    f"{shown} is refused by the policy ({scope} needs {req.describe()}): {exc.message}",
                    hint=f"policy file {self.policy.path}",
                ) from None
            verified = True
            if self.cache is not None:
                self.cache.record(target.digest, req.fingerprint, label)
        return verified

    def trust(self, digest: Digest, name: Reference | None) -> None:
        """Record ``digest`` as accepted under ``name`` (an index's image, once the index passed)."""
        if self.cache is None:
            return
        _, reqs = self.policy.requirements_for(name)
        for req in reqs:
            if req.type == "sigstoreSigned":
                self.cache.record(digest, req.fingerprint, str(name) if name is not None else "")

    # -- the copy engine's hook ---------------------------------------------------------------

    def check_source(
        self, source: ImageSource, reference: Reference | None, top: Descriptor
    ) -> bool:
        """Judge the image ``source`` names before it is copied; True if signatures were checked.

        The copy then keeps the signatures with the image. A digest accepted before
        (the cache) was copied with its signatures then: no need to list them again.
        """
        where = "registry" if type(source).__name__ == "RegistrySource" else "source"
        return self.check(Target(source, top.digest, top, reference, where), reference)

    def trust_child(self, reference: Reference | None, parent: Digest, child: Digest) -> None:
        del parent  # the index passed; its image is what gets stored
        self.trust(child, reference)

    # -- the store ----------------------------------------------------------------------------

    def check_stored(self, store: Any, image: Any, name: Reference | None) -> None:
        """Judge an image of the local store (``run``, ``build``'s FROM) by its name."""
        from forklift.transports.layout import StoreSource

        _, reqs = self.policy.requirements_for(name)
        if all(r.type == "insecureAcceptAnything" for r in reqs):
            return
        src = StoreSource(store, str(image.digest))
        desc = Descriptor(image.descriptor.media_type, image.digest, image.descriptor.size)
        with src:
            self.check(Target(src, image.digest, desc, name, "store", store), name)


def _identity_rule(req: Requirement, ref: Reference | None) -> Callable[[str], str | None]:
    def check(signed: str) -> str | None:
        return req.identity.check(ref, signed)

    return check


def _root_from_pems(ca_pem: bytes, rekor_pem: bytes) -> Any:
    """A trusted root from containers' ``fulcio.caPath`` and ``rekorPublicKeyPath``."""
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from forklift.sign import trustroot

    certs = x509.load_pem_x509_certificates(ca_pem)
    # leaf-most first, the self-signed root last
    certs.sort(key=lambda c: c.issuer == c.subject)
    chain = tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)
    rekor = serialization.load_pem_public_key(rekor_pem)
    der = rekor.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    window = trustroot.Window(None, None)
    return trustroot.TrustedRoot(
        (trustroot.LogKey("", hashlib.sha256(der).digest(), der, window),),
        (trustroot.CertificateAuthority("", chain, window),),
        (),
        (),
    )


def load_enforcer(
    path: str | None = None, *, required: bool = False, home: Path | None = None
) -> Enforcer | None:
    """The enforcer of the policy at ``path`` (default: $FORKLIFT_POLICY or the config's).

    None when no policy is configured, unless ``required`` (``--verify``), which
    then refuses.
    """
    from forklift.errors import UsageError

    chosen = Path(path) if path else default_policy_path()
    if chosen is None:
        if required:
            raise UsageError(
                "--verify needs a policy: give --policy FILE, set FORKLIFT_POLICY, or write "
                "~/.config/forklift/policy.json"
            )
        return None
    if home is None:
        from forklift.store.store import default_home

        home = default_home()
    return Enforcer(read_policy(chosen), VerificationCache(home))
