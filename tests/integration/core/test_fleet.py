"""A fleet over two sessions: shares by weight, one final result per task, a lost cluster.

Both members talk to the one local control plane, "west" through a fault proxy: a
partition of the proxy is, to the fleet, a cluster whose API server stopped answering
(and whose pods go on running, as a real lost cluster's may). The two-control-plane
version, through the CLI, is tests/integration/cli/test_batch_clusters.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

import asyncpod
from asyncpod import Fleet, FleetAttempt, FleetMember, Outcome, PodSpec
from asyncpod.core.failurepolicy import DEFAULT_RULES, FailurePolicy, FailureRule
from asyncpod.errors import UsageError
from asyncpod.testing import outcome
from asyncpod.testing.proxy import FaultProxy
from asyncpod.testing.pytest_plugin import TestCluster

from .conftest import TEST_OPTIONS

pytestmark = [pytest.mark.integration, pytest.mark.simulated]

OPTIONS = replace(TEST_OPTIONS, delete_retry_window=5, create_retry_window=5)


@pytest.fixture
def west_kubeconfig(
    sa_kubeconfig: Path, proxy: FaultProxy, kube_cluster: TestCluster, tmp_path: Path
) -> Path:
    """The same ServiceAccount's kubeconfig, through the proxy."""
    text = sa_kubeconfig.read_text()
    assert kube_cluster.admin.server in text
    path = tmp_path / "west.kubeconfig"
    path.write_text(text.replace(kube_cluster.admin.server, f"https://{proxy.address}"))
    return path


def run_pods(kube_cluster: TestCluster, namespace: str, run_id: str) -> list[str]:
    items = kube_cluster.admin.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=asyncpod.dev/run-id%3D{run_id}",
    )["items"]
    return sorted(
        p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")
    )


async def test_a_fleet_splits_by_weight_and_gives_each_task_one_final_result(
    sa_kubeconfig: Path, west_kubeconfig: Path, namespace: str, kube_cluster: TestCluster
) -> None:
    specs = [
        PodSpec("busybox:1.36", task_key=f"t{i}", annotations=outcome(duration=1))
        for i in range(40)
    ]
    seen: list[FleetAttempt] = []
    with anyio.fail_after(240):
        async with (
            asyncpod.connect(sa_kubeconfig, namespace=namespace, options=OPTIONS, qps=None) as east,
            asyncpod.connect(
                west_kubeconfig, namespace=namespace, options=OPTIONS, qps=None
            ) as west,
        ):
            fleet = Fleet(
                [FleetMember("east", east, weight=3), FleetMember("west", west, weight=1)],
                max_in_flight=8,
                run_id="fleet-weights",
                probe_interval=1,
            )
            assert fleet.shares == {"east": 6, "west": 2}
            async for attempt in fleet.attempts(specs):
                seen.append(attempt)
            stats = fleet.statistics()
    finals = Counter(a.task_key for a in seen if a.final)
    assert finals == Counter(f"t{i}" for i in range(40))
    assert all(a.result.outcome is Outcome.SUCCEEDED for a in seen)
    by_cluster = Counter(a.cluster for a in seen)
    assert by_cluster["west"] > 0
    assert by_cluster["east"] > by_cluster["west"]
    assert {n: s.max_in_flight for n, s in stats.clusters.items()} == {"east": 6, "west": 2}
    assert not stats.lost
    assert run_pods(kube_cluster, namespace, "fleet-weights") == []


