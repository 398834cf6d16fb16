"""The ``[asyncpod]`` settings the triggerer reads, checked by the worker before it
creates a pod.

Why it exists: the triggerer reads ``resume_hold``, ``triggerer_gc_freeze`` and
``client_qps``/``client_burst`` while it follows a pod that already exists, where a
value that makes no sense can only fail the trigger (and leave the pod running) or be
set aside. The worker that creates the pod and defers reads the same deployment's
configuration: checked there, a bad value fails the task with a
:class:`~asyncpod.errors.ConfigError` naming the option before any pod exists. In the
triggerer, a bad ``resume_hold`` or ``triggerer_gc_freeze`` is logged and its default
used (:mod:`asyncpod.airflow.triggers`, :mod:`asyncpod.airflow.triggergc`).
"""

from __future__ import annotations

from asyncpod.airflow.resumehold import configured_hold
from asyncpod.airflow.triggergc import freeze_wanted

__all__ = ["check_triggerer_settings"]


def check_triggerer_settings() -> None:
    """Raise :class:`~asyncpod.errors.ConfigError` for the first ``[asyncpod]``
    setting of the triggerer's that makes no sense."""
    from airflow.configuration import conf

    from asyncpod.airflow.sessions import client_limits  # the session's machinery: lazily

    def setting(name: str) -> str | None:
        value: str | None = conf.get("asyncpod", name, fallback=None)
        return value

    configured_hold(setting("resume_hold"))
    freeze_wanted(setting("triggerer_gc_freeze"))
    client_limits(setting("client_qps"), setting("client_burst"))
