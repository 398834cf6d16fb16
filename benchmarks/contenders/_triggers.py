"""N Airflow triggers on one event loop, as a triggerer runs them.

Why: Airflow's triggerer runs every trigger it hosts as one asyncio task on one loop in
one process (Airflow 3.3's ``TriggerRunner``). For each pod this does what the
deferrable operator and the triggerer do together: the operator creates the pod on a
worker and defers (here: a plain POST, :mod:`benchmarks.contenders._rawhttp`, the same
for both trigger contenders), the triggerer runs the trigger until its first event,
and the pod is deleted (``on_finish_action="delete_pod"``): by the resumed task for
Airflow's trigger (here: a plain DELETE), by asyncpod's trigger itself before it yields
its event. So what differs between the two trigger contenders is the trigger alone.

Not modelled: the triggerer's DB heartbeat, its per-trigger log handlers, the
worker's own GETs and log fetches after resuming.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

from benchmarks.contenders._rawhttp import Endpoint, RawPods
from benchmarks.workload import ChildConfig, PodTimes, pod_manifest

__all__ = ["run_triggers"]

#: Builds one trigger from the pod's name and the created pod (uid in its metadata).
TriggerFactory = Callable[[PodTimes, dict[str, Any]], Any]


async def run_triggers(
    cfg: ChildConfig,
    times: list[PodTimes],
    make_trigger: TriggerFactory,
    *,
    operator_deletes: bool = True,
) -> dict[str, Any]:
    """Create, trigger, delete each pod; ``operator_deletes=False``: the trigger deletes it."""
    operator = RawPods(Endpoint.from_kubeconfig(cfg.kubeconfig), cfg.namespace)
    statuses: dict[str, int] = {}

    async def one(t: PodTimes) -> None:
        try:
            created = await operator.create(pod_manifest(cfg, t.name))
            t.created = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = f"create: {error}"[:200]
            return
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
        if not operator_deletes:
            # The trigger applied on_finish_action before its event: the pod is deleted.
            if t.error is None:
                t.done = t.seen
            return
        try:
            await operator.delete(t.name)
            if t.error is None:
                t.done = time.time()
        except Exception as error:  # noqa: BLE001 - recorded per pod, reported
            t.error = t.error or f"delete: {error}"[:200]

    try:
        async with anyio.create_task_group() as tg:
            for t in times:
                tg.start_soon(one, t)
    finally:
        with anyio.CancelScope(shield=True):
            await operator.aclose()
    return {"trigger_events": statuses, "operator_requests_sent": dict(operator.sent)}
