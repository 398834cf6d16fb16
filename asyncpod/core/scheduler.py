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

import dataclasses
import logging
import secrets
import time
from collections import Counter
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Collection,
    Iterable,
    Mapping,
)
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from asyncpod.core.attempts import ATTEMPT_ANNOTATION, Attempt, StoppedError, TaskHistory
from asyncpod.core.cluster import Cluster
from asyncpod.core.failurepolicy import (
    FailurePolicy,
    attempt_pod_name,
)
from asyncpod.core.keptlogs import KeepLogs, keep_log, log_path, wants_log
from asyncpod.core.pipeline import Pipeline, Window
from asyncpod.core.policy import should_delete
from asyncpod.core.retrying import until_answered
from asyncpod.core.runner import PodRun, RunOptions
from asyncpod.errors import AsyncpodError, OptionError
from asyncpod.kube.pods import Pods
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import PodSpec

__all__ = ["ATTEMPT_ANNOTATION", "Attempt", "Launcher", "LauncherStatistics", "TaskHistory"]

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
        self._pipelines: set[Pipeline] = set()

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
        run made in it ends (:meth:`_make_run`). ``StoppedError`` once stopped."""
        await self._slots.acquire()
        if self._stopped is not None:
            self._slots.release()
            raise StoppedError

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
        window = Window(self.max_in_flight)
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
        window: Window | None = None,
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
        pipeline = Pipeline(
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


def _pod_name(spec: PodSpec, run_id: str, key: str | None, attempt: int) -> str | None:
    """The pod name of ``attempt`` of a task: the spec's own (``-a<n>`` added after the
    first attempt), else deterministic from run id, task key and attempt."""
    if spec.name:
        return spec.name if attempt == 1 else f"{spec.name[:56].rstrip('-.')}-a{attempt}"
    if key is None:
        return None
    return attempt_pod_name(run_id, key, attempt)
