"""The batch command's garbage-collection policy: keep long-lived objects out of GC passes.

Why it exists: CPython's (3.10-3.13) full collection walks every GC-tracked object in
the process, and while it runs the event loop stands still. Measured at 1,000 pods in
flight (``python -m benchmarks.gc_census``; docs/architecture.md, "Loop stalls and the
garbage collector"): 170 K tracked objects, 77 K of them created at import and start-up
(functions, classes, modules) that live as long as the process, and full passes of up
to 183 ms. The batch command owns its process, so right before its first pod it moves
everything alive into the collector's permanent generation (:func:`gc.freeze`): later
passes walk only what the runs themselves made (census: passes of 38-52 ms, longest
stall 105 → 43 ms).

What it deliberately does not do: change the library. An application that embeds
asyncpod owns its process and its GC policy (it can call :func:`gc.freeze` the same
way); the Airflow triggerer is Airflow's process. Frozen objects are still freed by
reference counting; only cyclic garbage among them stays until exit, which for
objects made before the first pod is a constant, not a leak that grows with the batch.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_long_lived_heap"]


def freeze_long_lived_heap() -> int:
    """Collect once, then exempt every object alive now from later passes; their count."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
