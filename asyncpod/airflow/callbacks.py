"""``callbacks``: the reference's ``KubernetesPodOperatorCallback`` calls, at its points.

Why it exists: teams hang audit records, cost tags and notifications on the
cncf.kubernetes operator's ``callbacks`` (a ``KubernetesPodOperatorCallback`` subclass,
or a list of them). Switching must call the same methods at the same points with the
same arguments. Read from the reference (provider 10.25.0, ``operators/pod.py``):
every call it makes is on a worker, with ``mode=ExecutionMode.SYNC`` - its docstring
says so ("not called in the async mode"); its trigger calls none. So:

* deferrable (the default), first worker run: ``on_sync_client_creation`` (when the
  operator first needs its client), ``on_pod_manifest_created`` (before the POST; a
  change a callback makes to ``pod_request`` is in the pod created),
  ``on_pod_creation``; then the task defers.
* the worker that resumes it (a new process, so a new client):
  ``on_sync_client_creation``, ``on_pod_completion``, ``on_pod_teardown``, then the
  pod is deleted (``on_finish_action``), then ``on_pod_cleanup`` - which the reference
  reaches only when the pod succeeded (its cleanup raises first otherwise):
  :func:`resume_calls`. A pod that is gone when the task resumes gets none of the three.
* not deferrable, the same calls in one process (one client), with
  ``on_pod_starting`` once the pod runs and ``progress_callback`` for each log line the
  task log receives; ``log_formatter`` formats those lines.
* never: ``on_operator_resuming`` (the reference defines it and never calls it), any
  call in the triggerer, any call with ``mode=ASYNC``.

A task with callbacks always starts on a worker (``start_from_trigger`` is ignored for
it), and the worker that resumes it deletes the pod after ``on_pod_teardown``, as the
reference does (a deferred task's trigger never deletes its pod:
:func:`asyncpod.airflow.triggers.trigger_finish_action`), so the callbacks see the live
pod and nothing of them runs on the triggerer's event loop.

Arguments: ``client`` is a ``kubernetes.client.CoreV1Api`` built from the same
connection when the ``kubernetes`` package is importable (it is whenever the provider
is installed), else None; ``pod`` and ``pod_request`` are ``kubernetes.client.V1Pod``
objects then, else the pod's JSON as a dict. asyncpod itself never uses that client:
it is made only for the callbacks, once per worker process, as the reference's.

What it deliberately does not do: import ``kubernetes`` or the provider unless a task
has callbacks, or catch a callback's exception (it fails the task, as in the reference).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from asyncpod.airflow.connection import KubeTarget

__all__ = [
    "CallbackCaller",
    "ExecutionMode",
    "KubernetesPodOperatorCallback",
    "callback_list",
    "merge_changes",
    "pod_for_callbacks",
    "pod_from_callbacks",
    "resume_calls",
    "sync_client",
    "sync_mode",
]

logger = logging.getLogger("asyncpod.airflow")

#: What the reference calls when a deferred task resumes, in order, before it deletes
#: the pod; ``on_pod_cleanup`` comes after the deletion, on success only.
_RESUME = ("on_pod_completion", "on_pod_teardown")


class ExecutionMode(str, Enum):
    """The reference's ``ExecutionMode``, for environments without the provider (equal
    by value: ``ExecutionMode.SYNC == "sync"``)."""

    SYNC = "sync"
    ASYNC = "async"


class KubernetesPodOperatorCallback:
    """The reference's callback base class, for DAGs without the provider installed:
    subclass it and override the static methods you need (see the module docs for when
    each one is called). Every method takes keyword arguments only."""

    @staticmethod
    def on_sync_client_creation(*, client: Any, operator: Any, **kwargs: Any) -> None:
        """After the operator's sync client is created (once per worker process)."""

    @staticmethod
    def on_pod_manifest_created(
        *, pod_request: Any, client: Any, mode: str, operator: Any, context: Any, **kwargs: Any
    ) -> None:
        """After the pod's manifest is built, before the pod is created."""

    @staticmethod
    def on_pod_creation(
        *, pod: Any, client: Any, mode: str, operator: Any, context: Any, **kwargs: Any
    ) -> None:
        """After the pod is created."""

    @staticmethod
    def on_pod_starting(
        *, pod: Any, client: Any, mode: str, operator: Any, context: Any, **kwargs: Any
    ) -> None:
        """When the pod starts (not deferrable only, as in the reference)."""

    @staticmethod
    def on_pod_completion(
        *, pod: Any, client: Any, mode: str, operator: Any, context: Any, **kwargs: Any
    ) -> None:
        """When the pod completes."""

    @staticmethod
    def on_pod_teardown(
        *, pod: Any, client: Any, mode: str, operator: Any, context: Any, **kwargs: Any
    ) -> None:
        """After the completion callbacks, before the pod is deleted."""

    @staticmethod
    def on_pod_cleanup(
        *, pod: Any, client: Any, mode: str, operator: Any, context: Any, **kwargs: Any
    ) -> None:
        """After the pod is deleted (a pod that succeeded)."""

    @staticmethod
    def on_operator_resuming(
        *,
        pod: Any,
        event: dict[str, Any],
        client: Any,
        mode: str,
        operator: Any,
        context: Any,
        **kwargs: Any,
    ) -> None:
        """Defined by the reference and never called by it; asyncpod neither."""

    @staticmethod
    def progress_callback(
        *,
        line: str,
        client: Any,
        mode: str,
        container_name: str,
        timestamp: Any,
        pod: Any,
        **kwargs: Any,
    ) -> None:
        """For each log line (not deferrable only, as in the reference)."""


