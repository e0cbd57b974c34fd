"""What every version scheme shares."""

from __future__ import annotations

from forklift.errors import InvalidInput


class InvalidVersion(InvalidInput):
    """A version string that its ecosystem's rules do not accept."""
