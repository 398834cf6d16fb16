"""Cleanup that finishes even when the task running it is cancelled again and again.

Why: a pod must be deleted when its run ends, however it ends. anyio's shielded
cancel scope stops anyio's own cancellation, but not a native ``task.cancel()``:
measured here (anyio 4.16, Python 3.11), the first native cancel of a task is
absorbed by running cleanup in ``finally``, and a *second* one (a second Ctrl-C, a
test harness tearing down, a framework cancelling "everything" twice) breaks through
the shield and aborts the delete half-way. ``asyncio.run`` shutdown cancels every
task at once, so both kinds arrive together.

:func:`complete_despite_cancellation` runs the cleanup in a child task that the
caller awaits to its end, re-awaiting it after each cancellation, and re-raises the
cancellation afterwards. The child is not fire-and-forget: its owner waits for it,
and the work it does is bounded by the caller (every retry loop in the runner has a
window), so this cannot hang.

What it deliberately does not do: bound the work (the caller does) or swallow the
cancellation (it is re-raised once the work is done).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import anyio

__all__ = ["complete_despite_cancellation"]

T = TypeVar("T")


async def complete_despite_cancellation(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` to its end whatever cancels the caller; then re-raise that."""
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    cancellation: BaseException | None = None
    # Shielded so anyio stops re-delivering its own cancellation on every loop pass
    # (which would spin); native cancels still arrive and are absorbed below.
    with anyio.CancelScope(shield=True):
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError as error:
                if task.done():
                    break
                cancellation = error
    if cancellation is not None:
        # The work is done; only now does the caller's cancellation go on (the work's
        # own error, if any, is marked retrieved: the cancellation wins).
        if not task.cancelled():
            task.exception()
        raise cancellation
    return task.result()