# ---------------------------------------------------------------------- decisions
def callback_list(callbacks: Any) -> list[Any]:
    """The operator's ``callbacks`` argument as the reference keeps it (pure): None or
    empty -> [], a list as is, anything else (a class) -> [it]."""
    if not callbacks:
        return []
    if isinstance(callbacks, list):
        return list(callbacks)
    return [callbacks]


def resume_calls(status: str, *, started: bool | None = None) -> tuple[tuple[str, ...], bool]:
    """What the worker calls once the trigger's event (``status``) is in (pure): the
    methods before the pod is deleted, and whether ``on_pod_cleanup`` follows the
    deletion. The reference calls completion and teardown for every ending, and reaches
    ``on_pod_cleanup`` only when its cleanup does not raise: the pod succeeded.
    ``started``: not deferrable, whether ``on_pod_starting`` was called (None when
    deferrable); the reference's sync path calls nothing more for a pod that never
    started (its start-up failure raises before)."""
    if started is False:
        return (), False
    return _RESUME, status == "success"


def merge_changes(
    original: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Any]:
    """``original`` with the changes that turned ``before`` into ``after`` (pure).

    Why: a callback edits a ``V1Pod``, and the round trip through the ``kubernetes``
    models drops what the installed models do not know; applying only what the callback
    changed keeps the rest of asyncpod's manifest as it was. Mappings merge key by key
    (a key gone from ``after`` goes); anything else that differs is replaced whole.
    """
    merged = dict(original)
    for key in set(before) | set(after):
        if key not in after:
            merged.pop(key, None)
        elif key not in before or before[key] != after[key]:
            old, new = before.get(key), after[key]
            if isinstance(old, Mapping) and isinstance(new, Mapping):
                base = original.get(key)
                merged[key] = merge_changes(base if isinstance(base, Mapping) else {}, old, new)
            else:
                merged[key] = new
    return merged


def sync_mode() -> Any:
    """``ExecutionMode.SYNC``: the provider's enum when it is importable (a callback may
    test ``mode is ExecutionMode.SYNC``), else this module's (equal by value)."""
    try:
        from airflow.providers.cncf.kubernetes.callbacks import ExecutionMode as Theirs
    except ImportError:
        return ExecutionMode.SYNC
    return Theirs.SYNC


class _Raw:
    """What ``ApiClient.deserialize`` reads: a response with JSON text in ``data``."""

    __slots__ = ("data",)

    def __init__(self, data: str) -> None:
        self.data = data


def _kubernetes_client() -> Any:
    try:
        import kubernetes.client  # type: ignore[import-untyped]
    except ImportError:
        return None
    return kubernetes.client


