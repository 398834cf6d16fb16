"""One pod, end to end: create (or reattach) → follow → result → cleanup.

Why a module of its own: :class:`PodRun` is the handle a caller holds (``await run``
for the :class:`PodResult`, ``run.states()`` for the transitions, ``run.logs()`` for
every container's output) and the thin driver that carries a run's decisions out. The
decisions themselves are pure functions elsewhere: what each pod state, deadline,
deletion and 409 means (:mod:`asyncpod.core.policy`, from pod facts in
:mod:`asyncpod.core.lifecycle`), whether a failed request is worth another try
(``policy.may_retry``, asked by the one retry loop of :mod:`asyncpod.core.retrying`).
Getting the pod (a create that never makes two, or an attach) is
:mod:`asyncpod.core.start`; merging the containers' logs is :mod:`asyncpod.core.runlogs`.

The driver (:meth:`PodRun.drive`) runs in the cluster session's task group
(``cluster.start``); its result is what it returns, and the handle is settled from it
in one place (``_settle``). A launcher drives its runs without a task while they wait
on their pods: :meth:`PodRun.start` creates the pod in the caller's task,
:meth:`PodRun.park` follows it on the informer's pushes and a loop timer, and
:meth:`PodRun.finish` winds the run up once its end is decided. The decisions are the
same functions either way (``_judged``, ``_took``).

Cancellation: cancelling the task that awaits a run, calling :meth:`PodRun.cancel`,
closing the session, or the event loop shutting down (every task cancelled at once)
deletes the pod (unless the cleanup policy is KEEP). :meth:`PodRun.cancel` reaches a
run that is creating its pod through a cancel scope, and one that waits on its pod
through its subscription (``interrupt``), so the many runs that wait hold no scope.
The cleanup sits in ``finally`` and completes even when its task is cancelled again
meanwhile (:mod:`asyncpod.core.shielding`); every retry in it has a window, so it is
bounded. Deletion uses the pod's own grace period unless
:attr:`RunOptions.delete_grace_period` says otherwise.

Faults: a create that meets an unreachable or restarting API server is retried for
:attr:`RunOptions.create_retry_window` with the same name and the same attempt token,
so a create whose answer was lost is recognised (409 + our token = our pod) and no
second pod is made. A create that never reached a server the session never reached
(:class:`~asyncpod.errors.ServerUnreachableError`) made nothing, and nothing is deleted.

What it deliberately does not do: poll (every state comes from the informer), bound
concurrency (that is the launcher's), or raise for a pod that ran and failed (that is
a result; ``result.raise_for_outcome()`` turns it into an exception).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio

from asyncpod.core import lifecycle
from asyncpod.core.flag import Flag
from asyncpod.core.informer import PodChange, PodInformer, PodSubscription
from asyncpod.core.kepterrors import without_tracebacks
from asyncpod.core.policy import (
    CREATE_ATTEMPT_ANNOTATION,
    Cleanup,
    RunClock,
    RunOptions,
    Verdict,
    clock_from_pod,
    judge,
    judge_deletion,
    next_deadline,
    should_collect_events,
    should_delete,
)
from asyncpod.core.retrying import until_answered
from asyncpod.core.runlogs import Spawn, merged_logs
from asyncpod.core.shielding import complete_despite_cancellation
from asyncpod.core.start import PodStart
from asyncpod.errors import (
    AsyncpodError,
    ClosedError,
    UsageError,
)
from asyncpod.kube.logs import LogLine
from asyncpod.kube.watch import DELETED
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import PodSpec

if TYPE_CHECKING:
    from asyncpod.kube.client import KubeClient

__all__ = ["CREATE_ATTEMPT_ANNOTATION", "Cleanup", "PodRun", "RunOptions"]

logger = logging.getLogger("asyncpod.runner")


def _older(pod: dict[str, Any], than: dict[str, Any]) -> bool:
    """Whether ``pod`` is an older version than ``than`` (resourceVersions compared).

    resourceVersions are opaque by contract; etcd-backed servers hand out increasing
    integers, and only those are compared. Anything else counts as not older.
    """
    mine = (pod.get("metadata") or {}).get("resourceVersion", "")
    theirs = (than.get("metadata") or {}).get("resourceVersion", "")
    if not (mine.isdigit() and theirs.isdigit()):
        return False
    return int(mine) < int(theirs)


def _slim(pod: Mapping[str, Any], identity: dict[str, Any] | None) -> dict[str, Any]:
    """What an old state change keeps of its pod: identity, phase, node.

    Every part is shared: ``identity`` (the run's one ``metadata`` of name, namespace
    and uid, made from the first version slimmed) and the one-key spec and status,
    which repeat across runs (:func:`_node_part`, :func:`_phase_part`).
    """
    if identity is None:
        metadata = pod.get("metadata") or {}
        identity = {k: metadata[k] for k in ("name", "namespace", "uid") if k in metadata}
    return {
        "metadata": identity,
        "spec": _node_part((pod.get("spec") or {}).get("nodeName")),
        "status": _phase_part((pod.get("status") or {}).get("phase")),
    }


# The timers of parked runs' limits: by default each timer copies the caller's context
# (a GC-tracked object per run in flight), and ``_wake`` reads no context variable.
_TIMER_CONTEXT = contextvars.Context()


def _wake_the_waiter(run: PodRun) -> None:
    """The ``on_decided`` of :meth:`PodRun.wait_decided`: wake the run's one flag."""
    run._changed.set()


