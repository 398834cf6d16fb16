"""A run that waits on its pod without a task (``PodRun.start/park/finish``), no server.

What a launcher's run does between its create and its cleanup: each change the
informer pushes is judged at once, a limit fires by a loop timer, a cancel or the
informer's failure ends it, and ``on_decided`` is called exactly once. The run attaches
to a pod its subscription already has (no read) and keeps it (cleanup KEEP, no events),
so nothing here talks to a server: the informer is a real one that is not running, and
the changes are pushed to its subscription as its watch would push them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, cast

import anyio
import pytest

from asyncpod import metrics, traces
from asyncpod.core.informer import PodChange, PodInformer, PodSubscription
from asyncpod.core.policy import Cleanup, RunOptions
from asyncpod.core.runner import PodRun
from asyncpod.errors import ForbiddenError
from asyncpod.kube.client import KubeClient
from asyncpod.results import Outcome, Reason
from tests.unit.core.test_policy import pod


class _Statistics:
    connection_errors = 0


class _Client:
    """What a run uses of its client when it makes no request: the off switches and
    the count of connection errors (none)."""

    metrics = metrics.OFF
    traces = traces.OFF

    def statistics(self) -> _Statistics:
        return _Statistics()


def _now_pod(phase: str = "Pending", **kwargs: Any) -> dict[str, Any]:
    made = pod(phase, created=datetime.now(timezone.utc), **kwargs)
    made["metadata"].update(namespace="ns", resourceVersion="1")
    return made


class _Decisions(list[PodRun]):
    """The ``on_decided`` of a parked run: each call kept, and an event set."""

    def __init__(self) -> None:
        super().__init__()
        self.made = asyncio.Event()

    def __call__(self, run: PodRun) -> None:
        self.append(run)
        self.made.set()


async def _attached(options: RunOptions) -> tuple[PodRun, PodSubscription]:
    """A run attached to pod ``p`` (pending, already seen by its subscription), started."""
    informer = PodInformer(cast(KubeClient, _Client()), "ns", label_selector="x", buffer=8)
    subscription = informer.subscribe("p")
    subscription._push(PodChange("ADDED", _now_pod()))
    run = PodRun(
        client=cast(KubeClient, _Client()),
        informer=informer,
        namespace="ns",
        spec=None,
        options=options,
        spawn=lambda *_: None,  # type: ignore[arg-type]
        name="p",
        subscription=subscription,
        record_changes=False,
    )
    assert await run.start()
    return run, subscription


async def _parked(options: RunOptions) -> tuple[PodRun, _Decisions]:
    """A run attached to pod ``p`` (pending, already seen by its subscription), parked."""
    run, _ = await _attached(options)
    decided = _Decisions()
    run.park(decided)
    return run, decided


KEEP = RunOptions(cleanup=Cleanup.KEEP, collect_events=False)


async def test_a_pushed_terminal_pod_decides_the_run_once_and_finish_gives_its_result() -> None:
    run, decided = await _parked(KEEP)
    assert decided == []
    assert not run.decided
    subscription = run._start.subscription
    assert subscription is not None
    subscription._push(PodChange("MODIFIED", _now_pod("Running", node="n")))
    assert decided == []
    finished = _now_pod("Succeeded", node="n", terminated=0)
    finished["metadata"]["resourceVersion"] = "3"
    subscription._push(PodChange("MODIFIED", finished))
    assert decided == [run]
    subscription._push(PodChange("DELETED", finished))  # heard by nobody now
    assert decided == [run]
    result = await run.finish()
    assert result is not None
    assert result.outcome is Outcome.SUCCEEDED
    assert run.done()


async def test_a_pod_deleted_by_somebody_else_ends_the_run_deleted() -> None:
    run, decided = await _parked(KEEP)
    subscription = run._start.subscription
    assert subscription is not None
    subscription._push(PodChange("DELETED", _now_pod("Running", node="n")))
    assert decided == [run]
    result = await run.finish()
    assert result is not None
    assert result.outcome is Outcome.DELETED


async def test_a_limit_is_decided_by_the_timer_even_after_a_timer_that_fired_early() -> None:
    # The clock of an attached pod starts at its creationTimestamp (whole seconds).
    options = RunOptions(cleanup=Cleanup.KEEP, collect_events=False, schedule_timeout=2.5)
    run, decided = await _parked(options)
    # The loop runs a timer a hair early (its clock resolution): judge says "not yet",
    # and the handle it ran is spent. The run must arm a new one, not keep that one.
    timer = run._timer
    assert timer is not None
    timer.cancel()  # spent, as a handle the loop has run
    run._on_timer()
    assert decided == []
    with anyio.fail_after(10):
        await decided.made.wait()
    result = await run.finish()
    assert result is not None
    assert result.outcome is Outcome.TIMED_OUT
    assert result.reason == Reason.SCHEDULE_TIMEOUT


async def test_cancel_decides_a_parked_run_and_waits_for_its_finish() -> None:
    run, decided = await _parked(KEEP)
    cancelling = asyncio.create_task(run.cancel())
    await asyncio.sleep(0.01)
    assert decided == [run]
    assert not cancelling.done()  # until the run is wound up
    result = await run.finish()
    assert result is not None
    assert result.outcome is Outcome.CANCELLED
    assert await asyncio.wait_for(cancelling, 5) == result


async def test_the_informers_failure_ends_the_run_with_that_error() -> None:
    run, decided = await _parked(KEEP)
    subscription = run._start.subscription
    assert subscription is not None
    subscription._fail(ForbiddenError("pods is forbidden", status=403, reason="Forbidden"))
    assert decided == [run]
    assert await run.finish() is None
    assert isinstance(run.exception(), ForbiddenError)


async def test_finish_before_a_decision_cancels_the_run() -> None:
    run, decided = await _parked(KEEP)
    result = await run.finish()
    assert decided == []  # wound up by its owner: nobody needs telling
    assert result is not None
    assert result.outcome is Outcome.CANCELLED


def test_a_run_is_started_once() -> None:
    async def twice() -> None:
        run, _ = await _parked(KEEP)
        with pytest.raises(Exception, match="driven once"):
            await run.start()
        await run.finish()

    asyncio.run(twice())


async def test_wait_decided_wakes_the_caller_once_at_the_end() -> None:
    run, subscription = await _attached(KEEP)
    waiting = asyncio.create_task(run.wait_decided())
    await asyncio.sleep(0.01)
    subscription._push(PodChange("MODIFIED", _now_pod("Running", node="n")))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    finished = _now_pod("Failed", node="n", terminated=3)
    finished["metadata"]["resourceVersion"] = "3"
    subscription._push(PodChange("MODIFIED", finished))
    await asyncio.wait_for(waiting, 5)
    result = await run.finish()
    assert result is not None
    assert result.outcome is Outcome.FAILED
