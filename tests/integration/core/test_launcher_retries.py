"""The launcher's retries, stop and kept logs as a library user sees them.

Evictions go through the API server's eviction subresource (``Pods.evict``, as an
admin: the runs' ServiceAccount has only the minimal Role); every attempt is a new pod
named from (run id, task key, attempt); ``max_failures`` stops creating pods and
cancels those in flight; kept logs are written before the pod is deleted.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import anyio
import pytest

import asyncpod
from asyncpod import Attempt, FailurePolicy, KeepLogs, Launcher, Outcome, PodSpec
from asyncpod.core.failurepolicy import attempt_pod_name
from asyncpod.kube.pods import Pods
from asyncpod.spec import RUN_ID_LABEL
from asyncpod.testing import outcome
from asyncpod.testing.pytest_plugin import TestCluster

from .conftest import TEST_OPTIONS

pytestmark = [pytest.mark.integration, pytest.mark.simulated]


async def test_evicted_attempts_are_retried_in_new_pods_and_succeed(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    run_id = "lib-evict"
    keys = [f"k{i}" for i in range(3)]
    specs = [PodSpec("busybox", task_key=k, annotations=outcome(duration=8)) for k in keys]
    first = {attempt_pod_name(run_id, k, 1) for k in keys}
    attempts: dict[str, list[Attempt]] = defaultdict(list)
    async with asyncpod.connect(kube_cluster.kubeconfig, namespace=namespace) as admin:
        pods = Pods(admin.client)
        launcher = Launcher(
            cluster, run_id=run_id, max_in_flight=3, retry=FailurePolicy(backoff=0.2)
        )

        async def evict_first_attempts() -> None:
            evicted: set[str] = set()
            while evicted != first:
                listed = await pods.list(namespace, label_selector=f"{RUN_ID_LABEL}={run_id}")
                for pod in listed.items:
                    name = pod["metadata"]["name"]
                    if name in first and name not in evicted:
                        assert await pods.evict(namespace, name, uid=pod["metadata"]["uid"])
                        evicted.add(name)
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as group:
            group.start_soon(evict_first_attempts)
            async for attempt in launcher.attempts(specs):
                attempts[attempt.task_key].append(attempt)
        stats = launcher.statistics()

    assert sorted(attempts) == keys
    for key, made in attempts.items():
        assert [(a.attempt, a.final, a.result.outcome) for a in made] == [
            (1, False, Outcome.DELETED),
            (2, True, Outcome.SUCCEEDED),
        ]
        assert made[0].retry_in is not None
        assert made[0].result.reason == "EvictionByEvictionAPI"  # its DisruptionTarget
        assert made[1].result.name == attempt_pod_name(run_id, key, 2)
    assert stats.retried == 3
    assert stats.final_failures == 0
    assert stats.in_flight == 0


async def test_max_failures_cancels_the_runs_in_flight_and_keeps_the_failed_logs(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str, tmp_path: Path
) -> None:
    run_id = "lib-stop"
    specs = [
        PodSpec("busybox", task_key="fast-0", annotations=outcome(duration=0.2, exit_code=3)),
        PodSpec("busybox", task_key="fast-1", annotations=outcome(duration=0.2, exit_code=3)),
        *(
            PodSpec("busybox", task_key=f"slow-{i}", annotations=outcome(duration=60))
            for i in range(2)
        ),
        *(
            PodSpec("busybox", task_key=f"later-{i}", annotations=outcome(duration=60))
            for i in range(10)
        ),
    ]
    launcher = Launcher(
        cluster,
        run_id=run_id,
        max_in_flight=4,
        max_failures=2,
        options=TEST_OPTIONS,
        keep_logs=KeepLogs(tmp_path / "logs"),
    )
    finals = {a.task_key: a async for a in launcher.attempts(specs) if a.final}
    stats = launcher.statistics()

    assert launcher.stopped == "2 tasks failed (max_failures=2)"
    assert stats.stopped == launcher.stopped
    assert stats.submitted <= 4 + 2  # in flight + failures: no pod after the stop
    assert len(finals) == stats.submitted  # every pod made has its final attempt
    outcomes = {k: a.result.outcome for k, a in finals.items()}
    assert outcomes.pop("fast-0") is Outcome.FAILED
    assert outcomes.pop("fast-1") is Outcome.FAILED
    assert set(outcomes.values()) == {Outcome.CANCELLED}  # the slow ones, and any later one
    assert {"slow-0", "slow-1"} <= set(outcomes)
    for key in ("slow-0", "slow-1"):
        message = finals[key].result.message or ""
        assert message == "cancelled: the batch stopped (2 tasks failed (max_failures=2))"
        assert finals[key].log is None  # cancelled attempts keep no log
    for key in ("fast-0", "fast-1"):
        kept = finals[key]
        # kwok serves no log without a Logs object: kept as missing, with the reason.
        assert kept.log is not None or kept.log_missing
    left = await Pods(cluster.client).list(namespace, label_selector=f"{RUN_ID_LABEL}={run_id}")
    assert all(p["metadata"].get("deletionTimestamp") for p in left.items)
