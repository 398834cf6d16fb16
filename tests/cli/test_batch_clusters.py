"""``asyncpod batch`` over two local control planes: weights, resume, a cluster lost for good.

The session's control plane is cluster "A" (weight 3 where weights matter); a second
:class:`~asyncpod.testing.LocalControlPlane` started for this module (its own ports and
temp dir) is cluster "B". The last test kills B's kube-apiserver for good, so it runs
last. Pods are kwok-simulated and short: two control planes on a loaded 2-core machine
are heavy. Nothing here passes or fails on timing; waits have generous timeouts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncpod.spec import RUN_ID_LABEL
from asyncpod.testing import LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster
from tests.cli.helpers import Cli, pod_creates, pods, pods_created, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.simulated]

SIM = "sim.asyncpod.dev/"
# 2,000 by default, as the issue asks; ASYNCPOD_FLEET_TASKS lowers it on a small machine.
A, B = "a.kubeconfig", "b.kubeconfig"
TASKS = int(os.environ.get("ASYNCPOD_FLEET_TASKS", "2000"))


@pytest.fixture(scope="module")
def plane_b(kube_cluster: TestCluster) -> Iterator[LocalControlPlane]:
    if not kube_cluster.is_local:
        pytest.skip("needs the local control plane (a second one is started beside it)")
    with LocalControlPlane(nodes=1) as plane:
        yield plane


@pytest.fixture
def two(cli: Cli, plane_b: LocalControlPlane, kube_cluster: TestCluster) -> list[str]:
    """The cluster options of A and B (their kubeconfigs copied to a.kubeconfig and
    b.kubeconfig in the command's directory: the clusters' names), and B's namespace
    named as A's."""
    assert plane_b.admin is not None
    plane_b.create_namespace(cli.namespace)
    shutil.copyfile(kube_cluster.kubeconfig, cli.workdir / A)
    shutil.copyfile(plane_b.kubeconfig, cli.workdir / B)
    return ["--kubeconfig", f"{A}=3", "--kubeconfig", B, "--namespace", cli.namespace]


def write_jsonl(path: Path, specs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(spec) + "\n" for spec in specs))
    return path


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def pods_of(plane: LocalControlPlane, namespace: str, run_id: str) -> list[Any]:
    assert plane.admin is not None
    path = f"/api/v1/namespaces/{namespace}/pods?labelSelector={RUN_ID_LABEL}%3D{run_id}"
    items: list[Any] = plane.admin.request("GET", path)["items"]
    return items


def test_a_batch_over_two_clusters_by_weight_one_final_result_each_naming_its_cluster(
    cli: Cli,
    two: list[str],
    control_plane: LocalControlPlane,
    plane_b: LocalControlPlane,
    kube_cluster: TestCluster,
) -> None:
    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [{"image": "busybox", "annotations": {f"{SIM}duration": "1s"}} for _ in range(TASKS)],
    )
    results = cli.workdir / "results.jsonl"
    a_before, b_before = pods_created(control_plane), pods_created(plane_b)
    done = cli.run(
        "batch", str(jobs), *two, "--run-id", "two-w", "--results", str(results),
        "--max-in-flight", "200", "--qps", "0", "--progress", "none",
        timeout=1500,
    )  # fmt: skip
    assert done.popen.returncode == 0, done.stderr
    lines = read_lines(results)
    a, b = A, B
    finals = Counter(line["task_key"] for line in lines if line["final"])
    assert finals == Counter(str(i) for i in range(TASKS))  # exactly one final result each
    assert all(line["outcome"] == "succeeded" for line in lines)
    by_cluster = Counter(line["cluster"] for line in lines)
    assert set(by_cluster) == {a, b}
    assert by_cluster[a] > 0
    assert by_cluster[b] > 0
    # The weights are shares of --max-in-flight (150 + 50): A held more tasks at once
    # than B's whole share, and neither more than its own. (How many each ran in all
    # follows how fast each control plane turns a slot over.)
    said = " ".join(done.stdout.split())
    peaks = {
        name: (int(held), int(share))
        for name, share, held in re.findall(
            r"(\w\.kubeconfig) \d+ \(share (\d+), at most (\d+) at once", said
        )
    }
    assert peaks[a][1] == 150
    assert peaks[b][1] == 50
    assert 50 < peaks[a][0] <= 150
    assert 0 < peaks[b][0] <= 50
    # Each server created exactly the pods its lines say ran there.
    assert pods_created(control_plane) - a_before == by_cluster[a]
    assert pods_created(plane_b) - b_before == by_cluster[b]
    assert "clusters" in done.stdout
    wait_until(
        lambda: (
            not pods(kube_cluster, cli.namespace, f"{RUN_ID_LABEL}=two-w")
            and not pods_of(plane_b, cli.namespace, "two-w")
        ),
        timeout=60,
        what="no pod left on either cluster",
    )


