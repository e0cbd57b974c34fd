"""Bounded concurrency for blob transfers (default 4 at once; pulls use 6, as skopeo does)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CONCURRENCY = 4


def bounded_map(
    fn: Callable[[T], R], items: Iterable[T], *, limit: int = DEFAULT_CONCURRENCY
) -> list[R]:
    """``[fn(x) for x in items]`` with at most ``limit`` calls running at once.

    Results keep the order of ``items``. When a call raises, calls not yet
    started are cancelled, the running ones are waited for, and the error of
    the earliest item that had failed by then is raised (running calls are
    not interrupted: they finish their transfer first). A :class:`RegistryClient` may be
    shared by the calls: it is thread-safe.
    """
    work = list(items)
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(work) <= 1 or limit == 1:
        return [fn(x) for x in work]
    with ThreadPoolExecutor(max_workers=min(limit, len(work))) as pool:
        futures: list[Future[R]] = [pool.submit(fn, x) for x in work]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            for f in pending:
                f.cancel()
            wait([f for f in pending if not f.cancelled()])
            first = min(failed, key=futures.index)
            exc = first.exception()
            assert exc is not None
            raise exc
        return [f.result() for f in futures]
