"""The batch command's GC policy: frozen start-up heap, young passes only, all undone after."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from asyncpod.cli.heap import NO_AUTOMATIC_FULL_PASS, batch_collector


def _tracked(obj: object) -> bool:
    return any(candidate is obj for candidate in gc.get_objects())


class _Node:
    def __init__(self) -> None:
        self.me = self


class _Passes:
    """The generations of the passes the collector started by itself (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.generations: list[int] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.generations.append(info["generation"])


@pytest.fixture
def passes() -> Iterator[_Passes]:
    seen = _Passes()
    gc.callbacks.append(seen)
    yield seen
    gc.callbacks.remove(seen)


def _grow_long_lived_heap(objects: int | None = None) -> list[list[int]]:
    """Objects that survive young passes: what many runs in flight look like to the GC.

    By default enough for CPython (3.11-3.13) to start a full pass: more than 25 %
    growth of the old generation, and more than 10 middle passes of 10 young ones.
    """
    count = max(300_000, len(gc.get_objects()) // 2) if objects is None else objects
    return [[i] for i in range(count)]


def test_objects_alive_at_start_up_are_no_longer_walked_by_gc_passes() -> None:
    long_lived = [object()]  # a container: tracked by the collector
    assert _tracked(long_lived)

    with batch_collector() as frozen:
        assert frozen > 0
        assert not _tracked(long_lived)
        made_later = [object()]
        assert _tracked(made_later)  # what the runs make is collected as ever


def test_cyclic_garbage_made_before_start_up_is_collected_not_frozen_for_good() -> None:
    node = _Node()
    alive = weakref.ref(node)
    del node  # garbage now, reachable only from itself: only a collection frees it

    with batch_collector():
        assert alive() is None


def test_the_collector_starts_no_full_pass_itself_while_the_batch_runs(passes: _Passes) -> None:
    with batch_collector():
        passes.generations.clear()
        held = _grow_long_lived_heap()
    assert passes.generations, "the young passes still run"
    assert 2 not in passes.generations
    del held


def test_the_same_growth_without_the_policy_starts_full_passes(passes: _Passes) -> None:
    """The control for the test above: this growth is enough to start a full pass."""
    gc.collect()
    passes.generations.clear()
    held = _grow_long_lived_heap()
    assert 2 in passes.generations
    del held


def test_short_lived_cycles_are_still_collected_during_the_batch() -> None:
    with batch_collector():
        node = _Node()
        alive = weakref.ref(node)
        del node
        held = _grow_long_lived_heap(50_000)  # enough allocation for young passes to run
        assert alive() is None
    del held


def test_leaving_the_batch_gives_the_collector_back_as_it_was() -> None:
    before = gc.get_threshold()
    kept = [object()]
    inside: list[tuple[int, int, int]] = []

    def interrupted_batch() -> None:
        with batch_collector():
            inside.append(gc.get_threshold())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_batch()
    assert inside == [(before[0], before[1], NO_AUTOMATIC_FULL_PASS)]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    assert _tracked(kept)


def test_a_process_that_froze_objects_itself_keeps_them_frozen() -> None:
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        with batch_collector():
            pass
        assert gc.get_freeze_count() >= mine
    finally:
        gc.unfreeze()
