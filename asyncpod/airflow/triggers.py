"""The deferrable pod trigger: follows one pod through the triggerer's shared session.

Why it exists: the reference trigger GETs its pod every few seconds with a new API
client per call and stores the kubeconfig in the trigger row. This one holds a small
reference (how to reach the cluster: a connection id or a kubeconfig path and context;
the pod's namespace, name, uid and creation resourceVersion; options) and follows its
pod through the session every trigger of the process shares
(:mod:`asyncpod.airflow.sessions`): one watch per (cluster, namespace), the pod found
in that watch's cache, no polling.

Lifecycle, as Airflow 3.3 drives it:

* ``run()`` attaches by uid, streams the requested containers' logs into the task log
  (resuming after a triggerer restart without repeating or losing a line,
  :mod:`asyncpod.airflow.logresume`), waits for the outcome, applies
  ``on_finish_action``, yields exactly one :class:`TriggerEvent` and returns.
* ``cleanup()`` (always; alone on triggerer shutdown or reassignment) deletes nothing.
* ``on_kill()`` (a user's clear / mark, 3.3+) deletes this trigger's own pod - by uid,
  so never a namesake - after checking that the task instance really left this try
  (it is no longer deferred, or a newer try already has its pod).

The event payload is plain JSON (:func:`event_payload`, pure) that
``KubernetesPodOperator.execute_complete`` turns into success, skip or failure.

:class:`AsyncpodPodStartTrigger` is the same trigger for tasks that start in the
triggerer (Airflow 3.3, ``start_from_trigger``): it creates the pod first, from the
DAG's parameters, then follows it the same way.

Imports: Airflow's triggerer imports this module on its event loop when the first
asyncpod trigger arrives, so it holds the trigger classes and their pure decisions
only; the session, aiohttp and the rest (:data:`MACHINERY`) are imported in a worker
thread by :func:`load_machinery` before a trigger first needs them
(``tests/unit/airflow/test_trigger_imports.py`` checks both in a fresh interpreter).

What it deliberately does not do: keep any credential in ``serialize()``, or delete a
pod on ``cleanup()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
from airflow.triggers.base import BaseTrigger, TriggerEvent

from asyncpod.airflow.resumehold import RESUME_HOLD, configured_hold, resume_hold
from asyncpod.airflow.tries import TI_LABEL, TRY_LABEL, TryKey, pod_name_for
from asyncpod.airflow.triggergc import freeze_in_trigger_runner
from asyncpod.errors import AsyncpodError, ConfigError, NotFoundError, UsageError
from asyncpod.results import Outcome, PodResult

if TYPE_CHECKING:
    from asyncpod.airflow.connection import KubeTarget
    from asyncpod.airflow.logresume import CommittedLog
    from asyncpod.airflow.xcom import XComRead
    from asyncpod.core.cluster import Cluster
    from asyncpod.core.runner import PodRun, RunOptions
    from asyncpod.kube.logs import LogLine

__all__ = [
    "FINISH_ACTIONS",
    "KILL_ACTIONS",
    "MACHINERY",
    "PER_POD_KWARGS",
    "START_CLASSPATH",
    "START_OPTION_DEFAULTS",
    "START_TEMPLATE_FIELDS",
    "TI_LABEL",
    "TRY_LABEL",
    "AsyncpodPodStartTrigger",
    "AsyncpodPodTrigger",
    "compact_start_kwargs",
    "event_payload",
    "load_machinery",
    "resumed_worker_deletes",
    "should_delete",
    "trigger_finish_action",
]

FINISH_ACTIONS = ("delete_pod", "delete_succeeded_pod", "delete_active_pod", "keep_pod")
KILL_ACTIONS = ("delete_pod", "keep_pod")
_CLASSPATH = "asyncpod.airflow.triggers.AsyncpodPodTrigger"
#: How long past the pod's termination grace period the XCom sidecar's hand-over is
#: awaited (the kubelet has stopped the sidecar by then; this covers a slow node).
_XCOM_WAIT = 30
START_CLASSPATH = "asyncpod.airflow.triggers.AsyncpodPodStartTrigger"
#: ``asyncpod.airflow.connection.DEFAULT_CONN_ID`` (that module imports the HTTP client;
#: a unit test keeps the two equal).
DEFAULT_CONN_ID = "kubernetes_default"

#: What a trigger runs on, imported in a worker thread before its first use
#: (:func:`load_machinery`): the session, the runs, aiohttp under them, the log resume,
#: the XCom hand-over and the pod builder. ~0.2 s of imports that would otherwise stop
#: the triggerer's loop when its first asyncpod trigger arrives (issue 19: 17 % of the
#: trigger runner's samples).
MACHINERY = (
    "asyncpod.airflow.sessions",
    "asyncpod.airflow.connection",
    "asyncpod.airflow.deletion",
    "asyncpod.airflow.logresume",
    "asyncpod.airflow.xcom",
    "asyncpod.airflow.podbuild",
    "asyncpod.core.cluster",
    "asyncpod.core.runner",
    "asyncpod.spec",
)


def _import_machinery() -> None:
    for name in MACHINERY:
        importlib.import_module(name)


async def load_machinery() -> None:
    """Import :data:`MACHINERY` off the event loop, once per process.

    Airflow's triggerer imports a trigger's module on its loop (``import_string`` in
    ``create_triggers``), so this module imports nothing heavy at module level; each
    trigger awaits this before it touches the session. Once every module is in
    ``sys.modules`` it costs a few dictionary lookups and no thread. Concurrent
    first callers each wait in a thread; Python's per-module import locks make them
    share the one import.
    """
    if all(name in sys.modules for name in MACHINERY):
        return
    await asyncio.to_thread(_import_machinery)


def should_delete(action: str, outcome: str) -> bool:
    """``on_finish_action`` applied to a run's outcome (pure)."""
    if action == "delete_pod":
        return True
    if action == "delete_succeeded_pod":
        return outcome == Outcome.SUCCEEDED.value
    if action == "delete_active_pod":
        # Only a pod that is still running (timed out, say) goes; finished pods stay.
        return outcome in (Outcome.TIMED_OUT.value, Outcome.CANCELLED.value)
    return False


