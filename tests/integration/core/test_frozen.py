"""A control plane that freezes mid-burst, connections open and nothing answered, loses
no result and leaks no pod.

Not a crash (tests/integration/core/test_outage.py: refused connections) but a hang:
after half the POSTs of a 40-pod burst, kube-apiserver, or etcd behind it, is stopped
(SIGSTOP) and continued 8 s later. No socket closes, so nothing is refused: requests in
flight get no answer and end by the client's ``request_timeout`` (2 s here), the watch
by its ``inactivity_timeout`` (5 s). Some of those creates were stored before the
freeze or as it ended, their answers never read; they are retried with the same name
and attempt token and adopted (409 + our token), not duplicated (seen: 2 adopted with
the API server frozen, 9 with etcd). After the thaw every run ends with the result its
pod's annotations ask for. Leader election is off in the local control plane, so the
scheduler and controller-manager wait the freeze out instead of exiting.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

import asyncpod
from asyncpod import Launcher, PodSpec, Settings
from asyncpod.testing import LocalControlPlane, outcome
from asyncpod.testing.pytest_plugin import TestCluster

from .test_outage import (
    OUTAGE_OPTIONS,
    PODS,
    assert_one_right_result_and_one_pod_per_task,
    exit_code_of,
    pods_of_run,
)

pytestmark = [pytest.mark.integration, pytest.mark.simulated]

FROZEN_SECONDS = 8
PATIENCE = Settings(qps=None, request_timeout=2.0, inactivity_timeout=5.0)


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The process stopped for the block, and continued whatever happens in it."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def freeze_after(
    control_plane: LocalControlPlane, cluster: asyncpod.Cluster, process: str
) -> int:
    """Freeze ``process`` once half the burst is POSTed; the requests left hanging."""
    while cluster.client.statistics().requests_sent.get("POST", 0) < PODS // 2:  # noqa: ASYNC110
        await anyio.sleep(0.001)
    before = cluster.client.statistics().connection_errors
    with frozen(control_plane.pids[process]):
        await anyio.sleep(FROZEN_SECONDS)
    return cluster.client.statistics().connection_errors - before


@pytest.mark.parametrize("process", ["kube-apiserver", "etcd"])
async def test_a_frozen_server_during_the_create_burst_loses_no_result_and_leaks_no_pod(
    control_plane: LocalControlPlane,
    kube_cluster: TestCluster,
    namespace: str,
    sa_kubeconfig: Path,
    process: str,
) -> None:
    if kube_cluster.local is None:
        pytest.skip("the local control plane only: its processes are stopped and continued")
    run_id = f"frozen-{process}"
    specs = [
        PodSpec(
            "busybox:1.36",
            task_key=f"t{i}",
            annotations=outcome(duration=2, exit_code=exit_code_of(i)),
        )
        for i in range(PODS)
    ]
    results: dict[str, asyncpod.PodResult] = {}
    timed_out: list[int] = []
    with anyio.fail_after(280):  # beyond OUTAGE_OPTIONS' limits; a hang fails here
        async with asyncpod.connect(
            sa_kubeconfig, namespace=namespace, options=OUTAGE_OPTIONS, settings=PATIENCE
        ) as cluster:
            launcher = Launcher(cluster, max_in_flight=PODS, run_id=run_id)

            async def freeze() -> None:
                timed_out.append(await freeze_after(control_plane, cluster, process))

            async with anyio.create_task_group() as group:
                group.start_soon(freeze)
                async for result in launcher.as_completed(specs):
                    results[str(result.task_key)] = result

    assert_one_right_result_and_one_pod_per_task(results)
    (unanswered,) = timed_out
    assert unanswered > 0  # the freeze really left requests hanging
    await anyio.sleep(1)
    assert pods_of_run(kube_cluster, namespace, run_id) == []
