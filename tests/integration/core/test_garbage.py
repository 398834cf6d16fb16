"""A finished run leaves no cyclic garbage: reference counting frees all it made.

Why it matters: ``asyncpod batch`` turns off CPython's automatic full GC pass while runs
are in flight (asyncpod/cli/heap.py), because at 10,000 runs in flight one pass stops
the event loop for about a second and finds nothing. It finds nothing only as long as
runs make no reference cycles; if one did, every run would leave garbage that only a
full pass frees, and the batch would grow. Here the collector is off while real runs
end every way they can (succeeded, failed, timed out, refused, walked away from,
cancelled), and
one collection afterwards must find nothing of asyncpod's and no exception.

One way to end that does leave a cycle is not ours: a task of an *anyio* task group that
ends cancelled (anyio 4.16's task-done callback keeps the CancelledError in a frame its
traceback holds). The launcher's carriers therefore stop through their own cancel
scopes and return (asyncpod/core/pipeline.py, ``Pipeline.stop``); a caller's own
anyio task group is the caller's.
"""

from __future__ import annotations

import asyncio
import gc
import os
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import asyncpod
from asyncpod import Launcher, Outcome, PodSpec, RunOptions
from asyncpod.testing import outcome

from .conftest import TEST_OPTIONS

pytestmark = [pytest.mark.integration, pytest.mark.simulated]


@dataclass
class Garbage:
    """What one collection found: every object by type, and the exceptions among them
    whose tracebacks run through asyncpod's code."""

    by_type: Counter[str] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)

    def ours(self) -> dict[str, int]:
        return {name: n for name, n in self.by_type.items() if name.startswith("asyncpod.")}


def _through_asyncpod(error: BaseException) -> bool:
    """Whether the error's traceback runs through asyncpod's code: a cycle of ours.

    Others (aiohttp's or asyncio's, on a connection dropped under load) are theirs.
    """
    frames = traceback.walk_tb(error.__traceback__)
    return any(f"{os.sep}asyncpod{os.sep}" in frame.f_code.co_filename for frame, _ in frames)


@contextmanager
def garbage_left_behind() -> Iterator[Garbage]:
    """Collector off inside; on the way out, what one collection finds."""
    found = Garbage()
    gc.collect()
    gc.disable()
    try:
        yield found
        gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the pass finds, to say what it was
        gc.collect()
        for thing in gc.garbage:
            found.by_type[f"{type(thing).__module__}.{type(thing).__qualname__}"] += 1
            if isinstance(thing, BaseException) and _through_asyncpod(thing):
                found.exceptions[type(thing).__qualname__] += 1
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def spec(index: int, **simulated: object) -> PodSpec:
    return PodSpec("busybox:1.36", task_key=f"task-{index}", annotations=outcome(**simulated))  # type: ignore[arg-type]


async def test_a_finished_run_leaves_no_cyclic_garbage(sa_kubeconfig: Path, namespace: str) -> None:
    outcomes: Counter[Outcome] = Counter()
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS, qps=None
    ) as cluster:
        # First use makes what lives as long as the session (connections, the watch).
        async for result in Launcher(cluster, run_id="warm-up").as_completed(
            [spec(0, duration=0.2)]
        ):
            outcomes[result.outcome] += 1
        with garbage_left_behind() as garbage:
            mixed = [spec(i, duration=0.5, exit_code=3 * (i % 2)) for i in range(40)]
            async for result in Launcher(cluster, max_in_flight=20, run_id="mixed").as_completed(
                mixed
            ):
                outcomes[result.outcome] += 1

            timed_out = [spec(i, duration=600) for i in range(20)]
            deadline = RunOptions(deadline=2, schedule_timeout=60, delete_grace_period=5)
            launcher = Launcher(cluster, max_in_flight=20, run_id="deadline", options=deadline)
            async for result in launcher.as_completed(timed_out):
                outcomes[result.outcome] += 1

            refused = [spec(i, duration=1) for i in range(10)]  # ends in an error: 403
            launcher = Launcher(cluster, run_id="refused", namespace="somebody-elses")
            async for result in launcher.as_completed(refused):
                outcomes[result.outcome] += 1

            walked_away = [spec(i, duration=1 + i % 4) for i in range(30)]
            launcher = Launcher(cluster, max_in_flight=30, run_id="walk-away")
            async with aclosing(launcher.as_completed(walked_away)) as results:
                async for result in results:
                    outcomes[result.outcome] += 1
                    break  # the other 29 are cancelled, and their pods deleted

            awaiting = [asyncio.create_task(cluster.run(spec(i, duration=600))) for i in range(10)]
            started = [await cluster.start(spec(i, duration=600)) for i in range(10, 20)]
            for run in started:
                await run.created()  # by then the awaited ones are most likely created too
            for task in awaiting:
                task.cancel()  # the awaiting task is cancelled: so is its run
            for run in started:
                await run.cancel()
            outcomes[Outcome.CANCELLED] += sum(
                [
                    isinstance(r, asyncio.CancelledError)
                    for r in await asyncio.gather(*awaiting, return_exceptions=True)
                ]
            )
            del awaiting, started, task, run

    assert outcomes[Outcome.SUCCEEDED] >= 20
    assert outcomes[Outcome.FAILED] == 20
    assert outcomes[Outcome.TIMED_OUT] == 20
    assert outcomes[Outcome.ERROR] == 10
    # A run that left a cycle would leave its state in it (flags, state changes, the
    # run, its errors: asyncpod's objects), and an exception whose traceback holds one
    # of our frames is the usual way such a cycle closes. What is left may be the event
    # loop's own: a closed connection's transport keeps a bound method of itself (3.11).
    assert garbage.ours() == {}, garbage.by_type.most_common(15)
    assert garbage.exceptions == Counter(), garbage.by_type.most_common(15)
