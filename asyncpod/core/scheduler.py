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
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Collection, Iterable
from dataclasses import dataclass

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from asyncpod.core.cluster import Cluster
from asyncpod.core.runner import PodRun, RunOptions
from asyncpod.errors import AsyncpodError, OptionError
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import PodSpec, deterministic_pod_name

__all__ = ["Launcher", "LauncherStatistics"]

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


class Launcher:
    """Run many specs through ``cluster`` with at most ``max_in_flight`` pods alive."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        max_in_flight: int = 100,
        run_id: str | None = None,
        namespace: str | None = None,
        options: RunOptions | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise OptionError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.cluster = cluster
        self.max_in_flight = max_in_flight
        self.run_id = run_id or f"run-{secrets.token_hex(4)}"
        self.namespace = namespace or cluster.namespace
        self.options = options
        # The one bound on runs in flight, whether submitted one at a time or by an
        # iteration's workers: a run takes a slot before it exists, its end frees it.
        self._slots = anyio.Semaphore(max_in_flight)
        self._submitted = 0
        self._in_flight = 0
        self._outcomes: Counter[str] = Counter()
        self._reattached = 0

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
        )

    # ------------------------------------------------------------------ one at a time
    async def submit(self, spec: PodSpec, *, task_key: str | None = None) -> PodRun:
        """Wait for a free slot, then start ``spec``; the slot frees when the run ends."""
        run = await self._new_run(spec, task_key=task_key)
        self.cluster.launch(run)
        return run

    async def _new_run(self, spec: PodSpec, *, task_key: str | None) -> PodRun:
        """Take a slot and make the run (not yet driven); its end frees the slot."""
        key = spec.task_key or task_key
        if key is not None and spec.task_key is None:
            spec = dataclasses.replace(spec, task_key=key)
        await self._slots.acquire()
        try:
            run = self.cluster.new_run(
                spec,
                namespace=self.namespace,
                name=spec.name or (deterministic_pod_name(self.run_id, key) if key else None),
                run_id=self.run_id,
                options=self.options,
            )
        except BaseException:
            self._slots.release()
            raise
        self._submitted += 1
        self._in_flight += 1
        run.add_done_callback(self._run_ended)
        return run

    def _run_ended(self, run: PodRun) -> None:
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
        async for _, result in self._results(specs, skip_task_keys=skip_task_keys):
            yield result

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
        async for index, result in self._results(
            specs, skip_task_keys=skip_task_keys, window=window
        ):
            pending[index] = result
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
    ) -> AsyncIterator[tuple[int, PodResult]]:
        """Run ``specs`` through at most ``max_in_flight`` workers; yield (index, result).

        The pipeline (a feeder and the workers) runs in the cluster session's task
        group, not in this generator, so the generator may be closed from any task;
        closing it (or cancelling its consumer) cancels the pipeline, whose runs
        delete their pods, and waits for that. Tasks and memory are O(in flight):
        the feeder hands one spec at a time through an unbuffered stream, and starts
        a worker only when none is idle.
        """
        results_send, results_receive = anyio.create_memory_object_stream[tuple[int, PodResult]](
            self.max_in_flight
        )
        pipeline = _Pipeline(self, specs, skip_task_keys, results_send, window)
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

    async def _run_one(self, index: int, spec: PodSpec) -> PodResult:
        """One spec to its result; never raises but for cancellation.

        The books (in flight, outcomes, the slot) are kept by the run's own end
        (:meth:`_run_ended`), so a cancelled run releases its slot too.
        """
        key = spec.task_key or str(index)
        run: PodRun | None = None
        try:
            run = await self._new_run(spec, task_key=key)
            # The worker drives the run in its own task: one task per pod in flight.
            finished = await run.drive()
            if finished is not None:
                return finished
            failure = run.exception()
            assert failure is not None
            # Read, not raised: raised here, the error's traceback would gain this
            # frame, which holds the run that holds the error (a reference cycle).
            result = _error_result(self.namespace, spec, index, failure, name=_name(run))
        except AsyncpodError as error:
            result = _error_result(self.namespace, spec, index, error, name=_name(run))
        except Exception as error:  # a bug of ours: one error result, not a stuck batch
            logger.exception("run of task %s failed unexpectedly", key)
            result = _error_result(self.namespace, spec, index, error, name=_name(run))
        if run is None:  # never started: no run to keep the books
            self._outcomes[Outcome.ERROR.value] += 1
        return result


class _Pipeline:
    """The feeder and the workers of one ``as_completed``/``map`` iteration."""

    def __init__(
        self,
        launcher: Launcher,
        specs: Iterable[PodSpec] | AsyncIterable[PodSpec],
        skip_task_keys: Collection[str],
        results: MemoryObjectSendStream[tuple[int, PodResult]],
        window: _Window | None,
    ) -> None:
        self._launcher = launcher
        self._window = window
        self._specs = specs
        self._skip = skip_task_keys
        self._results = results
        self._feeder_scope = anyio.CancelScope()
        self._worker_scopes: set[anyio.CancelScope] = set()
        self._stopping = False
        self._done = anyio.Event()
        self._workers = 0
        self._idle = 0
        self.feeder_error: BaseException | None = None

    async def run(self) -> None:
        try:
            work_send, work_receive = anyio.create_memory_object_stream[tuple[int, PodSpec]](0)
            async with self._results, work_receive, anyio.create_task_group() as group:
                with self._feeder_scope:
                    await self._feed(group, work_send, work_receive)
        finally:
            self._done.set()

    async def stop(self) -> None:
        """Cancel the feeder and each worker through its own scope, and wait for them.

        Not through the task group's scope: a task that ends cancelled leaves a
        reference cycle in anyio's task-done callback (the CancelledError's traceback
        holds the frame that holds the error), and with it the whole run's state as
        garbage only a full GC pass frees (tests/integration/core/test_garbage.py). A
        worker whose own scope is cancelled absorbs it and returns.
        """
        self._stopping = True
        self._feeder_scope.cancel()
        for scope in list(self._worker_scopes):
            scope.cancel()
        await self._done.wait()

    async def _feed(
        self,
        group: anyio.abc.TaskGroup,
        work_send: MemoryObjectSendStream[tuple[int, PodSpec]],
        work_receive: MemoryObjectReceiveStream[tuple[int, PodSpec]],
    ) -> None:
        launcher = self._launcher
        async with work_send:
            try:
                async for index, spec in _enumerate(self._specs):
                    if self._window is not None:
                        await self._window.admit(index)
                    if (spec.task_key or str(index)) in self._skip:
                        if self._window is not None:
                            self._window.skip(index)  # no result will come for it
                        continue
                    # A new worker only when none is idle; never more workers than the
                    # launcher has slots (the bound itself): more could only wait.
                    if self._idle == 0 and self._workers < launcher.max_in_flight:
                        self._workers += 1
                        group.start_soon(self._work, work_receive.clone(), self._results.clone())
                    await work_send.send((index, spec))
            except Exception as error:  # noqa: BLE001 - the caller's iterable failed; re-raised to them
                self.feeder_error = error

    async def _work(
        self,
        work: MemoryObjectReceiveStream[tuple[int, PodSpec]],
        results: MemoryObjectSendStream[tuple[int, PodResult]],
    ) -> None:
        with anyio.CancelScope() as scope:  # cancelled by stop()
            self._worker_scopes.add(scope)
            if self._stopping:
                scope.cancel()
            try:
                async with work, results:
                    while True:
                        self._idle += 1
                        try:
                            index, spec = await work.receive()
                        except anyio.EndOfStream:
                            return
                        finally:
                            self._idle -= 1
                        result = await self._launcher._run_one(index, spec)
                        try:
                            await results.send((index, result))
                        except anyio.BrokenResourceError:
                            return  # the consumer has gone; stop() is on its way
            finally:
                self._worker_scopes.discard(scope)


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
