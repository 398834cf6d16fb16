"""Airflow integration: ``from asyncpod.airflow import KubernetesPodOperator``.

The operator takes the cncf.kubernetes provider's parameters; its trigger
(:class:`AsyncpodPodTrigger`) follows the pod through one asyncpod session per
(cluster, namespace) shared by every trigger of a triggerer process. Names are
imported lazily, so Airflow's provider discovery (:mod:`asyncpod.airflow.provider`)
does not import the operator.

Supported Airflow: 3.0 to 3.3 (:data:`SUPPORTED_AIRFLOW`; tested on 3.0.6, 3.1.8, 3.2.2
and 3.3.2 by ``nox``). Importing this package under any other major version (Airflow
2.x has no ``airflow.sdk``) raises :class:`UnsupportedAirflowError` naming them, here,
before anything of Airflow's is imported, rather than a traceback from deep inside it.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncpod.airflow.operators import KubernetesPodOperator
    from asyncpod.airflow.triggers import AsyncpodPodTrigger

__all__ = [
    "SUPPORTED_AIRFLOW",
    "AsyncpodPodTrigger",
    "KubernetesPodOperator",
    "UnsupportedAirflowError",
    "check_airflow_version",
]

#: The Airflow versions asyncpod.airflow supports, as the ``airflow`` extra pins them.
SUPPORTED_AIRFLOW = "apache-airflow>=3.0.6,<3.4 (Airflow 3.0, 3.1, 3.2 and 3.3)"


class UnsupportedAirflowError(ImportError):
    """The installed Airflow is one asyncpod.airflow does not support (it names it and
    :data:`SUPPORTED_AIRFLOW`). An ImportError, so code that treats the provider as
    optional (``except ImportError``) keeps doing so."""


def check_airflow_version(installed: str | None) -> None:
    """Raise :class:`UnsupportedAirflowError` unless ``installed`` is an Airflow 3.

    ``None`` (no Airflow installed) passes: importing the operator then fails on
    ``airflow`` itself. Within 3.x nothing is refused here, the extra's range is what
    pip enforces; below 3.0 the operator cannot work at all.
    """
    if installed is None:
        return
    numbers = re.findall(r"\d+", installed)[:1]
    if numbers and int(numbers[0]) == 3:
        return
    raise UnsupportedAirflowError(
        f"asyncpod.airflow supports {SUPPORTED_AIRFLOW}; this environment has "
        f"Airflow {installed}. Upgrade Airflow, or keep the cncf.kubernetes provider's "
        "KubernetesPodOperator on this one."
    )


def _installed_airflow() -> str | None:
    for distribution in ("apache-airflow-core", "apache-airflow"):  # 3.x has both, 2.x one
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return None


check_airflow_version(_installed_airflow())


def __getattr__(name: str) -> Any:
    if name == "KubernetesPodOperator":
        from asyncpod.airflow.operators import KubernetesPodOperator

        return KubernetesPodOperator
    if name == "AsyncpodPodTrigger":
        from asyncpod.airflow.triggers import AsyncpodPodTrigger

        return AsyncpodPodTrigger
    raise AttributeError(f"module 'asyncpod.airflow' has no attribute {name!r}")
