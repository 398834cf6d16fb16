"""One pod, end to end: create (or reattach) → follow → result → cleanup.

Why a module of its own: this is where the policies live that a caller cares about -
timeouts for scheduling, startup, image pulls and the whole run; what "deleted
externally" means; which events to keep; when the pod is deleted - while the facts
come from the shared informer and :mod:`asyncpod.core.lifecycle` (pure functions).

A :class:`PodRun` is the handle: ``await run`` gives the :class:`PodResult`,
``async for change in run.states()`` the state transitions, ``async for line in
run.logs()`` every container's output. The lifecycle itself is driven by a task owned
by the cluster session, so it progresses whether or not anybody awaits it.

Cancellation: cancelling the task that awaits a run, calling :meth:`PodRun.cancel`,
closing the session, or the event loop shutting down (every task cancelled at once)
deletes the pod (unless the cleanup policy is KEEP). The cleanup sits in ``finally``
and completes even when its task is cancelled again meanwhile
(:mod:`asyncpod.core.shielding`); every retry in it has a window, so it is bounded.
Deletion uses the pod's own grace period unless :attr:`RunOptions.delete_grace_period`
says otherwise.

Faults: a create that meets an unreachable or restarting API server is retried for
:attr:`RunOptions.create_retry_window` with the same name and the same attempt token,
so a create whose answer was lost is recognised (409 + our token = our pod) and no
second pod is made. The decisions themselves (each state, each deadline, each 409)
are pure functions in :mod:`asyncpod.core.policy`.

What it deliberately does not do: poll (every state comes from the informer), bound
concurrency (that is the launcher's), or raise for a pod that ran and failed (that is
a result; ``result.raise_for_outcome()`` turns it into an exception).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from asyncpod.core import lifecycle
from asyncpod.core.flag import Flag
from asyncpod.core.informer import PodInformer, PodSubscription
from asyncpod.core.policy import (
    CREATE_ATTEMPT_ANNOTATION,
    Cleanup,
    ConflictVerdict,
    RunClock,
    RunOptions,
    Verdict,
    clock_from_pod,
    judge,
    next_deadline,
    resolve_conflict,
    should_delete,
)
from asyncpod.core.shielding import complete_despite_cancellation
from asyncpod.errors import (
    AsyncpodError,
    ClosedError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    OptionError,
    ServerUnreachableError,
    TransientError,
    UnauthorizedError,
)
from asyncpod.kube.logs import LogFollower, LogLine
from asyncpod.kube.pods import Pods
from asyncpod.kube.watch import DELETED
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import RUN_ID_LABEL, TASK_KEY_ANNOTATION, PodSpec

if TYPE_CHECKING:
    from asyncpod.kube.client import KubeClient

__all__ = ["CREATE_ATTEMPT_ANNOTATION", "Cleanup", "PodRun", "RunOptions"]

logger = logging.getLogger("asyncpod.runner")

#: How many random names a create draws before giving up on 409s for namesakes.
_NAME_DRAWS = 3


def _backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures of a create/delete/get."""
    return float(min(0.25 * 2**failures, 5.0))


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


