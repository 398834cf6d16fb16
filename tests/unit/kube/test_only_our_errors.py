"""Whatever a server does, only AsyncpodError leaves asyncpod.kube.

Every public call of the package is made against a server that misbehaves in each way
a broken proxy, a wrong URL or a dying API server can: garbage bodies, the wrong JSON
shape, HTML error pages, cut connections, statuses without a body. Each call must either
succeed or raise an :class:`AsyncpodError`; a ``KeyError``, ``TypeError`` or
``AttributeError`` from deep inside would be a promise broken (errors.py, "one root").
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from asyncpod.errors import ApiConnectionError, AsyncpodError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.logs import LogFollower
from asyncpod.kube.pods import Pods
from tests.unit.kube.fakeapi import FakeApiServer, Handler

PODS = "/api/v1/namespaces/ns/pods"
EVENTS = "/api/v1/namespaces/ns/events"


def body(payload: bytes, *, status: int = 200, content_type: str = "application/json") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=payload, content_type=content_type)

    return handler


async def cut(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    await response.write(b'{"items": [')
    assert request.transport is not None
    request.transport.close()
    return response


FAULTS: dict[str, Handler] = {
    "html 500": body(b"<html>oops</html>", status=500, content_type="text/html"),
    "garbage json": body(b"{not json"),
    "a json list": body(b"[1, 2, 3]"),
    "a json string": body(b'"pod"'),
    "items not a list": body(orjson.dumps({"items": "abc", "metadata": {}})),
    "items not objects": body(orjson.dumps({"items": [1, "x"], "metadata": {}})),
    "metadata not an object": body(orjson.dumps({"items": [], "metadata": "x"})),
    "watch events of the wrong shape": body(b'{"type": 1, "object": []}\n["x"]\n'),
    "plain text": body(b"hello", content_type="text/plain"),
    "404 without a body": body(b"", status=404),
    "409 with text": body(b"conflict", status=409, content_type="text/plain"),
    "cut mid-body": cut,
}


async def not_finished() -> bool:
    return False


async def drain(client: KubeClient) -> None:
    async with contextlib.aclosing(Pods(client).watch("ns", resource_version="1")) as events:
        async for _ in events:
            pass


async def follow(client: KubeClient) -> None:
    follower = LogFollower(
        client, "ns", "p", container="main", container_finished=not_finished, max_failures=2
    )
    async with contextlib.aclosing(follower.__aiter__()) as lines:
        async for _ in lines:
            break


CALLS: dict[str, Callable[[KubeClient], Awaitable[Any]]] = {
    "create": lambda c: Pods(c).create("ns", {"metadata": {"name": "p"}}),
    "get": lambda c: Pods(c).get("ns", "p"),
    "delete": lambda c: Pods(c).delete("ns", "p", uid="u"),
    "list": lambda c: Pods(c).list("ns"),
    "events_of": lambda c: Pods(c).events_of("ns", "u"),
    "watch": drain,
    "request": lambda c: c.request("GET", f"{PODS}/p"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_only_asyncpod_errors_leave_the_package(
    api: FakeApiServer, client: KubeClient, fault: str, call: str
) -> None:
    handler = FAULTS[fault]
    for method, path in (
        ("GET", PODS),
        ("POST", PODS),
        ("GET", f"{PODS}/p"),
        ("DELETE", f"{PODS}/p"),
        ("GET", EVENTS),
    ):
        api.on(method, path, handler)

    # The promise: success or a typed error (which one is pinned by the other tests).
    with contextlib.suppress(AsyncpodError):
        await CALLS[call](client)


@pytest.mark.parametrize("fault", ["html 500", "cut mid-body", "404 without a body"])
async def test_log_following_fails_only_with_asyncpod_errors(
    api: FakeApiServer, client: KubeClient, fault: str
) -> None:
    api.on("GET", f"{PODS}/p/log", FAULTS[fault])

    with contextlib.suppress(AsyncpodError):
        await follow(client)


async def test_a_watch_event_of_the_wrong_shape_is_not_passed_on(
    api: FakeApiServer, client: KubeClient
) -> None:
    api.on("GET", PODS, FAULTS["watch events of the wrong shape"])

    with pytest.raises(ApiConnectionError, match="without a type or an object"):
        await drain(client)
