"""Retry timing: exponential backoff, ``Retry-After``, and whole-operation deadlines."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from forklift.errors import TransportError


class Deadline:
    """A point in time an operation must finish by (``None`` seconds = never)."""

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a limit."""
        if self._end is None:
            return None
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def check(self, what: str) -> None:
        """Raise :class:`TransportError` if the deadline has passed."""
        if self.expired():
            raise TransportError(f"{what}: timed out after {self.seconds:g} s")

    def clip(self, seconds: float) -> float:
        """``seconds``, shortened so that it ends no later than the deadline."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)

    def sleep(self, seconds: float, what: str) -> None:
        """Sleep ``seconds``; raise instead if that would overrun the deadline."""
        left = self.remaining()
        if left is not None and seconds >= left:
            raise TransportError(f"{what}: timed out after {self.seconds:g} s")
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits between half and all of
    ``base * 2**n`` (capped at ``cap``), half fixed and half random."""

    base: float = 0.5
    cap: float = 15.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * (2**attempt))
        # half fixed, half random: spreads retries of parallel transfers without
        # ever collapsing the wait to zero
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import email.utils  # only for an HTTP-date (the email package costs ~6 ms to load)

        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