def trigger_finish_action(on_finish_action: str, *, worker_resumes: bool) -> str:
    """The ``on_finish_action`` a trigger applies itself (pure).

    ``worker_resumes``: a worker resumes the task after the trigger fires (the task
    deferred, or it has callbacks). That worker applies ``on_finish_action`` from the
    event (``KubernetesPodOperator.execute_complete``), as the reference does, so the
    trigger keeps the pod: no DELETE on the triggerer's event loop, which every
    deferred task shares, and a task's callbacks (worker only) still see the live pod.
    A trigger run inline by a worker that does not defer deletes the pod itself.
    """
    return "keep_pod" if worker_resumes else on_finish_action


def resumed_worker_deletes(event: Mapping[str, Any], on_finish_action: str) -> bool:
    """Whether the worker that resumes a task deletes the pod its event names (pure).

    Not when the trigger deleted it (``pod_deleted``: a trigger run inline, or one
    serialized by an earlier asyncpod), when no pod was ever made (a start trigger's
    error before its create), or when the pod is gone already (outcome ``deleted``);
    otherwise as ``on_finish_action`` says for the outcome, an error event's too (the
    pod may still run).
    """
    if event.get("pod_deleted") or not event.get("pod_namespace") or not event.get("pod_name"):
        return False
    outcome = str(event.get("outcome"))
    if outcome == Outcome.DELETED.value:
        return False
    return should_delete(on_finish_action, outcome)


def event_payload(
    result: PodResult,
    *,
    xcom: XComRead | None = None,
    skip_on_exit_code: Iterable[int] = (),
    deleted: bool = False,
) -> dict[str, Any]:
    """The JSON the trigger fires for ``result`` (pure; read by execute_complete).

    ``xcom``: what the XCom sidecar handed over (``do_xcom_push``; None otherwise): its
    value goes in the payload, its error fails a run that succeeded.
    """
    exit_code = result.exit_code
    payload: dict[str, Any] = {
        "pod_name": result.name,
        "pod_namespace": result.namespace,
        "pod_uid": result.uid,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "message": result.message,
        "exit_code": exit_code,
        "pod_deleted": deleted,
        "events": [
            f"{e.type} {e.reason}: {e.message}" + (f" (x{e.count})" if e.count > 1 else "")
            for e in result.events
        ],
    }
    if result.ok:
        payload["status"] = "success"
        if xcom is not None:
            if xcom.error is not None:
                payload.update(status="failed", reason="XComError", message=xcom.error)
            else:
                payload["xcom"] = xcom.value
    elif exit_code is not None and exit_code in set(skip_on_exit_code):
        payload["status"] = "skipped"
    elif result.outcome is Outcome.TIMED_OUT:
        payload["status"] = "timeout"
    else:
        payload["status"] = "failed"
    return payload


