"""The pods API against a real kube-apiserver: its real answers to each call.

The unit tests pin what is sent; these pin how the real server answers: the uid
precondition that protects a namesake, the 404 of a namespace that does not exist, a
server-side dry run, paged lists with selectors, and Events selected by uid.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncpod.errors import ConflictError, NamespaceNotFoundError, NotFoundError, UsageError
from asyncpod.kube import KubeClient, Pods
from asyncpod.testing.pytest_plugin import TestCluster

pytestmark = pytest.mark.integration


@pytest.fixture
async def pods(kube_cluster: TestCluster) -> AsyncIterator[Pods]:
    async with await KubeClient.from_kubeconfig(str(kube_cluster.kubeconfig)) as client:
        yield Pods(client)


def manifest(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "x"}]},
    }


async def gone(pods: Pods, namespace: str, name: str) -> bool:
    try:
        await pods.get(namespace, name)
    except NotFoundError:
        return True
    return False


async def test_create_get_and_delete_a_pod(pods: Pods, namespace: str) -> None:
    created = await pods.create(namespace, manifest("p"))
    uid = created["metadata"]["uid"]

    fetched = await pods.get(namespace, "p")
    assert fetched["metadata"]["uid"] == uid
    with pytest.raises(ConflictError, match="already exists"):
        await pods.create(namespace, manifest("p"))

    assert await pods.delete(namespace, "p", uid=uid, grace_period_seconds=0) is True
    assert await gone(pods, namespace, "p")
    assert await pods.delete(namespace, "p", uid=uid) is False  # already gone: no error


async def test_delete_with_an_old_uid_spares_the_namesake(pods: Pods, namespace: str) -> None:
    first = await pods.create(namespace, manifest("p"))
    await pods.delete(namespace, "p", grace_period_seconds=0)
    second = await pods.create(namespace, manifest("p"))
    assert second["metadata"]["uid"] != first["metadata"]["uid"]

    assert await pods.delete(namespace, "p", uid=first["metadata"]["uid"]) is False

    still = await pods.get(namespace, "p")
    assert still["metadata"]["uid"] == second["metadata"]["uid"]
    assert "deletionTimestamp" not in still["metadata"]


async def test_a_namespace_that_does_not_exist_is_a_usage_error(pods: Pods) -> None:
    with pytest.raises(NamespaceNotFoundError) as caught:
        await pods.create("asyncpod-no-such-namespace", manifest("p"))

    assert isinstance(caught.value, UsageError)
    assert caught.value.namespace == "asyncpod-no-such-namespace"
    # Listing in it is not an error for the server: an empty list.
    assert (await pods.list("asyncpod-no-such-namespace")).items == []


async def test_dry_run_creates_nothing(pods: Pods, namespace: str) -> None:
    answer = await pods.create(namespace, manifest("dry"), dry_run=True)

    assert answer["metadata"]["name"] == "dry"
    assert await gone(pods, namespace, "dry")


async def test_list_pages_and_selects(pods: Pods, namespace: str) -> None:
    await asyncio.gather(
        *(pods.create(namespace, manifest(f"p{i}", group="a" if i % 2 else "b")) for i in range(5))
    )

    everything = await pods.list(namespace, page_size=2)
    group_a = await pods.list(namespace, label_selector="group=a")

    assert sorted(p["metadata"]["name"] for p in everything.items) == [f"p{i}" for i in range(5)]
    assert everything.resource_version.isdigit()
    assert sorted(p["metadata"]["name"] for p in group_a.items) == ["p1", "p3"]
    assert pods.client.statistics().requests_sent["GET"] >= 4  # three pages, then one


async def test_events_of_one_uid_oldest_first(pods: Pods, namespace: str) -> None:
    created = await pods.create(namespace, manifest("p"))
    other = await pods.create(namespace, manifest("q"))

    async def record(name: str, pod: dict[str, Any], reason: str, first: str) -> None:
        await pods.client.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/events",
            json={
                "metadata": {"name": name},
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
                "reason": reason,
                "message": reason,
                "type": "Warning",
                "firstTimestamp": first,
                "lastTimestamp": first,
            },
        )

    await record("e-late", created, "Late", "2030-01-01T00:00:09Z")
    await record("e-early", created, "Early", "2030-01-01T00:00:01Z")
    await record("e-other", other, "Other", "2030-01-01T00:00:05Z")

    found = await pods.events_of(namespace, created["metadata"]["uid"])

    ours = [e["reason"] for e in found if e["reason"] in ("Early", "Late", "Other")]
    assert ours == ["Early", "Late"]
    assert all(e["involvedObject"]["uid"] == created["metadata"]["uid"] for e in found)
