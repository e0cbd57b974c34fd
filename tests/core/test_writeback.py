"""Write-behind: the write-out of a blob's bytes starts as they are written.

What is checked is which ranges are handed to the kernel (contiguous, each
:data:`forklift.writeback.STEP` or more, covering what was written), and that
the hint never breaks a write; how much sooner the fsync returns is for
bench/registry_transport.py and bench/save_load.py to show.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from forklift import writeback
from forklift.copyrange import FileExtent, copy_while_draining
from forklift.oci.digest import Digest, VerifyingReader
from forklift.store.layout import OciLayout

STEP = writeback.STEP


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(writeback, "start_writeback", lambda fd, off, n: calls.append((fd, off, n)))
    return calls


def _contiguous(calls: list[tuple[int, int, int]], start: int = 0) -> int:
    """The end of the ranges, after checking they follow one another from ``start``."""
    at = start
    for _, off, n in calls:
        assert off == at and n >= STEP
        at += n
    return at


def test_blob_writer_starts_the_write_out_of_each_step(
    tmp_path: Path, started: list[tuple[int, int, int]]
) -> None:
    layout = OciLayout(tmp_path / "layout", create=True)
    data = os.urandom(3 * STEP + 12345)
    digest = Digest.of(data)
    with layout.blob_writer(digest, len(data)) as w:
        for i in range(0, len(data), 100_000):
            w.write(data[i : i + 100_000])
        w.commit()
    # all but the last step's worth (left to commit's fsync) was handed over, in order
    end = _contiguous(started)
    assert len(started) >= 2
    assert 0 <= len(data) - end < STEP + 100_000
    assert (tmp_path / "layout" / "blobs" / "sha256" / digest.encoded).read_bytes() == data


def test_kernel_copy_starts_the_write_out_behind_it(
    tmp_path: Path, started: list[tuple[int, int, int]]
) -> None:
    data = os.urandom(2 * STEP + 777)
    src = tmp_path / "src"
    src.write_bytes(b"x" * 512 + data)
    dst = tmp_path / "dst"
    with open(src, "rb") as f, open(dst, "wb") as out:
        f.seek(512)
        reader = VerifyingReader(f, Digest.of(data), len(data))
        copy_while_draining(FileExtent(src, 512), out.fileno(), 100, len(data), reader)
    assert dst.read_bytes()[100:] == data
    assert _contiguous(started, start=100) == 100 + 2 * STEP


def test_concurrent_copies_each_get_their_head_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The libc function loads once, and slowly (ctypes); copies started at the same time
    must not skip their write-behind while another thread loads it (they did: the
    first layers of a load never had theirs)."""
    import ctypes
    import threading
    import time

    calls: list[tuple[int, int, int]] = []

    def recorded(fd: int, offset: int, length: int, flags: int) -> int:
        calls.append((fd, offset, length))
        return 0

    class SlowLibc:
        def __init__(self, *args: object, **kwargs: object) -> None:
            time.sleep(0.2)  # a slow first load, as under load on a busy machine
            self.sync_file_range = recorded

    monkeypatch.setattr(ctypes, "CDLL", SlowLibc)
    monkeypatch.setattr(writeback, "_call", None)
    data = os.urandom(2 * STEP + 777)
    src = tmp_path / "src"
    src.write_bytes(b"x" * 512 + data)
    outs = [open(tmp_path / f"dst{i}", "wb") for i in range(3)]  # noqa: SIM115

    def one(out: BinaryIO) -> None:
        with open(src, "rb") as f:
            reader = VerifyingReader(f, Digest.of(b"x" * 512 + data), None)
            copy_while_draining(FileExtent(src, 0), out.fileno(), 512, len(data) + 512, reader)

    threads = [threading.Thread(target=one, args=(out,)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fds = [out.fileno() for out in outs]
    for out in outs:
        out.close()
    for fd in fds:
        mine = [c for c in calls if c[0] == fd]
        assert _contiguous(mine, start=512) == 512 + 2 * STEP


def test_the_hint_never_fails_a_write(tmp_path: Path) -> None:
    # a closed descriptor: the kernel refuses, the caller carries on
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"x" * 4096)
    writeback.start_writeback(fd, 0, 4096)  # a real call on a real file
    os.close(fd)
    writeback.start_writeback(fd, 0, 4096)
