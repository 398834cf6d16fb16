"""The batch command's garbage-collection policy: no long GC pass while runs are in flight.

Why it exists: CPython's (3.10-3.13) collector stops the event loop for as long as a
pass lasts, and at 10,000 runs in flight two kinds of pass grew long (measured with
``python -m benchmarks.scale``, whose probe times every pass; docs/architecture.md,
"Loop stalls and the garbage collector"):

- **Full passes** walk every tracked object. A run in flight holds about 93 (its task,
  coroutine chain, cancel scopes, flags; ``python -m benchmarks.gc_census``), so one pass
  walks ~1 M objects and took up to 1.2 s. They find nothing: a finished run leaves no
  cyclic garbage (reference counting frees all of it, whatever the outcome; the
  integration test ``test_a_finished_run_leaves_no_cyclic_garbage`` keeps it so).
- **Young passes** are due after 700 more allocations than deallocations, and freeing
  an *old* object counts as a deallocation too. While thousands of runs end, they free
  more old objects than the watch allocates new ones, so no young pass comes due for
  many seconds while the youngest generation grows to hundreds of thousands of objects;
  the pass that finally comes took 160-200 ms of CPU.

So for the length of a batch, which owns its process, :func:`batch_collector`:

- moves everything alive before the first pod into the collector's permanent generation
  (:func:`gc.freeze`), after one collection so that no garbage is frozen with it;
- turns off the automatic full pass (the third threshold);
- adds a young pass (:func:`gc.collect` of generation 1) every ``young_pass_every``
  seconds of the event loop, so the young generations hold at most what that much time
  allocates; the automatic young passes go on as before;
- on the way out stops those, puts the thresholds back and unfreezes, so the process
  (a test, or a program that called ``main()``) gets Python's collector back as it was
  (a process that had frozen objects of its own before keeps them, and ours, frozen).

The price, if some path did leave cycles that outlive the young passes, would be memory
held until the batch ends, not a stall; the benchmark's 1,000,000-spec stream watches
memory under this policy. The library itself never touches the collector: an
application that embeds asyncpod owns its process and its GC policy (it can use this
same context manager); the Airflow triggerer is Airflow's process, where the trigger
freezes once and changes nothing else (:mod:`asyncpod.airflow.triggergc`).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["NO_AUTOMATIC_FULL_PASS", "YOUNG_PASS_EVERY", "batch_collector"]

NO_AUTOMATIC_FULL_PASS = 2**31 - 1
#: What the interpreter counts as frozen before anything froze: 0, but a few hundred of its
#: own startup objects on CPython 3.12 (375 on 3.12.1), which would otherwise read as "the
#: process froze objects itself" and keep the batch's frozen forever. Read on import.
FROZEN_AT_START = gc.get_freeze_count()
"""A third GC threshold no count reaches: the collector never starts a full pass itself."""

YOUNG_PASS_EVERY = 0.1
"""Seconds between the loop's own young passes: each walks what 0.1 s allocated."""


class _YoungPasses:
    """A young GC pass every ``interval`` seconds on ``loop``, until :meth:`stop`.

    A timer handle, not a task: it does one short synchronous thing per tick, and the
    context manager that made it cancels it on the way out.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop, self._interval = loop, interval
        self._handle = loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        gc.collect(1)
        self._handle = self._loop.call_later(self._interval, self._tick)

    def stop(self) -> None:
        self._handle.cancel()


@contextmanager
def batch_collector(*, young_pass_every: float | None = YOUNG_PASS_EVERY) -> Iterator[int]:
    """Freeze what is alive; no automatic full pass and paced young ones, until the block ends.

    Entered inside a running event loop, it paces young passes on that loop every
    ``young_pass_every`` seconds (``None``: not at all). Yields how many objects were
    frozen.
    """
    young, middle, full = gc.get_threshold()
    frozen_before = gc.get_freeze_count() > FROZEN_AT_START
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_PASS)
    pacer = None
    try:
        if young_pass_every is not None:
            pacer = _YoungPasses(asyncio.get_running_loop(), young_pass_every)
        yield gc.get_freeze_count()
    finally:
        if pacer is not None:
            pacer.stop()
        gc.set_threshold(young, middle, full)
        if not frozen_before:
            gc.unfreeze()