class AsyncpodPodTrigger(BaseTrigger):
    """Follows one pod to its end; fires one event. Usable without an Airflow DB when
    ``config_file`` is given and ``kubernetes_conn_id`` is None (benchmarks)."""

    def __init__(
        self,
        *,
        pod_name: str,
        pod_namespace: str,
        pod_uid: str | None = None,
        pod_resource_version: str | None = None,
        kubernetes_conn_id: str | None = None,
        config_file: str | None = None,
        cluster_context: str | None = None,
        in_cluster: bool | None = None,
        base_container_name: str = "base",
        get_logs: bool = True,
        container_logs: list[str] | bool = True,
        init_container_logs: list[str] | bool = False,
        container_name_log_prefix_enabled: bool = True,
        startup_timeout: float | None = 120,
        schedule_timeout: float | None = None,
        deadline: float | None = None,
        on_finish_action: str = "delete_pod",
        on_kill_action: str = "delete_pod",
        termination_grace_period: int | None = None,
        do_xcom_push: bool = False,
        skip_on_exit_code: list[int] | None = None,
        log_events_on_failure: bool = True,
        deferred_at: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if on_finish_action not in FINISH_ACTIONS:
            raise UsageError(f"on_finish_action must be one of {FINISH_ACTIONS}")
        if on_kill_action not in KILL_ACTIONS:
            raise UsageError(f"on_kill_action must be one of {KILL_ACTIONS}")
        self.pod_name = pod_name
        self.pod_namespace = pod_namespace
        self.pod_uid = pod_uid
        self.pod_resource_version = pod_resource_version
        self.kubernetes_conn_id = kubernetes_conn_id
        self.config_file = config_file
        self.cluster_context = cluster_context
        self.in_cluster = in_cluster
        self.base_container_name = base_container_name
        self.get_logs = get_logs
        self.container_logs = container_logs
        self.init_container_logs = init_container_logs
        self.container_name_log_prefix_enabled = container_name_log_prefix_enabled
        self.startup_timeout = startup_timeout
        self.schedule_timeout = schedule_timeout
        self.deadline = deadline
        self.on_finish_action = on_finish_action
        self.on_kill_action = on_kill_action
        self.termination_grace_period = termination_grace_period
        self.do_xcom_push = do_xcom_push
        self.skip_on_exit_code = list(skip_on_exit_code or [])
        self.log_events_on_failure = log_events_on_failure
        # When the worker deferred (its wall clock): asyncpod/airflow/resumehold.py.
        self.deferred_at = deferred_at
        self._fired = False
        self._target: KubeTarget | None = None
        self._logs_done = asyncio.Event()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return _CLASSPATH, {
            "pod_name": self.pod_name,
            "pod_namespace": self.pod_namespace,
            "pod_uid": self.pod_uid,
            "pod_resource_version": self.pod_resource_version,
            "kubernetes_conn_id": self.kubernetes_conn_id,
            "config_file": self.config_file,
            "cluster_context": self.cluster_context,
            "in_cluster": self.in_cluster,
            "base_container_name": self.base_container_name,
            "get_logs": self.get_logs,
            "container_logs": self.container_logs,
            "init_container_logs": self.init_container_logs,
            "container_name_log_prefix_enabled": self.container_name_log_prefix_enabled,
            "startup_timeout": self.startup_timeout,
            "schedule_timeout": self.schedule_timeout,
            "deadline": self.deadline,
            "on_finish_action": self.on_finish_action,
            "on_kill_action": self.on_kill_action,
            "termination_grace_period": self.termination_grace_period,
            "do_xcom_push": self.do_xcom_push,
            "skip_on_exit_code": self.skip_on_exit_code,
            "log_events_on_failure": self.log_events_on_failure,
            "deferred_at": self.deferred_at,
        }

    # ------------------------------------------------------------------ run
    async def run(self) -> AsyncIterator[TriggerEvent]:
        # Everything, the shared session included, is released before the yield:
        # dag.test() closes the loop right after the first event, and a triggerer may
        # never resume the generator.
        await load_machinery()
        freeze_in_trigger_runner()  # once per process: triggergc.py says why
        payload = await self._follow()
        if payload.get("outcome") == "deleted" and await self._superseded():
            # A newer try's worker swept this try's pod before the triggerer cancelled
            # this trigger: an event now would resume the newer try with this one's
            # ending (apache/airflow#71580). Airflow cancels a stale trigger; wait.
            self.log.info("pod %s was deleted for a newer try: no event", self.pod_name)
            await anyio.sleep_forever()
        self._fired = True
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _hold(self) -> None:
        """Wait out the resume hold of a pod that ended just after the deferral."""
        if self.deferred_at is None:
            return
        from airflow.configuration import conf

        setting = conf.get("asyncpod", "resume_hold", fallback=None)
        try:
            whole = configured_hold(setting)
        except ConfigError as error:  # the worker refuses it; this pod exists already
            self.log.warning("%s: holding the default %.0f s", error, RESUME_HOLD)
            whole = RESUME_HOLD
        hold = resume_hold(self.deferred_at, time.time(), hold=whole)
        if hold:  # resumehold.py says why
            self.log.info("pod %s ended %.1f s after the deferral: event in %.1f s",
                          self.pod_name, whole - hold, hold)  # fmt: skip
            await anyio.sleep(hold)

    async def _superseded(self) -> bool:
        """Whether the task instance has left this try (never raises: False if unsure)."""
        try:
            return await self._left_this_try()
        except Exception as error:  # noqa: BLE001 - unsure: fire as before
            self.log.warning("could not check the task instance's try: %s", error)
            return False

    async def _session_target(self) -> KubeTarget:
        from asyncpod.airflow.connection import load_target
        from asyncpod.airflow.sessions import shared_target

        if self._target is None:
            key = (self.kubernetes_conn_id, self.in_cluster, self.config_file,
                   self.cluster_context)  # fmt: skip
            self._target = await shared_target(
                key,
                lambda: load_target(
                    self.kubernetes_conn_id,
                    in_cluster=self.in_cluster,
                    config_file=self.config_file,
                    cluster_context=self.cluster_context,
                ),
            )
        return self._target

    def _options(self) -> RunOptions:
        from asyncpod.core.runner import Cleanup, RunOptions

        schedule = self.schedule_timeout or self.startup_timeout
        return RunOptions(
            schedule_timeout=schedule,
            startup_timeout=self.startup_timeout,
            image_pull_timeout=self.startup_timeout,
            deadline=self.deadline,
            cleanup=Cleanup.KEEP,  # deleting is this trigger's decision, never the session's
            collect_events=True,
        )

    async def _follow(self) -> dict[str, Any]:
        from asyncpod.airflow.sessions import shared_cluster
        from asyncpod.airflow.xcom import read_xcom

        try:
            target = await self._session_target()
            namespace = await self._namespace(target)
            async with shared_cluster(target, namespace) as cluster:
                try:
                    result = await self._result(cluster)
                except NotFoundError as error:
                    return self._error_payload("PodNotFound", str(error))
                # Before the pod is deleted: a triggerer killed during the hold leaves
                # its successor the finished pod to reattach to, not a missing one.
                await self._hold()
                xcom = None
                if self.do_xcom_push and result.ok:
                    # The base container has ended; the sidecar hands the file over.
                    xcom = await read_xcom(
                        cluster.client,
                        self.pod_namespace,
                        self.pod_name,
                        limit=_XCOM_WAIT + (self.termination_grace_period or 30),
                    )
                deleted = False
                if should_delete(self.on_finish_action, result.outcome.value):
                    deleted = await self._delete(cluster, announce=False)
        except AsyncpodError as error:
            return self._error_payload(type(error).__name__, str(error))
        payload = event_payload(
            result,
            xcom=xcom,
            skip_on_exit_code=self.skip_on_exit_code,
            deleted=deleted,
        )
        if payload["status"] not in ("success", "skipped"):
            self._log_failure(payload)
        return payload

    async def _namespace(self, target: KubeTarget) -> str:
        """The pod's namespace (the session is shared per namespace)."""
        return self.pod_namespace

    def _result(self, cluster: Cluster) -> Awaitable[PodResult]:
        """Follow the pod to its result; its logs too, if they are wanted. (Not a
        coroutine itself: one frame less held per deferred task while it waits.)

        Without logs, ``Cluster.follow`` drives the run in this trigger's own task (a
        quarter fewer objects per deferred task than a run of the session's:
        benchmarks/README.md, gc_census ``--trigger``). Taken out once (2026-12-06)
        after an Airflow 3.0.6 e2e test failed with it; that failure was Airflow's
        stale-exit race, which a fast trigger makes likelier and the resume hold
        prevents (asyncpod/airflow/resumehold.py).
        """
        if self.get_logs:
            return self._followed(cluster)
        return cluster.follow(
            self.pod_name,
            uid=self.pod_uid,
            namespace=self.pod_namespace,
            options=self._options(),
            resource_version=self.pod_resource_version,
        )

    async def _followed(self, cluster: Cluster) -> PodResult:
        """The run from :meth:`_obtain`, followed to its result (logs included)."""
        run = await self._obtain(cluster)
        try:
            return await self._wait(cluster, run)
        finally:
            with anyio.CancelScope(shield=True):
                await run.cancel()  # stop following (KEEP: the pod stays)

    async def _obtain(self, cluster: Cluster) -> PodRun:
        """The run to follow: here, attach to the pod the worker made, by uid.

        With the pod's creation resourceVersion (the worker's create answered it), the
        shared watch answers without a GET, also after a triggerer restart.
        """
        return await cluster.attach(
            self.pod_name,
            uid=self.pod_uid,
            namespace=self.pod_namespace,
            options=self._options(),
            resource_version=self.pod_resource_version,
        )

    def _error_payload(self, reason: str, message: str) -> dict[str, Any]:
        self.log.error("pod %s/%s: %s", self.pod_namespace, self.pod_name, message)
        return {
            "status": "error",
            "pod_name": self.pod_name,
            "pod_namespace": self.pod_namespace,
            "pod_uid": self.pod_uid,
            "outcome": Outcome.ERROR.value,
            "reason": reason,
            "message": message,
            "exit_code": None,
            "events": [],
            "pod_deleted": False,
        }

    def _log_failure(self, payload: Mapping[str, Any]) -> None:
        self.log.error(
            "pod %s/%s %s: reason %s, exit code %s, message %s",
            self.pod_namespace, self.pod_name, payload["outcome"],
            payload["reason"], payload["exit_code"], payload["message"],
        )  # fmt: skip
        if self.log_events_on_failure:
            for line in payload["events"]:
                self.log.error("pod event: %s", line)

    async def _wait(self, cluster: Cluster, run: PodRun) -> PodResult:
        from asyncpod.airflow.logresume import CommittedLog, ResumeCommits, annotation_of
        from asyncpod.kube.pods import Pods

        containers = self._log_containers(run)
        if not containers:
            async for _ in run.states():
                pass
            return await run.result()
        commits = ResumeCommits(
            Pods(cluster.client), self.pod_namespace, self.pod_name, str(run.uid),
            committed=annotation_of(run.pod),
        )  # fmt: skip
        log = CommittedLog(commits, self._emit_line)
        self._logs_done = asyncio.Event()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._stream_logs, run, containers, log)
                group.start_soon(self._commit_periodically, log)
                async for _ in run.states():
                    pass
                # The containers are done; give the readers a moment to drain.
                with anyio.move_on_after(30):
                    await self._logs_done.wait()
                group.cancel_scope.cancel()
            await log.flush()  # what the readers left: committed, then logged
        finally:
            log.discard()  # cancelled before its commit: the next trigger logs it
        return await run.result()

    def _emit_line(self, line: LogLine) -> None:
        if self.container_name_log_prefix_enabled:
            self.log.info("[%s] %s", line.container, line.text)
        else:
            self.log.info("%s", line.text)

    @staticmethod
    async def _commit_periodically(log: CommittedLog) -> None:
        from asyncpod.airflow.logresume import COMMIT_INTERVAL

        while True:
            await anyio.sleep(COMMIT_INTERVAL)
            await log.flush()

    def _log_containers(self, run: PodRun) -> tuple[str, ...]:
        from asyncpod.airflow.xcom import SIDECAR_NAME

        if not self.get_logs:
            return ()
        spec = (run.pod or {}).get("spec", {})
        inits = [c["name"] for c in spec.get("initContainers") or ()]
        mains = [c["name"] for c in spec.get("containers") or ()]
        chosen = _choose(inits, self.init_container_logs, default=[])
        chosen += _choose(mains, self.container_logs, default=[self.base_container_name])
        return tuple(name for name in chosen if name != SIDECAR_NAME)  # as the reference

    async def _stream_logs(
        self, run: PodRun, containers: tuple[str, ...], log: CommittedLog
    ) -> None:
        try:
            stream = run.logs(containers=containers, since=log.filter.since())
            async with contextlib.aclosing(stream):
                async for line in stream:
                    if log.offer(line):
                        await log.flush()
        except AsyncpodError as error:
            self.log.warning("reading the logs of %s stopped: %s", run.ref, error)
        finally:
            self._logs_done.set()

    async def _delete(self, cluster: Cluster, *, announce: bool = True) -> bool:
        """Delete this trigger's pod, by uid when it is known (never a namesake).

        ``announce=False`` for the deletion at the pod's end: the event's
        ``pod_deleted`` says it, and the worker that resumes the task logs it
        (``execute_complete``) in the same task log.
        """
        from asyncpod.airflow.deletion import delete_pod

        return await delete_pod(
            cluster.client,
            self.pod_namespace,
            self.pod_name,
            uid=self.pod_uid,
            grace_period=self.termination_grace_period,
            log=self.log,
            announce=announce,
        )

    # ------------------------------------------------------------------ endings
    async def cleanup(self) -> None:
        """Triggerer shutdown, reassignment, or the end of a run: never deletes the pod."""

    async def on_kill(self) -> None:
        """A user cleared or marked the task (Airflow 3.3+): delete this try's pod.

        The deletion completes even if the triggerer cancels this again meanwhile
        (seen here: a second cancellation of the trigger's task ended an on_kill
        between its check and its DELETE, silently, and the pod stayed).
        """
        if self._fired or self.on_kill_action == "keep_pod":
            return
        await load_machinery()
        from asyncpod.core.shielding import complete_despite_cancellation

        await complete_despite_cancellation(self._kill())

    async def _kill(self) -> None:
        try:
            from asyncpod.airflow.sessions import shared_cluster

            if not await self._left_this_try():
                self.log.info("on_kill: the task instance is still deferred on this try; pod kept")
                return
            self.log.info("on_kill: the task instance left this try; deleting its pod")
            target = await self._session_target()
            async with shared_cluster(target, self.pod_namespace) as cluster:
                await self._delete(cluster)
        except Exception as error:  # noqa: BLE001 - on_kill must not fail the triggerer
            self.log.warning("could not delete pod %s: %s", self.pod_name, error)

    async def _left_this_try(self) -> bool:
        ti = self.task_instance
        if ti is None:
            return False
        states = await _task_states(ti)
        key = f"{ti.task_id}_{ti.map_index}" if ti.map_index >= 0 else ti.task_id
        state = states.get(ti.run_id, {}).get(key)
        if state != "deferred":
            return True
        # Deferred again: a newer try may already have deferred with its own pod.
        from asyncpod.airflow.sessions import shared_cluster
        from asyncpod.core.cluster import MANAGED_SELECTOR

        target = await self._session_target()
        async with shared_cluster(target, self.pod_namespace) as cluster:
            informer = cluster.informer(self.pod_namespace, selector=MANAGED_SELECTOR)
            await informer.wait_synced()
            ours = informer.get(self.pod_name)
            if ours is not None:
                labels = ours["metadata"].get("labels") or {}
                ti_key, our_try = labels.get(TI_LABEL), int(labels.get(TRY_LABEL, "0"))
            else:  # our pod is gone (a newer try's sweep?): this trigger's own try
                try_key = TryKey.of(ti)
                ti_key, our_try = try_key.ti_hash(), try_key.try_number
            for pod in informer.pods():
                other = pod["metadata"].get("labels") or {}
                if other.get(TI_LABEL) == ti_key and int(other.get(TRY_LABEL, "0")) > our_try:
                    return True
        return False


