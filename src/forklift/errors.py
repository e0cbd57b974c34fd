"""User-facing errors.

Every error forklift expects to happen in normal use (bad input, missing images,
corrupt data, network trouble) is a :class:`ForkliftError`. The CLI prints its
one-line message (plus the hint, if any) and exits with ``exit_code``; anything
else is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A position in a user's file: 1-based line and column (0 = unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.file}:{self.line}:{self.column}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


class ForkliftError(Exception):
    """Base of every error meant for a user.

    ``message`` is one line saying what is wrong; ``hint`` optionally says what
    to do about it; ``location`` points into the user's file when there is one.
    """

    exit_code: int = 1

    def __init__(
        self, message: str, *, hint: str | None = None, location: Location | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location

    def __str__(self) -> str:
        if self.location is not None:
            return f"{self.location}: {self.message}"
        return self.message


class UsageError(ForkliftError):
    """The command line or an API call was used wrongly (bad flag value, missing argument)."""

    exit_code = 2


class InvalidInput(ForkliftError):
    """Data from outside (a file, a manifest, a config) is malformed."""


class ParseError(InvalidInput):
    """A user-written file (Dockerfile, ignore file, config) does not parse; carries a location."""


class InvalidReference(InvalidInput):
    """An image reference or transport name is not valid."""


class InvalidDigest(InvalidInput):
    """A digest string is malformed or uses an unsupported algorithm."""


class DigestMismatch(ForkliftError):
    """Bytes did not hash to the digest they were promised to have."""


class SizeMismatch(ForkliftError):
    """Bytes did not have the size their descriptor promised."""


class UnsafeArchive(ForkliftError):
    """A tar archive tried to do something hostile (escape the root, write through a symlink)."""


class NotFound(ForkliftError):
    """An image, blob, tag, stage or file that was asked for does not exist."""


class Conflict(ForkliftError):
    """The operation would break something and needs to be forced (e.g. rmi of a multi-tag image)."""


class StoreError(ForkliftError):
    """The local store is damaged or cannot be used."""


class TransportError(ForkliftError):
    """Moving an image between two places failed."""


class RegistryError(TransportError):
    """A registry answered with an error (auth, denied, rate limited, server error)."""


class BuildError(ForkliftError):
    """A build step failed."""


class RuntimeFailure(ForkliftError):
    """The OCI runtime could not be found or could not start a container."""

    exit_code = 125


class VerificationError(ForkliftError):
    """A signature, attestation or key did not verify (or none was found)."""


class PolicyDenied(VerificationError):
    """The signature policy refused an image."""
