"""The batch command's garbage-collection policy: no full GC pass while runs are in flight.

Why it exists: CPython's (3.10-3.13) full collection walks every GC-tracked object in
the process, and while it runs the event loop stands still. A run in flight holds about
93 tracked objects (its task, coroutine chain, cancel scopes, flags; ``python -m
benchmarks.gc_census``), so at 10,000 runs in flight one full pass walks ~1 M objects
and stops the loop for about a second (docs/architecture.md, "Loop stalls and the
garbage collector"). Those passes find nothing: a finished run leaves no cyclic garbage
(reference counting frees all of it, whatever the outcome; the integration test
``test_a_finished_run_leaves_no_cyclic_garbage`` keeps it so). So for the length of a
batch, which owns its process, :func:`batch_collector`:

- moves everything alive before the first pod into the collector's permanent generation
  (:func:`gc.freeze`), after one collection so that no garbage is frozen with it;
- turns off the automatic full pass (the third threshold), and keeps the young passes,
  which walk only recently made objects and catch the short-lived cycles any library
  makes (an exception and its traceback);
- on the way out puts the thresholds back and unfreezes, so the process (a test, or a
  program that called ``main()``) gets Python's collector back as it was (a process
  that had frozen objects of its own before keeps them, and ours, frozen).

The price, if some path did leave cycles that outlive two young passes, would be memory
held until the batch ends, not a stall; the benchmark's 1,000,000-spec stream watches
memory under this policy. The library itself never touches the collector: an
application that embeds asyncpod owns its process and its GC policy (it can use this
same context manager); the Airflow triggerer is Airflow's process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["NO_AUTOMATIC_FULL_PASS", "batch_collector"]

NO_AUTOMATIC_FULL_PASS = 2**31 - 1
"""A third GC threshold no count reaches: the collector never starts a full pass itself."""


@contextmanager
def batch_collector() -> Iterator[int]:
    """Freeze what is alive and run only young GC passes until the block ends.

    Yields how many objects were frozen.
    """
    young, middle, full = gc.get_threshold()
    frozen_before = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_PASS)
    try:
        yield gc.get_freeze_count()
    finally:
        gc.set_threshold(young, middle, full)
        if not frozen_before:
            gc.unfreeze()