@pytest.mark.parametrize("move", [False, True], ids=["default-policy", "retry-on-unreachable"])
async def test_a_lost_clusters_tasks_move_only_where_the_policy_says(
    sa_kubeconfig: Path,
    west_kubeconfig: Path,
    proxy: FaultProxy,
    namespace: str,
    kube_cluster: TestCluster,
    move: bool,
) -> None:
    run_id = f"fleet-lost-{int(move)}"
    # West's first pods are alive on the "lost" cluster when it goes (its watch is cut
    # before they finish).
    specs = [
        PodSpec("busybox:1.36", task_key=f"t{i}", annotations=outcome(duration=1))
        for i in range(30)
    ]
    rules = (FailureRule.parse("reason=ClusterUnreachable"),) if move else ()
    policy = FailurePolicy(rules=(*rules, *DEFAULT_RULES), backoff=0.1)
    seen: list[FleetAttempt] = []

    async def partition_when_west_runs(west: asyncpod.Cluster) -> None:
        while west.client.statistics().requests_sent.get("POST", 0) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        proxy.partition()

    with anyio.fail_after(280):
        async with (
            asyncpod.connect(sa_kubeconfig, namespace=namespace, options=OPTIONS, qps=None) as east,
            asyncpod.connect(
                west_kubeconfig, namespace=namespace, options=OPTIONS, qps=None
            ) as west,
        ):
            fleet = Fleet(
                [FleetMember("east", east, weight=1), FleetMember("west", west, weight=1)],
                max_in_flight=4,
                run_id=run_id,
                retry=policy,
                lost_after=4,
                probe_interval=0.5,
            )
            async with anyio.create_task_group() as group:
                group.start_soon(partition_when_west_runs, west)
                async for attempt in fleet.attempts(specs):
                    seen.append(attempt)
            # (The proxy once let a connection opened during the partition through.)
            assert "west" in fleet.statistics().lost, (
                fleet.statistics(),
                proxy.statistics(),
                [(a.cluster, a.task_key, a.result.reason) for a in seen],
            )
    finals = Counter(a.task_key for a in seen if a.final)
    assert finals == Counter(f"t{i}" for i in range(30))  # one final result each
    lost = [a for a in seen if a.result.reason == "ClusterUnreachable"]
    assert lost
    assert all(a.cluster == "west" for a in lost)
    assert all("may still be running" in (a.result.message or "") for a in lost)
    clusters_of: dict[str, set[str]] = {}
    for a in seen:
        clusters_of.setdefault(a.task_key, set()).add(a.cluster)
    moved = {k for k, c in clusters_of.items() if len(c) > 1}
    if move:
        # Each lost attempt is retried on east, and succeeds there.
        assert {a.task_key for a in lost} <= moved
        assert all(not a.final for a in lost)
        last = {a.task_key: a for a in seen if a.final}
        assert all(last[k].cluster == "east" and last[k].result.ok for k in moved)
    else:
        # The policy forbade it: no task ran anywhere after its cluster was lost.
        assert moved == set()
        assert all(a.final for a in lost)
    # East leaves no pod; what is left is west's, which the fleet could not reach.
    west_names = {a.result.name for a in seen if a.cluster == "west"}
    left = run_pods(kube_cluster, namespace, run_id)
    assert set(left) <= west_names
    for name in left:
        kube_cluster.admin.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")


async def test_max_failures_stops_every_cluster_of_the_fleet(
    sa_kubeconfig: Path, west_kubeconfig: Path, namespace: str, kube_cluster: TestCluster
) -> None:
    specs = [
        PodSpec("busybox:1.36", task_key=f"t{i}", annotations=outcome(duration=1, exit_code=1))
        for i in range(30)
    ]
    seen: list[FleetAttempt] = []
    with anyio.fail_after(240):
        async with (
            asyncpod.connect(sa_kubeconfig, namespace=namespace, options=OPTIONS, qps=None) as east,
            asyncpod.connect(
                west_kubeconfig, namespace=namespace, options=OPTIONS, qps=None
            ) as west,
        ):
            fleet = Fleet(
                [FleetMember("east", east), FleetMember("west", west)],
                max_in_flight=4,
                run_id="fleet-stop",
                max_failures=3,
                probe_interval=1,
            )
            async for attempt in fleet.attempts(specs):
                seen.append(attempt)
            assert fleet.stopped is not None
            assert "max_failures=3" in fleet.stopped
            created = sum(s.submitted for s in fleet.statistics().clusters.values())
    assert all(a.final for a in seen)
    assert len({a.task_key for a in seen}) == len(seen)  # one result each, at most
    failed = [a for a in seen if a.result.outcome is Outcome.FAILED]
    assert len(failed) >= 3
    assert all(a.result.outcome in (Outcome.FAILED, Outcome.CANCELLED) for a in seen)
    assert created <= 4 + len(failed)  # in flight when it stopped, and the failures
    assert len(seen) < len(specs)  # the rest never started
    assert run_pods(kube_cluster, namespace, "fleet-stop") == []


async def test_a_task_key_given_twice_is_a_usage_error_and_leaves_no_pod(
    cluster: asyncpod.Cluster, namespace: str, kube_cluster: TestCluster
) -> None:
    specs = [
        PodSpec("busybox:1.36", task_key=key, annotations=outcome(duration=30))
        for key in ("t0", "t1", "t0")
    ]
    fleet = Fleet(
        [FleetMember("one", cluster), FleetMember("two", cluster)],
        max_in_flight=4,
        run_id="fleet-dup",
    )
    with anyio.fail_after(120), pytest.raises(UsageError, match="'t0' appears twice"):
        async for _ in fleet.attempts(specs):
            pass
    assert run_pods(kube_cluster, namespace, "fleet-dup") == []
