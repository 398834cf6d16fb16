"""asyncpod.kube against a real kube-apiserver (the local control plane, or any cluster).

The unit tests cover what a real server cannot be made to do on demand; these pin the
contract with the real thing: TLS with client certificates from a real kubeconfig,
paginated lists, watches (including a real 410 after etcd compaction), real 403/404/409
Status bodies, and log following through the real ``pods/log`` endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import pytest

from asyncpod.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidRequestError,
    NotFoundError,
)
from asyncpod.kube import (
    ClusterConfig,
    KubeClient,
    LogFollower,
    StaticToken,
    list_objects,
    watch_stream,
)
from asyncpod.testing import LocalControlPlane, outcome
from asyncpod.testing.pytest_plugin import TestCluster

pytestmark = pytest.mark.integration


@pytest.fixture
async def kube(kube_cluster: TestCluster) -> AsyncIterator[KubeClient]:
    async with await KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig)) as client:
        yield client


def configmaps(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps"


async def test_create_get_conflict_and_not_found(kube: KubeClient, namespace: str) -> None:
    path = configmaps(namespace)
    body = {"metadata": {"name": "c"}, "data": {"k": "v"}}

    created = await kube.request("POST", path, json=body)
    assert created["metadata"]["uid"]
    with pytest.raises(ConflictError) as conflict:
        await kube.request("POST", path, json=body)
    assert conflict.value.reason == "AlreadyExists"
    with pytest.raises(NotFoundError, match='"missing" not found'):
        await kube.request("GET", f"{path}/missing")
    assert kube.statistics().retries == 0


async def test_list_paginates_over_a_real_server(kube: KubeClient, namespace: str) -> None:
    path = configmaps(namespace)
    names = {f"c{i}" for i in range(7)}
    await asyncio.gather(
        *(kube.request("POST", path, json={"metadata": {"name": n}}) for n in names)
    )

    items, version = await list_objects(kube, path, limit=2)

    # kube-root-ca.crt is created in every namespace by the controller manager.
    assert names <= {item["metadata"]["name"] for item in items}
    assert len(items) == len({item["metadata"]["uid"] for item in items})
    assert version.isdigit()
    assert kube.statistics().requests_sent["GET"] >= 4  # 7+ items, 2 per page


async def test_watch_from_a_list_sees_changes_and_ends_cleanly(
    kube: KubeClient, namespace: str
) -> None:
    path = configmaps(namespace)
    _, version = await list_objects(kube, path)

    async def change() -> None:
        await kube.request("POST", path, json={"metadata": {"name": "w"}})
        await kube.request("DELETE", f"{path}/w")

    seen: list[tuple[str, str]] = []
    writer = asyncio.create_task(change())
    stream = watch_stream(kube, path, resource_version=version, timeout_seconds=3)
    async with contextlib.aclosing(stream):
        async for kind, obj in stream:  # ends by itself after timeoutSeconds
            seen.append((kind, obj["metadata"].get("name", "")))
    await writer

    assert ("ADDED", "w") in seen
    assert ("DELETED", "w") in seen
    assert seen.index(("ADDED", "w")) < seen.index(("DELETED", "w"))
    assert kube.statistics().streams_open == 0


async def test_watch_from_a_compacted_version_raises_gone(
    control_plane: LocalControlPlane, kube: KubeClient, namespace: str
) -> None:
    path = configmaps(namespace)
    _, old_version = await list_objects(kube, path)
    for index in range(5):
        await kube.request("POST", path, json={"metadata": {"name": f"g{index}"}})
    await asyncio.to_thread(control_plane.compact_etcd)
    # The watch cache would still serve the old version; a restart drops it.
    await asyncio.to_thread(control_plane.restart_apiserver)

    with pytest.raises(GoneError):
        await drain(watch_stream(kube, path, resource_version=old_version, timeout_seconds=5))


async def drain(stream: AsyncGenerator[tuple[str, dict[str, Any]], None]) -> None:
    async with contextlib.aclosing(stream):
        async for _ in stream:
            pass


async def test_a_service_account_without_rights_gets_forbidden(
    kube_cluster: TestCluster, kube: KubeClient, namespace: str
) -> None:
    await kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts",
        json={"metadata": {"name": "nobody"}},
    )
    grant = await kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/nobody/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    token = grant["status"]["token"]
    config = ClusterConfig(
        kube.config.server,
        ca_file=kube.config.ca_file,
        tls_server_name=kube.config.tls_server_name,
        credentials=StaticToken(token),
    )

    async with await KubeClient.from_config(config) as weak:
        with pytest.raises(ForbiddenError) as caught:
            await weak.request("GET", f"/api/v1/namespaces/{namespace}/pods", pod=None)

    error = caught.value
    assert f"system:serviceaccount:{namespace}:nobody" in error.message
    assert 'cannot list resource "pods"' in error.message
    assert token not in str(error)


async def test_follow_a_containers_log_to_its_end(
    kube_cluster: TestCluster,
    kube: KubeClient,
    namespace: str,
    container_logs: Callable[..., dict[str, Any]],
) -> None:
    logs = container_logs("p", ["main"])
    logs["main"].write(["one", "two"])
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        # Runs until the test is over: the test itself says when the container is done
        # (below), so how fast kwok serves the log on a loaded machine cannot matter.
        "metadata": {"name": "p", "annotations": outcome(duration="300s")},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "x"}]},
    }
    pods = f"/api/v1/namespaces/{namespace}/pods"
    await kube.request("POST", pods, json=pod)

    async def state() -> dict[str, Any]:
        current = await kube.request("GET", f"{pods}/p")
        for status in current.get("status", {}).get("containerStatuses") or []:
            if status["name"] == "main":
                return dict(status.get("state") or {})
        return {}

    last_line_written = asyncio.Event()

    async def finished() -> bool:
        # What the informer would answer once the container exited after its last line.
        return last_line_written.is_set() or "terminated" in await state()

    # kwok runs the pod and picks up the Logs object through its own watches, which may
    # lag for tens of seconds right after another test restarted the API server (seen:
    # neither within 30 s after the outage tests); wait until it serves the file.
    deadline = time.monotonic() + 180
    while "running" not in await state():
        assert time.monotonic() < deadline, "kwok never ran the pod"
        await asyncio.sleep(0.1)
    while True:
        with contextlib.suppress(InvalidRequestError):  # kwok: "no logs found" meanwhile
            served = await kube.request("GET", f"{pods}/p/log", params={"container": "main"})
            if served == b"one\ntwo\n":
                break
        assert time.monotonic() < deadline, "kwok never served the container's log"
        await asyncio.sleep(0.1)

    # kwok keeps a followed log open after the container exits; the follower notices
    # the exit while the stream is silent and drains without follow.
    follower = LogFollower(
        kube, namespace, "p", container="main", container_finished=finished,
        finish_check_interval=0.5,
    )  # fmt: skip

    texts: list[str] = []

    async def collect() -> None:
        async for line in follower:
            texts.append(line.text)

    task = asyncio.create_task(collect())
    for _ in range(600):  # the followed stream is open and has delivered the first lines
        if len(texts) == 2:
            break
        await asyncio.sleep(0.05)
    logs["main"].write(["three"])
    last_line_written.set()
    await asyncio.wait_for(task, 30)

    assert texts == ["one", "two", "three"], (follower.statistics(), await state())
    stats = follower.statistics()
    assert stats.interrupted == 0  # ended by the finish check, not by a timeout or a cut
    assert stats.opens == 2  # the followed stream, then the drain
