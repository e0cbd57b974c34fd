"""Verification results cached per digest, so a verified image is not verified again.

A result is a file ``$FORKLIFT_HOME/sign/verified/<key>`` whose name hashes the
manifest digest, the requirement's fingerprint (keys, roots, identity rules)
and the name the image was judged under (identity rules depend on the tag).
A signature that verified once for that combination still does: keys and
payloads do not change under a digest. Only successes are cached.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from forklift.oci.digest import Digest


class VerificationCache:
    def __init__(self, home: Path) -> None:
        self.dir = home / "sign" / "verified"

    @staticmethod
    def _key(digest: Digest, fingerprint: str, name: str) -> str:
        return hashlib.sha256(f"{digest}\0{fingerprint}\0{name}".encode()).hexdigest()

    def hit(self, digest: Digest, fingerprint: str, name: str) -> bool:
        return (self.dir / self._key(digest, fingerprint, name)).exists()

    def record(self, digest: Digest, fingerprint: str, name: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / self._key(digest, fingerprint, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