@functools.lru_cache(maxsize=1024)
def _node_part(node: str | None) -> dict[str, Any]:
    return {"nodeName": node}


@functools.lru_cache(maxsize=16)
def _phase_part(phase: str | None) -> dict[str, Any]:
    return {"phase": phase}


class PodRun:
    """The handle of one pod's run. Create it with ``cluster.start(spec)``.

    ``await run`` (or ``await run.result()``) returns the :class:`PodResult`; it raises
    only when the pod could not be created or followed at all (an invalid spec, a
    forbidden namespace, ...). ``name``/``uid`` are known once the pod exists
    (``await run.created()``).

    For launchers (the session's internal protocol): ``cluster.new_run(spec)`` makes a
    run that nothing drives yet; :meth:`drive` drives it in the calling task, or
    ``cluster.launch(run)`` in the session's task group.
    """

    __slots__ = (
        "__weakref__",
        "_cancel_requested",
        "_changed",
        "_changes",
        "_client",
        "_clock",
        "_created",
        "_decided_at",
        "_done_callback",
        "_done_callbacks",
        "_driven",
        "_ended",
        "_error",
        "_extra_labels",
        "_finished",
        "_informer",
        "_last_change_slim",
        "_latest",
        "_main",
        "_on_decided",
        "_on_done",
        "_readers",
        "_readers_idle",
        "_result",
        "_scope",
        "_spawn",
        "_start",
        "_timer",
        "_timer_at",
        "_winding_down",
        "namespace",
        "options",
        "run_id",
        "spec",
        "task_key",
        "uid",
    )

    def __init__(
        self,
        *,
        client: KubeClient,
        informer: PodInformer,
        namespace: str,
        spec: PodSpec | None,
        options: RunOptions,
        spawn: Spawn,
        name: str | None = None,
        uid: str | None = None,
        run_id: str | None = None,
        extra_labels: dict[str, str] | None = None,
        on_done: Callable[[PodRun], None] | None = None,
        subscription: PodSubscription | None = None,
        record_changes: bool = True,
    ) -> None:
        self._client = client
        self._informer = informer
        self._spawn = spawn
        self.namespace = namespace
        self.spec = spec
        self.options = options
        self._start = PodStart(
            client=client, informer=informer, namespace=namespace, name=name,
            subscription=subscription,
        )  # fmt: skip
        self.uid = uid
        self.run_id = run_id
        self.task_key = spec.task_key if spec is not None else None
        self._extra_labels = extra_labels or {}
        self._on_done = on_done
        # The first callback in a slot, any later ones in a list made then: a run of a
        # launcher has one (a list per run in flight was one more GC-tracked object).
        self._done_callback: Callable[[PodRun], None] | None = None
        self._done_callbacks: list[Callable[[PodRun], None]] | None = None
        self._main = spec.container_name if spec is not None else None
        # One flag for every wait on the run (created, a state change, the end): a run
        # exists by the thousand and mostly nobody waits on it. Each waiter checks its
        # own condition again when it is woken (:meth:`_next_change`).
        self._created = False
        self._finished = False
        self._changed = Flag()
        self._driven = False
        self._result: PodResult | None = None
        self._error: AsyncpodError | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False
        self._latest: dict[str, Any] | None = None
        # None: a run that nobody can observe (a launcher's, Cluster.follow's) records
        # no state changes: no transition computed, no StateChange kept per event.
        self._changes: list[lifecycle.StateChange] | None = [] if record_changes else None
        self._last_change_slim = True  # no change yet
        # Open log readers: cleanup waits for them to drain before deleting the pod
        # (on a flag made then, if any reader is open).
        self._readers = 0
        self._readers_idle: Flag | None = None
        self._winding_down = False
        # Following without a task (:meth:`park`): the clock the limits run on, the
        # timer of the next one, and how the run ended once that is decided.
        self._clock: RunClock | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._on_decided: Callable[[PodRun], None] | None = None
        self._ended: PodResult | AsyncpodError | None = None
        self._decided_at: float | None = None

    def __repr__(self) -> str:
        if self._changes:
            state = self._changes[-1].state.value
        else:
            state = lifecycle.pod_state(self._latest).value if self._latest else "new"
        done = f" outcome={self._result.outcome.value}" if self._result else ""
        return f"<PodRun {self.namespace}/{self.name or '?'} state={state}{done}>"

    # ------------------------------------------------------------------ public API
    def __await__(self) -> Any:
        return self.result().__await__()

    def done(self) -> bool:
        return self._finished

    def add_done_callback(self, callback: Callable[[PodRun], None]) -> None:
        """Call ``callback(run)`` once the run has ended (at once if it has)."""
        if self.done():
            callback(self)
        elif self._done_callback is None:
            self._done_callback = callback
        elif self._done_callbacks is None:
            self._done_callbacks = [callback]
        else:
            self._done_callbacks.append(callback)

    def exception(self) -> AsyncpodError | None:
        """The error the run ended with, without raising it (like ``Future.exception``).

        None while the run goes on and when it ended with a result. Raised from a frame
        that holds the run, the error would hold the run through its traceback (a
        reference cycle): code that keeps runs, as the launcher does, reads it here.
        """
        return self._error

    @property
    def outcome(self) -> Outcome | None:
        """How the run ended: its result's outcome, ERROR if it raised, None until then."""
        if self._result is not None:
            return self._result.outcome
        return Outcome.ERROR if self._error is not None else None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name or '?'}"

    @property
    def name(self) -> str | None:
        """The pod's name: known once the pod exists (a generated one is drawn then)."""
        return self._start.name

    @property
    def reattached(self) -> bool:
        """Whether the pod was made by an earlier process (a 409 of the same task)."""
        return self._start.reattached

    @property
    def pod(self) -> dict[str, Any] | None:
        """The latest version of the pod seen on the watch (a dict; do not mutate).

        Metadata and status are whole; of the spec, the scalar fields and each
        container's name, image and restart policy (:func:`lifecycle.project`). GET the
        pod for the rest.
        """
        return self._latest

    @property
    def winding_down(self) -> bool:
        """Whether the run is ending: its containers are as done as they will get."""
        return self._winding_down

    async def created(self) -> None:
        """Wait until the pod exists (or the run failed before that: then raise)."""
        while not (self._created or self._finished):
            await self._next_change()
        if not self._created and self._error is not None:
            raise self._error

    async def changed(self) -> None:
        """Return after the run's next state change, or its end."""
        if not self.done():
            await self._next_change()

    async def _next_change(self) -> None:
        """Wait for the next wake-up of the run's flag: a state change, the pod made,
        the end. Every caller checks what it waits for again (one flag, many waits)."""
        self._changed.clear()
        await self._changed.wait()

    async def result(self) -> PodResult:
        """Wait for the outcome. Cancelling the waiting task cancels the run (pod deleted)."""
        try:
            while not self._finished:
                await self._next_change()
        except BaseException:
            # The awaiting task was cancelled: the run goes with it, pod included.
            with anyio.CancelScope(shield=True):
                await self.cancel()
            raise
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    async def cancel(self) -> PodResult | None:
        """Stop following, delete the pod (unless cleanup is KEEP) and wait for that."""
        if not self.done():
            self._cancel_requested = True
            if self._scope is not None:  # creating or attaching
                self._scope.cancel()
            elif self._start.subscription is not None:  # following: stop waiting
                self._start.subscription.interrupt()
            with anyio.CancelScope(shield=True):
                while not self._finished:
                    await self._next_change()
        return self._result

    async def states(self) -> AsyncGenerator[lifecycle.StateChange, None]:
        """Every observed state change, from the first one, until the run ends.

        To keep a run's memory small, only the latest change carries the full pod in
        ``change.pod``; earlier ones keep the pod's identity, phase and node.
        """
        changes = self._changes
        if changes is None:
            raise UsageError(f"{self!r} records no state changes (made with record_changes=False)")
        index = 0
        while True:
            while index < len(changes):
                yield changes[index]
                index += 1
            if self.done():
                return
            await self.changed()

    def logs(
        self,
        *,
        containers: tuple[str, ...] | None = None,
        follow: bool = True,
        since: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[LogLine, None]:
        """Every line of every container (init containers first), each tagged.

        Follows each container until it has terminated and its log is drained;
        resumes cut streams with ``sinceTime`` and drops replayed lines. ``since`` maps
        a container to a timestamp to start from (a reader resuming in another process;
        lines at that very timestamp are delivered again, the caller drops the ones it
        had). Iterate it with ``contextlib.aclosing`` if you may stop early.
        """
        if self._changes is None:  # the readers follow the containers' state changes
            raise UsageError(f"{self!r} records no state changes (made with record_changes=False)")
        return self._logs(containers, follow=follow, since=since or {})

    # ------------------------------------------------------------------ the driver
    async def drive(self) -> PodResult | None:
        """Drive the run to its end in the calling task; return its result.

        None when the run ended with an error instead (read it with
        :meth:`exception`). A run is driven once: ``cluster.start()`` drives it in the
        session's task group (a launcher uses start/park/finish). The cleanup sits
        in ``finally`` and completes even if this task is cancelled from outside (the
        session's task group, loop shutdown) and then cancelled again: a run that
        started a create always ends deleting what it made.
        """
        if self._driven:
            raise UsageError(f"{self!r} is already driven: a run is driven once")
        self._driven = True
        self._client.metrics.run_started()
        ended: PodResult | AsyncpodError | None = None
        try:
            ended = await self._to_the_end()
        finally:
            result = await complete_despite_cancellation(self._wind_up(ended, time.monotonic()))
        return result

    async def _to_the_end(self) -> PodResult | AsyncpodError | None:
        """Create or attach, then follow: the result, the error, or None (cancelled).

        :meth:`cancel` reaches the start through a cancel scope (its requests retry for
        a while) and the follower through its subscription (:meth:`_follow` waits on
        nothing else): a run waiting on its pod, as most runs in flight are, holds no
        cancel scope.
        """
        try:
            await self._start_cancellably()
            return None if self._cancel_requested else await self._follow()
        except Exception as error:  # noqa: BLE001 - how the run ended
            return self._ending(error)

    def _ending(self, error: Exception) -> AsyncpodError | None:
        """How a run that raised ``error`` ended: None (cancelled) or the error to keep.

        A ClosedError is a cancellation: WaitInterruptedError (a ClosedError) is
        :meth:`cancel` while following; otherwise the session is closing, its informer
        stopped a moment before the session's cancellation reached this run. A bug of
        ours must not take the session down: it becomes this run's error.
        """
        if isinstance(error, ClosedError):
            return None
        if isinstance(error, AsyncpodError):
            return without_tracebacks(error)
        logger.error("run %s failed unexpectedly", self.ref, exc_info=error)
        failure = AsyncpodError(
            f"run {self.ref} failed unexpectedly: {type(error).__name__}: {error}"
        )
        failure.__cause__ = without_tracebacks(error)
        return failure

    # ------------------------------------------------------------------ without a task
    async def start(self) -> bool:
        """Create or attach the pod in the calling task: whether the run now follows it.

        The first step of a run driven without a task while it waits on its pod (a
        launcher's): True, then :meth:`park` it; False when it already ended (the
        create failed or was refused, or the run was cancelled), then :meth:`finish`
        it. Cancelled from outside, it raises: :meth:`finish` it all the same (the
        pod a create may have made is deleted).
        """
        if self._driven:
            raise UsageError(f"{self!r} is already driven: a run is driven once")
        self._driven = True
        self._client.metrics.run_started()
        try:
            await self._start_cancellably()
        except Exception as error:  # noqa: BLE001 - how the run ended
            self._decide(self._ending(error))
            return False
        if self._cancel_requested:
            self._decide(None)
            return False
        return True

    def park(self, on_decided: Callable[[PodRun], None]) -> None:
        """Follow the pod without a task, after :meth:`start` returned True.

        Each change the informer pushes is judged at once, in the informer's task; each
        limit (:func:`~asyncpod.core.policy.next_deadline`) by a timer on the loop.
        Once the run's end is decided (its pod's outcome, a limit, a deletion, an
        error, :meth:`cancel`), ``on_decided(run)`` is called once, synchronously: it
        must not raise nor wait; then :meth:`finish` the run in a task. A run in flight
        that waits on its pod this way holds no task, coroutine or cancel scope.
        """
        subscription = self._start.subscription
        assert subscription is not None
        assert self._decided_at is None
        self._on_decided = on_decided
        self._clock = self._new_clock()
        subscription.listen(self._wake)
        self._wake()

    async def wait_decided(self) -> None:
        """:meth:`park` the run (after :meth:`start` returned True) and wait in the
        calling task until its end is decided; then :meth:`finish` it. The caller's
        task wakes once, not on each change of the pod, and holds no flag or closure
        of its own (the run's one flag is woken)."""
        self.park(_wake_the_waiter)
        while self._decided_at is None:
            await self._next_change()

    @property
    def decided(self) -> bool:
        """Whether the run's end is decided (what :meth:`finish` winds up)."""
        return self._decided_at is not None

    async def finish(self) -> PodResult | None:
        """Wind up a run driven without a task: clean up (the pod deleted as the
        cleanup policy says), settle the handle; its result, or None when it ended
        with an error (:meth:`exception`).

        A run whose end is not decided yet is cancelled. Completes even if the calling
        task is cancelled meanwhile. Call it once.
        """
        if self._decided_at is None:
            self._cancel_requested = True
            self._on_decided = None  # its owner winds it up: nobody to tell
            self._decide(None)
        assert self._decided_at is not None
        ended, self._ended = self._ended, None
        return await complete_despite_cancellation(self._wind_up(ended, self._decided_at))

    def _wake(self) -> None:
        """The parked run's step: judge what the subscription has; decide, or wait on.

        Called by the subscription's listener (in the informer's task), by the timer
        of the next limit, and once by :meth:`park`. Never raises.
        """
        if self._on_decided is None:
            return  # decided already
        subscription = self._start.subscription
        assert subscription is not None
        assert self._clock is not None
        ended: PodResult | AsyncpodError | None
        try:
            while True:
                now = time.monotonic()
                ended = self._judged(self._clock, now)
                if ended is not None:
                    break
                change = subscription.take_nowait()
                if change is None:
                    self._arm(next_deadline(self._clock, self.options, now=now), now)
                    return
                ended = self._took(change)
                if ended is not None:
                    break
        except Exception as error:  # noqa: BLE001 - how the run ended
            ended = self._ending(error)
        self._decide(ended)

    def _arm(self, wait: float | None, now: float) -> None:
        """The timer of the next limit: kept when that limit has not moved."""
        at = None if wait is None else now + wait
        if self._timer is not None:
            if at is not None and abs(at - self._timer_at) < 0.001:
                return
            self._timer.cancel()
            self._timer = None
        if at is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(wait or 0.0, self._on_timer, context=_TIMER_CONTEXT)
            self._timer_at = at

    def _on_timer(self) -> None:
        """The next limit's timer fired (the loop may fire it a hair early: judge then
        says "not yet", and :meth:`_arm` makes a new one)."""
        self._timer = None
        self._wake()

    def _decide(self, ended: PodResult | AsyncpodError | None) -> None:
        """The run's end is known: stop following, tell whoever parked it."""
        self._ended = ended
        self._decided_at = time.monotonic()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        subscription = self._start.subscription
        if subscription is not None:
            subscription.listen(None)
        on_decided, self._on_decided = self._on_decided, None
        if on_decided is not None:
            on_decided(self)

    async def _wind_up(
        self, ended: PodResult | AsyncpodError | None, seen: float
    ) -> PodResult | None:
        """Clean up after ``ended`` (seen at ``seen``, monotonic) and settle the handle;
        the final result."""
        error = ended if isinstance(ended, AsyncpodError) else None
        result = ended if isinstance(ended, PodResult) else None
        try:
            result = await self._clean_up(result, cancelled=ended is None)
        except Exception as failure:  # noqa: BLE001 - reported through the handle
            logger.warning("cleanup of %s failed: %s", self.ref, failure)
            if error is None and result is None:
                error = (
                    without_tracebacks(failure)
                    if isinstance(failure, AsyncpodError)
                    else AsyncpodError(f"cleanup of {self.ref} failed: {failure}")
                )
        finally:
            self._settle(result, error)
            self._client.metrics.run_ended(result, error, seen)
            self._client.traces.run_ended(
                result, error, namespace=self.namespace, name=self.name, task_key=self.task_key
            )
        return result

    def _settle(self, result: PodResult | None, error: AsyncpodError | None) -> None:
        """The one place the handle learns how the run ended."""
        self._result, self._error = result, error
        self._start.close()
        self._finished = True
        self._changed.set()
        if self._on_done is not None:
            self._on_done(self)
        if self._done_callback is not None:
            self._done_callback(self)
        for callback in self._done_callbacks or ():
            callback(self)

    # ------------------------------------------------------------------ the start
    async def _start_cancellably(self) -> None:
        """:meth:`_create_or_attach` in a cancel scope that :meth:`cancel` cancels. (A
        method of its own, so that no frame keeps the scope while the run follows.)"""
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._cancel_requested:
                scope.cancel()
            await self._create_or_attach()
        self._scope = None

    async def _create_or_attach(self) -> None:
        window = self.options.create_retry_window
        if self.spec is None:  # attach to an existing pod
            pod = await self._start.attach(self.uid, window=window)
            self._main = self._main or lifecycle.main_container_name(pod)
        else:  # validated by Cluster.new_run
            pod = await self._start.create(
                self._client.traces.carried(self.spec),  # traceparent, if injecting
                labels=self._extra_labels, run_id=self.run_id, window=window,
            )  # fmt: skip
        self.uid = pod["metadata"]["uid"]
        # Kept as the watch keeps pods (projected): the POST's or GET's answer is a
        # whole pod (managedFields, volumes, env: ~8 KB), held until the watch's next
        # version replaces it, by every run of a burst at once.
        self._observe(lifecycle.project(pod))
        self._created = True
        self._changed.set()

    # ------------------------------------------------------------------ following
    def _observe(
        self, pod: dict[str, Any], *, deleted: bool = False
    ) -> lifecycle.StateChange | None:
        if not deleted and self._latest is not None and _older(pod, self._latest):
            return None  # a version older than one we already have (read vs. watch)
        if self._changes is None:
            self._latest = pod
            return None
        change = lifecycle.transition(self._latest, pod, deleted=deleted)
        self._latest = pod
        # One full version of the pod per run: the latest. The change that brought an
        # older version keeps only its identity, phase and node.
        if self._changes and not self._last_change_slim and self._changes[-1].pod is not pod:
            last = self._changes[-1]
            identity = self._changes[0].pod["metadata"] if len(self._changes) > 1 else None
            self._changes[-1] = replace(last, pod=_slim(last.pod, identity))
            self._last_change_slim = True
        if change is not None:
            self._changes.append(change)
            self._last_change_slim = False
            self._changed.set()
        return change

    async def _follow(self) -> PodResult:
        """Consume the pod's changes until an outcome is decided (in the calling task)."""
        subscription = self._start.subscription
        assert subscription is not None
        clock = self._new_clock()
        while True:
            now = time.monotonic()
            result = self._judged(clock, now)
            if result is not None:
                return result
            wait = next_deadline(clock, self.options, now=now)
            change: PodChange | None
            if wait is None:
                change = await subscription.next()
            else:
                change = await subscription.next_within(wait)
            if change is None:
                continue  # a deadline passed: judge decides
            result = self._took(change)
            if result is not None:
                return result

    def _new_clock(self) -> RunClock:
        """The clock the run's limits are measured on: from now, or from the pod's own
        timestamps for a pod an earlier process made."""
        assert self._latest is not None
        now = time.monotonic()
        if self.reattached:
            return clock_from_pod(self._latest, now=now, wall_now=datetime.now(timezone.utc))
        return RunClock(created=now)

    def _judged(self, clock: RunClock, now: float) -> PodResult | None:
        """The result, if the latest pod and the clock say the run is over."""
        pod = self._latest
        assert pod is not None
        verdict = judge(pod, clock, self.options, now=now, main_container=self._main)
        return None if verdict is None else self._result_of(pod, verdict)

    def _took(self, change: PodChange) -> PodResult | None:
        """A change from the watch, observed: the result if it ends the run (a deletion)."""
        if change.type == DELETED:
            self._observe(change.pod, deleted=True)
            verdict = judge_deletion(change.pod, cancel_requested=self._cancel_requested)
            return self._result_of(change.pod, verdict)
        self._observe(change.pod)
        return None

    def _result_of(self, pod: dict[str, Any], verdict: Verdict) -> PodResult:
        result = lifecycle.build_result(
            pod,
            main_container=self._main,
            outcome=verdict.outcome,
            reason=verdict.reason,
            message=verdict.message,
        )
        if self.task_key is None or result.task_key == self.task_key:
            return result
        return replace(result, task_key=self.task_key)

    # ------------------------------------------------------------------ the end
    async def _clean_up(self, result: PodResult | None, *, cancelled: bool) -> PodResult | None:
        """The final result (a cancelled one if needed, events added); the pod deleted
        as the cleanup policy says."""
        self._winding_down = True  # log readers: the containers are as done as they get
        self._changed.set()
        if cancelled:
            result = self._cancelled_result()
        if self.uid is None and self._start.may_have_created:
            window = self.options.delete_retry_window
            pod = await self._start.find_cut_create(window=window)
            if pod is not None:
                self.uid = pod["metadata"]["uid"]
                self._latest = self._latest or pod
        if self.uid is None:
            return result  # nothing was created
        if should_collect_events(self.options, result, cancelled=cancelled):
            assert result is not None
            with contextlib.suppress(AsyncpodError):
                result = await self._with_events(result)
        finished = self._latest is not None and lifecycle.is_terminal(self._latest)
        outcome = result.outcome if result is not None else None
        succeeded = result is not None and result.ok
        if should_delete(self.options, outcome, succeeded=succeeded, pod_finished=finished):
            if self._readers and not cancelled:
                # Let log readers drain what the containers wrote before the pod goes.
                idle = self._readers_idle = Flag()
                with anyio.move_on_after(self.options.log_drain_timeout):
                    await idle.wait()
            await self._delete()
        return result

    def _cancelled_result(self) -> PodResult:
        if self._latest is not None:
            return self._result_of(self._latest, Verdict(Outcome.CANCELLED))
        return PodResult(
            self.namespace, self.name or "", self.uid,
            outcome=Outcome.CANCELLED, reason=Reason.CANCELLED,
            message="cancelled before the pod was created", task_key=self.task_key,
        )  # fmt: skip

    async def _with_events(self, result: PodResult) -> PodResult:
        assert self.uid is not None
        items = await self._start.pods.events_of(self.namespace, self.uid)
        return replace(result, events=lifecycle.events_from_list({"items": items}))

    async def _delete(self) -> None:
        # A pod we fail to delete is a leak, so keep trying for a while when the API
        # server is unreachable or restarting. The uid precondition means a namesake
        # is never deleted.
        assert self.name is not None
        name = self.name
        await until_answered(
            lambda: self._start.pods.delete(
                self.namespace, name, uid=self.uid,
                grace_period_seconds=self.options.delete_grace_period,
            ),
            deadline=time.monotonic() + self.options.delete_retry_window,
            restarted=self._start.restarted, what=f"delete of {self.ref}",
        )  # fmt: skip

    # ------------------------------------------------------------------ logs
    async def _logs(
        self, containers: tuple[str, ...] | None, *, follow: bool, since: Mapping[str, str]
    ) -> AsyncGenerator[LogLine, None]:
        self._readers += 1
        try:
            lines = merged_logs(
                self, client=self._client, spawn=self._spawn,
                containers=containers, follow=follow, since=since,
            )  # fmt: skip
            async with contextlib.aclosing(lines):
                async for line in lines:
                    yield line
        finally:
            self._readers -= 1
            if not self._readers and self._readers_idle is not None:
                self._readers_idle.set()
