"""Content digests (``algorithm:hex``) and streaming hashers.

Only the algorithms of the OCI image spec are accepted: ``sha256`` (canonical)
and ``sha512``. Parsing is strict: lower-case hex of the exact length.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO

from forklift import cancel
from forklift.errors import DigestMismatch, InvalidDigest

# algorithm -> length of its hex encoding
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
CANONICAL = "sha256"

# The grammar of the OCI spec; anything matching it but not in ALGORITHMS is
# "unsupported" rather than "malformed", which gives a better message.
_GRAMMAR = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_HEX = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True, order=True, slots=True)
class Digest:
    """A validated content digest such as ``sha256:e3b0c442...``."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        want = ALGORITHMS.get(self.algorithm)
        if want is None:
            raise InvalidDigest(
                f"unsupported digest algorithm {self.algorithm!r} (supported: sha256, sha512)"
            )
        if len(self.hex) != want or not _HEX.fullmatch(self.hex):
            raise InvalidDigest(
                f"invalid {self.algorithm} digest {self.algorithm}:{self.hex}: "
                f"expected {want} lower-case hex characters"
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``algorithm:hex``; raise :class:`InvalidDigest` saying what is wrong."""
        if not isinstance(text, str):
            raise InvalidDigest(f"digest must be a string, not {type(text).__name__}")
        m = _GRAMMAR.fullmatch(text)
        if m is None:
            raise InvalidDigest(f"invalid digest {text!r}: expected 'algorithm:hex'")
        return cls(m.group(1), m.group(2))

    @classmethod
    def of(cls, data: bytes, algorithm: str = CANONICAL) -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @classmethod
    def of_file(cls, f: BinaryIO, algorithm: str = CANONICAL) -> tuple[Digest, int]:
        """Digest and size of everything readable from ``f``."""
        h = Hasher(algorithm)
        h.consume(f)
        return h.digest(), h.size

    @property
    def encoded(self) -> str:
        """The hex part, as used for file names (``blobs/sha256/<encoded>``)."""
        return self.hex

    @property
    def short(self) -> str:
        """The first 12 hex characters, as docker shows image IDs."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def __repr__(self) -> str:
        return f"Digest('{self}')"

    def verify(self, data: bytes, what: str = "content") -> None:
        """Raise :class:`DigestMismatch` unless ``data`` hashes to this digest."""
        got = Digest.of(data, self.algorithm)
        if got != self:
            raise DigestMismatch(f"digest mismatch for {what} {self}: got {got}")


class Hasher:
    """A streaming hasher that also counts bytes."""

    __slots__ = ("_h", "algorithm", "size")

    def __init__(self, algorithm: str = CANONICAL) -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._h = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def consume(self, f: BinaryIO, bufsize: int = 1 << 20) -> None:
        """Hash everything readable from ``f``."""
        buf = bytearray(bufsize)
        view = memoryview(buf)
        readinto = getattr(f, "readinto", None)
        if readinto is not None:
            while n := readinto(view):
                self.update(view[:n])
            return
        while chunk := f.read(bufsize):
            self.update(chunk)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._h.hexdigest())


def parse_digest(text: str) -> Digest:
    """Parse a digest string (alias of :meth:`Digest.parse`)."""
    return Digest.parse(text)


class VerifyingReader:
    """Wraps a readable stream; hashes what passes through and checks it at EOF.

    A consumer that reads to EOF gets :class:`DigestMismatch` (or
    :class:`SizeMismatch`) from the read that hits the end, *before* it can
    treat the content as complete — so nothing unverified is ever committed.
    Reading past the promised size fails at once.
    """

    def __init__(
        self, raw: BinaryIO, expected: Digest, size: int | None, what: str = "blob"
    ) -> None:
        self._raw = raw
        self._hasher = Hasher(expected.algorithm)
        self.expected = expected
        self.expected_size = size
        self.what = what
        self._checked = False
        #: True once the whole stream was read and matched (digest and size)
        self.verified = False

    @property
    def size(self) -> int:
        return self._hasher.size

    def _check(self, at_eof: bool) -> None:
        from forklift.errors import SizeMismatch

        n = self._hasher.size
        if self.expected_size is not None and n > self.expected_size:
            raise SizeMismatch(
                f"size mismatch for {self.what} {self.expected}: more than the {self.expected_size} "
                "bytes promised"
            )
        if at_eof and not self._checked:
            self._checked = True
            if self.expected_size is not None and n != self.expected_size:
                raise SizeMismatch(
                    f"size mismatch for {self.what} {self.expected}: got {n} bytes, "
                    f"expected {self.expected_size}"
                )
            got = self._hasher.digest()
            if got != self.expected:
                raise DigestMismatch(
                    f"digest mismatch for {self.what} {self.expected}: the content hashes to {got}"
                )
            self.verified = True

    def read(self, n: int = -1) -> bytes:
        cancel.check()  # every copy of a blob reads through here: a cancelled command stops
        data = self._raw.read(n)
        self._hasher.update(data)
        self._check(at_eof=not data or n is None or n < 0)
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        cancel.check()
        readinto = getattr(self._raw, "readinto", None)
        if readinto is None:
            data = self._raw.read(len(buf))
            n = len(data)
            buf[:n] = data
        else:
            n = readinto(buf)
            if n is None:  # a non-blocking stream with nothing ready: nothing to hash yet
                return None  # type: ignore[return-value]
        view = memoryview(buf)[:n]
        self._hasher.update(view)
        self._check(at_eof=n == 0)
        return n

    def readable(self) -> bool:
        return True

    def verify_rest(self) -> None:
        """Read whatever is left and check the digest (for callers that stop early)."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
