"""Airflow provider metadata for asyncpod (entry point ``apache_airflow_provider``).

Why a module of its own: Airflow's providers manager imports this at discovery time in
every component (scheduler, api-server, triggerer, workers); it must not import Airflow,
the operator or the trigger, so it returns a plain dict and imports nothing heavy.

What it deliberately does not do: declare a ``kubernetes`` connection type. That type
belongs to the cncf.kubernetes provider; users who switch already have the connection
(in the metadata database, an ``AIRFLOW_CONN_*`` variable or a secrets backend), and
asyncpod reads it without that provider installed (:mod:`asyncpod.airflow.connection`).
Declaring the same type twice would make Airflow warn when both are installed.

Task decorators (:func:`task_decorators`): ``@task.asyncpod_kubernetes`` and
``@task.asyncpod_kubernetes_cmd`` always, and ``@task.kubernetes`` and
``@task.kubernetes_cmd`` only when the cncf.kubernetes provider is not installed. Airflow
keeps the first registration of a name and reads providers in package-name order, so
with both installed the provider's ``kubernetes`` would win anyway and ours would only
add Airflow's "already registered" warning to every component's log.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REFERENCE_DISTRIBUTION", "get_provider_info", "task_decorators"]

#: The distribution whose ``@task.kubernetes`` asyncpod's gives way to.
REFERENCE_DISTRIBUTION = "apache-airflow-providers-cncf-kubernetes"
_DECORATORS = {
    "kubernetes": "asyncpod.airflow.decorators.kubernetes_task",
    "kubernetes_cmd": "asyncpod.airflow.decorators.kubernetes_cmd_task",
}


def task_decorators(*, reference_installed: bool) -> list[dict[str, str]]:
    """The ``task-decorators`` asyncpod registers (pure; see the module docstring)."""
    prefixes = ["asyncpod_"] if reference_installed else ["", "asyncpod_"]
    return [
        {"name": f"{prefix}{name}", "class-name": path}
        for prefix in prefixes
        for name, path in _DECORATORS.items()
    ]


def _reference_installed() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution(REFERENCE_DISTRIBUTION)
    except PackageNotFoundError:
        return False
    return True


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager shows for asyncpod (``airflow providers list``)."""
    from asyncpod import __version__

    return {
        # Discovery raises unless this equals the distribution's name.
        "package-name": "asyncpod",
        "name": "asyncpod",
        "description": (
            "A drop-in deferrable KubernetesPodOperator whose triggers share one pod "
            "watch per (cluster, namespace) in each triggerer process."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "asyncpod",
                "external-doc-url": "https://kubernetes.io/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "asyncpod", "python-modules": ["asyncpod.airflow.operators"]}
        ],
        "triggers": [
            {"integration-name": "asyncpod", "python-modules": ["asyncpod.airflow.triggers"]}
        ],
        "task-decorators": task_decorators(reference_installed=_reference_installed()),
        "config": {
            "asyncpod": {
                "description": (
                    "The Kubernetes client session that a triggerer's asyncpod triggers "
                    "share (one per cluster and namespace)."
                ),
                "options": {
                    "client_qps": {
                        "description": (
                            "Client-side rate limit of that session in requests per second; "
                            "empty or none: no limit (the default, like the cncf provider's "
                            "trigger; concurrency stays bounded and 429s are obeyed)."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "50",
                        "default": "",
                    },
                    "client_burst": {
                        "description": "Requests at once under client_qps (default: twice it).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "100",
                        "default": "",
                    },
                },
            }
        },
    }
