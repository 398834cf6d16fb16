"""The pods API against a loopback server: what it sends, and how it reads each answer."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from asyncpod.errors import (
    ApiConnectionError,
    ConflictError,
    ForbiddenError,
    NamespaceNotFoundError,
    NotFoundError,
    UsageError,
)
from asyncpod.kube.client import KubeClient
from asyncpod.kube.pods import Pods, event_order_key, pod_path
from tests.unit.kube.fakeapi import (
    FakeApiServer,
    events,
    fail,
    reply,
    status_response,
    stream_chunks,
)

PODS = "/api/v1/namespaces/ns/pods"
POD = {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}


def test_pod_path_builds_each_shape() -> None:
    assert pod_path("ns") == PODS
    assert pod_path("ns", "p") == f"{PODS}/p"
    assert pod_path("ns", "p", "log") == f"{PODS}/p/log"


@pytest.mark.parametrize(
    ("namespace", "name"), [("", "p"), ("ns", ""), ("a/b", "p"), ("ns", "p/log"), ("ns", "..")]
)
def test_pod_path_refuses_what_would_make_another_path(namespace: str, name: str) -> None:
    with pytest.raises(UsageError, match="without '/'"):
        pod_path(namespace, name)


def test_a_subresource_needs_a_name() -> None:
    with pytest.raises(UsageError, match="needs a pod name"):
        pod_path("ns", None, "log")


async def test_create_posts_the_manifest_and_returns_the_pod(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("POST", PODS, reply(POD, 201))
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}

    assert await Pods(client).create("ns", manifest) == POD

    (seen,) = api.seen("POST", PODS)
    assert orjson.loads(seen.body) == manifest
    assert seen.query == {}


async def test_create_and_list_without_managed_fields_decode_pods_without_them(
    api: FakeApiServer, client: KubeClient
) -> None:
    """``managed_fields=False``: the answer's bytes (a real pod, as the API server sent
    it) are cut before decoding; the default returns the pod whole."""
    recorded = (Path(__file__).parent / "data" / "watch-event-running-pod.json").read_bytes()
    pod = orjson.loads(recorded)["object"]
    trimmed = {
        **pod,
        "metadata": {k: v for k, v in pod["metadata"].items() if k != "managedFields"},
    }
    pod_bytes = orjson.dumps(pod)
    page = b'{"kind":"PodList","metadata":{"resourceVersion":"7"},"items":[' + pod_bytes + b"]}"

    async def created(request: web.Request) -> web.Response:
        return web.Response(body=pod_bytes, status=201, content_type="application/json")

    async def listed(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="application/json")

    api.on("POST", PODS, created)
    api.on("GET", PODS, listed)
    pods = Pods(client)
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mf-x"}}

    assert await pods.create("ns", manifest, managed_fields=False) == trimmed
    assert (await pods.list("ns", managed_fields=False)).items == [trimmed]
    assert await pods.create("ns", manifest) == pod
    assert (await pods.list("ns")).items == [pod]


async def test_create_dry_run_asks_the_server_not_to_store(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("POST", PODS, reply(POD, 201))

    await Pods(client).create("ns", {"metadata": {"name": "p"}}, dry_run=True)

    assert api.seen("POST", PODS)[0].query == {"dryRun": "All"}


async def test_create_in_a_missing_namespace_is_a_usage_error(
    api: FakeApiServer, client: KubeClient
) -> None:
    # The body kube-apiserver sends for a create in a namespace that does not exist.
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": 'namespaces "ns" not found',
        "reason": "NotFound",
        "details": {"name": "ns", "kind": "namespaces"},
        "code": 404,
    }
    api.on("POST", PODS, reply(body, 404))

    with pytest.raises(NamespaceNotFoundError) as caught:
        await Pods(client).create("ns", {"metadata": {"name": "p"}})

    assert isinstance(caught.value, UsageError)
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.namespace == "ns"
    assert caught.value.pod == "ns/p"
    assert len(api.seen("POST")) == 1  # a usage error is not retried


async def test_create_conflict_is_raised_for_the_caller_to_decide(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("POST", PODS, fail(409, "AlreadyExists", 'pods "p" already exists'))

    with pytest.raises(ConflictError, match="already exists"):
        await Pods(client).create("ns", {"metadata": {"name": "p"}})


async def test_get_returns_the_pod_and_raises_not_found(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", f"{PODS}/p", reply(POD))

    pods = Pods(client)
    assert await pods.get("ns", "p") == POD
    with pytest.raises(NotFoundError) as missing:
        await pods.get("ns", "q")  # no route: the fake answers 404 NotFound
    assert missing.value.pod == "ns/q"
    assert not isinstance(missing.value, NamespaceNotFoundError)


async def test_get_of_something_that_is_not_a_pod_is_a_broken_answer(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", f"{PODS}/p", reply(["not", "a", "pod"]))

    with pytest.raises(ApiConnectionError, match="not a pod object"):
        await Pods(client).get("ns", "p")


async def test_delete_sends_background_propagation_uid_and_grace(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("DELETE", f"{PODS}/p", reply(POD))

    deleted = await Pods(client).delete("ns", "p", uid="u1", grace_period_seconds=0)

    assert deleted is True
    (seen,) = api.seen("DELETE")
    assert orjson.loads(seen.body) == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Background",
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u1"},
    }


async def test_delete_without_options_sends_neither_uid_nor_grace(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("DELETE", f"{PODS}/p", reply(POD))

    assert await Pods(client).delete("ns", "p") is True

    body = orjson.loads(api.seen("DELETE")[0].body)
    assert "preconditions" not in body
    assert "gracePeriodSeconds" not in body


async def test_delete_of_a_missing_pod_answers_false(
    api: FakeApiServer, client: KubeClient
) -> None:
    assert await Pods(client).delete("ns", "gone", uid="u1") is False


async def test_delete_of_a_namesake_answers_false(api: FakeApiServer, client: KubeClient) -> None:
    # What kube-apiserver answers when the uid precondition does not hold.
    message = "Precondition failed: UID in precondition: u1, UID in object meta: u2"
    api.on("DELETE", f"{PODS}/p", fail(409, "Conflict", message))

    assert await Pods(client).delete("ns", "p", uid="u1") is False


async def test_delete_conflict_without_a_uid_is_raised(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("DELETE", f"{PODS}/p", fail(409, "Conflict", "something else"))

    with pytest.raises(ConflictError):
        await Pods(client).delete("ns", "p")


async def test_delete_forbidden_is_raised(api: FakeApiServer, client: KubeClient) -> None:
    api.on("DELETE", f"{PODS}/p", fail(403, "Forbidden", 'cannot delete resource "pods"'))

    with pytest.raises(ForbiddenError, match="cannot delete"):
        await Pods(client).delete("ns", "p", uid="u1")


@pytest.mark.parametrize("grace", [-1, True])
async def test_delete_refuses_a_bad_grace_period(
    api: FakeApiServer, client: KubeClient, grace: Any
) -> None:
    with pytest.raises(UsageError, match="grace_period_seconds"):
        await Pods(client).delete("ns", "p", grace_period_seconds=grace)
    assert api.requests == []


async def test_list_follows_pages_and_passes_selectors(
    api: FakeApiServer, client: KubeClient
) -> None:
    pages = [
        {"metadata": {"continue": "t1", "resourceVersion": "5"}, "items": [{"metadata": {}}]},
        {"metadata": {"resourceVersion": "5"}, "items": [{"metadata": {}}, {"metadata": {}}]},
    ]
    api.on("GET", PODS, reply(pages[0]), reply(pages[1]))

    listed = await Pods(client).list(
        "ns", label_selector="a=b", field_selector="status.phase=Running", page_size=1
    )

    assert len(listed.items) == 3
    assert listed.resource_version == "5"
    first, second = api.seen("GET", PODS)
    assert first.query == {
        "labelSelector": "a=b",
        "fieldSelector": "status.phase=Running",
        "limit": "1",
    }
    assert second.query["continue"] == "t1"


async def test_list_refuses_a_page_size_below_one(client: KubeClient) -> None:
    with pytest.raises(UsageError, match="page_size"):
        await Pods(client).list("ns", page_size=0)


async def test_watch_streams_the_namespace_pods(api: FakeApiServer, client: KubeClient) -> None:
    api.on("GET", PODS, stream_chunks([events(("ADDED", POD), ("BOOKMARK", {"metadata": {}}))]))

    async with contextlib.aclosing(
        Pods(client).watch("ns", resource_version="7", label_selector="a=b")
    ) as stream:
        seen = [kind async for kind, _ in stream]

    assert seen == ["ADDED", "BOOKMARK"]
    query = api.seen("GET", PODS)[0].query
    assert query["watch"] == "true"
    assert query["resourceVersion"] == "7"
    assert query["labelSelector"] == "a=b"
    assert query["allowWatchBookmarks"] == "true"


def event(
    reason: str,
    first: str | None = None,
    last: str | None = None,
    *,
    event_time: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": reason, "metadata": {"name": reason}}
    if first:
        body["firstTimestamp"] = first
    if last:
        body["lastTimestamp"] = last
    if event_time:
        body["eventTime"] = event_time
    return body


async def test_events_of_selects_by_uid_and_sorts_oldest_first(
    api: FakeApiServer, client: KubeClient
) -> None:
    listed = {
        "metadata": {"resourceVersion": "9"},
        "items": [
            event("Pulled", "2024-05-01T10:00:03Z", "2024-05-01T10:00:03Z"),
            event("BackOff", "2024-05-01T10:00:02Z", "2024-05-01T10:00:09Z"),
            # The scheduler's microsecond eventTime ties with the kubelet's whole second.
            event("Scheduled", event_time="2024-05-01T10:00:02.900000Z"),
            event("NoTime"),
        ],
    }
    path = "/api/v1/namespaces/ns/events"
    api.on("GET", path, reply(listed))

    found = await Pods(client).events_of("ns", "u1")

    assert [e["reason"] for e in found] == ["NoTime", "Scheduled", "BackOff", "Pulled"]
    assert api.seen("GET", path)[0].query["fieldSelector"] == "involvedObject.uid=u1"


async def test_events_of_needs_a_uid(client: KubeClient) -> None:
    with pytest.raises(UsageError, match="uid"):
        await Pods(client).events_of("ns", "")


def test_event_order_key_reads_both_event_generations() -> None:
    newer = {
        "deprecatedFirstTimestamp": "2024-05-01T10:00:01Z",
        "series": {"lastObservedTime": "2024-05-01T10:00:07.123456Z"},
    }
    assert event_order_key(newer) == ("2024-05-01T10:00:01", "2024-05-01T10:00:07")
    only_created = {"metadata": {"creationTimestamp": "2024-05-01T10:00:05Z"}}
    assert event_order_key(only_created) == ("2024-05-01T10:00:05",) * 2
    assert event_order_key({}) == ("", "")


async def test_a_stored_error_body_names_the_pod(api: FakeApiServer, client: KubeClient) -> None:
    async def invalid(request: web.Request) -> web.StreamResponse:
        return status_response(422, "Invalid", 'Pod "p" is invalid')

    api.on("POST", PODS, invalid)

    with pytest.raises(UsageError) as caught:
        await Pods(client).create("ns", {"metadata": {"name": "p"}})
    assert "pod ns/p" in str(caught.value)