# Its own waits allow 300 s + 600 s on a loaded machine: pytest-timeout's 300 s cut it once.
@pytest.mark.timeout(1200)
def test_sigkill_and_resume_across_clusters_reattaches_where_each_attempt_ran(
    cli: Cli,
    two: list[str],
    control_plane: LocalControlPlane,
    plane_b: LocalControlPlane,
    kube_cluster: TestCluster,
) -> None:
    tasks = 40
    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [{"image": "busybox", "annotations": {f"{SIM}duration": "4s"}} for _ in range(tasks)],
    )
    results = cli.workdir / "results.jsonl"
    args = [
        "batch", str(jobs), *two, "--run-id", "two-r", "--results", str(results),
        "--max-in-flight", "8", "--progress", "none",
    ]  # fmt: skip
    a_before, b_before = pod_creates(control_plane), pod_creates(plane_b)
    first = cli.start(*args)
    wait_until(
        lambda: results.exists() and len(results.read_text().splitlines()) >= 10,
        timeout=300,
        what="some results recorded",
    )
    first.popen.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    alive = len(pods_of(control_plane, cli.namespace, "two-r")) + len(
        pods_of(plane_b, cli.namespace, "two-r")
    )
    assert len(read_lines(results)) < tasks

    second = cli.run(*args, "--resume", timeout=600)

    assert second.popen.returncode == 0, second.stderr
    lines = read_lines(results)
    finals = Counter(line["task_key"] for line in lines if line["final"])
    assert finals == Counter(str(i) for i in range(tasks))
    assert all(line["attempt"] == 1 for line in lines)
    # One pod per task over both processes and both clusters: the pods alive at the
    # kill were reattached where they ran, none made again on the other cluster.
    # A task whose pod finished as the kill came has its pod kept until its line is
    # written (record first: BatchConfig.run_options), so it is reattached, not made
    # again; a recorded pod left by the kill is swept (no pod is left, below).
    # A create in flight at the SIGKILL can be stored though its answer was a 504
    # (tests/cli/helpers.py, PodCreates): every 201 is a pod made, some 5xx may be.
    created = (pod_creates(control_plane) - a_before) + (pod_creates(plane_b) - b_before)
    assert created.allow(tasks), (created, tasks, alive, second.stdout)
    where: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        where[line["task_key"]].add(line["cluster"])
    assert all(len(clusters) == 1 for clusters in where.values())
    if alive:
        assert "reattached" in second.stdout
    wait_until(
        lambda: (
            not pods_of(control_plane, cli.namespace, "two-r")
            and not pods_of(plane_b, cli.namespace, "two-r")
        ),
        timeout=60,
        what="no pod left on either cluster",
    )


def test_a_cluster_lost_for_good_gets_no_new_pods_and_its_tasks_do_not_run_twice(
    cli: Cli,
    two: list[str],
    control_plane: LocalControlPlane,
    plane_b: LocalControlPlane,
    kube_cluster: TestCluster,
) -> None:
    tasks = 150
    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [{"image": "busybox", "annotations": {f"{SIM}duration": "2s"}} for _ in range(tasks)],
    )
    results = cli.workdir / "results.jsonl"
    a, b = A, B
    a_before = pods_created(control_plane)
    running = cli.start(
        "batch", str(jobs), *two, "--run-id", "two-k", "--results", str(results),
        "--max-in-flight", "20", "--cluster-lost-after", "10", "--progress", "none",
    )  # fmt: skip
    wait_until(
        lambda: (
            results.exists()
            and sum(json.loads(line)["cluster"] == b for line in results.read_text().splitlines())
            >= 10
        ),
        timeout=300,
        what="B ran some pods",
    )
    plane_b.kill_apiserver()  # for good: never started again
    assert running.wait(900) == 1, running.stderr  # B's tasks in flight failed

    lines = read_lines(results)
    finals = Counter(line["task_key"] for line in lines if line["final"])
    assert finals == Counter(str(i) for i in range(tasks))  # every task has a final result
    lost = [line for line in lines if line["reason"] == "ClusterUnreachable"]
    assert lost
    assert all(line["cluster"] == b and line["final"] for line in lost)
    assert all("may still be running" in line["message"] for line in lost)
    # The default policy forbids moving them: no task ran on both clusters.
    where: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        where[line["task_key"]].add(line["cluster"])
    assert all(len(clusters) == 1 for clusters in where.values())
    # A created exactly the pods its lines say; the rest of the batch went to A.
    on_a = sum(line["cluster"] == a for line in lines)
    assert pods_created(control_plane) - a_before == on_a
    assert on_a + sum(line["cluster"] == b for line in lines) == tasks
    assert "cluster" in running.stderr
    assert "lost" in running.stderr
    assert not pods(kube_cluster, cli.namespace, f"{RUN_ID_LABEL}=two-k")
