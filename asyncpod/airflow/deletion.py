"""Deleting the provider's pods: one pod (by uid when known), or an earlier try's pods.

Why it exists: the trigger deletes its pod when it finishes or is killed, the operator
when the worker kills the task, and both sweep the live pods of earlier tries after a
new try made its own. These are plain functions over the pods API
(:class:`asyncpod.kube.pods.Pods`) on a client (a session's, ``cluster.client``, or the
worker's own, which opens no session), so no REST path is spelled in the provider and
no trigger is built just to delete a pod.

What it deliberately does not do: decide whether to delete (``on_finish_action`` and
``on_kill_action`` are the caller's), wait for a deleted pod to be gone, or retry
beyond the client's own policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from asyncpod.airflow.tries import TI_LABEL, TryKey, earlier_tries
from asyncpod.errors import ConflictError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.pods import Pods

__all__ = ["Log", "delete_earlier_tries", "delete_pod"]


class Log(Protocol):
    """Where a deletion is told: a trigger's ``log`` (stdlib) or an operator's (structlog)."""

    def info(self, msg: str, /, *args: Any) -> object: ...


async def delete_pod(
    client: KubeClient,
    namespace: str,
    name: str,
    *,
    uid: str | None,
    grace_period: int | None,
    log: Log,
    announce: bool = True,
) -> bool:
    """Delete pod ``namespace/name`` in the background; True if this call deleted it.

    With ``uid`` only that pod (a namesake created since is left alone); without one,
    whatever pod has the name. ``grace_period`` overrides the pod's own (``None``:
    the pod's). A pod already gone, or a namesake, is logged and answers False; any
    other failure raises, after the client's retries. ``announce=False`` leaves the
    line for a deletion to the caller: the trigger's event says it (``pod_deleted``)
    and the worker logs it, since a line logged in the triggerer costs both of its
    processes (the trigger runner formats and sends it, the job runner writes it).
    """
    try:
        deleted = await Pods(client).delete(
            namespace, name, uid=uid or None, grace_period_seconds=grace_period
        )
    except ConflictError:
        # Only without a uid (with one, Pods.delete answers False): the provider has
        # always read a 409 on its delete as "not ours to delete".
        deleted = False
    if not deleted:
        log.info("pod %s/%s is already gone", namespace, name)
        return False
    if announce:
        log.info("deleted pod %s/%s", namespace, name)
    return True


async def delete_earlier_tries(
    client: KubeClient,
    namespace: str,
    key: TryKey,
    *,
    grace_period: int | None,
    log: Log,
    listed: Sequence[Mapping[str, Any]] | None = None,
) -> list[str]:
    """A new try means the earlier ones are over for good: delete their live pods.

    A trigger's ``on_kill`` (Airflow 3.3+) covers a clear while the trigger runs; this
    covers the rest: a clear before a triggerer picked the trigger up, an Airflow
    without the triggerer-side ``on_kill``. One LIST of the task instance's pods (label
    :data:`~asyncpod.airflow.tries.TI_LABEL`), or ``listed`` when the caller already
    has them; none for a first try (Airflow numbers tries from 1: there is no earlier
    one). Each live pod of a lower try number is deleted by its uid. Returns the names
    of the pods this call deleted. Callers skip it for ``on_kill_action="keep_pod"``.
    """
    if listed is None:
        if key.try_number <= 1:
            return []
        listed = (
            await Pods(client).list(namespace, label_selector=f"{TI_LABEL}={key.ti_hash()}")
        ).items
    deleted: list[str] = []
    for pod in earlier_tries(listed, key.try_number):
        metadata = pod["metadata"]
        name = metadata["name"]
        if await delete_pod(
            client, namespace, name, uid=metadata["uid"], grace_period=grace_period, log=log
        ):
            log.info("deleted pod %s of an earlier try", name)
            deleted.append(name)
    return deleted
