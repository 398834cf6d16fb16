"""The batch command's GC policy: frozen start-up heap, no full pass, paced young passes."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from asyncpod.cli.heap import FROZEN_AT_START, NO_AUTOMATIC_FULL_PASS, batch_collector


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

    with batch_collector(young_pass_every=None) as frozen:
        assert frozen > 0
        assert not _tracked(long_lived)
        made_later = [object()]
        assert _tracked(made_later)  # what the runs make is collected as ever


def test_cyclic_garbage_made_before_start_up_is_collected_not_frozen_for_good() -> None:
    node = _Node()
    alive = weakref.ref(node)
    del node  # garbage now, reachable only from itself: only a collection frees it

    with batch_collector(young_pass_every=None):
        assert alive() is None


def test_the_collector_starts_no_full_pass_itself_while_the_batch_runs(passes: _Passes) -> None:
    with batch_collector(young_pass_every=None):
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
    with batch_collector(young_pass_every=None):
        node = _Node()
        alive = weakref.ref(node)
        del node
        held = _grow_long_lived_heap(50_000)  # enough allocation for young passes to run
        assert alive() is None
    del held


def test_leaving_the_batch_gives_the_collector_back_as_it_was() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()  # more after a test that ran Airflow 3.2's code (it freezes)
    kept = [object()]
    inside: list[tuple[int, int, int]] = []

    def interrupted_batch() -> None:
        with batch_collector(young_pass_every=None):
            inside.append(gc.get_threshold())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_batch()
    assert inside == [(before[0], before[1], NO_AUTOMATIC_FULL_PASS)]
    assert gc.get_threshold() == before
    if frozen > FROZEN_AT_START:  # frozen by the process itself: kept so (the next test)
        assert gc.get_freeze_count() >= frozen
    else:
        assert gc.get_freeze_count() == frozen
        assert _tracked(kept)


def test_a_process_that_froze_objects_itself_keeps_them_frozen() -> None:
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        with batch_collector(young_pass_every=None):
            pass
        assert gc.get_freeze_count() >= mine
    finally:
        gc.unfreeze()


def _old_objects(count: int) -> list[list[int] | None]:
    old: list[list[int] | None] = [[i] for i in range(count)]
    gc.collect()  # now in the oldest generation, like a run's state mid-batch
    return old


def _trade_old_for_young(old: list[list[int] | None]) -> list[list[int]]:
    """Free an old object for each new one that stays: what ending runs look like."""
    young = []
    for i in range(len(old)):
        young.append([i])
        old[i] = None
    return young


def _young_generations() -> int:
    return len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))


def test_freeing_old_objects_hides_young_ones_from_the_collector() -> None:
    """Why the policy paces young passes: CPython starts none here on its own."""
    old = _old_objects(100_000)
    young = _trade_old_for_young(old)
    assert _young_generations() >= 100_000  # one pass, whenever it comes, walks them all
    del young


async def test_the_batch_walks_young_objects_a_tick_at_a_time_however_they_pile_up() -> None:
    old = _old_objects(100_000)
    with batch_collector(young_pass_every=0.01):
        young = _trade_old_for_young(old)
        piled_up = _young_generations()
        await asyncio.sleep(0.05)  # the loop runs the pacer's timer before this wakes
        left = _young_generations()
    assert piled_up >= 100_000
    assert left < 1_000
    del young


@pytest.fixture
def no_automatic_passes() -> Iterator[None]:
    """Only explicit collections (the pacer's) run: what the passes record is theirs."""
    gc.disable()
    yield
    gc.enable()


@pytest.mark.usefixtures("no_automatic_passes")
async def test_leaving_the_batch_stops_the_paced_passes(passes: _Passes) -> None:
    with batch_collector(young_pass_every=0.01):
        passes.generations.clear()
        await asyncio.sleep(0.05)
    assert passes.generations, "paced passes ran while in the batch"
    passes.generations.clear()
    await asyncio.sleep(0.05)
    assert passes.generations == []
