"""Cleanup that completes however often its task is cancelled, then re-raises."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from asyncpod.core.shielding import complete_despite_cancellation


async def test_repeated_native_cancels_do_not_interrupt_the_work() -> None:
    steps: list[int] = []

    async def work() -> str:
        for step in range(5):
            await asyncio.sleep(0.02)
            steps.append(step)
        return "done"

    async def owner() -> str:
        return await complete_despite_cancellation(work())

    task = asyncio.ensure_future(owner())
    for _ in range(4):  # what anyio's shield alone does not survive
        await asyncio.sleep(0.015)
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == [0, 1, 2, 3, 4]


async def test_without_cancellation_the_result_comes_back() -> None:
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await complete_despite_cancellation(work()) == 7


async def test_the_works_own_error_is_raised() -> None:
    async def work() -> None:
        await asyncio.sleep(0)
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await complete_despite_cancellation(work())


async def test_an_anyio_cancel_scope_waits_for_the_work_without_spinning() -> None:
    steps: list[int] = []

    async def work() -> None:
        for step in range(3):
            await asyncio.sleep(0.02)
            steps.append(step)

    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await asyncio.sleep(1)
        finally:
            await complete_despite_cancellation(work())
    assert steps == [0, 1, 2]
    assert scope.cancelled_caught
