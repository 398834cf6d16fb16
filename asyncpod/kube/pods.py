"""The pods API: the few calls asyncpod makes about pods, typed, over :class:`KubeClient`.

Why it exists: REST paths, query parameters and delete bodies are the API server's
vocabulary. Spelling them out where runs are orchestrated (``asyncpod.core``) or where
commands are parsed (``asyncpod.cli``) mixes that vocabulary into decisions and makes
each caller repeat it. Here each call is one method with the arguments a caller thinks
in (a namespace, a name, a uid), and the answers stay as orjson-decoded dicts
(docs/architecture.md, "Facts": typed models are expensive).

* :meth:`Pods.create` POSTs a manifest; :meth:`Pods.get` reads one pod.
* :meth:`Pods.delete` deletes in the background with an optional uid precondition, so
  a namesake created since is never deleted; "already gone" and "a namesake" are
  answers (``False``), not errors.
* :meth:`Pods.list` pages through a (selected) list; :meth:`Pods.watch` opens one watch
  stream: the two primitives of an informer, on the pods path.
* :meth:`Pods.events_of` lists the Events of one object by uid, oldest first.
* :meth:`Pods.evict` asks the eviction subresource to evict a pod (PodDisruptionBudgets
  honoured, a ``DisruptionTarget`` condition set), as ``kubectl drain`` does.
* :meth:`Pods.read_log` reads one container's log once (no ``follow``), as raw chunks:
  a finished pod's whole log in one request, streamed, never held in memory.
* :func:`pod_path` builds the path for callers that need a subresource (``log``).

What it deliberately does not do: retry beyond the client's own policy, decide
ownership (whether a pod found after a 409 is "ours" is the runner's call), cache, or
build typed models. Names and namespaces are checked only for what would make a
wrong path (empty, ``/``, ``.``/``..``); the API server validates the rest.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from asyncpod.errors import ApiConnectionError, ConflictError, NotFoundError, UsageError
from asyncpod.kube.client import KubeClient, translate_transport_error
from asyncpod.kube.watch import list_objects, watch_stream

__all__ = ["PodList", "Pods", "event_order_key", "pod_path"]

_NO_TIME: Final = ""

ObjectList = list[dict[str, Any]]
"""Decoded objects; an alias because ``Pods.list`` shadows ``list`` in the class body."""


def _segment(value: str, what: str) -> str:
    """``value`` if it can stand as one path segment; else a UsageError naming ``what``."""
    if not isinstance(value, str) or not value or "/" in value or value in (".", ".."):
        raise UsageError(f"{what} must be a non-empty name without '/', got {value!r}")
    return value


def pod_path(namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    """``/api/v1/namespaces/NS/pods[/NAME[/SUBRESOURCE]]``; UsageError for a bad segment."""
    path = f"/api/v1/namespaces/{_segment(namespace, 'namespace')}/pods"
    if name is not None:
        path += f"/{_segment(name, 'pod name')}"
        if subresource is not None:
            path += f"/{_segment(subresource, 'subresource')}"
    elif subresource is not None:
        raise UsageError("a pod subresource needs a pod name")
    return path


def event_order_key(event: Mapping[str, Any]) -> tuple[str, str]:
    """Sort key of an Event dict: (first seen, last seen), each at whole seconds.

    First seen is ``firstTimestamp`` (core/v1), else ``deprecatedFirstTimestamp``
    (events.k8s.io/v1), else ``eventTime``, else the object's creation time; last
    seen is ``series.lastObservedTime``, else ``lastTimestamp``/``deprecatedLastTimestamp``,
    else first seen. The API server writes every time in UTC as
    ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``, so the first 19 characters compare as whole
    seconds without parsing: the scheduler writes microsecond ``eventTime``s, kubelets
    whole seconds, and finer keys would put a kubelet event before the ``Scheduled``
    event of the same second. Events without any time sort first. Pure.
    """
    metadata = event.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    series = event.get("series")
    series = series if isinstance(series, dict) else {}
    first = (
        event.get("firstTimestamp")
        or event.get("deprecatedFirstTimestamp")
        or event.get("eventTime")
        or metadata.get("creationTimestamp")
        or _NO_TIME
    )
    last = (
        series.get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("deprecatedLastTimestamp")
        or first
    )
    return str(first)[:19], str(last)[:19]


@dataclass(frozen=True, slots=True)
class PodList:
    """A complete (all pages) list: the pods and the snapshot's resourceVersion."""

    items: list[dict[str, Any]]
    resource_version: str
    """Start a :meth:`Pods.watch` from here to see every change after the list."""


