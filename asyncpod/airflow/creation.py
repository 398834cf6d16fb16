"""Creating a try's pod from a worker: one POST, no watch, no namespace-wide list.

Why it exists: a worker that creates the pod and defers needs only the pod's name, uid
and resourceVersion, to hand them to the trigger. Starting an asyncpod run for that
subscribed the run to the namespace's shared informer: one LIST of every asyncpod pod
in the namespace and one WATCH, per task (issue 19: 204 LISTs and 111 WATCHes for 100
mapped tasks; with 1,000 asyncpod pods in a namespace, each task's LIST returned all of
them). Here the worker POSTs the very manifest the run posted (the spec's labels and
annotations, the try's name, a create-attempt token kept across retries). On 409 it
asks one LIST narrowed to the task instance's pods (label
:data:`~asyncpod.airflow.tries.TI_LABEL`) for the pod holding the name, and core's pure
:func:`~asyncpod.core.policy.resolve_conflict` decides, as the runner does: our token
(a create whose answer was lost) adopts it, the same task key (this try, from an
earlier process) reattaches, anything else is refused. The same LIST then serves the
sweep of earlier tries (:func:`~asyncpod.airflow.deletion.delete_earlier_tries`).

What it deliberately does not do: follow the pod (the trigger does), delete it, or
make a pod name (:func:`~asyncpod.airflow.tries.pod_name_for` does).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from asyncpod.airflow.tries import TI_LABEL, TryKey
from asyncpod.core.policy import (
    CREATE_ATTEMPT_ANNOTATION,
    ConflictVerdict,
    refusal_message,
    resolve_conflict,
)
from asyncpod.core.retrying import backoff, until_answered
from asyncpod.errors import ConflictError, NotFoundError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.pods import Pods
from asyncpod.spec import RUN_ID_LABEL, TASK_KEY_ANNOTATION, PodSpec

__all__ = ["CreatedPod", "create_try_pod", "try_selector"]

logger = logging.getLogger("asyncpod.airflow")


@dataclass(frozen=True, slots=True)
class CreatedPod:
    """The try's pod as the API server answered, and how it was obtained."""

    namespace: str
    name: str
    uid: str
    resource_version: str | None
    """``metadata.resourceVersion`` of the pod as created (or found): the trigger can
    wait for the shared watch to reach it instead of reading the pod."""
    reattached: bool
    """True when the pod was made by an earlier process for this same try."""
    listed: list[dict[str, Any]] | None
    """The task instance's pods when a 409 made us list them (all its tries), else None."""
    pod: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The pod as the API server answered the POST (or as listed on 409)."""


def try_selector(key: TryKey) -> str:
    """The label selector matching only the pods of ``key``'s task instance (all tries)."""
    return f"{TI_LABEL}={key.ti_hash()}"


async def create_try_pod(
    client: KubeClient,
    namespace: str,
    spec: PodSpec,
    name: str,
    key: TryKey,
    *,
    retry_window: float = 60.0,
    manifest: dict[str, Any] | None = None,
) -> CreatedPod:
    """Create ``spec`` as pod ``namespace/name`` for try ``key``; never two pods.

    A transient failure (the API server unreachable, restarting, overloaded) is retried
    with the same create-attempt token until ``retry_window`` seconds have passed; a
    401/403 only when the client met connection failures meanwhile (an API server that
    has just restarted denies requests until its authorizer has synced). A 409 is
    resolved as described in the module docs; a pod that belongs to another task, or
    this try's pod on its way out, raises :class:`ConflictError`. Requests: one POST;
    on 409 one LIST selected by :func:`try_selector` (and, only when the name is held
    by a pod outside that selection, one GET of it).

    ``manifest``: what to POST instead of ``spec.to_manifest(...)`` (that manifest as
    the task's callbacks changed it); its name and namespace are this try's.
    """
    spec.validate()
    pods = Pods(client)
    token = secrets.token_hex(8)
    if manifest is None:
        manifest = spec.to_manifest(namespace=namespace, name=name, labels={})
    metadata = manifest.setdefault("metadata", {})
    metadata.update(name=name, namespace=namespace)
    metadata.setdefault("annotations", {})[CREATE_ATTEMPT_ANNOTATION] = token
    deadline = time.monotonic() + retry_window
    errors_at_start = client.statistics().connection_errors

    def restarted() -> bool:
        return client.statistics().connection_errors > errors_at_start

    failures = 0
    ref = f"{namespace}/{name}"
    while True:
        try:
            created = await until_answered(
                lambda: pods.create(namespace, manifest),
                deadline=deadline, restarted=restarted, what=f"create of {ref}",
            )  # fmt: skip
            return _created(namespace, created, reattached=False, listed=None)
        except ConflictError as conflict:
            listed = (await pods.list(namespace, label_selector=try_selector(key))).items
            existing = next((p for p in listed if p["metadata"].get("name") == name), None)
            if existing is None:
                existing = await _get(pods, namespace, name)  # not this task's pod, or gone
            if existing is None:
                failures += 1
                if time.monotonic() >= deadline:
                    raise
                await anyio.sleep(backoff(failures))
                continue  # the namesake went away: create again
            verdict = resolve_conflict(
                existing,
                token=token,
                generated_name=False,
                run_id=None,
                task_key=spec.task_key,
                run_id_label=RUN_ID_LABEL,
                task_key_annotation=TASK_KEY_ANNOTATION,
            )
            if verdict is ConflictVerdict.OURS:
                logger.info("create of %s was answered late: adopting the pod", ref)
                return _created(namespace, existing, reattached=False, listed=listed)
            if verdict is ConflictVerdict.REATTACH:
                return _created(namespace, existing, reattached=True, listed=listed)
            message = refusal_message(verdict, existing, ref)
            raise ConflictError(message, status=409, reason="AlreadyExists", pod=ref) from conflict


async def _get(pods: Pods, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await pods.get(namespace, name)
    except NotFoundError:
        return None


def _created(
    namespace: str, pod: dict[str, Any], *, reattached: bool, listed: list[dict[str, Any]] | None
) -> CreatedPod:
    metadata = pod["metadata"]
    return CreatedPod(
        namespace=namespace,
        name=str(metadata["name"]),
        uid=str(metadata["uid"]),
        resource_version=metadata.get("resourceVersion"),
        reattached=reattached,
        listed=listed,
        pod=pod,
    )
