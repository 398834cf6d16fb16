"""One iteration of a launcher (``as_completed``, ``map``, ``attempts``): its tasks carried.

Why a module of its own: the launcher (:mod:`asyncpod.core.scheduler`) keeps the
books (slots, outcomes, the stop) and one iteration's tasks are carried here: read
from the input once a slot is free, created, parked while their pods run, wound up,
retried or concluded. A run in flight has no task of its own: a *carrier* task exists
while its pod is created and while it is wound up, and in between the run waits on
its pod without one (:meth:`asyncpod.core.runner.PodRun.park`), so a run costs its own
state, not a task's frames, cancel scope and handle. The decisions are elsewhere and
pure (a run's: :mod:`asyncpod.core.policy`; a retry's: :mod:`asyncpod.core.failurepolicy`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import random
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from asyncpod.core.attempts import Attempt, StoppedError, TaskHistory
from asyncpod.core.failurepolicy import (
    FailureAction,
    FailurePolicy,
    backoff_delay,
    decide,
    with_disruption,
)
from asyncpod.core.flag import Flag
from asyncpod.core.runner import Cleanup, PodRun, RunOptions
from asyncpod.core.shielding import complete_despite_cancellation
from asyncpod.errors import AsyncpodError
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import PodSpec

if TYPE_CHECKING:
    from asyncpod.core.scheduler import Launcher

__all__ = ["NO_RETRY", "Pipeline", "Window"]

NO_RETRY = FailurePolicy.never()
"""The policy of a launcher made without one: no attempt is retried."""

logger = logging.getLogger("asyncpod.launcher")


@dataclass(slots=True)
class _Task:
    """One task of an iteration between its attempts: where it stands."""

    index: int
    """The task's position in the input."""
    spec: PodSpec
    key: str
    policy: FailurePolicy
    attempt: int
    """The attempt being made (or about to be)."""
    spent: int
    """Attempts that count against the policy's limit so far."""
    resumed: bool = False
    """An earlier process started it (a resumed batch's history)."""


