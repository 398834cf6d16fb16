"""Attaching reads nothing the shared watch can answer.

A trigger deferred right after its worker created the pod, a triggerer restarted, a
batch resumed: each attaches to pods that exist, and each GET of them is a request per
pod that one watch per namespace makes unnecessary. The pod's creation
resourceVersion (from the create's answer) tells when the watch has seen it; a pod
that ended while nobody followed it is remembered a while (``PodInformer.recall``).
The GETs counted are the session's own, minus its watch's LISTs and WATCHes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod import NotFoundError, Outcome, PodSpec
from asyncpod.core import cluster as cluster_module
from asyncpod.core.cluster import MANAGED_SELECTOR
from asyncpod.testing import outcome
from asyncpod.testing.pytest_plugin import TestCluster
from tests.integration.core.conftest import TEST_OPTIONS
from tests.integration.core.test_runs import per_pod_gets

pytestmark = [pytest.mark.integration, pytest.mark.simulated]


async def _until(predicate: Callable[[], object], what: str) -> None:
    """Poll the session's own state (no request) until ``predicate()``; 60 s at most."""
    with anyio.move_on_after(60):
        while True:
            if predicate():
                return
            await anyio.sleep(0.05)
    pytest.fail(f"waited 60 s for {what}")


def _create(kube_cluster: TestCluster, namespace: str, name: str, **sim: Any) -> dict[str, Any]:
    manifest = PodSpec("busybox:1.36", annotations=outcome(**sim)).to_manifest(
        namespace=namespace, name=name
    )
    created: dict[str, Any] = kube_cluster.admin.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods", manifest
    )
    return created


async def test_attach_with_the_creation_version_reads_nothing(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cluster_module, "ATTACH_GRACE_SECONDS", 0.0)  # not what decides
    informer = cluster.informer(namespace, selector=MANAGED_SELECTOR)
    await informer.wait_synced()
    before = per_pod_gets(cluster, informer)
    created = _create(kube_cluster, namespace, "fresh", duration=1)
    meta = created["metadata"]

    run = await cluster.attach("fresh", uid=meta["uid"], resource_version=meta["resourceVersion"])

    assert per_pod_gets(cluster, informer) == before
    assert (await run).ok


async def test_a_pod_that_finished_unfollowed_is_attached_without_a_read(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cluster_module, "ATTACH_GRACE_SECONDS", 0.0)
    informer = cluster.informer(namespace, selector=MANAGED_SELECTOR)
    await informer.wait_synced()
    meta = _create(kube_cluster, namespace, "short", duration=0, exit_code=3)["metadata"]
    await _until(lambda: informer.recall("short"), "the watch to see it end unfollowed")
    assert informer.get("short") is None
    before = per_pod_gets(cluster, informer)

    quiet = replace(TEST_OPTIONS, collect_events=False)  # a failed pod's events are a LIST
    run = await cluster.attach(
        "short", uid=meta["uid"], resource_version=meta["resourceVersion"], options=quiet
    )
    result = await run

    assert per_pod_gets(cluster, informer) == before
    assert (result.outcome, result.exit_code) == (Outcome.FAILED, 3)


async def test_a_new_session_attaches_to_pods_of_the_last_one_without_reads(
    sa_kubeconfig: Path, kube_cluster: TestCluster, namespace: str
) -> None:
    # A restarted triggerer: its first LIST shows every pod, running or finished.
    running = _create(kube_cluster, namespace, "running", duration=60)["metadata"]
    finished = _create(kube_cluster, namespace, "finished", duration=0)["metadata"]
    async with asyncpod.connect(sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS) as old:
        informer = old.informer(namespace, selector=MANAGED_SELECTOR)
        await informer.wait_synced()
        await _until(lambda: informer.recall("finished"), "the short pod to finish")
        await _until(
            lambda: (informer.get("running") or {}).get("status", {}).get("phase") == "Running",
            "the long pod to run",
        )

    async with asyncpod.connect(sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS) as new:
        informer = new.informer(namespace, selector=MANAGED_SELECTOR)
        await informer.wait_synced()
        before = per_pod_gets(new, informer)
        done = await new.attach("finished", uid=finished["uid"])
        alive = await new.attach("running", uid=running["uid"])
        assert per_pod_gets(new, informer) == before
        assert (await done).ok
        await alive.cancel()


async def test_a_pod_deleted_unfollowed_is_not_found_without_a_read(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    namespace: str,
) -> None:
    informer = cluster.informer(namespace, selector=MANAGED_SELECTOR)
    await informer.wait_synced()
    meta = _create(kube_cluster, namespace, "gone", duration=60)["metadata"]
    kube_cluster.admin.request(
        "DELETE", f"/api/v1/namespaces/{namespace}/pods/gone", {"gracePeriodSeconds": 0}
    )
    await _until(lambda: getattr(informer.recall("gone"), "deleted", False), "the deletion")
    before = per_pod_gets(cluster, informer)

    with pytest.raises(NotFoundError):
        await cluster.attach("gone", uid=meta["uid"], resource_version=meta["resourceVersion"])

    assert per_pod_gets(cluster, informer) == before


async def test_follow_gives_the_result_in_the_calling_task_without_a_read(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    namespace: str,
) -> None:
    informer = cluster.informer(namespace, selector=MANAGED_SELECTOR)
    await informer.wait_synced()
    before = per_pod_gets(cluster, informer)
    meta = _create(kube_cluster, namespace, "followed", duration=1)["metadata"]

    result = await cluster.follow(
        "followed", uid=meta["uid"], resource_version=meta["resourceVersion"]
    )

    assert result.outcome is Outcome.SUCCEEDED
    assert result.uid == meta["uid"]
    assert per_pod_gets(cluster, informer) == before
    assert cluster.statistics().runs_active == 0  # nothing left of the run


async def test_follow_gives_a_failure_as_a_result(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    meta = _create(kube_cluster, namespace, "failing", duration=1, exit_code=3)["metadata"]

    result = await cluster.follow("failing", uid=meta["uid"])

    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 3


async def test_follow_raises_for_a_pod_that_is_gone_and_leaves_no_run(
    cluster: asyncpod.Cluster, namespace: str
) -> None:
    with pytest.raises(NotFoundError):
        await cluster.follow("never-made", namespace=namespace)
    assert cluster.statistics().runs_active == 0


async def test_a_cancelled_follower_ends_its_run_as_the_cleanup_says(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    namespace: str,
) -> None:
    meta = _create(kube_cluster, namespace, "abandoned", duration=600)["metadata"]

    with anyio.move_on_after(2) as scope:
        await cluster.follow("abandoned", uid=meta["uid"])  # cleanup DELETE: the pod goes

    assert scope.cancelled_caught
    assert cluster.statistics().runs_active == 0

    def gone() -> bool:
        listed = kube_cluster.admin.request("GET", f"/api/v1/namespaces/{namespace}/pods")
        return all(p["metadata"]["name"] != "abandoned" for p in listed["items"])

    await _until(gone, "the cancelled run's pod to be deleted")
