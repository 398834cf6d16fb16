"""One pod, end to end: create (or reattach) → follow → result → cleanup.

Why a module of its own: this is where the policies live that a caller cares about -
timeouts for scheduling, startup, image pulls and the whole run; what "deleted
externally" means; which events to keep; when the pod is deleted - while the facts
come from the shared informer and :mod:`asyncpod.core.lifecycle` (pure functions).

A :class:`PodRun` is the handle: ``await run`` gives the :class:`PodResult`,
``async for change in run.states()`` the state transitions, ``async for line in
run.logs()`` every container's output. The lifecycle itself is driven by a task owned
by the cluster session, so it progresses whether or not anybody awaits it.

Cancellation: cancelling the task that awaits a run, or calling :meth:`PodRun.cancel`,
deletes the pod (unless the cleanup policy is KEEP) inside a shielded scope, so a
cancelled run never leaks a pod. Deletion uses the pod's own grace period unless
:attr:`RunOptions.delete_grace_period` says otherwise.

What it deliberately does not do: poll (every state comes from the informer), bound
concurrency (that is the launcher's), or raise for a pod that ran and failed (that is
a result; ``result.raise_for_outcome()`` turns it into an exception).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import anyio

from asyncpod.core import lifecycle
from asyncpod.core.informer import PodInformer, PodSubscription
from asyncpod.errors import (
    AsyncpodError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TransientError,
)
from asyncpod.kube.logs import LogFollower, LogLine
from asyncpod.kube.watch import DELETED
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import (
    RUN_ID_LABEL,
    TASK_KEY_ANNOTATION,
    PodSpec,
)

if TYPE_CHECKING:
    from asyncpod.kube.client import KubeClient

__all__ = ["CREATE_ATTEMPT_ANNOTATION", "Cleanup", "PodRun", "RunOptions"]

#: A random token per create attempt: proof that a pod found after a cut-off POST is
#: the one this run made (and so may be deleted).
CREATE_ATTEMPT_ANNOTATION = "asyncpod.dev/create-attempt"

logger = logging.getLogger("asyncpod.runner")


class Cleanup(str, enum.Enum):
    """What happens to the pod once its run is over."""

    DELETE = "delete"
    """Always delete it (the default: nothing outlives the run)."""
    KEEP = "keep"
    """Never delete it, not even on cancellation (for debugging)."""
    DELETE_ON_SUCCESS = "delete-on-success"
    """Delete it when it succeeded; keep failed pods for inspection."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Policies for one run. Timeouts are seconds; ``None`` turns one off.

    ``schedule_timeout``: from creation until the pod is bound to a node.
    ``startup_timeout``: from binding until a main container runs (init containers and
    image pulls included). ``image_pull_timeout``: how long ErrImagePull /
    ImagePullBackOff may last before the run fails (registries hiccup; a typo does
    not fix itself). ``deadline``: the whole run, from creation. A timed-out pod is
    deleted (unless cleanup is KEEP) and its result says which limit passed.
    ``log_drain_timeout`` bounds how long cleanup waits for open log readers to
    read what the containers wrote before the pod is deleted. ``delete_retry_window``
    is how long a failing delete is retried (API server down or restarting) before
    the error is reported.
    """

    schedule_timeout: float | None = 300.0
    startup_timeout: float | None = 600.0
    image_pull_timeout: float | None = 120.0
    deadline: float | None = None
    cleanup: Cleanup = Cleanup.DELETE
    delete_grace_period: int | None = None
    collect_events: bool = True
    log_drain_timeout: float = 30.0
    delete_retry_window: float = 60.0

    def __post_init__(self) -> None:
        for name in ("schedule_timeout", "startup_timeout", "image_pull_timeout", "deadline"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"RunOptions.{name} must be positive or None, got {value}")


@dataclass(slots=True)
class _Clock:
    """Monotonic instants of the milestones the timeouts are measured from."""

    created: float = field(default_factory=time.monotonic)
    scheduled: float | None = None
    started: float | None = None
    blocked_since: float | None = None


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
        self._on_done = on_done
        self._main = spec.container_name if spec is not None else None
        self._created = asyncio.Event()
        self._finished = asyncio.Event()
        self._result: PodResult | None = None
        self._error: BaseException | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False
        self._subscription: PodSubscription | None = None
        self._latest: dict[str, Any] | None = None
        self._changes: list[lifecycle.StateChange] = []
        self._changed = asyncio.Event()
        # Open log readers: cleanup waits for them to drain before deleting the pod.
        self._readers = 0
        self._readers_idle = asyncio.Event()
        self._readers_idle.set()
        self._winding_down = False
        self._post_sent = False
        self._create_attempt = ""

    def __repr__(self) -> str:
        state = self._changes[-1].state.value if self._changes else "new"
        done = f" outcome={self._result.outcome.value}" if self._result else ""
        return f"<PodRun {self.namespace}/{self.name or '?'} state={state}{done}>"

    # ------------------------------------------------------------------ public API
    def __await__(self) -> Any:
        return self.result().__await__()

    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name or '?'}"

    @property
    def pod(self) -> dict[str, Any] | None:
        """The latest version of the pod seen on the watch (raw dict; do not mutate)."""
        return self._latest

    async def created(self) -> None:
        """Wait until the pod exists (or the run failed before that: then raise)."""
        waiter = asyncio.ensure_future(self._created.wait())
        finished = asyncio.ensure_future(self._finished.wait())
        try:
            await asyncio.wait({waiter, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            finished.cancel()
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
        """Every observed state change, from the first one, until the run ends."""
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
        """The run's lifecycle; owned by the cluster session's task group. Never raises."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                if self._cancel_requested:
                    scope.cancel()
                await self._create_or_attach()
                self._result = await self._follow()
            except AsyncpodError as error:
                self._error = error
            except Exception as error:  # a bug of ours must not take the session down
                logger.exception("run %s failed unexpectedly", self.ref)
                self._error = error
        with anyio.CancelScope(shield=True):
            try:
                await self._finish(cancelled=scope.cancel_called)
            except Exception as error:  # noqa: BLE001 - reported through the handle
                logger.warning("cleanup of %s failed: %s", self.ref, error)
                if self._error is None and self._result is None:
                    self._error = error
            finally:
                if self._subscription is not None:
                    self._subscription.close()
                self._finished.set()
                self._changed.set()
                if self._on_done is not None:
                    self._on_done(self)

    async def _create_or_attach(self) -> None:
        if self.spec is None:  # attach to an existing pod
            await self._attach_existing()
            return
        # We always choose the name ourselves (not generateName): a run cancelled while
        # its POST is on the wire can then still find, and delete, the pod it made.
        generated = self.name is None
        for _attempt in range(3):
            if generated:
                self.name = f"asyncpod-{secrets.token_hex(5)}"
            self._create_attempt = secrets.token_hex(8)
            manifest = self.spec.to_manifest(  # validated by Cluster.start
                namespace=self.namespace, name=self.name, labels=self._extra_labels
            )
            manifest["metadata"]["annotations"][CREATE_ATTEMPT_ANNOTATION] = self._create_attempt
            assert self.name is not None
            if self._subscription is not None:
                self._subscription.close()
            self._subscription = self._informer.subscribe(self.name)
            self._post_sent = True
            try:
                created = await self._client.request(
                    "POST",
                    f"/api/v1/namespaces/{self.namespace}/pods",
                    json=manifest,
                    pod=self.ref,
                )
                break
            except ConflictError:
                if generated:
                    continue  # a namesake of a random name: draw another
                created = await self._reattach_after_conflict()
                break
        else:
            raise ConflictError(
                f"no free pod name after 3 tries in {self.namespace}",
                status=409,
                reason="AlreadyExists",
            )
        self.name = created["metadata"]["name"]
        self.uid = created["metadata"]["uid"]
        self._subscription.pin(str(self.uid))
        self._observe(created)
        self._created.set()

    async def _reattach_after_conflict(self) -> dict[str, Any]:
        """409 on a deterministic name: reattach if the pod is ours, else refuse."""
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        existing: dict[str, Any] = await self._client.request("GET", path, pod=self.ref)
        metadata = existing.get("metadata", {})
        labels = metadata.get("labels") or {}
        annotations = metadata.get("annotations") or {}
        same_run = self.run_id is None or labels.get(RUN_ID_LABEL) == self.run_id
        same_task = annotations.get(TASK_KEY_ANNOTATION) == self.task_key
        if not (same_run and same_task):
            raise ConflictError(
                f"pod {self.ref} exists but belongs to another run or task (run-id "
                f"{labels.get(RUN_ID_LABEL)!r}, task {annotations.get(TASK_KEY_ANNOTATION)!r})",
                status=409,
                reason="AlreadyExists",
                pod=self.ref,
            )
        if metadata.get("deletionTimestamp"):
            raise ConflictError(
                f"pod {self.ref} from an earlier attempt is being deleted; retry later",
                status=409,
                reason="AlreadyExists",
                pod=self.ref,
            )
        self.reattached = True
        logger.info("reattached to existing pod %s (uid %s)", self.ref, metadata.get("uid"))
        return existing

    async def _attach_existing(self) -> None:
        assert self.name is not None
        # The shared watch usually knows the pod already: thousands of attaches (a
        # triggerer restarting) then cost no GET. A miss (a pod newer than the cache,
        # another incarnation of the name) is settled by the API server.
        await self._informer.wait_synced()
        pod = self._informer.get(self.name)
        if pod is None or (self.uid is not None and pod["metadata"]["uid"] != self.uid):
            path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
            pod = await self._client.request("GET", path, pod=self.ref)
            assert pod is not None
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
        self.reattached = True
        self._main = self._main or _main_container_of(pod)
        self._subscription = self._informer.subscribe(self.name, uid=uid)
        self._observe(pod)
        self._created.set()

    def _observe(
        self, pod: dict[str, Any], *, deleted: bool = False
    ) -> lifecycle.StateChange | None:
        change = lifecycle.transition(self._latest, pod, deleted=deleted)
        self._latest = pod
        if change is not None:
            self._changes.append(change)
            self._changed.set()
        return change

    async def _follow(self) -> PodResult:
        """Consume the pod's changes until an outcome is decided."""
        assert self._subscription is not None
        assert self._latest is not None
        clock = _Clock()
        pod = self._latest
        while True:
            verdict = self._judge(pod, clock)
            if verdict is not None:
                return verdict
            wait = self._next_deadline(clock)
            try:
                if wait is None:
                    change = await self._subscription.next()
                else:
                    change = await asyncio.wait_for(self._subscription.next(), max(wait, 0.0))
            except asyncio.TimeoutError:
                continue  # a deadline passed: _judge decides
            if change.type == DELETED:
                self._observe(change.pod, deleted=True)
                if lifecycle.is_terminal(change.pod):
                    return self._terminal_result(change.pod)
                outcome = Outcome.CANCELLED if self._cancel_requested else Outcome.DELETED
                return lifecycle.build_result(
                    change.pod, main_container=self._main, outcome=outcome
                )
            pod = change.pod
            self._observe(pod)

    def _terminal_result(self, pod: dict[str, Any]) -> PodResult:
        return self._with_task(lifecycle.build_result(pod, main_container=self._main))

    def _with_task(self, result: PodResult) -> PodResult:
        if self.task_key is None or result.task_key == self.task_key:
            return result
        return replace(result, task_key=self.task_key)

    def _judge(self, pod: dict[str, Any], clock: _Clock) -> PodResult | None:
        """Decide from the latest pod and the clock whether the run is over."""
        now = time.monotonic()
        options = self.options
        # Terminal, or the main container exited while ordinary sidecars keep the pod
        # Running: either way the run is over (cleanup stops the sidecars).
        if lifecycle.is_terminal(pod) or lifecycle.main_finished(pod, main_container=self._main):
            return self._terminal_result(pod)
        state = lifecycle.pod_state(pod)
        if clock.scheduled is None and state is not lifecycle.PodState.PENDING:
            clock.scheduled = now
        if clock.started is None and state is lifecycle.PodState.RUNNING:
            clock.started = now
        blocked = lifecycle.blocking_reason(pod) if clock.started is None else None
        if blocked is not None:
            reason, message = blocked
            if lifecycle.is_fatal_wait(reason):
                return self._timed_out(pod, Outcome.FAILED, reason, message)
            if reason in (Reason.ERR_IMAGE_PULL, Reason.IMAGE_PULL_BACK_OFF):
                clock.blocked_since = clock.blocked_since or now
                limit = options.image_pull_timeout
                if limit is not None and now - clock.blocked_since >= limit:
                    return self._timed_out(pod, Outcome.FAILED, reason, message)
        else:
            clock.blocked_since = None
        if options.deadline is not None and now - clock.created >= options.deadline:
            return self._timed_out(
                pod, Outcome.TIMED_OUT, Reason.RUN_TIMEOUT,
                f"the run took longer than its {options.deadline:g}s deadline",
            )  # fmt: skip
        if clock.scheduled is None:
            limit = options.schedule_timeout
            if limit is not None and now - clock.created >= limit:
                reason, message = _unschedulable(pod) or (
                    Reason.SCHEDULE_TIMEOUT,
                    f"not scheduled within {limit:g}s",
                )
                return self._timed_out(pod, Outcome.TIMED_OUT, reason, message)
        elif clock.started is None:
            limit = options.startup_timeout
            if limit is not None and now - clock.scheduled >= limit:
                reason, message = blocked or (
                    Reason.STARTUP_TIMEOUT,
                    f"no container running within {limit:g}s of scheduling",
                )
                return self._timed_out(pod, Outcome.TIMED_OUT, reason, message)
        return None

    def _next_deadline(self, clock: _Clock) -> float | None:
        """Seconds until the earliest limit that could still pass, or None."""
        now = time.monotonic()
        options = self.options
        candidates: list[float] = []
        if options.deadline is not None:
            candidates.append(clock.created + options.deadline - now)
        if clock.scheduled is None and options.schedule_timeout is not None:
            candidates.append(clock.created + options.schedule_timeout - now)
        if (
            clock.scheduled is not None
            and clock.started is None
            and options.startup_timeout is not None
        ):
            candidates.append(clock.scheduled + options.startup_timeout - now)
        if clock.blocked_since is not None and options.image_pull_timeout is not None:
            candidates.append(clock.blocked_since + options.image_pull_timeout - now)
        return min(candidates) if candidates else None

    def _timed_out(
        self, pod: dict[str, Any], outcome: Outcome, reason: str, message: str | None
    ) -> PodResult:
        return self._with_task(
            lifecycle.build_result(
                pod, main_container=self._main, outcome=outcome, reason=reason, message=message
            )
        )

    # ------------------------------------------------------------------ the end
    async def _finish(self, *, cancelled: bool) -> None:
        """Build the cancelled result if needed, collect events, clean up."""
        self._winding_down = True  # log readers: the containers are as done as they get
        self._changed.set()
        if cancelled and self._result is None and self._error is None:
            if self._latest is not None:
                self._result = self._with_task(
                    lifecycle.build_result(
                        self._latest, main_container=self._main, outcome=Outcome.CANCELLED
                    )
                )
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
        if self._should_delete(result):
            if self._readers and not cancelled:
                # Let log readers drain what the containers wrote before the pod goes.
                with anyio.move_on_after(self.options.log_drain_timeout):
                    await self._readers_idle.wait()
            await self._delete()

    async def _find_pod_of_cut_create(self) -> None:
        """The POST was cut off (cancelled): did the server create the pod anyway?

        Ours only if it carries this attempt's create-attempt token. The server may finish the
        create a moment after we gave up on it, so look a few times.
        """
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        for attempt in range(4):
            try:
                pod: dict[str, Any] = await self._client.request("GET", path, pod=self.ref)
            except NotFoundError:
                await asyncio.sleep(0.25 * (attempt + 1))
                continue
            except AsyncpodError:
                return
            annotations = pod.get("metadata", {}).get("annotations") or {}
            if annotations.get(CREATE_ATTEMPT_ANNOTATION) == self._create_attempt:
                self.uid = pod["metadata"]["uid"]
                self._latest = self._latest or pod
            return

    def _should_delete(self, result: PodResult | None) -> bool:
        policy = self.options.cleanup
        if policy is Cleanup.KEEP:
            return False
        if result is not None and result.outcome is Outcome.DELETED:
            return False
        if policy is Cleanup.DELETE_ON_SUCCESS:
            # A pod that failed stays for inspection; one that has not finished
            # (cancelled, timed out, stuck pulling its image) would leak, so it goes.
            finished = self._latest is not None and lifecycle.is_terminal(self._latest)
            return result is None or result.ok or not finished
        return True

    async def _with_events(self, result: PodResult) -> PodResult:
        body = await self._client.request(
            "GET",
            f"/api/v1/namespaces/{self.namespace}/events",
            params={"fieldSelector": f"involvedObject.uid={self.uid}"},
            pod=self.ref,
        )
        events = lifecycle.events_from_list(body) if isinstance(body, dict) else ()
        return replace(result, events=events)

    async def _delete(self) -> None:
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if self.options.delete_grace_period is not None:
            body["gracePeriodSeconds"] = self.options.delete_grace_period
        if self.uid:
            body["preconditions"] = {"uid": self.uid}  # never delete a namesake
        # A pod we fail to delete is a leak, so keep trying for a while when the API
        # server is unreachable or restarting (it answers 403 until RBAC has synced).
        deadline = time.monotonic() + self.options.delete_retry_window
        attempt = 0
        while True:
            try:
                await self._client.request(
                    "DELETE",
                    f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                    json=body,
                    pod=self.ref,
                )
                return
            except (NotFoundError, ConflictError):
                return  # already gone, or a namesake with another uid: not ours
            except (TransientError, ForbiddenError):
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
                attempt += 1

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
                raise ValueError(f"pod {self.ref} has no container {sorted(unknown)}")
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


def _main_container_of(pod: dict[str, Any]) -> str | None:
    annotations = pod.get("metadata", {}).get("annotations") or {}
    default = annotations.get("kubectl.kubernetes.io/default-container")
    if default:
        return str(default)
    containers = pod.get("spec", {}).get("containers") or []
    return str(containers[0]["name"]) if containers else None


def _unschedulable(pod: dict[str, Any]) -> tuple[str, str] | None:
    for condition in pod.get("status", {}).get("conditions") or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == Reason.UNSCHEDULABLE
        ):
            return Reason.UNSCHEDULABLE, str(condition.get("message") or "")
    return None