class Pipeline:
    """The tasks of one ``as_completed``/``map`` iteration, and the feeder that starts them.

    A task has a task of its own only while something is being done for it: a
    *carrier* (:meth:`_carry`) creates its pod, then the run waits on the pod without
    a task (:meth:`PodRun.park`: the informer's pushes and a timer decide its end);
    once that end is decided a new carrier winds the run up (the pod deleted), sends
    the attempt and, for a retry, waits out the backoff and starts the next pod. So a
    run in flight costs its own state, not a task's frames, scope and handle.
    """

    def __init__(
        self,
        launcher: Launcher,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        skip_task_keys: Collection[str],
        results: MemoryObjectSendStream[tuple[int, Attempt]],
        window: Window | None,
        history: Mapping[str, TaskHistory],
        policies: Mapping[str, FailurePolicy],
    ) -> None:
        self._launcher = launcher
        self._history = history
        self._policies = policies
        self._window = window
        self._specs = specs
        self._skip = skip_task_keys
        self._results = results
        # Kept logs: the runs keep their pods (cleanup KEEP) for the carrier, which
        # keeps the log and then deletes the pod as the caller's options say.
        self._keep_options: RunOptions | None = None
        self._run_options: RunOptions | None = None
        if launcher.keep_logs is not None:
            options = launcher.options or launcher.cluster.options
            self._keep_options = options
            self._run_options = dataclasses.replace(options, cleanup=Cleanup.KEEP)
        # At most max_in_flight tasks between their first attempt and their final
        # one, whether an attempt runs or a retry waits out its backoff.
        self._tasks = anyio.Semaphore(launcher.max_in_flight)
        # At most as many pods being created as the client sends requests at once: a
        # task waiting to create is the feeder's next spec, not a carrier, its request
        # and its body waiting in the client (5,000 of them at a batch's start).
        self._creating = anyio.Semaphore(launcher.cluster.client.max_requests)
        self._active = 0
        self._fed = False
        self._drained = anyio.Event()
        self._parked: dict[PodRun, _Task] = {}  # runs waiting on their pods, no task
        # One bound method for every parked run (dropped at the end: it holds self).
        self._on_decided: Callable[[PodRun], None] = self._decided
        # Decided runs, for the dispatcher to start their carriers: a decision may come
        # from a timer, where no task runs to start one from.
        self._decided_runs: collections.deque[PodRun] = collections.deque()
        self._decisions = Flag()
        self._dispatcher_scope = anyio.CancelScope()
        self._accepting = True
        self._feeder_scope = anyio.CancelScope()
        self._carrier_scopes: set[anyio.CancelScope] = set()
        self._stopping = False
        self._done = anyio.Event()
        self.feeder_error: BaseException | None = None

    async def run(self) -> None:
        try:
            try:
                async with self._results, anyio.create_task_group() as group:
                    group.start_soon(self._dispatch, group)
                    with self._feeder_scope:
                        await self._feed(group)
                    self._fed = True
                    if self._active == 0:
                        self._drained.set()
                    await self._drained.wait()
                    self._accepting = False  # no carrier starts after this
                    self._dispatcher_scope.cancel()
            finally:
                self._accepting = False
                if self._parked:
                    # Stopped or cancelled: the runs still waiting on their pods are
                    # cancelled, their pods deleted (nobody reads their results).
                    await complete_despite_cancellation(self._abandon())
        finally:
            self._on_decided = _ignore  # was a bound method of self: a reference cycle
            self._done.set()

    async def stop(self) -> None:
        """Cancel the feeder and each carrier through its own scope, wind up the
        parked runs, and wait for all that.

        Not through the task group's scope: a task that ends cancelled leaves a
        reference cycle in anyio's task-done callback (the CancelledError's traceback
        holds the frame that holds the error), and with it the whole run's state as
        garbage only a full GC pass frees (tests/integration/core/test_garbage.py). A
        carrier whose own scope is cancelled absorbs it and returns.
        """
        self._stopping = True
        self._accepting = False  # runs decided from now on are left to _abandon
        self._dispatcher_scope.cancel()
        self._feeder_scope.cancel()
        for scope in list(self._carrier_scopes):
            scope.cancel()
        self._drained.set()
        await self._done.wait()

    def stop_feeding(self) -> None:
        """No more tasks started (the launcher stopped); those started go on."""
        self._feeder_scope.cancel()

    async def _feed(self, group: anyio.abc.TaskGroup) -> None:
        """Start a carrier for each task, once a slot is free for its first pod."""
        launcher = self._launcher
        try:
            async for index, spec in _enumerate(self._specs):
                if self._window is not None:
                    await self._window.admit(index)
                key = spec.task_key or str(index)
                if key in self._skip:
                    if self._window is not None:
                        self._window.skip(index)  # no result will come for it
                    continue
                history = self._history.get(key)
                policy = self._policies.get(key) or launcher.retry or NO_RETRY
                task = _Task(
                    index,
                    spec,
                    key,
                    policy,
                    attempt=history.next_attempt if history is not None else 1,
                    spent=history.spent if history is not None else 0,
                    resumed=history is not None,
                )
                await self._tasks.acquire()
                try:
                    await self._take_places()
                except BaseException:
                    self._tasks.release()
                    raise
                # Nothing awaited from the slot to the carrier: the slot and the
                # permit to create are its.
                self._active += 1
                group.start_soon(self._carrier, task, None)
        except StoppedError:
            if history is not None:  # a task an earlier process started: say why not now
                stopped = launcher._stopped_attempt(spec, index, key, task.attempt)
                with contextlib.suppress(anyio.BrokenResourceError):
                    await self._results.send((index, stopped))
        except Exception as error:  # noqa: BLE001 - the caller's iterable failed; re-raised to them
            self.feeder_error = error

    def _decided(self, run: PodRun) -> None:
        """A parked run's end is decided: the dispatcher starts a carrier to wind it up.
        Called in the informer's task, a timer or a canceller; never raises nor waits."""
        if self._accepting:  # else stopping: _abandon winds it up
            self._decided_runs.append(run)
            self._decisions.set()

    async def _dispatch(self, group: anyio.abc.TaskGroup) -> None:
        """Start a carrier for each decided run, until the iteration ends."""
        with self._dispatcher_scope:
            while True:
                self._decisions.clear()
                while self._decided_runs:
                    run = self._decided_runs.popleft()
                    # Still parked until its carrier runs: a carrier cancelled before
                    # its first step (every task cancelled at once) leaves it to _abandon.
                    group.start_soon(self._carrier, self._parked[run], run)
                await self._decisions.wait()

    async def _carrier(self, task: _Task, decided: PodRun | None) -> None:
        """:meth:`_carry` in a scope of its own, which :meth:`stop` cancels."""
        if decided is not None:
            del self._parked[decided]  # this carrier winds it up, whatever cancels it
        with anyio.CancelScope() as scope:
            self._carrier_scopes.add(scope)
            if self._stopping:
                scope.cancel()
            try:
                await self._carry(task, decided)
            except anyio.BrokenResourceError:
                return  # the consumer has gone; stop() is on its way
            finally:
                self._carrier_scopes.discard(scope)

    async def _carry(self, task: _Task, decided: PodRun | None) -> None:
        """Carry ``task`` until its run waits on its pod without a task, or it ends.

        From ``decided`` (a run whose end is decided: wound up first) or, when None,
        from the start of its next attempt in the slot the caller took.
        """
        run = decided
        kept: tuple[Path | None, str | None] = (None, None)
        while True:
            if run is None:
                try:
                    started = await self._start(task)
                except StoppedError:
                    if task.resumed or task.attempt > 1:  # say why it goes no further
                        stopped = self._launcher._stopped_attempt(
                            task.spec, task.index, task.key, task.attempt
                        )
                        await self._results.send((task.index, stopped))
                    self._task_ended()
                    return
                if started is None:
                    return  # parked: a carrier comes back once its end is decided
                if isinstance(started, PodResult):  # no run could be made
                    result, kept = started, (None, None)
                else:
                    run = started
            if run is not None:
                result, kept = await self._end(task, run)
                run = None
            if not await self._conclude(task, result, kept):
                return

    async def _start(self, task: _Task) -> PodRun | PodResult | None:
        """Start ``task``'s attempt in the slot the caller took.

        None once its run waits on its pod (parked). Else what to conclude now: the
        run, if its start ended it (refused, failed, cancelled), or the error result
        when no run could be made. StoppedError (the slot given back) when the
        launcher stopped since the slot was taken: no pod is made after a stop.
        Entered holding a permit to create (``_creating``), which it gives back.
        """
        try:
            return await self._create(task)
        finally:
            self._creating.release()

    async def _create(self, task: _Task) -> PodRun | PodResult | None:
        launcher = self._launcher
        if launcher._stopped is not None:
            # Stopped between the feeder's slot and this carrier's first step: no pod.
            launcher._slots.release()
            raise StoppedError
        try:
            run = launcher._make_run(
                task.spec,
                task_key=task.key,
                attempt=task.attempt,
                options=self._run_options,
                record_changes=False,  # nobody but the carriers sees the run
                ended_by_caller=True,
            )
        except Exception as error:  # one error result, not a stuck batch
            if not isinstance(error, AsyncpodError):
                logger.exception("run of task %s failed unexpectedly", task.key)
            launcher._outcomes[Outcome.ERROR.value] += 1  # never started: no books
            return _error_result(launcher.namespace, task.spec, task.index, error)
        try:
            following = await run.start()
        except BaseException:
            await self._end(task, run)  # cancelled while creating: what it made deleted
            raise
        if not following:
            return run
        self._parked[run] = task
        run.park(self._on_decided)
        return None

    async def _end(
        self, task: _Task, run: PodRun
    ) -> tuple[PodResult, tuple[Path | None, str | None]]:
        """Wind ``run`` up (its log kept, its pod deleted as the options say): the
        attempt's result. Completes even if the calling task is cancelled."""
        launcher = self._launcher
        result: PodResult | None = None
        kept: tuple[Path | None, str | None] = (None, None)
        try:
            try:
                finished = await run.finish()
            finally:
                launcher._run_ended(run)  # the books, and the slot freed
            if finished is None:
                failure = run.exception()
                assert failure is not None
                # Read, not raised: raised here, the error's traceback would gain this
                # frame, which holds the run that holds the error (a reference cycle).
                result = _error_result(
                    launcher.namespace, task.spec, task.index, failure, name=run.name
                )
            elif finished.outcome is Outcome.DELETED:  # which disruption, if any
                result = with_disruption(finished, run.pod)
            else:
                result = finished
        finally:
            if self._keep_options is not None:
                # The run kept its pod for us: keep its log, then delete it as the
                # caller's cleanup says, even if this task is being cancelled.
                kept = await complete_despite_cancellation(
                    launcher._keep_and_clean(
                        run, result, self._keep_options, task.key, task.attempt
                    )
                )
        return result, kept

    async def _conclude(
        self, task: _Task, result: PodResult, kept: tuple[Path | None, str | None]
    ) -> bool:
        """Send the attempt; whether the task goes on: a retry, its backoff waited out
        and the slot of its next pod taken."""
        launcher = self._launcher
        if result.outcome is not Outcome.CANCELLED:
            task.spent += 1
        decision = decide(task.policy, result, attempts=task.spent)
        retry = decision.retry and launcher._stopped is None
        delay = None
        if retry:
            jitter = random.random()  # noqa: S311 - a spread of delays, not a secret
            delay = backoff_delay(task.policy, task.spent, random=jitter)
        why = decision.why if decision.action is not None else None
        if decision.retry and not retry:
            why = f"{why}; not retried: the batch stopped ({launcher._stopped})"
        if not retry and result.outcome is Outcome.CANCELLED and launcher._stopped is not None:
            result = dataclasses.replace(
                result, message=f"cancelled: the batch stopped ({launcher._stopped})"
            )
        made = Attempt(
            result,
            task.key,
            task.index,
            task.attempt,
            final=not retry,
            decision=why,
            retry_in=delay,
            log=kept[0],
            log_missing=kept[1],
        )
        await self._results.send((task.index, made))
        if not retry:
            self._task_ended()
            if not result.ok and result.outcome is not Outcome.CANCELLED:
                launcher._final_failures += 1
                if decision.action is FailureAction.STOP:
                    await launcher.stop(f"task {task.key}: {decision.why}")
                elif launcher.max_failures and launcher._final_failures >= launcher.max_failures:
                    failed, limit = launcher._final_failures, launcher.max_failures
                    await launcher.stop(f"{failed} tasks failed (max_failures={limit})")
            return False
        assert delay is not None
        with anyio.move_on_after(delay):
            await launcher._stop_event.wait()
        task.attempt += 1
        launcher._retried += 1
        try:
            await self._take_places()
        except StoppedError:
            stopped = launcher._stopped_attempt(task.spec, task.index, task.key, task.attempt)
            await self._results.send((task.index, stopped))
            self._task_ended()
            return False
        return True

    async def _take_places(self) -> None:
        """A permit to create, then a slot for the pod (StoppedError once the launcher
        stopped): both the next attempt's, or neither."""
        await self._creating.acquire()
        try:
            await self._launcher._take_slot()
        except BaseException:
            self._creating.release()
            raise

    def _task_ended(self) -> None:
        """A task sent its final attempt: its place is free, and the last one drains."""
        self._active -= 1
        self._tasks.release()
        if self._fed and self._active == 0:
            self._drained.set()

    async def _abandon(self) -> None:
        """Wind up the runs left waiting on their pods: each cancelled, its pod deleted."""
        parked, self._parked = self._parked, {}
        async with anyio.create_task_group() as group:
            for run, task in parked.items():
                group.start_soon(self._end, task, run)


