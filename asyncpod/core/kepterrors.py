"""An error fit to be kept by the object whose own task caught it.

Why a module of its own: a run keeps the error that ended it, and an informer the one
that stopped it. Caught in their own task, an error's traceback runs through frames
whose locals hold that object (and so may its cause's or context's). Kept as it is,
it closes a reference cycle (owner → error → traceback → frame → owner) that only a
full GC pass frees, and ``asyncpod batch`` runs without those (asyncpod/cli/heap.py;
tests/integration/core/test_garbage.py). Both owners keep their errors through
:func:`without_tracebacks`.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["without_tracebacks"]

_E = TypeVar("_E", bound=BaseException)


def without_tracebacks(error: _E) -> _E:
    """``error`` without tracebacks (its causes' and contexts' neither); returned.

    Dropping the tracebacks is safe whoever else holds the error (clearing frames is
    not: one may belong to a suspended coroutine, which clearing would close). What
    failed is in the error's message, and raised again it gets a new traceback.
    """
    seen: set[int] = set()
    chain: list[BaseException | None] = [error]
    while chain:
        chained = chain.pop()
        if chained is None or id(chained) in seen:
            continue
        seen.add(id(chained))
        chained.__traceback__ = None
        chain += (chained.__cause__, chained.__context__)
    return error