async def _task_states(ti: Any) -> dict[str, Any]:
    """The task instance's current state, asked of the triggerer's supervisor.

    On the loop through the comms channel's async side where there is one (3.3's
    triggerer), else through the SDK's sync call in a thread.
    """
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    query = {
        "dag_id": ti.dag_id,
        "task_ids": [ti.task_id],
        "run_ids": [ti.run_id],
        "map_index": ti.map_index,
    }
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is not None and hasattr(comms, "asend"):
        response = await comms.asend(GetTaskStates(**query))
        states: dict[str, Any] = response.task_states
        return states
    found: dict[str, Any] = await asyncio.to_thread(
        task_runner.RuntimeTaskInstance.get_task_states, **query
    )
    return found


def _choose(names: list[str], wanted: list[str] | bool, *, default: list[str]) -> list[str]:
    if wanted is True:
        return names
    if not wanted:
        return [n for n in default if n in names]
    return [n for n in names if n in set(wanted)]


#: The operator's template fields the start trigger renders in the triggerer (by the
#: same names, so Airflow's start_trigger_args rendering finds them).
START_TEMPLATE_FIELDS = (
    "image", "name", "hostname", "cmds", "annotations", "arguments", "env_vars", "labels",
    "pod_template_file", "pod_template_dict", "namespace", "container_resources", "volumes",
    "volume_mounts", "env_from", "configmaps", "node_selector",
)  # fmt: skip


