"""The batch command's GC policy: what is alive at start-up leaves later GC passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from asyncpod.cli.heap import freeze_long_lived_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # give the test process its normal collector back


def _tracked(obj: object) -> bool:
    return any(candidate is obj for candidate in gc.get_objects())


@pytest.mark.usefixtures("unfrozen")
def test_objects_alive_at_start_up_are_no_longer_walked_by_gc_passes() -> None:
    long_lived = [object()]  # a container: tracked by the collector
    assert _tracked(long_lived)

    frozen = freeze_long_lived_heap()

    assert frozen >= 1
    assert not _tracked(long_lived)
    made_later = [object()]
    assert _tracked(made_later)  # runs made after start-up are collected as ever


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("unfrozen")
def test_cyclic_garbage_made_before_start_up_is_collected_not_frozen_for_good() -> None:
    node = _Node()
    alive = weakref.ref(node)
    del node  # garbage now, reachable only from itself: only a collection frees it

    freeze_long_lived_heap()

    assert alive() is None
