"""The launcher: many pods through one cluster session, a bounded number at a time.

Why: creating 10,000 pods at once overwhelms the API server's priority-and-fairness
seats (429s), the scheduler and the namespace's quota; creating them one by one wastes
hours. The launcher keeps at most ``max_in_flight`` pods alive, starts the next as soon
as one finishes, and reports results in completion order (:meth:`Launcher.as_completed`)
or input order (:meth:`Launcher.map`).

Idempotency and resume: every pod gets the launcher's run id as a label and a
deterministic name from its task key (the spec's ``task_key``, else its position in
the input). After a crash, a new launcher with the same ``run_id`` fed the same input
gets 409 for pods that already exist and reattaches to them: no duplicates. Tasks
whose pods finished *and were deleted* before the crash cannot be known from the
cluster; the CLI keeps a results file for that, and library users can skip keys they
have recorded (``skip_task_keys``).

One bad spec fails alone: its result has outcome ERROR (reason CreateFailed) and the
message of the error; the batch goes on. Stopping the iteration early (or cancelling
the task that iterates) cancels every run in flight, and so deletes their pods.

Retries (``retry=FailurePolicy(...)``, :mod:`asyncpod.core.failurepolicy`): a failed
attempt that a rule says to retry is run again in a new pod after a jittered backoff,
up to the policy's attempts. Attempt *n*'s pod name is deterministic from (run id,
task key, *n*) (``attempt_pod_name``), so a resumed batch that passes each task's
:class:`TaskHistory` reattaches to the attempt that was running instead of making
another. :meth:`Launcher.attempts` yields every attempt (:class:`Attempt`: the result,
its number, whether it is final, which rule decided); :meth:`~Launcher.as_completed`
and :meth:`~Launcher.map` yield final results only. A task waiting out its backoff
holds a task of the pipeline (not a pod slot): at most ``max_in_flight`` tasks are
between attempts or running at once.

Tasks of the event loop: an iteration's run has one only while its pod is created
and while it is wound up (a *carrier*); in between it waits on its pod without one
(:meth:`PodRun.park`), so a run in flight costs its own state, not a task's.

Stopping: ``max_failures=N`` stops the batch once N tasks have finally failed (or a
rule's action is ``stop``): no new pod is created, the runs in flight are cancelled
(their pods deleted) and their results are cancelled ones saying why; tasks never
started get no result. :attr:`Launcher.stopped` says why.

Kept logs (``keep_logs=KeepLogs(dir)``, :mod:`asyncpod.core.keptlogs`): runs are made
with cleanup KEEP, and the launcher reads a finished attempt's logs to disk before it
deletes the pod as the caller's cleanup policy says; a cancelled launcher still
deletes them (in a ``finally`` completed despite cancellation).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Mapping,
)
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from asyncpod.core.cluster import Cluster
from asyncpod.core.failurepolicy import (
    FailureAction,
    FailurePolicy,
    attempt_pod_name,
    backoff_delay,
    decide,
    with_disruption,
)
from asyncpod.core.flag import Flag
from asyncpod.core.keptlogs import KeepLogs, keep_log, log_path, wants_log
from asyncpod.core.policy import should_delete
from asyncpod.core.retrying import until_answered
from asyncpod.core.runner import Cleanup, PodRun, RunOptions
from asyncpod.core.shielding import complete_despite_cancellation
from asyncpod.errors import AsyncpodError, OptionError
from asyncpod.kube.pods import Pods
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import PodSpec

__all__ = ["Attempt", "Launcher", "LauncherStatistics", "TaskHistory"]

ATTEMPT_ANNOTATION = "asyncpod.dev/attempt"
"""The attempt number (1, 2, ...) of a launcher's pod, on the pod."""

_NO_RETRY = FailurePolicy.never()

logger = logging.getLogger("asyncpod.launcher")


@dataclass(frozen=True, slots=True)
class LauncherStatistics:
    run_id: str
    max_in_flight: int
    submitted: int
    in_flight: int
    finished: int
    outcomes: dict[str, int]
    reattached: int
    retried: int = 0
    """Attempts that were retries (the second attempt of a task and later ones)."""
    final_failures: int = 0
    """Tasks that finally did not succeed (cancelled ones aside)."""
    stopped: str | None = None


