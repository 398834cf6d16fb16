"""The launcher's own logic, with a stand-in session: bounds, error results, walking away.

The stand-in replaces only what the launcher's iterations call on a session
(``new_run``, ``start_soon``) and on a run (``start``, ``park``, ``finish``,
``exception``); what a real server does is tested in tests/integration/core.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, cast

import anyio
import anyio.abc
import pytest

from asyncpod import Launcher, Outcome, PodResult, PodSpec
from asyncpod.core.cluster import Cluster
from asyncpod.errors import AsyncpodError, OptionError, SpecError


class Gate:
    """An ``asyncio.Event`` that also decides the fake runs parked on it when set."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.parked: list[FakeRun] = []
        self.arrived = asyncio.Event()
        """Set each time a run parks on the gate."""

    def set(self) -> None:
        self._event.set()
        parked, self.parked = self.parked, []
        for run in parked:
            run.decide()

    def is_set(self) -> bool:
        return self._event.is_set()


@dataclass
class Creating:
    """Runs in ``start()`` (their pods being created): now, and at most."""

    seconds: float = 0.0
    """How long a create takes."""
    now: int = 0
    peak: int = 0


@dataclass(frozen=True)
class FakeClient:
    max_requests: int = 64


class FakeRun:
    """What the launcher's carriers use of a PodRun: start, park, finish."""

    def __init__(
        self,
        name: str,
        spec: PodSpec,
        finish: Gate,
        behaviour: str,
        slow: Gate,
        creating: Creating,
    ) -> None:
        self.name = name
        self._creating = creating
        self.uid = "uid"
        self.pod = None
        self.spec = spec
        self.reattached = False
        self._gate = slow if behaviour == "slow" else finish
        self._behaviour = behaviour
        self._on_decided: Callable[[FakeRun], None] | None = None
        self._decided = False
        self._error: AsyncpodError | None = None
        self.cancelled = False
        self.outcome: Outcome | None = None
        self._cancel_requested = False
        self._finished = asyncio.Event()

    async def start(self) -> bool:
        self._creating.now += 1
        self._creating.peak = max(self._creating.peak, self._creating.now)
        try:
            await asyncio.sleep(self._creating.seconds)  # the create's request
        finally:
            self._creating.now -= 1
        return True

    def park(self, on_decided: Callable[[FakeRun], None]) -> None:
        self._on_decided = on_decided
        if self._gate.is_set() or self._cancel_requested:
            self.decide()
        else:
            self._gate.parked.append(self)
            self._gate.arrived.set()

    def decide(self) -> None:
        on_decided, self._on_decided = self._on_decided, None
        if on_decided is not None:
            self._decided = True
            on_decided(self)

    async def cancel(self) -> None:
        """As PodRun.cancel of a parked run: decided at once, waits for its wind-up."""
        self._cancel_requested = True
        if self in self._gate.parked:
            self._gate.parked.remove(self)
        self.decide()
        await self._finished.wait()

    async def finish(self) -> PodResult | None:
        try:
            return self._finish()
        finally:
            self._finished.set()

    def _finish(self) -> PodResult | None:
        if not self._decided or self._cancel_requested:  # wound up before its end
            self.cancelled = True
            self.outcome = Outcome.CANCELLED
            return PodResult("ns", self.name, "uid", outcome=Outcome.CANCELLED)
        if self._behaviour == "bug":  # as PodRun keeps a bug of its own: an error
            self.outcome = Outcome.ERROR
            self._error = AsyncpodError("run failed unexpectedly: KeyError: 'a bug'")
            return None
        self.outcome = Outcome.FAILED if self._behaviour == "fail" else Outcome.SUCCEEDED
        return PodResult("ns", self.name, "uid", outcome=self.outcome, task_key=self.spec.task_key)

    def exception(self) -> AsyncpodError | None:
        return self._error


