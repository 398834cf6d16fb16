"""Airflow integration: ``from asyncpod.airflow import KubernetesPodOperator``.

The operator takes the cncf.kubernetes provider's parameters; its trigger
(:class:`AsyncpodPodTrigger`) follows the pod through one asyncpod session per
(cluster, namespace) shared by every trigger of a triggerer process. Names are
imported lazily, so Airflow's provider discovery (:mod:`asyncpod.airflow.provider`)
does not import the operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncpod.airflow.operators import KubernetesPodOperator
    from asyncpod.airflow.triggers import AsyncpodPodTrigger

__all__ = ["AsyncpodPodTrigger", "KubernetesPodOperator"]


def __getattr__(name: str) -> Any:
    if name == "KubernetesPodOperator":
        from asyncpod.airflow.operators import KubernetesPodOperator

        return KubernetesPodOperator
    if name == "AsyncpodPodTrigger":
        from asyncpod.airflow.triggers import AsyncpodPodTrigger

        return AsyncpodPodTrigger
    raise AttributeError(f"module 'asyncpod.airflow' has no attribute {name!r}")