@dataclass(frozen=True, slots=True)
class TaskHistory:
    """What an earlier process recorded of a task: where a resumed batch goes on.

    ``next_attempt`` is the attempt to run (its pod may exist: it is reattached);
    ``spent`` the attempts that count against the policy's limit so far.
    """

    next_attempt: int = 1
    spent: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a task: its result, and what follows it."""

    result: PodResult
    task_key: str
    index: int
    """The task's position in the input."""
    attempt: int
    """1 for the first pod of the task, 2 for its first retry, ..."""
    final: bool
    """No other attempt follows: ``result`` is the task's."""
    decision: str | None = None
    """Why: the rule that matched (``retry:reason=Evicted matched``), or ``no rule matched``."""
    retry_in: float | None = None
    """Seconds until the next attempt (a retry)."""
    log: Path | None = None
    """The kept log (``keep_logs``)."""
    log_missing: str | None = None
    """Why (part of) the log could not be kept."""


class _StoppedError(AsyncpodError):
    """The batch stopped before this attempt could take a slot."""


class Launcher:
    """Run many specs through ``cluster`` with at most ``max_in_flight`` pods alive.

    ``retry``: the :class:`~asyncpod.FailurePolicy` deciding which failed attempts run
    again (None, the default: none do). ``max_failures``: stop after that many tasks
    finally failed (:meth:`stop`). ``keep_logs``: keep attempts' logs on disk before
    their pods are deleted (:class:`~asyncpod.KeepLogs`). A bad value of any of them
    is an :class:`~asyncpod.OptionError` here, before anything is created.
    """

    def __init__(
        self,
        cluster: Cluster,
        *,
        max_in_flight: int = 100,
        run_id: str | None = None,
        namespace: str | None = None,
        options: RunOptions | None = None,
        retry: FailurePolicy | None = None,
        max_failures: int | None = None,
        keep_logs: KeepLogs | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise OptionError(f"max_in_flight must be at least 1, got {max_in_flight}")
        if retry is not None and not isinstance(retry, FailurePolicy):
            raise OptionError(f"retry must be a FailurePolicy, got {type(retry).__name__}")
        if max_failures is not None and (isinstance(max_failures, bool) or max_failures < 1):
            raise OptionError(f"max_failures must be at least 1, got {max_failures!r}")
        if keep_logs is not None and not isinstance(keep_logs, KeepLogs):
            raise OptionError(f"keep_logs must be a KeepLogs, got {type(keep_logs).__name__}")
        self.cluster = cluster
        self.retry = retry
        self.max_failures = max_failures
        self.keep_logs = keep_logs
        self.max_in_flight = max_in_flight
        self.run_id = run_id or f"run-{secrets.token_hex(4)}"
        self.namespace = namespace or cluster.namespace
        self.options = options
        # The one bound on runs in flight, whether submitted one at a time or by an
        # iteration's feeder and carriers: a run takes a slot before it exists, its end
        # frees it.
        self._slots = anyio.Semaphore(max_in_flight)
        self._submitted = 0
        self._in_flight = 0
        self._outcomes: Counter[str] = Counter()
        self._reattached = 0
        self._retried = 0
        self._final_failures = 0
        self._stopped: str | None = None
        self._stop_event = anyio.Event()
        self._live: set[PodRun] = set()  # the runs in flight, for a stop to cancel
        self._pipelines: set[_Pipeline] = set()

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<Launcher run_id={s.run_id} in_flight={s.in_flight}/{s.max_in_flight} "
            f"finished={s.finished} outcomes={dict(s.outcomes)}>"
        )

    def statistics(self) -> LauncherStatistics:
        return LauncherStatistics(
            run_id=self.run_id,
            max_in_flight=self.max_in_flight,
            submitted=self._submitted,
            in_flight=self._in_flight,
            finished=sum(self._outcomes.values()),
            outcomes=dict(self._outcomes),
            reattached=self._reattached,
            retried=self._retried,
            final_failures=self._final_failures,
            stopped=self._stopped,
        )

    @property
    def stopped(self) -> str | None:
        """Why the launcher stopped creating pods (``max_failures``, a stop rule), or None."""
        return self._stopped

    # ------------------------------------------------------------------ one at a time
    async def submit(self, spec: PodSpec, *, task_key: str | None = None) -> PodRun:
        """Wait for a free slot, then start ``spec``; the slot frees when the run ends."""
        await self._take_slot()
        run = self._make_run(spec, task_key=task_key)
        self.cluster.launch(run)
        return run

    async def _take_slot(self) -> None:
        """Wait for a free slot (the one bound on runs in flight): the caller's until a
        run made in it ends (:meth:`_make_run`). :class:`_StoppedError` once stopped."""
        await self._slots.acquire()
        if self._stopped is not None:
            self._slots.release()
            raise _StoppedError

    def _make_run(
        self,
        spec: PodSpec,
        *,
        task_key: str | None,
        attempt: int = 1,
        options: RunOptions | None = None,
        record_changes: bool = True,
        ended_by_caller: bool = False,
    ) -> PodRun:
        """Make the run (not yet driven) in the slot the caller took; its end frees it
        (the slot is freed at once if no run can be made).

        ``ended_by_caller``: the caller drives the run and calls :meth:`_run_ended` once
        it is driven (no bound method kept on each run in flight till then).
        """
        key = spec.task_key or task_key
        if key is not None and spec.task_key is None:
            spec = dataclasses.replace(spec, task_key=key)
        if attempt > 1:
            spec = dataclasses.replace(
                spec, annotations={**spec.annotations, ATTEMPT_ANNOTATION: str(attempt)}
            )
        try:
            run = self.cluster.new_run(
                spec,
                namespace=self.namespace,
                name=_pod_name(spec, self.run_id, key, attempt),
                run_id=self.run_id,
                options=options or self.options,
                record_changes=record_changes,
            )
        except BaseException:
            self._slots.release()
            raise
        self._submitted += 1
        self._in_flight += 1
        self._live.add(run)
        if not ended_by_caller:
            run.add_done_callback(self._run_ended)
        return run

    def _run_ended(self, run: PodRun) -> None:
        self._live.discard(run)
        self._in_flight -= 1
        self._outcomes[(run.outcome or Outcome.ERROR).value] += 1
        if run.reattached:
            self._reattached += 1
        self._slots.release()

    # ------------------------------------------------------------------ many
    async def as_completed(
        self,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        *,
        skip_task_keys: Collection[str] = (),
    ) -> AsyncGenerator[PodResult, None]:
        """Run every spec; yield each result as its run ends (completion order).

        An async generator: ``contextlib.aclosing`` it to stop early at a known moment
        (closing cancels the runs in flight, which delete their pods, and waits for them).
        """
        async for _, attempt in self._results(specs, skip_task_keys=skip_task_keys):
            if attempt.final:
                yield attempt.result

    async def attempts(
        self,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        *,
        skip_task_keys: Collection[str] = (),
        history: Mapping[str, TaskHistory] | None = None,
        policies: Mapping[str, FailurePolicy] | None = None,
    ) -> AsyncGenerator[Attempt, None]:
        """Run every spec; yield each attempt as it ends (completion order).

        Every attempt, retried or final (``attempt.final``). ``history`` tells where
        each task of a resumed batch goes on (its attempt number: the pod of an attempt
        that was running is reattached); ``policies`` overrides the launcher's
        ``retry`` for some task keys. Close it as :meth:`as_completed`.
        """
        async for _, attempt in self._results(
            specs, skip_task_keys=skip_task_keys, history=history, policies=policies
        ):
            yield attempt

    async def map(
        self,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        *,
        skip_task_keys: Collection[str] = (),
    ) -> AsyncGenerator[PodResult, None]:
        """Run every spec; yield results in input order.

        Results that finish before an earlier one wait for it, at most
        ``max_in_flight`` of them: no spec further than that ahead of the oldest
        unfinished one is started until it finishes, so memory stays bounded however
        slow one task is (at the cost of fewer pods in flight meanwhile).
        """
        pending: dict[int, PodResult] = {}
        window = _Window(self.max_in_flight)
        async for index, attempt in self._results(
            specs, skip_task_keys=skip_task_keys, window=window
        ):
            if not attempt.final:
                continue
            pending[index] = attempt.result
            while window.next_index in pending:
                yield pending.pop(window.next_index)
                window.advance()
        for index in sorted(pending):
            yield pending[index]

    async def _results(
        self,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        *,
        skip_task_keys: Collection[str],
        window: _Window | None = None,
        history: Mapping[str, TaskHistory] | None = None,
        policies: Mapping[str, FailurePolicy] | None = None,
    ) -> AsyncIterator[tuple[int, Attempt]]:
        """Run ``specs``, at most ``max_in_flight`` pods at once; yield (index, result).

        The pipeline (a feeder, a dispatcher, the carriers) runs in the cluster
        session's task group, not in this generator, so the generator may be closed
        from any task; closing it (or cancelling its consumer) cancels the pipeline,
        whose runs delete their pods, and waits for that. Memory is O(in flight): the
        feeder reads the next spec once a slot is free; tasks are O(pods being
        created or wound up).
        """
        results_send, results_receive = anyio.create_memory_object_stream[tuple[int, Attempt]](
            self.max_in_flight
        )
        pipeline = _Pipeline(
            self, specs, skip_task_keys, results_send, window, history or {}, policies or {}
        )
        self._pipelines.add(pipeline)
        if self._stopped is not None:
            pipeline.stop_feeding()
        self.cluster.start_soon(pipeline.run)
        try:
            async with results_receive:
                async for item in results_receive:
                    yield item
            if pipeline.feeder_error is not None:
                raise pipeline.feeder_error
        finally:
            # Stopped early or cancelled: every run in flight is cancelled (pod deleted).
            with anyio.CancelScope(shield=True):
                await pipeline.stop()
            self._pipelines.discard(pipeline)

    # ------------------------------------------------------------------ stopping
    def _stopped_attempt(self, spec: PodSpec, index: int, key: str, attempt: int) -> Attempt:
        result = PodResult(
            self.namespace,
            _pod_name(spec, self.run_id, key, attempt) or "",
            None,
            outcome=Outcome.CANCELLED,
            reason=Reason.CANCELLED,
            message=f"not started: the batch stopped ({self._stopped})",
            task_key=key,
        )
        return Attempt(result, key, index, attempt, final=True)

    async def stop(self, why: str) -> None:
        """Create no more pods, cancel the runs in flight (pods deleted) and wait for them.

        Their results are cancelled ones saying ``why``; tasks waiting for a retry end
        cancelled too; tasks not started yet get no result. Idempotent.
        """
        if self._stopped is not None:
            return
        self._stopped = why
        logger.warning("launcher %s stops: %s", self.run_id, why)
        self._stop_event.set()
        for pipeline in list(self._pipelines):
            pipeline.stop_feeding()
        async with anyio.create_task_group() as group:
            for run in list(self._live):
                group.start_soon(run.cancel)

    async def _keep_and_clean(
        self,
        run: PodRun,
        result: PodResult | None,
        options: RunOptions,
        key: str,
        attempt: int,
    ) -> tuple[Path | None, str | None]:
        keep = self.keep_logs
        assert keep is not None
        pods = Pods(self.cluster.client)
        kept: tuple[Path | None, str | None] = (None, None)
        if result is not None and run.name and wants_log(keep, result):
            log = await keep_log(
                pods,
                namespace=run.namespace,
                name=run.name,
                pod=run.pod,
                result=result,
                path=log_path(keep.directory, key, attempt),
            )
            kept = (log.path, log.missing)
        if run.uid is None or run.name is None:
            return kept
        outcome = result.outcome if result is not None else None
        pod = run.pod
        finished = pod is not None and (pod.get("status") or {}).get("phase") in (
            "Succeeded",
            "Failed",
        )
        succeeded = result is not None and result.ok
        if should_delete(options, outcome, succeeded=succeeded, pod_finished=finished):
            name, uid = run.name, run.uid
            try:
                await until_answered(
                    lambda: pods.delete(
                        run.namespace, name, uid=uid,
                        grace_period_seconds=options.delete_grace_period,
                    ),
                    deadline=time.monotonic() + options.delete_retry_window,
                    restarted=lambda: False, what=f"delete of {run.namespace}/{name}",
                )  # fmt: skip
            except AsyncpodError as error:
                logger.warning("could not delete %s/%s: %s", run.namespace, name, error)
        return kept


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


