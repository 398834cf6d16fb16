"""One batch over several clusters: a launcher per cluster, one queue, one policy.

Why: a batch larger than one cluster's capacity, or one that must outlive a cluster's
control plane, needs one queue over many clusters. :class:`Fleet` holds a
:class:`~asyncpod.Launcher` per cluster session (:class:`FleetMember`: a name, a
:class:`~asyncpod.Cluster` and a weight); ``max_in_flight`` is split between them by
weight (:func:`asyncpod.core.routing.shares`), and each task goes, when a slot frees,
to the usable cluster with the most free capacity for its share
(:func:`~asyncpod.core.routing.choose`): clusters fill in proportion to their weights,
and one that finishes pods faster gets more of them.

Retries: the fleet, not each launcher, applies the failure policy (its launchers run
with none), so a retried task may run its next attempt on another cluster. Attempt
*n* of a task has the same deterministic pod name wherever it runs, and attempt
numbers grow across clusters: a resumed batch (``history`` and ``pinned``, the
cluster each unfinished attempt's pod lives on) reattaches instead of duplicating.

A lost cluster: each cluster's API server is probed (``GET /version``) every
``probe_interval`` seconds; one that has not answered for ``lost_after`` seconds (by
default its create retry window) is lost for the rest of the batch. It gets no new
pod; its launcher is stopped (its runs cancelled: their deletes are tried within the
delete retry window and may not get through). An attempt it held ends as an error
with reason ``ClusterUnreachable`` (:func:`~asyncpod.core.routing.lost_result`), and
the failure policy decides whether the task runs again elsewhere: **the pod may still
be running on the lost cluster**, so moving it may run the task twice. The default
policy does not move it; a rule ``reason=ClusterUnreachable`` does. Tasks the lost
cluster had been given but had not started go elsewhere (no pod was made). A create
that failed for want of an answer waits for the probe's verdict before it counts.

What it deliberately does not do: bring a lost cluster back during the batch, balance
by anything but free slots and weights (no capacity or quota reading), or make the
sessions (the caller opens and closes each :class:`~asyncpod.Cluster`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from asyncpod.core.cluster import Cluster
from asyncpod.core.failurepolicy import FailureAction, FailurePolicy, backoff_delay, decide
from asyncpod.core.keptlogs import KeepLogs
from asyncpod.core.routing import (
    choose,
    is_lost,
    lost_result,
    never_started,
    shares,
    unanswered_create,
)
from asyncpod.core.runner import RunOptions
from asyncpod.core.scheduler import Attempt, Launcher, LauncherStatistics, TaskHistory
from asyncpod.errors import AsyncpodError, OptionError, UsageError
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import PodSpec

__all__ = ["Fleet", "FleetAttempt", "FleetMember", "FleetStatistics"]

_NO_RETRY = FailurePolicy.never()

logger = logging.getLogger("asyncpod.fleet")


@dataclass(frozen=True, slots=True)
class FleetMember:
    """One cluster of a fleet: its name (in results), its session and its weight."""

    name: str
    cluster: Cluster
    weight: int = 1


@dataclass(frozen=True, slots=True)
class FleetAttempt:
    """One attempt of a task and the cluster that ran it (or was to)."""

    cluster: str
    attempt: Attempt

    @property
    def result(self) -> PodResult:
        return self.attempt.result

    @property
    def task_key(self) -> str:
        return self.attempt.task_key

    @property
    def final(self) -> bool:
        return self.attempt.final


@dataclass(frozen=True, slots=True)
class FleetStatistics:
    run_id: str
    max_in_flight: int
    shares: dict[str, int]
    clusters: dict[str, LauncherStatistics]
    lost: dict[str, str]
    """Lost clusters, and why."""
    stopped: str | None = None
    peak: dict[str, int] = field(default_factory=dict)
    """The most tasks each cluster held at once (never more than its share)."""


class Fleet:
    """Run many specs over several clusters; see the module docstring.

    ``members``: the clusters, each with a unique name and a weight (at least 1).
    ``max_in_flight``: pods alive at once over all of them, split by weight (at least
    one per cluster). ``retry``, ``max_failures``, ``keep_logs``, ``options``,
    ``namespace`` and ``run_id`` mean what they mean for a :class:`~asyncpod.Launcher`.
    ``lost_after``: seconds without an answer after which a cluster is lost (default:
    the options' ``create_retry_window``); ``probe_interval``: seconds between probes.
    A bad value is an :class:`~asyncpod.OptionError` here, before anything is created.
    """

    def __init__(
        self,
        members: Sequence[FleetMember],
        *,
        max_in_flight: int = 100,
        run_id: str | None = None,
        namespace: str | None = None,
        options: RunOptions | None = None,
        retry: FailurePolicy | None = None,
        max_failures: int | None = None,
        keep_logs: KeepLogs | None = None,
        lost_after: float | None = None,
        probe_interval: float = 5.0,
    ) -> None:
        members = list(members)
        if not members:
            raise OptionError("a fleet needs at least one cluster")
        for member in members:
            if not isinstance(member, FleetMember):
                raise OptionError(f"fleet members must be FleetMember, got {member!r}")
            if not member.name:
                raise OptionError("a fleet member needs a name")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise OptionError(f"two fleet members are named {dup!r}")
        if retry is not None and not isinstance(retry, FailurePolicy):
            raise OptionError(f"retry must be a FailurePolicy, got {type(retry).__name__}")
        if max_failures is not None and (isinstance(max_failures, bool) or max_failures < 1):
            raise OptionError(f"max_failures must be at least 1, got {max_failures!r}")
        if not probe_interval > 0:
            raise OptionError(f"probe_interval must be positive, got {probe_interval!r}")
        window = (options or members[0].cluster.options).create_retry_window
        lost_after = window if lost_after is None else lost_after
        if not lost_after > 0:
            raise OptionError(f"lost_after must be positive, got {lost_after!r}")
        self.shares = shares(max_in_flight, {m.name: m.weight for m in members})
        self.members = members
        self.max_in_flight = max_in_flight
        self.run_id = run_id or f"run-{secrets.token_hex(4)}"
        self.retry = retry
        self.max_failures = max_failures
        self.lost_after = float(lost_after)
        self.probe_interval = float(probe_interval)
        self.launchers = {
            m.name: Launcher(
                m.cluster,
                max_in_flight=self.shares[m.name],
                run_id=self.run_id,
                namespace=namespace,
                options=options,
                keep_logs=keep_logs,
            )
            for m in members
        }
        self.lost: dict[str, str] = {}
        self._peak = dict.fromkeys(self.launchers, 0)
        self._stopped: str | None = None
        self._engines: set[_Engine] = set()

    def __repr__(self) -> str:
        return (
            f"<Fleet run_id={self.run_id} shares={self.shares} lost={sorted(self.lost)} "
            f"stopped={self._stopped!r}>"
        )

    @property
    def stopped(self) -> str | None:
        """Why the fleet stopped creating pods (``max_failures``, a stop rule, every
        cluster lost), or None."""
        return self._stopped

    def statistics(self) -> FleetStatistics:
        return FleetStatistics(
            run_id=self.run_id,
            max_in_flight=self.max_in_flight,
            shares=dict(self.shares),
            clusters={name: launcher.statistics() for name, launcher in self.launchers.items()},
            lost=dict(self.lost),
            stopped=self._stopped,
            peak=dict(self._peak),
        )

    async def stop(self, why: str) -> None:
        """Create no more pods on any cluster; cancel the runs in flight (as
        :meth:`Launcher.stop`). Idempotent."""
        if self._stopped is not None:
            return
        self._stopped = why
        logger.warning("fleet %s stops: %s", self.run_id, why)
        for engine in list(self._engines):
            engine.changed()
        async with anyio.create_task_group() as group:
            for launcher in self.launchers.values():
                group.start_soon(launcher.stop, why)

    async def attempts(
        self,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        *,
        skip_task_keys: Collection[str] = (),
        history: Mapping[str, TaskHistory] | None = None,
        policies: Mapping[str, FailurePolicy] | None = None,
        pinned: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[FleetAttempt, None]:
        """Run every spec; yield each attempt, with its cluster, as it ends.

        As :meth:`Launcher.attempts`; ``pinned`` maps task keys to the cluster whose
        pod of the task's next attempt already exists (a resumed batch): the task goes
        there, to be reattached. Close it with ``contextlib.aclosing`` to stop early
        (the runs in flight are cancelled, their pods deleted).
        """
        unknown = set((pinned or {}).values()) - set(self.launchers)
        if unknown:
            raise OptionError(f"pinned to clusters not in the fleet: {sorted(unknown)}")
        send, receive = anyio.create_memory_object_stream[FleetAttempt](self.max_in_flight)
        engine = _Engine(
            self,
            specs,
            skip=skip_task_keys,
            history=history or {},
            policies=policies or {},
            pinned=pinned or {},
            out=send,
        )
        self._engines.add(engine)
        try:
            await self.members[0].cluster.start_task(engine.run)
            async with receive:
                async for item in receive:
                    yield item
            if engine.error is not None:
                raise engine.error
        finally:
            with anyio.CancelScope(shield=True):
                await engine.stop()
            self._engines.discard(engine)

    async def _lose(self, name: str, why: str) -> None:
        if name in self.lost:
            return
        self.lost[name] = why
        logger.warning("fleet %s: cluster %s is lost: %s", self.run_id, name, why)
        for engine in list(self._engines):
            engine.cluster_lost(name)
        if len(self.lost) == len(self.launchers):
            self._stopped = self._stopped or f"every cluster is lost ({why})"
        await self.launchers[name].stop(f"cluster {name} lost: {why}")


@dataclass(slots=True, eq=False)
class _Task:
    index: int
    spec: PodSpec
    key: str
    policy: FailurePolicy
    attempt: int = 1
    """The attempt to run next (or running)."""
    spent: int = 0
    cluster: str | None = None
    """Where the task's current attempt was sent (None: waiting to be routed)."""
    pinned: str | None = None


class _Engine:
    """The router, the launchers' consumers and the probes of one ``attempts`` call."""

    def __init__(
        self,
        fleet: Fleet,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        *,
        skip: Collection[str],
        history: Mapping[str, TaskHistory],
        policies: Mapping[str, FailurePolicy],
        pinned: Mapping[str, str],
        out: MemoryObjectSendStream[FleetAttempt],
    ) -> None:
        self.fleet = fleet
        self.specs = specs
        self.skip = skip
        self.history = history
        self.policies = policies
        self.pinned = pinned
        self.out = out
        self.error: BaseException | None = None
        self.tasks: dict[str, _Task] = {}  # not final yet: O(in flight + waiting retries)
        self.ready: deque[_Task] = deque()  # retries and moves, before new specs
        self.outstanding = dict.fromkeys(fleet.launchers, 0)
        self.live_history = _LiveHistory()  # read by each launcher's carriers
        self.failures = 0
        self.inputs: dict[str, tuple[MemoryObjectSendStream[PodSpec], Any]] = {}
        for name, share in fleet.shares.items():
            self.inputs[name] = anyio.create_memory_object_stream[PodSpec](share)
        self.last_answer = dict.fromkeys(fleet.launchers, time.monotonic())
        self._changed = anyio.Event()
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._group: anyio.abc.TaskGroup | None = None

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        try:
            with self._scope:
                async with self.out, anyio.create_task_group() as probes:
                    for name in self.fleet.launchers:
                        probes.start_soon(self._probe_loop, name)
                    async with anyio.create_task_group() as group:
                        self._group = group
                        for name in self.fleet.launchers:
                            group.start_soon(self._consume, name)
                        try:
                            await self._route()
                        finally:
                            for send, _ in self.inputs.values():
                                send.close()
                    probes.cancel_scope.cancel()
        except Exception as error:  # noqa: BLE001 - handed to the caller of attempts()
            # One error (the input's, a duplicate key) reaches the caller as itself.
            self.error = _sole(error)
        finally:
            self._done.set()

    async def stop(self) -> None:
        self._scope.cancel()
        await self._done.wait()

    def changed(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def cluster_lost(self, name: str) -> None:
        self.inputs[name][0].close()  # no new spec for it
        self.changed()

    # ------------------------------------------------------------------ routing
    async def _route(self) -> None:
        fleet = self.fleet
        pending: _Task | None = None
        exhausted = False
        async with contextlib.aclosing(_enumerate(self.specs)) as source:
            while fleet.stopped is None:
                if pending is None and not exhausted:
                    pending, exhausted = await self._next_task(source)
                routed = self._route_one(pending)
                if routed is pending and routed is not None:
                    pending = None
                if routed is not None:
                    continue
                if exhausted and pending is None and not self.tasks:
                    return
                await self._changed.wait()
        # Stopped: what waits for a route ends, as a launcher's waiting retries do.
        for task in [*self.ready]:
            await self._emit_stopped(task)
        self.ready.clear()

    async def _next_task(
        self, source: AsyncGenerator[tuple[int, PodSpec], None]
    ) -> tuple[_Task | None, bool]:
        async for index, spec in source:
            key = spec.task_key or str(index)
            if key in self.skip:
                continue
            if key in self.tasks:
                raise UsageError(f"task key {key!r} appears twice in the input")
            if spec.task_key is None:
                spec = dataclasses.replace(spec, task_key=key)
            earlier = self.history.get(key)
            task = _Task(
                index,
                spec,
                key,
                self.policies.get(key) or self.fleet.retry or _NO_RETRY,
                attempt=earlier.next_attempt if earlier else 1,
                spent=earlier.spent if earlier else 0,
                pinned=self.pinned.get(key),
            )
            self.tasks[key] = task
            return task, False
        return None, True

    def _route_one(self, pending: _Task | None) -> _Task | None:
        """Send one waiting task to a cluster; the task, or None if none could go."""
        usable = set(self.fleet.launchers) - set(self.fleet.lost)
        free = {n: self.fleet.shares[n] - self.outstanding[n] for n in self.fleet.shares}
        for task in [*self.ready, *([pending] if pending is not None else [])]:
            if task.pinned is not None and task.pinned not in usable:
                task.pinned = None  # its cluster is lost; its pod there is not reattached
            if task.pinned is not None:
                target = task.pinned if free[task.pinned] > 0 else None
            else:
                target = choose(free, self.fleet.shares, usable=usable)
            if target is None:
                continue
            if task in self.ready:
                self.ready.remove(task)
            self._send(task, target)
            return task
        return None

    def _send(self, task: _Task, name: str) -> None:
        task.cluster = name
        task.pinned = None
        self.outstanding[name] += 1
        peak = self.fleet._peak
        peak[name] = max(peak[name], self.outstanding[name])
        if task.attempt > 1 or task.spent:
            self.live_history[task.key] = TaskHistory(task.attempt, task.spent)
        else:
            self.live_history.pop(task.key, None)
        # Never blocks: a cluster's stream holds at most its share, and
        # outstanding <= share.
        self.inputs[name][0].send_nowait(task.spec)

    def _unassign(self, task: _Task) -> None:
        if task.cluster is not None:
            self.outstanding[task.cluster] -= 1
            task.cluster = None
        self.changed()

    # ------------------------------------------------------------------ results
    async def _consume(self, name: str) -> None:
        launcher = self.fleet.launchers[name]
        receive: MemoryObjectReceiveStream[PodSpec] = self.inputs[name][1]
        async with receive:
            attempts = launcher.attempts(receive, history=self.live_history)
            async with contextlib.aclosing(attempts):
                async for attempt in attempts:
                    await self._on_attempt(name, attempt)
            # Stopped (lost, or the fleet stopped): what it was given but never
            # started made no pod; it goes elsewhere (or nowhere, once stopped).
            for task in [t for t in self.tasks.values() if t.cluster == name]:
                self._unassign(task)
                self.ready.append(task)
            with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                while True:
                    receive.receive_nowait()
            self.changed()

    async def _on_attempt(self, name: str, attempt: Attempt) -> None:
        fleet = self.fleet
        task = self.tasks[attempt.task_key]
        result = attempt.result
        if name not in fleet.lost and unanswered_create(result):
            await self._verdict(name)
        if name in fleet.lost:
            if never_started(result):
                self._unassign(task)
                self.ready.append(task)
                return
            result = lost_result(result, cluster=name, window=fleet.lost_after)
        if result.outcome is not Outcome.CANCELLED:
            task.spent += 1
        decision = decide(task.policy, result, attempts=task.spent)
        retry = decision.retry and fleet.stopped is None
        delay = None
        if retry:
            jitter = random.random()  # noqa: S311 - a spread of delays, not a secret
            delay = backoff_delay(task.policy, task.spent, random=jitter)
        why = decision.why if decision.action is not None else None
        if decision.retry and not retry:
            why = f"{why}; not retried: the batch stopped ({fleet.stopped})"
        done = dataclasses.replace(
            attempt,
            result=result,
            index=task.index,
            final=not retry,
            decision=why,
            retry_in=delay,
        )
        self._unassign(task)
        await self.out.send(FleetAttempt(name, done))
        if not retry:
            del self.tasks[task.key]
            self.live_history.pop(task.key, None)
            self.changed()
            if not result.ok and result.outcome is not Outcome.CANCELLED:
                await self._count_failure(task, decision.action, decision.why)
            return
        assert delay is not None
        assert self._group is not None
        task.attempt += 1
        self._group.start_soon(self._after_backoff, task, delay)

    async def _count_failure(self, task: _Task, action: FailureAction | None, why: str) -> None:
        fleet = self.fleet
        self.failures += 1
        if action is FailureAction.STOP:
            await fleet.stop(f"task {task.key}: {why}")
        elif fleet.max_failures and self.failures >= fleet.max_failures:
            await fleet.stop(f"{self.failures} tasks failed (max_failures={fleet.max_failures})")

    async def _after_backoff(self, task: _Task, delay: float) -> None:
        with anyio.move_on_after(delay):
            while self.fleet.stopped is None:
                await self._changed.wait()
        if self.fleet.stopped is not None:
            if task.key in self.tasks:
                await self._emit_stopped(task)
            return
        self.ready.append(task)
        self.changed()

    async def _emit_stopped(self, task: _Task) -> None:
        self.tasks.pop(task.key, None)
        result = PodResult(
            "",
            "",
            None,
            outcome=Outcome.CANCELLED,
            reason=Reason.CANCELLED,
            message=f"not started: the batch stopped ({self.fleet.stopped})",
            task_key=task.key,
        )
        attempt = Attempt(result, task.key, task.index, task.attempt, final=True)
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self.out.send(FleetAttempt(task.cluster or "", attempt))

    # ------------------------------------------------------------------ probes
    async def _probe_loop(self, name: str) -> None:
        fleet = self.fleet
        client = next(m.cluster for m in fleet.members if m.name == name).client
        answers = sum(client.statistics().responses.values())
        while name not in fleet.lost:
            with anyio.move_on_after(fleet.probe_interval):
                try:
                    await client.request(
                        "GET", "/version", timeout=fleet.probe_interval, rate_limited=False
                    )
                    self.last_answer[name] = time.monotonic()
                    self.changed()
                except AsyncpodError:
                    pass
            now = time.monotonic()
            seen = sum(client.statistics().responses.values())
            if seen != answers:  # any answer counts, not only the probe's
                answers = seen
                self.last_answer[name] = now
            if is_lost(last_answer=self.last_answer[name], now=now, window=fleet.lost_after):
                silent = now - self.last_answer[name]
                await fleet._lose(name, f"its API server did not answer for {silent:.0f} s")
                return
            await anyio.sleep(fleet.probe_interval)

    async def _verdict(self, name: str) -> None:
        """Wait until the probes say whether ``name`` answers (an answer after now) or
        is lost: a create that got no answer for its window counts only then."""
        since = time.monotonic()
        while name not in self.fleet.lost and self.last_answer[name] <= since:
            await self._changed.wait()


def _sole(error: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one, else ``error``."""
    while True:
        members = getattr(error, "exceptions", None)  # a (Base)ExceptionGroup
        if not isinstance(members, tuple) or len(members) != 1:
            return error
        error = members[0]


class _LiveHistory(dict[str, TaskHistory]):
    """The history the fleet's launchers read as each task reaches a worker: filled
    by the fleet as it routes a retry or a resumed task. True even when empty (a
    launcher replaces a falsy history with its own empty one)."""

    def __bool__(self) -> bool:
        return True


async def _enumerate(
    specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
) -> AsyncGenerator[tuple[int, PodSpec], None]:
    if isinstance(specs, AsyncIterable):
        index = 0
        async for spec in specs:
            yield index, spec
            index += 1
    else:
        for index, spec in enumerate(specs):
            yield index, spec