#: The follow trigger's arguments that its pod's creation (and the worker's deferral)
#: sets; a start trigger, which makes the pod itself, has none of them.
PER_POD_KWARGS = ("pod_name", "pod_namespace", "pod_uid", "pod_resource_version", "deferred_at")

#: The start trigger's options as the operator gives them when the DAG leaves them at
#: its defaults (the follow trigger's own defaults differ: it is also built directly).
#: ``start_trigger_args`` omit every option equal to these (:func:`compact_start_kwargs`).
START_OPTION_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "kubernetes_conn_id": DEFAULT_CONN_ID,
        "config_file": None,
        "cluster_context": None,
        "in_cluster": None,
        "base_container_name": "base",
        "get_logs": True,
        "container_logs": False,
        "init_container_logs": False,
        "container_name_log_prefix_enabled": True,
        "startup_timeout": 120,
        "schedule_timeout": None,
        "deadline": None,
        "on_finish_action": "keep_pod",  # the worker that resumes the task deletes it
        "on_kill_action": "delete_pod",
        "termination_grace_period": None,
        "do_xcom_push": False,
        "skip_on_exit_code": [],
        "log_events_on_failure": False,
    }
)
#: Pod parameters whose default :func:`~asyncpod.airflow.podbuild.build_manifest` also
#: assumes when they are absent (for the others, absent means None or empty).
_POD_PARAM_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"hostnetwork": False, "termination_message_policy": "File"}
)