class FakeCluster:
    """Just what Launcher uses of a Cluster."""

    def __init__(
        self, behaviour: Callable[[PodSpec], str] = lambda _spec: "ok", max_requests: int = 64
    ) -> None:
        self.namespace = "ns"
        self.finish = Gate()
        self.slow = Gate()
        self.runs: list[FakeRun] = []
        self.peak_alive = 0
        self.client = FakeClient(max_requests)
        self.creating = Creating()
        self.launcher: Launcher | None = None
        self.made_after_stop = 0
        self._behaviour = behaviour
        self._group: anyio.abc.TaskGroup | None = None

    def new_run(self, spec: PodSpec, **_: Any) -> FakeRun:
        if self._behaviour(spec) == "invalid":
            raise SpecError("image", "is required")
        behaviour = self._behaviour(spec)
        run = FakeRun(
            f"pod-{len(self.runs)}", spec, self.finish, behaviour, self.slow, self.creating
        )
        self.runs.append(run)
        if self.launcher is not None and self.launcher.stopped is not None:
            self.made_after_stop += 1
        alive = sum(1 for r in self.runs if not self.finish.is_set() and not r.cancelled)
        self.peak_alive = max(self.peak_alive, alive)
        return run

    def start_soon(self, function: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        assert self._group is not None
        self._group.start_soon(function)


async def session(fake: FakeCluster) -> AsyncIterator[Cluster]:
    async with anyio.create_task_group() as group:
        fake._group = group
        yield cast(Cluster, fake)
        group.cancel_scope.cancel()


def specs(count: int | None) -> Iterator[PodSpec]:
    numbers = itertools.count() if count is None else range(count)
    return (PodSpec("busybox", task_key=f"t{i}") for i in numbers)


async def test_a_million_lazy_specs_make_tasks_in_proportion_to_in_flight_not_to_input() -> None:
    fake = FakeCluster()
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=100, run_id="r")
        results = launcher.as_completed(specs(1_000_000))
        consumer = asyncio.ensure_future(anext(results))
        await asyncio.sleep(0.2)  # the pipeline fills up to its bound and waits
        assert launcher.statistics().in_flight == 100
        tasks = len(asyncio.all_tasks())
        # the pipeline, this test and the consumer (+ pytest's own): the 100 runs in
        # flight wait on their pods without a task each
        assert tasks <= 10, tasks
        assert len(fake.runs) == 100  # the generator was read 100 (+ a few) specs far
        fake.finish.set()
        first = await consumer
        assert first.ok
        await results.aclose()
        group.cancel_scope.cancel()


async def test_a_run_that_raises_a_bug_becomes_an_error_result_and_the_batch_goes_on() -> None:
    fake = FakeCluster(lambda spec: "bug" if spec.task_key == "t1" else "ok")
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=2, run_id="r")
        fake.finish.set()
        results = [r async for r in launcher.as_completed(specs(4))]
        group.cancel_scope.cancel()
    by_key = {r.task_key or "": r for r in results}
    assert sorted(by_key) == ["t0", "t1", "t2", "t3"]
    assert by_key["t1"].outcome is Outcome.ERROR
    assert "KeyError" in (by_key["t1"].message or "")
    assert launcher.statistics().outcomes == {"succeeded": 3, "error": 1}


async def test_an_invalid_spec_fails_alone() -> None:
    fake = FakeCluster(lambda spec: "invalid" if spec.task_key == "t2" else "ok")
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=3, run_id="r")
        fake.finish.set()
        results = [r async for r in launcher.map(specs(5))]
        group.cancel_scope.cancel()
    assert [r.task_key for r in results] == ["t0", "t1", "t2", "t3", "t4"]  # input order
    assert [r.outcome for r in results].count(Outcome.ERROR) == 1
    assert results[2].outcome is Outcome.ERROR


async def test_the_callers_failing_iterable_is_raised_after_the_runs_it_gave() -> None:
    def broken() -> Iterator[PodSpec]:
        yield PodSpec("busybox", task_key="a")
        raise LookupError("the input file went away")

    fake = FakeCluster()
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=2, run_id="r")
        fake.finish.set()
        seen: list[str | None] = []

        async def consume() -> None:
            async for result in launcher.as_completed(broken()):
                seen.append(result.task_key)

        with pytest.raises(LookupError, match="went away"):
            await consume()
        group.cancel_scope.cancel()
    assert seen == ["a"]