class Window:
    """How far ahead of the next result ``map()`` yields new specs may start.

    ``next_index`` is the input position ``map()`` yields next. The feeder waits in
    :meth:`admit` while a spec is ``size`` or more ahead of it, so at most ``size``
    finished results (and as many skipped positions) wait for a slow earlier one.
    Skipped specs (``skip_task_keys``) produce no result: :meth:`skip` records them so
    ``next_index`` moves past them.
    """

    __slots__ = ("_moved", "_skipped", "next_index", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.next_index = 0
        self._skipped: set[int] = set()
        self._moved = anyio.Event()

    async def admit(self, index: int) -> None:
        while index >= self.next_index + self.size:
            await self._moved.wait()

    def skip(self, index: int) -> None:
        self._skipped.add(index)
        self._catch_up()

    def advance(self) -> None:
        self.next_index += 1
        self._catch_up()

    def _catch_up(self) -> None:
        while self.next_index in self._skipped:
            self._skipped.discard(self.next_index)
            self.next_index += 1
        self._moved.set()
        self._moved = anyio.Event()


def _ignore(_run: PodRun) -> None:
    """What a finished iteration does with a decision: nothing (none can come)."""


async def _enumerate(
    specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
) -> AsyncIterator[tuple[int, PodSpec]]:
    if isinstance(specs, AsyncIterable):
        index = 0
        async for spec in specs:
            yield index, spec
            index += 1
    else:
        for index, spec in enumerate(specs):
            yield index, spec


def _error_result(
    namespace: str,
    spec: PodSpec,
    index: int,
    error: BaseException,
    *,
    name: str | None = None,
) -> PodResult:
    return PodResult(
        namespace,
        name or spec.name or "",
        None,
        outcome=Outcome.ERROR,
        reason=Reason.CREATE_FAILED,
        message=f"{type(error).__name__}: {error}",
        task_key=spec.task_key or str(index),
    )
