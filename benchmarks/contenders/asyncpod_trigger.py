"""asyncpod's own Airflow trigger, ``asyncpod.airflow.triggers.AsyncpodPodTrigger``, N on one loop.

Run as the triggerer runs triggers (:mod:`benchmarks.contenders._triggers`): every
instance in this process shares asyncpod's one session and one watch per namespace.
Built as asyncpod's operator builds it: with the pod's name, namespace, uid (Airflow
reattaches by name and can pick the wrong pod; asyncpod's trigger stores the uid) and
the create's resourceVersion (the trigger answers from the watch once it has reached
that version, without a read), the contender's kubeconfig file,
``base_container_name="main"`` and ``get_logs=False``, and
``on_finish_action="keep_pod"``, as asyncpod's operator gives it to a deferred task's
trigger (since 2026-12-07): the worker that resumes the task deletes the pod, here the
"operator" side's DELETE, as for Airflow's trigger. Listed as "not available" while
``asyncpod.airflow.triggers`` is absent from this checkout.
"""

from __future__ import annotations

from typing import Any

from benchmarks.contenders._triggers import run_triggers
from benchmarks.workload import ChildConfig, PodTimes

__all__ = ["run"]


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    from asyncpod.airflow.triggers import AsyncpodPodTrigger  # type: ignore[import-not-found,import-untyped,unused-ignore]

    def make(t: PodTimes, created: dict[str, Any]) -> Any:
        return AsyncpodPodTrigger(
            pod_name=t.name,
            pod_namespace=cfg.namespace,
            pod_uid=created["metadata"]["uid"],
            pod_resource_version=created["metadata"].get("resourceVersion"),
            config_file=cfg.kubeconfig,
            cluster_context=None,
            base_container_name="main",
            get_logs=False,
            on_finish_action="keep_pod",  # the resumed task deletes it (the operator side)
        )

    return await run_triggers(cfg, times, make)
