"""core/flag.py: asyncio.Event's semantics, waiters made only when somebody waits, and
a flag many tasks wait on again and again stays linear in its waiters."""

from __future__ import annotations

import asyncio

import pytest

from asyncpod.core.flag import Flag


async def test_set_wakes_every_waiter_and_a_set_flag_does_not_wait() -> None:
    flag = Flag()
    assert flag._waiters is None  # nothing made until somebody waits
    waiting = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert flag._waiters is not None
    assert len(flag._waiters) == 3
    flag.set()
    await asyncio.gather(*waiting)
    assert flag.is_set()
    await flag.wait()  # at once
    assert await flag.wait_for(0.0)


async def test_wait_for_is_false_when_not_set_in_time_and_leaves_no_waiter() -> None:
    flag = Flag()
    assert not await flag.wait_for(0.01)
    assert flag._waiters in (None, [])


async def test_a_cancelled_wait_leaves_no_waiter() -> None:
    flag = Flag()
    waiting = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert flag._waiters == []


async def test_waiters_that_wait_again_after_a_set_are_not_searched_for() -> None:
    """Each woken waiter rejoins at once (the informer's old version flag, a run's one
    flag): the woken one is off the list already, so nobody searches the new list."""
    flag = Flag()
    rounds = 3

    async def wait_again() -> None:
        for _ in range(rounds):
            flag.clear()
            await flag.wait()

    waiting = [asyncio.ensure_future(wait_again()) for _ in range(50)]
    for _ in range(rounds):
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        flag.set()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert flag._waiters in (None, [])


async def test_removal_searches_only_for_a_waiter_that_set_did_not_wake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flag = Flag()
    searched: list[object] = []

    class Watched(list[asyncio.Future[bool]]):
        def __contains__(self, item: object) -> bool:
            searched.append(item)
            return super().__contains__(item)

    waiting = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert flag._waiters is not None
    flag._waiters = Watched(flag._waiters)
    flag.set()
    await waiting
    flag.clear()
    flag._waiters = Watched()
    assert not await flag.wait_for(0.0)  # a timeout: still listed, so searched
    assert len(searched) == 1