def _slim(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What an old state change keeps of its pod: identity, phase, node."""
    metadata = pod.get("metadata") or {}
    return {
        "metadata": {k: metadata[k] for k in ("name", "namespace", "uid") if k in metadata},
        "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName")},
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


_E = TypeVar("_E", bound=BaseException)


def kept_on_the_run(error: _E) -> _E:
    """``error``, fit to be kept on its run: without tracebacks (its causes' neither).

    Caught in the run's own task, an error's traceback runs through frames whose
    locals hold the run (and so may its cause's or context's). Kept on the run as it
    is, it would close a reference cycle (run → error → traceback → frame → run) that
    only a full GC pass frees, and ``asyncpod batch`` runs without those
    (asyncpod/cli/heap.py; tests/integration/core/test_garbage.py). Dropping the
    tracebacks is safe whoever else holds the error (clearing frames is not: one may
    belong to a suspended coroutine, which clearing would close). What failed is in
    the error's message, and raised again from ``result()`` it gets a new traceback.
    """
    seen: set[int] = set()
    chain: list[BaseException | None] = [error]
    while chain:
        chained = chain.pop()
        if chained is None or id(chained) in seen:
            continue
        seen.add(id(chained))
        chained.__traceback__ = None
        chain += (chained.__cause__, chained.__context__)
    return error


class PodRun:
    """The handle of one pod's run. Create it with ``cluster.start(spec)``.

    ``await run`` (or ``await run.result()``) returns the :class:`PodResult`; it raises
    only when the pod could not be created or followed at all (an invalid spec, a
    forbidden namespace, ...). ``name``/``uid`` are known once the pod exists
    (``await run.created()``).
    """

    def __init__(
        self,
        *,
        client: KubeClient,
        informer: PodInformer,
        namespace: str,
        spec: PodSpec | None,
        options: RunOptions,
        name: str | None = None,
        uid: str | None = None,
        run_id: str | None = None,
        extra_labels: dict[str, str] | None = None,
        on_done: Callable[[PodRun], None] | None = None,
    ) -> None:
        self._client = client
        self._pods = Pods(client)
        self._informer = informer
        self.namespace = namespace
        self.spec = spec
        self.options = options
        self.name = name
        self.uid = uid
        self.run_id = run_id
        self.task_key = spec.task_key if spec is not None else None
        self.reattached = False
        self._extra_labels = extra_labels or {}
        self._done_callbacks: list[Callable[[PodRun], None]] = [on_done] if on_done else []
        self._main = spec.container_name if spec is not None else None
        self._created = Flag()
        self._finished = Flag()
        self._settled = Flag()  # created, or finished without a pod
        self._result: PodResult | None = None
        self._error: AsyncpodError | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False
        self._subscription: PodSubscription | None = None
        self._latest: dict[str, Any] | None = None
        self._changes: list[lifecycle.StateChange] = []
        self._last_change_slim = True  # no change yet
        self._changed = Flag()
        # Open log readers: cleanup waits for them to drain before deleting the pod.
        self._readers = 0
        self._readers_idle = Flag()
        self._readers_idle.set()
        self._winding_down = False
        self._post_sent = False
        self._create_attempt = ""
        # Transport failures the client had seen when this run began: more since then
        # means the API server was unreachable during the run (see _denied_by_restart).
        self._connection_errors_at_start = client.statistics().connection_errors

    def __repr__(self) -> str:
        state = self._changes[-1].state.value if self._changes else "new"
        done = f" outcome={self._result.outcome.value}" if self._result else ""
        return f"<PodRun {self.namespace}/{self.name or '?'} state={state}{done}>"

    # ------------------------------------------------------------------ public API
    def __await__(self) -> Any:
        return self.result().__await__()

    def done(self) -> bool:
        return self._finished.is_set()

    def add_done_callback(self, callback: Callable[[PodRun], None]) -> None:
        """Call ``callback(run)`` once the run has ended (at once if it has)."""
        if self.done():
            callback(self)
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
    def pod(self) -> dict[str, Any] | None:
        """The latest version of the pod seen on the watch (a dict; do not mutate).

        Metadata and status are whole; of the spec, the scalar fields and each
        container's name, image and restart policy (:func:`lifecycle.project`). GET the
        pod for the rest.
        """
        return self._latest

    async def created(self) -> None:
        """Wait until the pod exists (or the run failed before that: then raise)."""
        await self._settled.wait()
        if not self._created.is_set() and self._error is not None:
            raise self._error

    async def result(self) -> PodResult:
        """Wait for the outcome. Cancelling the waiting task cancels the run (pod deleted)."""
        try:
            await self._finished.wait()
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
            if self._scope is not None:
                self._scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._finished.wait()
        return self._result

    async def states(self) -> AsyncGenerator[lifecycle.StateChange, None]:
        """Every observed state change, from the first one, until the run ends.

        To keep a run's memory small, only the latest change carries the full pod in
        ``change.pod``; earlier ones keep the pod's identity, phase and node.
        """
        index = 0
        while True:
            while index < len(self._changes):
                yield self._changes[index]
                index += 1
            if self.done():
                return
            self._changed.clear()
            await self._changed.wait()

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
        return self._logs(containers, follow=follow, since=since or {})

    # ------------------------------------------------------------------ the driver
    async def _drive(self) -> None:
        """The run's lifecycle; owned by the cluster session's task group.

        Its cleanup sits in ``finally`` and completes even if this task is cancelled
        from outside (the session's task group, loop shutdown) and then cancelled
        again: a run that started a create always ends deleting what it made.
        """
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._cancel_requested:
                    scope.cancel()
                try:
                    await self._create_or_attach()
                    self._result = await self._follow()
                except ClosedError:
                    # The session is closing: its informer stopped a moment before the
                    # session's cancellation reached this run. The run is cancelled with
                    # it (the wind-up below builds that result and deletes the pod).
                    pass
                except AsyncpodError as error:
                    self._error = kept_on_the_run(error)
                except Exception as error:  # a bug of ours must not take the session down
                    logger.exception("run %s failed unexpectedly", self.ref)
                    self._error = AsyncpodError(
                        f"run {self.ref} failed unexpectedly: {type(error).__name__}: {error}"
                    )
                    self._error.__cause__ = kept_on_the_run(error)
        finally:
            await complete_despite_cancellation(self._wind_up())

    async def _wind_up(self) -> None:
        cancelled = self._result is None and self._error is None
        try:
            await self._finish(cancelled=cancelled)
        except Exception as error:  # noqa: BLE001 - reported through the handle
            logger.warning("cleanup of %s failed: %s", self.ref, error)
            if self._error is None and self._result is None:
                self._error = (
                    kept_on_the_run(error)
                    if isinstance(error, AsyncpodError)
                    else AsyncpodError(f"cleanup of {self.ref} failed: {error}")
                )
        finally:
            if self._subscription is not None:
                self._subscription.close()
            self._finished.set()
            self._settled.set()
            self._changed.set()
            for callback in self._done_callbacks:
                callback(self)

    async def _create_or_attach(self) -> None:
        if self.spec is None:  # attach to an existing pod
            await self._attach_existing()
        else:
            created = await self._create()
            self.name = created["metadata"]["name"]
            self.uid = created["metadata"]["uid"]
            assert self._subscription is not None
            self._subscription.pin(str(self.uid))
            self._observe(created)
        self._created.set()
        self._settled.set()

    async def _create(self) -> dict[str, Any]:
        """POST the pod, riding through an API server outage; never make two pods.

        We always choose the name ourselves (not generateName) and mark the create
        with a random token kept across its retries: a create whose answer was lost,
        or a run cancelled while its POST was on the wire, can then still find its
        pod (409 + our token = ours) and adopt or delete it.
        """
        assert self.spec is not None
        generated = self.name is None
        deadline = time.monotonic() + self.options.create_retry_window
        for _draw in range(_NAME_DRAWS if generated else 1):
            if generated:
                self.name = f"asyncpod-{secrets.token_hex(5)}"
            assert self.name is not None
            self._create_attempt = secrets.token_hex(8)
            manifest = self.spec.to_manifest(  # validated by Cluster.start
                namespace=self.namespace, name=self.name, labels=self._extra_labels
            )
            manifest["metadata"]["annotations"][CREATE_ATTEMPT_ANNOTATION] = self._create_attempt
            if self._subscription is not None:
                self._subscription.close()
            self._subscription = self._informer.subscribe(self.name)
            created = await self._post_until_answered(manifest, deadline, generated=generated)
            if created is not None:
                return created
        raise ConflictError(
            f"no free pod name after {_NAME_DRAWS} tries in {self.namespace}",
            status=409,
            reason="AlreadyExists",
        )

    async def _post_until_answered(
        self, manifest: dict[str, Any], deadline: float, *, generated: bool
    ) -> dict[str, Any] | None:
        """The created (or adopted) pod; None when a random name was taken."""
        failures = 0
        while True:
            sent_before, self._post_sent = self._post_sent, True
            try:
                return await self._pods.create(self.namespace, manifest)
            except ServerUnreachableError:
                # The connection never opened: this POST cannot have created anything.
                self._post_sent = sent_before
                raise
            except ConflictError as conflict:
                existing = await self._get_until_answered(deadline)
                if existing is None:
                    failures += 1
                    if time.monotonic() >= deadline:
                        raise
                    await anyio.sleep(_backoff(failures))
                    continue  # the namesake went away: create again
                verdict = resolve_conflict(
                    existing,
                    token=self._create_attempt,
                    generated_name=generated,
                    run_id=self.run_id,
                    task_key=self.task_key,
                    run_id_label=RUN_ID_LABEL,
                    task_key_annotation=TASK_KEY_ANNOTATION,
                )
                return self._after_conflict(verdict, existing, conflict)
            except (TransientError, ForbiddenError, UnauthorizedError) as error:
                if not isinstance(error, TransientError) and not self._denied_by_restart():
                    raise  # a missing permission: say so at once
                if time.monotonic() >= deadline:
                    raise
                failures += 1
                logger.info("create of %s: %s; retrying", self.ref, error)
                await anyio.sleep(_backoff(failures))

    def _denied_by_restart(self) -> bool:
        """Whether a 401/403 may be a restarted API server rather than a missing right.

        A kube-apiserver that has just restarted denies requests until its authorizer
        has synced RBAC (seen here: 403 with "clusterrole ... not found" for a few
        seconds). So a denial after the client met connection failures during this
        run is retried within the window; one without is a missing permission.
        """
        return self._client.statistics().connection_errors > self._connection_errors_at_start

    def _after_conflict(
        self, verdict: ConflictVerdict, existing: dict[str, Any], conflict: ConflictError
    ) -> dict[str, Any] | None:
        metadata = existing.get("metadata") or {}
        if verdict is ConflictVerdict.OURS:
            logger.info("create of %s was answered late: adopting the pod", self.ref)
            return existing
        if verdict is ConflictVerdict.OTHER_NAME:
            return None
        if verdict is ConflictVerdict.REATTACH:
            self.reattached = True
            logger.info("reattached to existing pod %s (uid %s)", self.ref, metadata.get("uid"))
            return existing
        labels = metadata.get("labels") or {}
        annotations = metadata.get("annotations") or {}
        if verdict is ConflictVerdict.BEING_DELETED:
            message = f"pod {self.ref} from an earlier attempt is being deleted; retry later"
        else:
            message = (
                f"pod {self.ref} exists but belongs to another run or task (run-id "
                f"{labels.get(RUN_ID_LABEL)!r}, task {annotations.get(TASK_KEY_ANNOTATION)!r})"
            )
        raise ConflictError(message, status=409, reason="AlreadyExists", pod=self.ref) from (
            conflict
        )

    async def _get_until_answered(self, deadline: float) -> dict[str, Any] | None:
        """GET our pod by name, retrying while the API server is unreachable; None if 404."""
        assert self.name is not None
        failures = 0
        while True:
            try:
                return await self._pods.get(self.namespace, self.name)
            except NotFoundError:
                return None
            except (TransientError, ForbiddenError, UnauthorizedError) as error:
                if not isinstance(error, TransientError) and not self._denied_by_restart():
                    raise
                if time.monotonic() >= deadline:
                    raise
                failures += 1
                await anyio.sleep(_backoff(failures))

    async def _attach_existing(self) -> None:
        assert self.name is not None
        # Subscribe before reading, so no change between the read and the
        # subscription is missed; the informer may already know the pod.
        self._subscription = self._informer.subscribe(self.name, uid=self.uid)
        pod = self._subscription.latest
        if pod is None:
            deadline = time.monotonic() + self.options.create_retry_window
            pod = await self._get_until_answered(deadline)
            if pod is None:
                raise NotFoundError(
                    f"pod {self.ref} not found", status=404, reason="NotFound", pod=self.ref
                )
        uid = pod["metadata"]["uid"]
        if self.uid is not None and uid != self.uid:
            raise NotFoundError(
                f"pod {self.ref} now has uid {uid}, not {self.uid}: the pod we ran is gone "
                "and another took its name",
                status=404,
                reason="NotFound",
                pod=self.ref,
            )
        self.uid = uid
        self._subscription.pin(uid)
        self.reattached = True
        self._main = self._main or lifecycle.main_container_name(pod)
        self._observe(pod)

    def _observe(
        self, pod: dict[str, Any], *, deleted: bool = False
    ) -> lifecycle.StateChange | None:
        if not deleted and self._latest is not None and _older(pod, self._latest):
            return None  # a version older than one we already have (read vs. watch)
        change = lifecycle.transition(self._latest, pod, deleted=deleted)
        self._latest = pod
        # One full version of the pod per run: the latest. The change that brought an
        # older version keeps only its identity, phase and node.
        if self._changes and not self._last_change_slim and self._changes[-1].pod is not pod:
            last = self._changes[-1]
            self._changes[-1] = replace(last, pod=_slim(last.pod))
            self._last_change_slim = True
        if change is not None:
            self._changes.append(change)
            self._last_change_slim = False
            self._changed.set()
        return change

    async def _follow(self) -> PodResult:
        """Consume the pod's changes until an outcome is decided."""
        assert self._subscription is not None
        assert self._latest is not None
        pod = self._latest
        if self.reattached:
            clock = clock_from_pod(pod, now=time.monotonic(), wall_now=datetime.now(timezone.utc))
        else:
            clock = RunClock(created=time.monotonic())
        while True:
            now = time.monotonic()
            verdict = judge(pod, clock, self.options, now=now, main_container=self._main)
            if verdict is not None:
                return self._result_of(pod, verdict)
            wait = next_deadline(clock, self.options, now=now)
            change = None
            with anyio.move_on_after(wait):
                change = await self._subscription.next()
            if change is None:
                continue  # a deadline passed: judge decides
            if change.type == DELETED:
                self._observe(change.pod, deleted=True)
                if lifecycle.is_terminal(change.pod):
                    return self._result_of(change.pod, Verdict(None))
                outcome = Outcome.CANCELLED if self._cancel_requested else Outcome.DELETED
                return self._result_of(change.pod, Verdict(outcome))
            self._observe(change.pod)
            assert self._latest is not None
            pod = self._latest

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
    async def _finish(self, *, cancelled: bool) -> None:
        """Build the cancelled result if needed, collect events, clean up."""
        self._winding_down = True  # log readers: the containers are as done as they get
        self._changed.set()
        if cancelled and self._result is None and self._error is None:
            if self._latest is not None:
                self._result = self._result_of(self._latest, Verdict(Outcome.CANCELLED))
            else:
                self._result = PodResult(
                    self.namespace, self.name or "", self.uid,
                    outcome=Outcome.CANCELLED, reason=Reason.CANCELLED,
                    message="cancelled before the pod was created", task_key=self.task_key,
                )  # fmt: skip
        if self.uid is None and self._post_sent:
            await self._find_pod_of_cut_create()
        if self.uid is None:
            return  # nothing was created
        result = self._result
        if result is not None and not result.ok and self.options.collect_events:
            with contextlib.suppress(AsyncpodError):
                result = self._result = await self._with_events(result)
        finished = self._latest is not None and lifecycle.is_terminal(self._latest)
        outcome = result.outcome if result is not None else None
        succeeded = result is not None and result.ok
        if should_delete(self.options, outcome, succeeded=succeeded, pod_finished=finished):
            if self._readers and not cancelled:
                # Let log readers drain what the containers wrote before the pod goes.
                with anyio.move_on_after(self.options.log_drain_timeout):
                    await self._readers_idle.wait()
            await self._delete()

    async def _find_pod_of_cut_create(self) -> None:
        """The POST was cut off or never answered: did the server create the pod anyway?

        Ours only if it carries this create's token. The API server may be down (we
        keep asking for the delete retry window) or finish the create a moment after
        we gave up on it (we look a few times).
        """
        deadline = time.monotonic() + self.options.delete_retry_window
        for attempt in range(4):
            try:
                pod = await self._get_until_answered(deadline)
            except AsyncpodError as error:
                logger.warning("could not check whether %s was created: %s", self.ref, error)
                return
            if pod is None:
                await anyio.sleep(0.25 * (attempt + 1))
                continue
            annotations = pod.get("metadata", {}).get("annotations") or {}
            if annotations.get(CREATE_ATTEMPT_ANNOTATION) == self._create_attempt:
                self.uid = pod["metadata"]["uid"]
                self._latest = self._latest or pod
            return

    async def _with_events(self, result: PodResult) -> PodResult:
        assert self.uid is not None
        items = await self._pods.events_of(self.namespace, self.uid)
        return replace(result, events=lifecycle.events_from_list({"items": items}))

    async def _delete(self) -> None:
        assert self.name is not None
        # A pod we fail to delete is a leak, so keep trying for a while when the API
        # server is unreachable or restarting (it answers 403 until RBAC has synced).
        # The uid precondition means a namesake is never deleted.
        deadline = time.monotonic() + self.options.delete_retry_window
        failures = 0
        while True:
            try:
                await self._pods.delete(
                    self.namespace,
                    self.name,
                    uid=self.uid,
                    grace_period_seconds=self.options.delete_grace_period,
                )
                return
            except (TransientError, ForbiddenError, UnauthorizedError):
                if time.monotonic() >= deadline:
                    raise
                failures += 1
                await anyio.sleep(_backoff(failures))

    # ------------------------------------------------------------------ logs
    async def _logs(
        self, containers: tuple[str, ...] | None, *, follow: bool, since: Mapping[str, str]
    ) -> AsyncGenerator[LogLine, None]:
        self._readers += 1
        self._readers_idle.clear()
        try:
            async for line in self._read_logs(containers, follow=follow, since=since):
                yield line
        finally:
            self._readers -= 1
            if not self._readers:
                self._readers_idle.set()

    async def _read_logs(
        self, containers: tuple[str, ...] | None, *, follow: bool, since: Mapping[str, str]
    ) -> AsyncIterator[LogLine]:
        await self.created()
        pod = self._latest or {}
        spec = pod.get("spec", {})
        inits = [c["name"] for c in spec.get("initContainers") or ()]
        mains = [c["name"] for c in spec.get("containers") or ()]
        if containers is not None:
            unknown = set(containers) - set(inits) - set(mains)
            if unknown:
                raise OptionError(f"pod {self.ref} has no container {sorted(unknown)}")
            inits = [c for c in inits if c in containers]
            mains = [c for c in mains if c in containers]
        queue: asyncio.Queue[LogLine | BaseException | None] = asyncio.Queue(maxsize=1024)

        async def pump() -> None:
            try:
                for name in inits:  # init containers run one after another
                    await self._pump_container(name, queue, follow=follow, since=since.get(name))
                await asyncio.gather(
                    *(
                        self._pump_container(name, queue, follow=follow, since=since.get(name))
                        for name in mains
                    )
                )
                await queue.put(None)
            except asyncio.CancelledError:
                raise
            except BaseException as error:  # noqa: BLE001 - handed to the reader
                await queue.put(error)

        task = asyncio.ensure_future(pump())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _pump_container(
        self,
        container: str,
        queue: asyncio.Queue[LogLine | BaseException | None],
        *,
        follow: bool,
        since: str | None = None,
    ) -> None:
        # Open the log only once the container has started (or the pod is over), so
        # thousands of followers do not hammer the API server with "waiting to start".
        while not (self._container_started(container) or self._container_done(container)):
            if self.done():
                break
            self._changed.clear()
            await self._changed.wait()
        if not self._container_started(container):
            return  # it never ran: no log to read

        async def finished() -> bool:
            return not follow or self._container_done(container)

        follower = LogFollower(
            self._client, self.namespace, str(self.name),
            container=container, container_finished=finished, since_time=since,
        )  # fmt: skip
        try:
            async for line in follower:
                await queue.put(line)
        except NotFoundError:
            return  # the pod is gone; what was delivered is all there is

    def _container_status(self, container: str) -> dict[str, Any] | None:
        status = (self._latest or {}).get("status", {})
        for key in ("initContainerStatuses", "containerStatuses"):
            for item in status.get(key) or ():
                if item.get("name") == container:
                    return item  # type: ignore[no-any-return]
        return None

    def _container_started(self, container: str) -> bool:
        status = self._container_status(container)
        if status is None:
            return False
        state = status.get("state") or {}
        return "running" in state or "terminated" in state

    def _container_done(self, container: str) -> bool:
        if self._winding_down or (self._latest is not None and lifecycle.is_terminal(self._latest)):
            return True
        status = self._container_status(container)
        return status is not None and "terminated" in (status.get("state") or {})
