"""Airflow's own ``KubernetesPodTrigger`` (apache-airflow-providers-cncf-kubernetes), N on one loop.

The real class, imported and run as the triggerer runs it (see
:mod:`benchmarks.contenders._triggers`), built as ``KubernetesPodOperator(deferrable=True)``
builds it: the kubeconfig inlined as ``config_dict``, the operator's defaults
(``poll_interval=2``, ``startup_check_interval=5``, ``log_events_on_startup=True``,
``get_logs=False`` here since no contender follows logs), base container ``main``.
Its ``AsyncKubernetesHook`` makes a new API client for every call; that is the
provider's behaviour, not a choice of this benchmark.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import yaml

from benchmarks.contenders._triggers import run_triggers
from benchmarks.workload import ChildConfig, PodTimes

__all__ = ["run"]


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger

    config_dict = yaml.safe_load(await anyio.Path(cfg.kubeconfig).read_text())

    def make(t: PodTimes, created: dict[str, Any]) -> Any:
        return KubernetesPodTrigger(
            pod_name=t.name,
            pod_namespace=cfg.namespace,
            trigger_start_time=dt.datetime.now(dt.timezone.utc),
            base_container_name="main",
            config_dict=config_dict,
            get_logs=False,
        )

    return await run_triggers(cfg, times, make)
