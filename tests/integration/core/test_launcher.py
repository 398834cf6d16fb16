"""The launcher at scale, on the real API server, measured by the server's own metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod import Launcher, Outcome, PodSpec
from asyncpod.testing import LocalControlPlane, outcome
from asyncpod.testing.pytest_plugin import TestCluster

from .conftest import TEST_OPTIONS

# Outcomes come from kwok playing out sim.asyncpod.dev/* annotations.
pytestmark = [pytest.mark.integration, pytest.mark.simulated]


def spec_for(index: int) -> PodSpec:
    """Every 7th task fails with exit code 3; all others succeed."""
    code = 3 if index % 7 == 0 else 0
    return PodSpec(
        "busybox:1.36",
        task_key=f"task-{index}",
        annotations=outcome(duration=0.5, exit_code=code),
    )


def pods_of_run(kube_cluster: TestCluster, namespace: str, run_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube_cluster.admin.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=asyncpod.dev/run-id%3D{run_id}",
    )["items"]
    return items


async def test_a_thousand_pods_at_200_in_flight_share_one_watch_and_never_poll(
    control_plane: LocalControlPlane, sa_kubeconfig: Path, namespace: str
) -> None:
    count = 1000
    before = control_plane.request_counts()
    started = time.monotonic()
    results: dict[str, asyncpod.PodResult] = {}
    peak_in_flight = 0
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS, qps=None
    ) as cluster:
        launcher = Launcher(cluster, max_in_flight=200, run_id="thousand")
        async for result in launcher.as_completed(spec_for(i) for i in range(count)):
            assert result.task_key is not None
            results[result.task_key] = result
            peak_in_flight = max(peak_in_flight, launcher.statistics().in_flight)
        stats = launcher.statistics()
        (informer,) = cluster.statistics().informers
        client = cluster.client.statistics()
    elapsed = time.monotonic() - started
    delta = control_plane.request_counts() - before

    assert len(results) == count
    for index in range(count):
        result = results[f"task-{index}"]
        expected = 3 if index % 7 == 0 else 0
        assert result.exit_code == expected, result.describe()
        assert result.outcome is (Outcome.FAILED if expected else Outcome.SUCCEEDED)
    assert stats.outcomes == {"succeeded": 857, "failed": 143}
    assert 1 < peak_in_flight <= 200
    # One watch for the whole batch, whatever the pod count. On this 2-core machine the
    # saturated API server may force-close slow watchers ("Forcing pods watcher close
    # due to unresponsiveness", kwok's and the scheduler's too); ours then resumes from
    # its last resourceVersion, without a relist.
    # How often depends on load (a 1,000-pod burst in the benchmarks saw 17 cuts), so
    # the bound is loose; what matters is that it is nowhere near one per pod.
    assert informer.lists == 1
    assert informer.watches_opened <= 25
    assert delta.get("WATCH", "pods") <= 60  # every component's watches, cluster-wide
    assert delta.get("GET", "pods") == 0  # no per-pod polling, by anyone
    assert delta.get("POST", "pods") == count
    # Ours, plus kwok's final deletion with grace period 0 (the "kubelet" side).
    assert count <= delta.get("DELETE", "pods") <= 2 * count
    # Our own GETs: connect()'s one GET /version, the informer's LIST and WATCHes, plus
    # the events of each failed pod (143) and nothing else. (The API server's LIST
    # events count also holds the controller-manager's relists, so it is only a lower
    # bound here.)
    ours = 1 + informer.lists + informer.watches_opened + 143
    assert ours <= client.requests_sent["GET"] <= ours + client.retries
    assert delta.get("LIST", "events") >= 143
    seen = {k: v for k, v in delta.counts.items() if k[1] in ("pods", "events") and v}
    print(f"\n1000 pods at 200 in flight: {elapsed:.1f}s; API server requests: {seen}")


async def test_one_bad_spec_fails_alone(cluster: asyncpod.Cluster) -> None:
    specs = [
        PodSpec("busybox:1.36", annotations=outcome(duration=0.2)),
        PodSpec("busybox:1.36", labels={"not a valid key": "x"}),
        PodSpec("busybox:1.36", template={"spec": {"dnsPolicy": "Sometimes"}}),  # 422
        PodSpec("busybox:1.36", annotations=outcome(duration=0.2)),
    ]
    launcher = Launcher(cluster, max_in_flight=2)
    results = [result async for result in launcher.map(specs)]
    assert [r.outcome for r in results] == [
        Outcome.SUCCEEDED, Outcome.ERROR, Outcome.ERROR, Outcome.SUCCEEDED,
    ]  # fmt: skip
    assert results[1].message is not None
    assert "SpecError" in results[1].message
    assert results[2].message is not None
    assert "dnsPolicy" in results[2].message
    assert [r.task_key for r in results] == ["0", "1", "2", "3"]


async def test_a_new_launcher_with_the_same_run_id_reattaches_instead_of_duplicating(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str
) -> None:
    specs = [
        PodSpec("busybox:1.36", task_key=f"k{i}", annotations=outcome(duration=3.0))
        for i in range(5)
    ]
    # First launcher: create the pods, then "crash" (leave without deleting them).
    keep = asyncpod.RunOptions(cleanup=asyncpod.Cleanup.KEEP)
    async with asyncpod.connect(sa_kubeconfig, namespace=namespace, options=keep) as first:
        launcher = Launcher(first, max_in_flight=10, run_id="resume-me")
        runs = [await launcher.submit(spec) for spec in specs]
        for run in runs:
            await run.created()
        uids = {run.uid for run in runs}
    assert len(pods_of_run(kube_cluster, namespace, "resume-me")) == 5

    async with asyncpod.connect(sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS) as again:
        launcher = Launcher(again, max_in_flight=10, run_id="resume-me")
        results = [result async for result in launcher.map(specs)]
    assert launcher.statistics().reattached == 5
    assert {r.uid for r in results} == uids  # the same pods, not new ones
    assert all(r.ok for r in results)
    assert [r.task_key for r in results] == [f"k{i}" for i in range(5)]


async def test_stopping_the_iteration_cancels_runs_in_flight(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    launcher = Launcher(cluster, max_in_flight=3, run_id="stop-early")
    specs = [PodSpec("busybox:1.36", annotations=outcome(duration=0.2))] + [
        PodSpec("busybox:1.36", annotations=outcome(duration="1h")) for _ in range(5)
    ]
    results = launcher.as_completed(specs)
    assert isinstance(results, AsyncGenerator)
    first = await results.__anext__()
    assert first.ok
    await results.aclose()  # the consumer walks away
    assert launcher.statistics().submitted <= 4
    deadline = time.monotonic() + 15
    while pods_of_run(kube_cluster, namespace, "stop-early"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_cancelling_during_the_create_burst_leaves_no_pod(
    sa_kubeconfig: Path, kube_cluster: TestCluster, namespace: str
) -> None:
    """Runs cancelled while their POST is on the wire still find and delete their pod."""
    async with asyncpod.connect(sa_kubeconfig, namespace=namespace, qps=None) as cluster:
        launcher = Launcher(cluster, max_in_flight=100, run_id="burst")
        specs = [PodSpec("busybox:1.36", annotations=outcome(duration="1h")) for _ in range(100)]

        async def consume() -> None:
            async for _ in launcher.as_completed(specs):
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.3)  # mid-burst: some POSTs answered, some in flight
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert launcher.statistics().submitted > 0
    deadline = time.monotonic() + 30
    while left := pods_of_run(kube_cluster, namespace, "burst"):
        assert time.monotonic() < deadline, f"{len(left)} pods leaked"
        await asyncio.sleep(0.2)
