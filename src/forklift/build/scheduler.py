"""Runs the stages of a build, each as soon as the stages it depends on are done.

BuildKit's solver starts a vertex when its inputs are ready; forklift does the
same per stage: a stage that depends on nothing starts at once, and every
finished stage releases the stages that were waiting only for it (no waiting
for a whole "level" of the graph). At most ``jobs`` stages run at the same
time; with ``jobs=1`` (or a single stage) they run one by one in file order, on
the calling thread.

The first failure stops the build: no further stage starts, the running ones
finish (a RUN cannot be abandoned halfway), and that failure is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

R = TypeVar("R")


def run_stages(
    deps: Mapping[int, Iterable[int]],
    run: Callable[[int], R],
    jobs: int = 4,
) -> dict[int, R]:
    """Run ``run(i)`` for every stage ``i`` of ``deps`` (stage -> stages it needs).

    A stage starts once every stage it needs has returned; dependencies outside
    ``deps`` count as done. Returns each stage's result.
    """
    waiting = {i: {d for d in needs if d in deps and d != i} for i, needs in deps.items()}
    results: dict[int, R] = {}
    if jobs <= 1 or len(waiting) <= 1:
        # one at a time (or only one stage): no pool, and no thread module to load
        for i in _sequential_order(waiting):
            results[i] = run(i)
        return results
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    running: dict[Future[R], int] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="stage") as pool:
        while True:
            if failure is None:
                for i in sorted(i for i, needs in waiting.items() if not needs):
                    if len(running) >= jobs:
                        break
                    del waiting[i]
                    running[pool.submit(run, i)] = i
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                exc = future.exception()
                if exc is not None:
                    failure = failure or exc
                    continue
                results[i] = future.result()
                for needs in waiting.values():
                    needs.discard(i)
    if failure is not None:
        raise failure
    if waiting:  # pragma: no cover - the front end rejects dependency cycles
        raise RuntimeError(f"stages {sorted(waiting)} wait on each other")
    return results


def _sequential_order(waiting: dict[int, set[int]]) -> list[int]:
    """File order, each stage after the ones it needs."""
    order: list[int] = []
    done: set[int] = set()
    pending = dict(waiting)
    while pending:
        ready = [i for i in sorted(pending) if pending[i] <= done]
        if not ready:  # pragma: no cover - the front end rejects dependency cycles
            raise RuntimeError(f"stages {sorted(pending)} wait on each other")
        i = ready[0]
        order.append(i)
        done.add(i)
        del pending[i]
    return order
