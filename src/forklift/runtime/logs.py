"""A detached container's output: ``containers/<id>/container.log``.

The file is a sequence of frames, one per chunk the container wrote, in the
order they arrived: a 16-byte header (stream: 1 stdout, 2 stderr; three zero
bytes; the payload length as a big-endian uint32; the time as big-endian
uint64 nanoseconds since the epoch) and the bytes exactly as written, so
binary output and the split between stdout and stderr survive (docker's
json-file driver keeps the same three facts per line). Frames are appended
with ``O_APPEND`` in one ``write``; a reader that meets a partial frame at the
end (the writer is mid-way) stops there and can resume from that offset.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from forklift.errors import InvalidInput

STDOUT = 1
STDERR = 2
_HEADER = struct.Struct(">B3xIQ")
#: a frame longer than this means the file is damaged, not that a writer is mid-way
_MAX_FRAME = 1 << 24


class LogWriter:
    """Appends frames for the two streams of one container (thread-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._lock = threading.Lock()

    def write(self, stream: int, chunk: bytes) -> None:
        frame = _HEADER.pack(stream, len(chunk), time.time_ns()) + chunk
        with self._lock:
            view = memoryview(frame)
            while view:
                view = view[os.write(self._fd, view) :]

    def stdout(self, chunk: bytes) -> None:
        self.write(STDOUT, chunk)

    def stderr(self, chunk: bytes) -> None:
        self.write(STDERR, chunk)

    def close(self) -> None:
        os.close(self._fd)


@dataclass(frozen=True)
class LogLine:
    """One line of output (the last one of a stream may lack its newline)."""

    stream: int
    time_ns: int
    data: bytes

    def timestamp(self) -> str:
        """RFC 3339 with nanoseconds, as ``docker logs -t`` prints."""
        seconds, nanos = divmod(self.time_ns, 1_000_000_000)
        when = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos:09d}Z"


def read_frames(path: Path, offset: int = 0) -> tuple[list[tuple[int, int, bytes]], int]:
    """Complete frames from ``offset`` on, and the offset after the last complete one."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    frames = []
    pos = 0
    while len(data) - pos >= _HEADER.size:
        stream, length, stamp = _HEADER.unpack_from(data, pos)
        if stream not in (STDOUT, STDERR) or length > _MAX_FRAME:
            raise InvalidInput(f"{path}: damaged log at byte {offset + pos}")
        end = pos + _HEADER.size + length
        if end > len(data):
            break
        frames.append((stream, stamp, data[pos + _HEADER.size : end]))
        pos = end
    return frames, offset + pos


class _Lines:
    """Splits each stream's chunks into lines, keeping a partial last line per stream."""

    def __init__(self) -> None:
        self._partial: dict[int, tuple[int, bytes]] = {}

    def feed(self, stream: int, stamp: int, chunk: bytes) -> Iterator[LogLine]:
        first, pending = self._partial.pop(stream, (stamp, b""))
        data = pending + chunk
        start = 0
        while (nl := data.find(b"\n", start)) >= 0:
            yield LogLine(stream, first, data[start : nl + 1])
            first = stamp
            start = nl + 1
        if start < len(data):
            self._partial[stream] = (first, data[start:])

    def flush(self) -> Iterator[LogLine]:
        for stream, (stamp, data) in sorted(self._partial.items(), key=lambda kv: kv[1][0]):
            yield LogLine(stream, stamp, data)
        self._partial.clear()


def read_lines(
    path: Path,
    *,
    tail: int | None = None,
    follow: Callable[[], bool] | None = None,
    poll: float = 0.1,
) -> Iterator[LogLine]:
    """The log's lines in order; ``tail`` keeps only the last N of what is there now.

    With ``follow`` (a function saying whether the container may still write),
    keeps reading new output until it returns False and nothing more arrived.
    """
    frames, offset = read_frames(path)
    splitter = _Lines()
    lines = [line for s, t, c in frames for line in splitter.feed(s, t, c)]
    if follow is None:
        lines.extend(splitter.flush())
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    yield from lines
    if follow is None:
        return
    while True:
        running = follow()
        frames, offset = read_frames(path, offset)
        for s, t, c in frames:
            yield from splitter.feed(s, t, c)
        if not frames:
            if not running:
                break
            time.sleep(poll)
    yield from splitter.flush()
