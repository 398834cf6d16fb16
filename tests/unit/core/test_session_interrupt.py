"""An interrupt (SystemExit, KeyboardInterrupt) that lands in the session's supervisor
task must leave the event loop, even in a session nobody closes.

A ``signal.signal`` handler that calls ``sys.exit()`` raises wherever the loop happens
to be. Landing in the supervisor (the host of the session's task group), anyio hands
it on inside an exception group, which asyncio does not treat as an interrupt: the
supervisor task just ended, nobody awaited it, and ``asyncio.run`` never returned
(seen ~1 run in 30 under load; a dump showed only ``main()`` left, asleep). No server
is needed: the fault is injected where the signal lands.
"""

from __future__ import annotations

import asyncio

import pytest

from asyncpod.core.cluster import Cluster
from asyncpod.kube.client import KubeClient
from asyncpod.kube.config import ClusterConfig


class _SignalLandsHere:
    """Stands in for the supervisor's stop event: the interrupt arrives while it waits."""

    def __init__(self, interrupt: BaseException) -> None:
        self._interrupt = interrupt

    def set(self) -> None:
        pass

    async def wait(self) -> None:
        await asyncio.sleep(0)
        raise self._interrupt


@pytest.mark.parametrize("interrupt", [SystemExit(3), KeyboardInterrupt()])
def test_an_interrupt_in_the_supervisor_of_a_never_closed_session_ends_the_program(
    interrupt: BaseException,
) -> None:
    reached_the_end = False

    async def program() -> None:
        nonlocal reached_the_end
        client = KubeClient(ClusterConfig("https://127.0.0.1:9"))
        cluster = Cluster(client, namespace="ns")
        cluster._stopping = _SignalLandsHere(interrupt)  # type: ignore[assignment]
        await cluster.__aenter__()  # entered, never closed
        await asyncio.sleep(2)  # without the fix: the interrupt is lost, this returns
        reached_the_end = True

    with pytest.raises(type(interrupt)):
        asyncio.run(program())
    assert not reached_the_end
