"""Triggers of one loop share a connection lookup (sessions.shared_target).

Why: each trigger read its Airflow connection through the triggerer's supervisor; a
DAG run or a triggerer restart starting 100 triggers made 100 lookups for one
connection. No timing: the lookups are counted.
"""

from __future__ import annotations

import asyncio

import pytest

from asyncpod.airflow.connection import KubeTarget
from asyncpod.airflow.sessions import shared_target
from asyncpod.errors import ConfigError


class Lookups:
    def __init__(self, *, fail: int = 0) -> None:
        self.calls = 0
        self.fail = fail
        self.gate = asyncio.Event()

    async def __call__(self) -> KubeTarget:
        self.calls += 1
        await self.gate.wait()
        if self.calls <= self.fail:
            raise ConfigError("connection 'k' is not defined")
        return KubeTarget(config_file=f"/kube/{self.calls}")


async def test_concurrent_and_later_callers_share_one_lookup() -> None:
    load = Lookups()
    waiting = [asyncio.ensure_future(shared_target(("k",), load)) for _ in range(100)]
    await asyncio.sleep(0)
    load.gate.set()
    targets = await asyncio.gather(*waiting)
    assert load.calls == 1
    assert {t.config_file for t in targets} == {"/kube/1"}
    assert (await shared_target(("k",), load)).config_file == "/kube/1"
    assert load.calls == 1
    assert (await shared_target(("other",), load)).config_file == "/kube/2"


async def test_an_expired_lookup_is_made_again() -> None:
    load = Lookups()
    load.gate.set()
    await shared_target(("k",), load, ttl=0)
    await shared_target(("k",), load, ttl=0)
    assert load.calls == 2


async def test_a_failed_lookup_reaches_its_waiters_and_is_not_kept() -> None:
    load = Lookups(fail=1)
    first = asyncio.ensure_future(shared_target(("k",), load))
    second = asyncio.ensure_future(shared_target(("k",), load))
    await asyncio.sleep(0)
    load.gate.set()
    for caller in (first, second):
        with pytest.raises(ConfigError):
            await caller
    assert load.calls == 1
    assert (await shared_target(("k",), load)).config_file == "/kube/2"
    assert load.calls == 2


async def test_a_waiters_cancel_spares_the_lookup_and_the_other_callers() -> None:
    load = Lookups()
    first = asyncio.ensure_future(shared_target(("k",), load))
    second = asyncio.ensure_future(shared_target(("k",), load))
    third = asyncio.ensure_future(shared_target(("k",), load))
    await asyncio.sleep(0)
    second.cancel()
    load.gate.set()
    assert (await first).config_file == (await third).config_file == "/kube/1"
    with pytest.raises(asyncio.CancelledError):
        await second
    assert load.calls == 1


async def test_when_the_caller_making_the_lookup_is_cancelled_a_waiter_makes_it() -> None:
    load = Lookups()
    first = asyncio.ensure_future(shared_target(("k",), load))
    second = asyncio.ensure_future(shared_target(("k",), load))
    third = asyncio.ensure_future(shared_target(("k",), load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    load.gate.set()
    assert (await second).config_file == (await third).config_file == "/kube/2"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert load.calls == 2  # the cancelled one, and one more for both waiters


async def test_no_task_outlives_the_callers() -> None:
    load = Lookups()
    before = asyncio.all_tasks()
    caller = asyncio.ensure_future(shared_target(("k",), load))
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == {caller}
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert asyncio.all_tasks() == before