class _Pipeline:
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
        window: _Window | None,
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
                policy = self._policies.get(key) or launcher.retry or _NO_RETRY
                task = _Task(
                    index,
                    spec,
                    key,
                    policy,
                    attempt=history.next_attempt if history is not None else 1,
                    spent=history.spent if history is not None else 0,
                )
                await self._tasks.acquire()
                try:
                    await launcher._take_slot()
                except BaseException:
                    self._tasks.release()
                    raise
                # Nothing awaited from the slot to the carrier: the slot is its.
                self._active += 1
                group.start_soon(self._carrier, task, None)
        except _StoppedError:
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
                    group.start_soon(self._carrier, self._parked.pop(run), run)
                await self._decisions.wait()

    async def _carrier(self, task: _Task, decided: PodRun | None) -> None:
        """:meth:`_carry` in a scope of its own, which :meth:`stop` cancels."""
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
                started = await self._start(task)
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
        when no run could be made.
        """
        launcher = self._launcher
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
            await launcher._take_slot()
        except _StoppedError:
            stopped = launcher._stopped_attempt(task.spec, task.index, task.key, task.attempt)
            await self._results.send((task.index, stopped))
            self._task_ended()
            return False
        return True

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


class _Window:
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


def _pod_name(spec: PodSpec, run_id: str, key: str | None, attempt: int) -> str | None:
    """The pod name of ``attempt`` of a task: the spec's own (``-a<n>`` added after the
    first attempt), else deterministic from run id, task key and attempt."""
    if spec.name:
        return spec.name if attempt == 1 else f"{spec.name[:56].rstrip('-.')}-a{attempt}"
    if key is None:
        return None
    return attempt_pod_name(run_id, key, attempt)


def _name(run: PodRun | None) -> str | None:
    return run.name if run is not None else None


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
