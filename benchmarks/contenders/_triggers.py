"""N Airflow triggers on one event loop, as a triggerer runs them.

Why: Airflow's triggerer runs every trigger it hosts as one asyncio task on one loop in
one process (Airflow 3.3's ``TriggerRunner``). For each pod this does what the
deferrable operator and the triggerer do together: the operator creates the pod on a
worker and defers (here: a plain POST, :mod:`benchmarks.contenders._rawhttp`, the same
for both trigger contenders), the triggerer runs the trigger until its first event,
and the pod is deleted (``on_finish_action="delete_pod"``) by the resumed task (here: a
plain DELETE, on the operator side), for both contenders since 2026-12-07 (before,
asyncpod's trigger deleted its pod itself before it yielded its event; its operator now
leaves that to the resumed task, as the reference does). So what differs between the
two trigger contenders is the trigger alone.

Where each side runs (since 2026-12-07): the operator side (the workers' creates and
deletes, at most 100 pods being created at once) on a thread of its own with its own
event loop, the triggers on the measured loop. In a deployment the workers are other
processes, and the triggerer's ``create_triggers`` starts one trigger per loop
iteration (an ``asyncio.sleep(0)`` between two); so here too. Before, both sides shared
the measured loop and the 5,000 creates started in one iteration: that burst, the
workers' work, was the longest stall of every trigger contender at 5,000 pods
(benchmarks/README.md, "The trigger harness"). The thread shares the process: its CPU
seconds still count, as the raw reference's creates and deletes count in its own, and
so do its objects in every garbage-collector pass.

Not modelled: the triggerer's DB heartbeat, its per-trigger log handlers, the
worker's own GETs and log fetches after resuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from benchmarks.contenders._rawhttp import Endpoint, RawPods
from benchmarks.workload import ChildConfig, PodTimes, pod_manifest

__all__ = ["run_triggers"]

#: Builds one trigger from the pod's name and the created pod (uid in its metadata).
TriggerFactory = Callable[[PodTimes, dict[str, Any]], Any]

#: Pods the operator side creates at once (the raw client's connection pool).
WORKERS = 100


class _OperatorSide:
    """The workers: create each pod, hand it to the triggerer, delete it once resumed.

    :meth:`run` is the thread's body (its own event loop); every other method is called
    from the triggerer's loop and crosses over with ``call_soon_threadsafe``.
    """

    def __init__(
        self,
        cfg: ChildConfig,
        times: list[PodTimes],
        handed_over: MemoryObjectSendStream[tuple[PodTimes, dict[str, Any]]],
    ) -> None:
        self._cfg = cfg
        self._times = times
        self._handed_over = handed_over
        self._triggerer_loop = asyncio.get_running_loop()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group: TaskGroup | None = None
        self._pods: RawPods | None = None
        self._all_finished: anyio.Event | None = None
        self._stop_wanted = False
        self._created_or_failed = 0
        self._finished = 0
        self.sent: dict[str, int] = {}
        self.failure: BaseException | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # noqa: BLE001 - re-raised on the triggerer's side
            self.failure = error
        finally:
            self.ended.set()

    def resumed(self, t: PodTimes) -> None:
        """The pod's task resumed (its trigger yielded, failed or was cancelled)."""
        self._call(self._on_resumed, t)

    def stop(self) -> None:
        self._stop_wanted = True
        self._call(self._cancel)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nothing to do
                loop.call_soon_threadsafe(callback, *args)

    def _cancel(self) -> None:
        if self._group is not None:
            self._group.cancel_scope.cancel()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pods = pods = RawPods(
            Endpoint.from_kubeconfig(self._cfg.kubeconfig), self._cfg.namespace
        )
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                self._all_finished = anyio.Event()
                if self._stop_wanted:
                    group.cancel_scope.cancel()
                slots = anyio.Semaphore(WORKERS)
                for t in self._times:
                    await slots.acquire()
                    group.start_soon(self._create, pods, t, slots)
                if self._finished < len(self._times):
                    await self._all_finished.wait()
        finally:
            self._triggerer_loop.call_soon_threadsafe(self._handed_over.close)
            with anyio.CancelScope(shield=True):
                await pods.aclose()
            self.sent = dict(pods.sent)

    async def _create(self, pods: RawPods, t: PodTimes, slots: anyio.Semaphore) -> None:
        try:
            try:
                created = await pods.create(pod_manifest(self._cfg, t.name))
            finally:
                slots.release()
            t.created = time.time()
            self._triggerer_loop.call_soon_threadsafe(self._give, (t, created))
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = f"create: {error}"[:200]
            self._finish_one()
        self._created_or_failed += 1
        if self._created_or_failed == len(self._times):  # after the last hand-over
            self._triggerer_loop.call_soon_threadsafe(self._handed_over.close)

    def _give(self, pod: tuple[PodTimes, dict[str, Any]]) -> None:
        """On the triggerer's loop: one created pod for a trigger (none once it stopped)."""
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._handed_over.send_nowait(pod)

    def _on_resumed(self, t: PodTimes) -> None:
        if self._group is not None:
            self._group.start_soon(self._delete, t)

    async def _delete(self, t: PodTimes) -> None:
        try:
            assert self._pods is not None
            await self._pods.delete(t.name)
            if t.error is None:
                t.done = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = t.error or f"delete: {error}"[:200]
        self._finish_one()

    def _finish_one(self) -> None:
        self._finished += 1
        if self._finished == len(self._times) and self._all_finished is not None:
            self._all_finished.set()


async def run_triggers(
    cfg: ChildConfig,
    times: list[PodTimes],
    make_trigger: TriggerFactory,
) -> dict[str, Any]:
    """Create, trigger, delete each pod (the trigger keeps it; the resumed task deletes it)."""
    statuses: dict[str, int] = {}
    handed_over, to_trigger = anyio.create_memory_object_stream[tuple[PodTimes, dict[str, Any]]](
        math.inf
    )
    operator = _OperatorSide(cfg, times, handed_over)

    async def trigger(t: PodTimes, created: dict[str, Any]) -> None:
        try:
            trigger = make_trigger(t, created)
            # The create's answer stays with the worker, not in the triggerer's heap
            # (a whole pod, ~100 objects for every full GC pass to walk).
            del created
            generator = trigger.run()
            try:
                event = await generator.__anext__()
            finally:
                await generator.aclose()
            t.seen = time.time()
            payload = getattr(event, "payload", event)
            status = str(payload.get("status")) if isinstance(payload, dict) else repr(payload)
            statuses[status] = statuses.get(status, 0) + 1
            t.phase = {"success": "Succeeded", "failed": "Failed"}.get(status, status)
            if status not in ("success", "failed"):
                t.error = f"trigger event {status}: {payload}"[:200]
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = f"trigger: {type(error).__name__}: {error}"[:200]
        finally:
            operator.resumed(t)

    async def create_triggers(group: TaskGroup) -> None:
        async with to_trigger:
            async for t, created in to_trigger:
                await asyncio.sleep(0)  # as Airflow's TriggerRunner.create_triggers
                group.start_soon(trigger, t, created)
                del created

    thread = threading.Thread(target=operator.run, name="benchmark-operator-side", daemon=True)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(create_triggers, group)
            thread.start()
            await anyio.to_thread.run_sync(operator.ended.wait, abandon_on_cancel=True)
    finally:
        operator.stop()
        if thread.is_alive():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join)
    if operator.failure is not None:
        raise operator.failure
    return {"trigger_events": statuses, "operator_requests_sent": operator.sent}