def pod_for_callbacks(pod: Mapping[str, Any], *, api_client: Any = None) -> Any:
    """``pod`` (its JSON) as a ``kubernetes.client.V1Pod`` when the package is
    importable, else a copy of the dict."""
    k8s = _kubernetes_client()
    if k8s is None:
        return json.loads(json.dumps(pod))
    api = api_client or k8s.ApiClient()
    return api.deserialize(_Raw(json.dumps(pod, default=str)), "V1Pod")


def pod_from_callbacks(pod: Any, *, api_client: Any = None) -> dict[str, Any]:
    """A pod a callback may have changed, back to its JSON (a dict stays a dict)."""
    if isinstance(pod, Mapping):
        copied: dict[str, Any] = json.loads(json.dumps(pod, default=str))
        return copied
    k8s = _kubernetes_client()
    api = api_client or k8s.ApiClient()
    manifest: dict[str, Any] = api.sanitize_for_serialization(pod)
    return manifest


def sync_client(target: KubeTarget) -> Any:
    """A ``kubernetes.client.CoreV1Api`` for ``target`` (the task's connection), or None
    when the ``kubernetes`` package is not importable or cannot load the credentials
    (logged: asyncpod's own client works without it, only the callbacks lack it)."""
    try:
        from kubernetes import client, config
    except ImportError:
        return None
    configuration = client.Configuration()
    try:
        if target.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        elif target.kube_config is not None:
            config.load_kube_config_from_dict(
                dict(target.kube_config), context=target.context,
                client_configuration=configuration,
            )  # fmt: skip
        else:
            try:
                config.load_kube_config(
                    config_file=target.config_file, context=target.context,
                    client_configuration=configuration,
                )  # fmt: skip
            except config.ConfigException:
                if target.in_cluster is not None or target.config_file is not None:
                    raise
                config.load_incluster_config(client_configuration=configuration)
    except Exception as error:  # noqa: BLE001 - the callbacks get None, the task goes on
        logger.warning("no kubernetes client for the callbacks (client=None): %s", error)
        return None
    if not target.verify_ssl:
        configuration.verify_ssl = False
    return client.CoreV1Api(client.ApiClient(configuration))


# ---------------------------------------------------------------------- calling
class CallbackCaller:
    """Calls one operator's callbacks; owns the sync client, made at the first call
    that needs it (then ``on_sync_client_creation``), once per operator instance -
    that is once per worker process, as the reference's cached client."""

    def __init__(
        self,
        callbacks: Sequence[Any],
        *,
        operator: Any,
        target: Callable[[], KubeTarget],
    ) -> None:
        self.callbacks = list(callbacks)
        self.operator = operator
        self._target = target
        self._client: Any = None
        self._made = False

    def client(self) -> Any:
        if not self._made:
            self._made = True
            self._client = sync_client(self._target())
            for callback in self.callbacks:
                callback.on_sync_client_creation(client=self._client, operator=self.operator)
        return self._client

    def _api_client(self) -> Any:
        return getattr(self._client, "api_client", None)

    def pod(self, manifest: Mapping[str, Any]) -> Any:
        """``manifest`` in the form the callbacks get (see :func:`pod_for_callbacks`)."""
        return pod_for_callbacks(manifest, api_client=self._api_client())

    def call(self, method: str, context: Any, **arguments: Any) -> None:
        """``method`` of every callback, in order, as the reference calls it."""
        client = self.client()
        for callback in self.callbacks:
            getattr(callback, method)(
                client=client, mode=sync_mode(), context=context, operator=self.operator,
                **arguments,
            )  # fmt: skip

    def manifest_created(self, manifest: dict[str, Any], context: Any) -> dict[str, Any]:
        """``on_pod_manifest_created`` on ``manifest``; the manifest as the callbacks
        left it (they may change the request, as with the reference)."""
        request = self.pod(manifest)
        before = pod_from_callbacks(request, api_client=self._api_client())
        self.call("on_pod_manifest_created", context, pod_request=request)
        after = pod_from_callbacks(request, api_client=self._api_client())
        return merge_changes(manifest, before, after)

    def progress(self, *, line: str, container_name: str, timestamp: Any, pod: Any) -> None:
        """``progress_callback`` of every callback for one log line."""
        client = self.client()
        for callback in self.callbacks:
            callback.progress_callback(
                line=line, client=client, mode=sync_mode(), container_name=container_name,
                timestamp=timestamp, pod=pod,
            )  # fmt: skip