class Pods:
    """Pod calls over one :class:`KubeClient`. Cheap to make; holds nothing but the client.

    Every method raises the client's typed errors (:mod:`asyncpod.errors`): a name or
    namespace that cannot form a path is a :class:`UsageError` before any request; a
    pod created in a namespace that does not exist is a
    :class:`~asyncpod.errors.NamespaceNotFoundError` (a ``UsageError``).
    """

    __slots__ = ("_client",)

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    @property
    def client(self) -> KubeClient:
        return self._client

    def __repr__(self) -> str:
        return f"<Pods via {self._client!r}>"

    async def create(
        self,
        namespace: str,
        manifest: Mapping[str, Any],
        *,
        dry_run: bool = False,
        managed_fields: bool = True,
    ) -> dict[str, Any]:
        """POST ``manifest`` into ``namespace``; the pod as the server stored it.

        Raises :class:`ConflictError` (409 AlreadyExists) when the name is taken.
        The client does not retry a POST whose answer was lost (it may have worked):
        retrying a create, and deciding that a 409 means "my own earlier attempt", is
        the caller's. ``dry_run`` asks the server to validate and admit the pod
        without storing it (nothing is created; the namespace must exist).
        ``managed_fields=False``: the answer without ``metadata.managedFields``.
        """
        metadata = manifest.get("metadata") or {}
        name = metadata.get("name")
        pod = f"{namespace}/{name}" if name else None
        created = await self._client.request(
            "POST",
            pod_path(namespace),
            params={"dryRun": "All"} if dry_run else None,
            json=manifest,
            pod=pod,
            managed_fields=managed_fields,
        )
        return _pod_dict(created, "POST", pod_path(namespace))

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """The pod as it is now; :class:`NotFoundError` if there is none."""
        path = pod_path(namespace, name)
        answer = await self._client.request("GET", path, pod=f"{namespace}/{name}")
        return _pod_dict(answer, "GET", path)

    async def delete(
        self,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> bool:
        """Delete the pod (propagation ``Background``); True if this call deleted it.

        False when there was nothing to delete: no pod of that name (404), or, with
        ``uid``, a pod of that name with another uid (the server's uid precondition
        failed with 409: a namesake created since, which must not be touched).
        ``grace_period_seconds`` overrides the pod's own grace period (``0``: at once).
        A deleted pod may linger while its containers stop; watch for its DELETED
        event to know it is gone. Other failures raise, after the client's retries.
        """
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if grace_period_seconds is not None:
            if isinstance(grace_period_seconds, bool) or grace_period_seconds < 0:
                raise UsageError(
                    "grace_period_seconds must be a whole number >= 0, "
                    f"got {grace_period_seconds!r}"
                )
            body["gracePeriodSeconds"] = int(grace_period_seconds)
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self._client.request(
                "DELETE", pod_path(namespace, name), json=body, pod=f"{namespace}/{name}",
                decode=False,  # the pod as it was: nobody reads it
            )  # fmt: skip
        except NotFoundError:
            return False
        except ConflictError:
            if uid is None:
                raise
            return False  # "Precondition failed: UID in precondition ...": a namesake
        return True

    async def list(
        self,
        namespace: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
        resource_version: str | None = None,
        rate_limited: bool = True,
        managed_fields: bool = True,
    ) -> PodList:
        """Every pod matching the selectors, following ``continue`` pages of ``page_size``.

        ``resource_version`` as the LIST parameter (``"0"``: any cached version is
        fine). A continue token that expires part-way restarts the list (see
        :func:`~asyncpod.kube.watch.list_objects`). ``rate_limited=False`` skips the
        client-side limiter, for a list every run waits on. ``managed_fields=False``:
        pods without ``metadata.managedFields`` (see :meth:`watch`).
        """
        if page_size < 1:
            raise UsageError(f"page_size must be at least 1, got {page_size}")
        items, version = await list_objects(
            self._client,
            pod_path(namespace),
            label_selector=label_selector,
            field_selector=field_selector,
            limit=page_size,
            resource_version=resource_version,
            rate_limited=rate_limited,
            managed_fields=managed_fields,
        )
        return PodList(items, version)

    def watch(
        self,
        namespace: str,
        *,
        resource_version: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        inactivity_timeout: float | None = 70.0,
        rate_limited: bool = True,
        managed_fields: bool = True,
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """One watch of the namespace's pods from ``resource_version`` (bookmarks on).

        Yields ``(event type, pod)``; see :func:`~asyncpod.kube.watch.watch_stream` for
        how it ends, and for ``managed_fields=False`` (pods without
        ``metadata.managedFields``, decoded for a fraction of the work). Iterate with
        ``contextlib.aclosing``: the stream holds a slot of the client's stream budget
        until the generator is closed.
        """
        return watch_stream(
            self._client,
            pod_path(namespace),
            resource_version=resource_version,
            label_selector=label_selector,
            field_selector=field_selector,
            timeout_seconds=timeout_seconds,
            inactivity_timeout=inactivity_timeout,
            rate_limited=rate_limited,
            managed_fields=managed_fields,
        )

    async def swap_annotation(
        self,
        namespace: str,
        name: str,
        key: str,
        *,
        expected: str | None,
        value: str,
        uid: str,
    ) -> dict[str, Any]:
        """Set annotation ``key`` to ``value`` only if it is ``expected`` now: a compare-and-swap.

        One JSON Patch whose ``test`` operations make the server apply it only to the
        pod with this ``uid`` (not a namesake) whose annotation is still ``expected``
        (``None``: absent). Other writers of the pod (the kubelet's status, other
        annotations) never conflict with it, unlike a resourceVersion precondition. A
        failed test is the server's 422, raised as
        :class:`~asyncpod.errors.InvalidRequestError`: read the pod to learn why.
        Safe to send again after a lost answer (the test then fails, and the pod
        shows ``value``). Returns the pod as the server stored it.
        """
        path = f"/metadata/annotations/{_json_pointer(key)}"
        operations: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/uid", "value": uid},
            {"op": "test", "path": path, "value": expected},
            {"op": "add", "path": path, "value": value},
        ]
        answer = await self._client.request(
            "PATCH",
            pod_path(namespace, name),
            json=operations,
            content_type="application/json-patch+json",
            pod=f"{namespace}/{name}",
        )
        return _pod_dict(answer, "PATCH", pod_path(namespace, name))

    async def evict(
        self,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> bool:
        """Evict the pod through the ``eviction`` subresource; True if it was evicted.

        The API server checks PodDisruptionBudgets (a refusal is the 429 the client
        retries within its policy, then :class:`~asyncpod.errors.TooManyRequestsError`),
        marks the pod with a ``DisruptionTarget`` condition and deletes it. False when
        there is no such pod (404) or, with ``uid``, only a namesake (409).
        """
        body: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        options: dict[str, Any] = {}
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = int(grace_period_seconds)
        if options:
            body["deleteOptions"] = options
        try:
            await self._client.request(
                "POST", pod_path(namespace, name, "eviction"), json=body, pod=f"{namespace}/{name}"
            )
        except NotFoundError:
            return False
        except ConflictError:
            if uid is None:
                raise
            return False
        return True

    async def read_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str,
        timestamps: bool = True,
        read_timeout: float | None = 60.0,
    ) -> AsyncGenerator[bytes, None]:
        """One container's log as it is now, in raw chunks (one GET, no ``follow``).

        For a finished container that is its whole log. Chunks are the server's bytes
        (with ``timestamps``, each line starts with its RFC3339Nano time and a space);
        the caller writes them where they belong, so memory stays one chunk. Opening
        raises the client's typed errors (400 for a container that never started, 404
        for a pod gone, 5xx for a node the API server cannot reach); a cut mid-body
        raises the client's transport error.
        """
        path = pod_path(namespace, name, "log")
        params: dict[str, str] = {"container": container}
        if timestamps:
            params["timestamps"] = "true"
        pod = f"{namespace}/{name}"
        async with self._client.stream(
            "GET", path, params=params, pod=pod, read_timeout=read_timeout
        ) as response:
            while True:
                try:
                    chunk = await response.content.readany()
                except aiohttp.ClientError as exc:
                    raise translate_transport_error(exc, method="GET", path=path, pod=pod) from None
                if not chunk:
                    return
                yield chunk

    async def events_of(self, namespace: str, uid: str) -> ObjectList:
        """The Events whose ``involvedObject.uid`` is ``uid``, oldest first.

        Ordered by :func:`event_order_key`; ties keep the server's order (creation
        order). One LIST (paged) of ``events`` in ``namespace``, which needs the
        ``list`` verb on ``events``. Events expire (an hour by default), so an old
        pod may have none.
        """
        if not uid:
            raise UsageError("events_of needs the object's uid")
        path = f"/api/v1/namespaces/{_segment(namespace, 'namespace')}/events"
        items, _ = await list_objects(
            self._client, path, field_selector=f"involvedObject.uid={uid}"
        )
        return sorted(items, key=event_order_key)


def _json_pointer(token: str) -> str:
    """``token`` escaped as one JSON Pointer segment (RFC 6901: ``~`` and ``/``)."""
    return token.replace("~", "~0").replace("/", "~1")


def _pod_dict(answer: Any, method: str, path: str) -> dict[str, Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("metadata"), dict):
        raise ApiConnectionError(f"{method} {path}: the answer was not a pod object")
    return answer
