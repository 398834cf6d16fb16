"""Runs survive what real clusters do: API server restarts, compaction (410), partitions."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod import Outcome, PodSpec, PodState
from asyncpod.testing import LocalControlPlane, outcome
from asyncpod.testing.proxy import FaultProxy
from asyncpod.testing.pytest_plugin import TestCluster

from .conftest import TEST_OPTIONS

# Outcomes come from kwok playing out sim.asyncpod.dev/* annotations.
pytestmark = [pytest.mark.integration, pytest.mark.simulated]


async def running(run: asyncpod.PodRun) -> None:
    async for change in run.states():
        if change.state is PodState.RUNNING:
            return
    raise AssertionError(f"{run} ended before running")


def phase(kube_cluster: TestCluster, namespace: str, name: str) -> str | None:
    try:
        pod: dict[str, Any] = kube_cluster.admin.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{name}"
        )
    except Exception:  # noqa: BLE001 - gone, or the API server is restarting
        return None
    return str(pod["status"].get("phase"))


async def test_every_run_gets_its_result_across_an_apiserver_restart(
    control_plane: LocalControlPlane, cluster: asyncpod.Cluster
) -> None:
    specs = [
        PodSpec("busybox:1.36", annotations=outcome(duration=duration, exit_code=code))
        for duration, code in ((1.0, 0), (3.0, 4), (4.0, 0), (6.0, 2))
    ]
    runs = [await cluster.start(spec) for spec in specs]
    await asyncio.gather(*(running(run) for run in runs))
    await asyncio.to_thread(control_plane.restart_apiserver)
    results = await asyncio.wait_for(asyncio.gather(*(run.result() for run in runs)), 60)
    assert [r.exit_code for r in results] == [0, 4, 0, 2]
    assert [r.outcome for r in results] == [
        Outcome.SUCCEEDED, Outcome.FAILED, Outcome.SUCCEEDED, Outcome.FAILED,
    ]  # fmt: skip
    (informer,) = cluster.statistics().informers
    assert informer.reconnects + informer.gone >= 1  # the watch really broke


async def test_relist_after_410_delivers_what_happened_in_the_gap(
    control_plane: LocalControlPlane,
    kube_cluster: TestCluster,
    proxied_kubeconfig: Path,
    namespace: str,
    proxy: FaultProxy,
) -> None:
    # The test before restarted the API server; the scheduler and kwok reconnect with
    # their own backoff, which on a loaded machine once left a pod Pending past
    # TEST_OPTIONS' 60 s. Scheduling is not what this test is about: wait longer for it.
    options = replace(TEST_OPTIONS, schedule_timeout=180, startup_timeout=180)
    async with asyncpod.connect(proxied_kubeconfig, namespace=namespace, options=options) as c:
        finishing = await c.start(PodSpec("busybox:1.36", annotations=outcome(duration=2.0)))
        failing = await c.start(
            PodSpec("busybox:1.36", annotations=outcome(duration=2.0, exit_code=9))
        )
        doomed = await c.start(PodSpec("busybox:1.36", annotations=outcome(duration="1h")))
        survivor = await c.start(PodSpec("busybox:1.36", annotations=outcome(duration="1h")))
        runs = (finishing, failing, doomed, survivor)
        await asyncio.gather(*(running(run) for run in runs))

        # Cut the client off. While it cannot see anything: two pods finish, one is
        # deleted by someone else, etcd is compacted and the API server restarted (so
        # its watch cache forgets the versions the client last saw).
        proxy.partition()
        kube_cluster.admin.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{doomed.name}")
        deadline = time.monotonic() + 30
        while {phase(kube_cluster, namespace, str(r.name)) for r in (finishing, failing)} != {
            "Succeeded", "Failed"
        } or phase(kube_cluster, namespace, str(doomed.name)) is not None:  # fmt: skip
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        await asyncio.to_thread(control_plane.compact_etcd)
        await asyncio.to_thread(control_plane.restart_apiserver)
        proxy.resume()

        results = await asyncio.wait_for(
            asyncio.gather(finishing.result(), failing.result(), doomed.result()), 60
        )
        assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.FAILED, Outcome.DELETED]
        assert results[1].exit_code == 9
        assert not survivor.done()
        (informer,) = c.statistics().informers
        assert informer.gone >= 1
        assert informer.lists >= 2  # the relist
        cancelled = await survivor.cancel()
        assert cancelled is not None
        assert cancelled.outcome is Outcome.CANCELLED


async def test_a_silent_watch_is_detected_and_reopened(
    proxied_kubeconfig: Path, namespace: str, proxy: FaultProxy
) -> None:
    async with asyncpod.connect(
        proxied_kubeconfig, namespace=namespace, options=TEST_OPTIONS, inactivity_timeout=2.0
    ) as c:
        run = await c.start(PodSpec("busybox:1.36", annotations=outcome(duration=4.0)))
        await running(run)
        # The open watch goes silent (a half-open connection): the pod finishes while
        # nothing reaches us. Only the inactivity timeout can notice and reconnect.
        assert proxy.stall() >= 1
        result = await asyncio.wait_for(run.result(), 30)
        assert result.ok
        (informer,) = c.statistics().informers
        assert informer.stalls >= 1
        # Idle pooled connections are frozen too; a TLS close needs the peer's answer,
        # so thaw them before the session closes (the OS would reset them eventually).
        proxy.resume()