async def test_walking_away_cancels_every_run_in_flight_and_waits_for_them() -> None:
    fake = FakeCluster()
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=5, run_id="r")
        results = launcher.as_completed(specs(50))
        waiter = asyncio.ensure_future(anext(results))
        await asyncio.sleep(0.1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await results.aclose()
        assert len(fake.runs) == 5
        assert all(run.cancelled for run in fake.runs)
        assert launcher.statistics().in_flight == 0
        assert launcher.statistics().outcomes == {"cancelled": 5}
        group.cancel_scope.cancel()


async def test_a_stopped_batch_makes_no_pod_for_the_slots_it_had_already_given_out() -> None:
    fake = FakeCluster(lambda _spec: "fail")
    fake.finish.set()  # every run fails at once
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=10, run_id="r", max_failures=1)
        fake.launcher = launcher
        results = [r async for r in launcher.as_completed(specs(200))]
        group.cancel_scope.cancel()
    assert launcher.stopped is not None
    assert fake.made_after_stop == 0
    assert len(results) == len(fake.runs) < 200
    assert launcher.statistics().in_flight == 0


async def test_no_more_pods_are_created_at_once_than_the_client_sends_requests() -> None:
    fake = FakeCluster(max_requests=3)
    fake.creating.seconds = 0.005
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=100, run_id="r")

        async def collect() -> list[PodResult]:
            return [r async for r in launcher.as_completed(specs(100))]

        collecting = asyncio.ensure_future(collect())
        while len(fake.finish.parked) < 100:  # every pod made, its run parked
            fake.finish.arrived.clear()
            await fake.finish.arrived.wait()
        fake.finish.set()
        results = await collecting
        group.cancel_scope.cancel()
    assert sorted(r.task_key or "" for r in results) == sorted(f"t{i}" for i in range(100))
    assert fake.creating.peak == 3  # the bound, reached


async def test_skipped_task_keys_are_not_run() -> None:
    fake = FakeCluster()
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=2, run_id="r")
        fake.finish.set()
        results = [r async for r in launcher.as_completed(specs(4), skip_task_keys={"t0", "t3"})]
        group.cancel_scope.cancel()
    assert sorted(r.task_key or "" for r in results) == ["t1", "t2"]
    assert launcher.statistics().in_flight == 0


def test_max_in_flight_below_one_is_a_usage_error() -> None:
    with pytest.raises(OptionError, match="max_in_flight"):
        Launcher(cast(Cluster, FakeCluster()), max_in_flight=0)


async def test_map_starts_nothing_further_than_max_in_flight_ahead_of_a_slow_first_task() -> None:
    fake = FakeCluster(lambda spec: "slow" if spec.task_key == "t0" else "ok")
    fake.finish.set()  # every task but t0 finishes at once
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=10, run_id="r")
        results = launcher.map(specs(1_000))
        first = asyncio.ensure_future(anext(results))
        await asyncio.sleep(0.2)  # everything that may start has started and finished
        # t0 holds the line: t1..t9 finished and wait for it, t10 and later wait to start.
        assert len(fake.runs) == 10
        assert not first.done()
        fake.slow.set()
        assert (await first).task_key == "t0"
        rest = [r.task_key async for r in results]
        group.cancel_scope.cancel()
    assert rest == [f"t{i}" for i in range(1, 1_000)]


async def test_map_moves_past_skipped_task_keys() -> None:
    fake = FakeCluster()
    fake.finish.set()
    async with anyio.create_task_group() as group:
        fake._group = group
        launcher = Launcher(cast(Cluster, fake), max_in_flight=2, run_id="r")
        skip = {f"t{i}" for i in range(0, 50, 2)}
        keys = [r.task_key async for r in launcher.map(specs(50), skip_task_keys=skip)]
        group.cancel_scope.cancel()
    assert keys == [f"t{i}" for i in range(1, 50, 2)]