def _same(value: Any, default: Any) -> bool:
    """Equal and of the same type (``0 == False`` must not drop a 0)."""
    return type(value) is type(default) and bool(value == default)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def compact_start_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The start trigger's kwargs without what its constructor would fill in anyway (pure).

    Why: Airflow stores ``start_trigger_args`` in every task of the serialized DAG, and
    the triggerer deserializes the whole DAG for each trigger it starts, so each byte
    here is paid per task per trigger (issue 19: 2,882 bytes per task against the
    reference's 962). Dropped: options equal to :data:`START_OPTION_DEFAULTS`, template
    fields and pod parameters that are None or empty (``build_manifest`` reads an absent
    one the same way; Airflow renders only the template fields present), and
    ``random_name_suffix=True``. Idempotent; the constructor restores every default.
    """
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "pod_params":
            params = {
                name: item
                for name, item in value.items()
                if not _empty(item)
                and not (name in _POD_PARAM_DEFAULTS and _same(item, _POD_PARAM_DEFAULTS[name]))
            }
            if params:
                out[key] = params
        elif key in START_TEMPLATE_FIELDS:
            if not _empty(value):
                out[key] = value
        elif key == "random_name_suffix":
            if value is not True:
                out[key] = value
        elif key in START_OPTION_DEFAULTS:
            if not _same(value, START_OPTION_DEFAULTS[key]):
                out[key] = value
        else:
            out[key] = value
    return out


class AsyncpodPodStartTrigger(AsyncpodPodTrigger):
    """Creates the pod in the triggerer, then follows it (``start_from_trigger``, 3.3+).

    Built by Airflow from the operator's static ``start_trigger_args``: the pod's
    parameters as the DAG gives them (the template fields by their own names, rendered
    by the triggerer; everything else in ``pod_params`` as JSON), no pod reference yet,
    and only what differs from the defaults (:func:`compact_start_kwargs`).
    The try comes from the task instance the triggerer sets, so the pod's name is the
    one the worker path would choose, and a triggerer restart reattaches (409, same
    task key) instead of creating a second pod.
    """

    def __init__(
        self,
        *,
        pod_params: dict[str, Any] | None = None,
        random_name_suffix: bool = True,
        image: str | None = None,
        name: str | None = None,
        hostname: str | None = None,
        cmds: list[str] | None = None,
        annotations: dict[str, str] | None = None,
        arguments: list[str] | None = None,
        env_vars: Any = None,
        labels: dict[str, str] | None = None,
        pod_template_file: str | None = None,
        pod_template_dict: dict[str, Any] | None = None,
        namespace: str | None = None,
        container_resources: Any = None,
        volumes: list[Any] | None = None,
        volume_mounts: list[Any] | None = None,
        env_from: list[Any] | None = None,
        configmaps: list[str] | None = None,
        node_selector: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        options = {**START_OPTION_DEFAULTS, **options}
        super().__init__(pod_name="", pod_namespace="", **options)  # known in run()
        self.pod_params = dict(pod_params or {})
        self.random_name_suffix = random_name_suffix
        self.image = image
        self.name = name
        self.hostname = hostname
        self.cmds = cmds
        self.annotations = annotations
        self.arguments = arguments
        self.env_vars = env_vars
        self.labels = labels
        self.pod_template_file = pod_template_file
        self.pod_template_dict = pod_template_dict
        self.namespace = namespace
        self.container_resources = container_resources
        self.volumes = volumes
        self.volume_mounts = volume_mounts
        self.env_from = env_from
        self.configmaps = configmaps
        self.node_selector = node_selector

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, options = super().serialize()
        for reference in PER_POD_KWARGS:  # none of it exists before the pod
            options.pop(reference)
        fields = {name: getattr(self, name) for name in START_TEMPLATE_FIELDS}
        return START_CLASSPATH, compact_start_kwargs(
            {
                "pod_params": self.pod_params,
                "random_name_suffix": self.random_name_suffix,
                **fields,
                **options,
            }
        )

    def _try(self) -> TryKey:
        if self.task_instance is None:
            raise UsageError(
                "AsyncpodPodStartTrigger runs in a triggerer that sets its task instance "
                "(start_from_trigger, Airflow 3.3+)"
            )
        return TryKey.of(self.task_instance)

    async def _namespace(self, target: KubeTarget) -> str:
        if not self.pod_namespace:
            from asyncpod.airflow.connection import load_cluster_config

            found = self.namespace or target.namespace
            if not found:
                found = (await load_cluster_config(target)).namespace
            self.pod_namespace = found or "default"
        return self.pod_namespace

    async def _result(self, cluster: Cluster) -> PodResult:
        # This trigger makes the pod: its run is always the session's (cluster.start).
        return await self._followed(cluster)

    async def _obtain(self, cluster: Cluster) -> PodRun:
        from asyncpod.airflow.deletion import delete_earlier_tries
        from asyncpod.airflow.podbuild import build_manifest
        from asyncpod.spec import PodSpec

        key = self._try()
        self.pod_name = pod_name_for(
            self.name or key.task_id,
            dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id,
            map_index=key.map_index, try_number=key.try_number,
            random_suffix=self.random_name_suffix or not self.name,
        )  # fmt: skip
        params = {**self.pod_params, **{f: getattr(self, f) for f in START_TEMPLATE_FIELDS}}
        params["base_container_name"] = self.base_container_name
        params["do_xcom_push"] = self.do_xcom_push
        spec = PodSpec(
            container_name=self.base_container_name,
            task_key=key.task_key(),
            template=build_manifest(params, labels=key.labels()),
        )
        run = await cluster.start(
            spec, namespace=self.pod_namespace, name=self.pod_name, options=self._options()
        )
        await run.created()
        self.pod_uid = run.uid
        self.log.info(
            "%s pod %s/%s (uid %s)",
            "reattached to" if run.reattached else "created",
            self.pod_namespace, self.pod_name, run.uid,
        )  # fmt: skip
        # A new try means the earlier ones are over for good (on_kill covers a clear while
        # their trigger ran; this, a clear before a triggerer picked it up).
        if self.on_kill_action == "delete_pod":
            await delete_earlier_tries(
                cluster.client,
                self.pod_namespace,
                key,
                grace_period=self.termination_grace_period,
                log=self.log,
            )
        return run
