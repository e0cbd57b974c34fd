"""HTTP ``Range`` requests on blobs (RFC 9110 section 14): parsing, and multipart answers.

:func:`parse` turns a ``Range`` header into the byte ranges to send: one range
is a ``206`` with ``Content-Range``; several become one ``multipart/byteranges``
body (:func:`multipart`). Overlapping and adjacent ranges are merged first, as
the RFC recommends, so a request cannot make the server send the same bytes
many times; a request for more than :data:`MAX_RANGES` separate pieces is
answered with the whole blob (the RFC lets a server ignore ``Range``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RANGES = 64
_SPEC = re.compile(r"(\d*)-(\d*)")


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` inclusive."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.first}-{self.last}/{size}"


class Unsatisfiable(Exception):
    """No requested range overlaps the blob: ``416`` with ``Content-Range: bytes */size``."""


def parse(header: str, size: int) -> list[ByteRange] | None:
    """The ranges of ``header`` within a blob of ``size`` bytes, merged and sorted.

    None means "send the whole blob" (a unit other than bytes, or too many
    pieces); raises :class:`Unsatisfiable` when the ranges are invalid
    (``bytes=500-0``, garbage) or all lie beyond the end.
    """
    unit, sep, specs = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    wanted: list[ByteRange] = []
    for raw in specs.split(","):
        spec = raw.strip()
        if not spec:
            continue  # "bytes=0-1,,5-6": empty list elements are allowed
        m = _SPEC.fullmatch(spec)
        if m is None or not (m.group(1) or m.group(2)):
            raise Unsatisfiable()
        first, last = m.group(1), m.group(2)
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if last and int(last) < start:
                raise Unsatisfiable()  # RFC 9110: last before first is an invalid range
            if start < size:
                wanted.append(ByteRange(start, end))
        else:  # suffix: the last N bytes
            n = int(last)
            if n > 0 and size > 0:
                wanted.append(ByteRange(max(0, size - n), size - 1))
    if not wanted:
        raise Unsatisfiable()
    wanted.sort(key=lambda r: r.first)
    merged = [wanted[0]]
    for r in wanted[1:]:
        top = merged[-1]
        if r.first <= top.last + 1:
            merged[-1] = ByteRange(top.first, max(top.last, r.last))
        else:
            merged.append(r)
    if len(merged) > MAX_RANGES:
        return None
    return merged


def multipart(
    ranges: list[ByteRange], size: int, boundary: str, content_type: str
) -> tuple[list[tuple[bytes, ByteRange | None]], int]:
    """The pieces of a ``multipart/byteranges`` body and its total length.

    Each piece is (literal bytes to send, then the blob range to send or None).
    """
    pieces: list[tuple[bytes, ByteRange | None]] = []
    total = 0
    for r in ranges:
        head = (
            f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
            f"Content-Range: {r.content_range(size)}\r\n\r\n"
        ).encode()
        pieces.append((head, r))
        total += len(head) + r.length
    tail = f"\r\n--{boundary}--\r\n".encode()
    pieces.append((tail, None))
    return pieces, total + len(tail)
