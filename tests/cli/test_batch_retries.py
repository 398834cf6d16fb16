"""``asyncpod batch`` retries, stops and keeps logs: checked from the outside.

Against the local control plane: pods evicted through the API server's eviction
subresource or deleted by someone else are retried in new pods and succeed; exit codes
are retried only where a rule says so; ``--max-failures`` stops a batch of broken
images early; failed tasks' logs are on disk; a batch killed with SIGKILL between
attempts and resumed runs no attempt twice (POST pods counted by the API server).
Backoff is observed by order (each attempt's pod is created after the previous one
finished), never by a clock threshold.
"""

from __future__ import annotations

import itertools
import json
import signal
import textwrap
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from asyncpod.core.failurepolicy import attempt_pod_name
from asyncpod.spec import RUN_ID_LABEL
from asyncpod.testing import LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.simulate import ContainerLog, register_logs
from tests.cli.helpers import Cli, pods, pods_created, wait_until

pytestmark = pytest.mark.integration

SIM = "sim.asyncpod.dev/"


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_jsonl(path: Path, specs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(spec) + "\n" for spec in specs))
    return path


def by_task(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    tasks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        tasks[line["task_key"]].append(line)
    return tasks


def flat(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.simulated
def test_evicted_and_externally_deleted_attempts_are_retried_and_succeed_next_time(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    keys = [f"t{i}" for i in range(4)]
    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [
            {"task_key": k, "image": "busybox", "annotations": {f"{SIM}duration": "8s"}}
            for k in keys
        ],
    )
    results = cli.workdir / "results.jsonl"
    run_id = "evict-1"
    created_before = pods_created(control_plane)
    process = cli.start(
        "batch", str(jobs), *cli.cluster_args, "--run-id", run_id, "--results", str(results),
        "--max-in-flight", "4", "--progress", "none",
    )  # fmt: skip
    first = {attempt_pod_name(run_id, k, 1): i for i, k in enumerate(keys)}
    done: set[str] = set()

    def evict_or_delete_the_first_attempts() -> bool:
        for pod in pods(kube_cluster, namespace, f"{RUN_ID_LABEL}={run_id}"):
            name = pod["metadata"]["name"]
            if name not in first or name in done:
                continue
            path = f"/api/v1/namespaces/{namespace}/pods/{name}"
            if first[name] % 2 == 0:  # through the eviction subresource, as a drain does
                kube_cluster.admin.request(
                    "POST",
                    path + "/eviction",
                    {
                        "apiVersion": "policy/v1",
                        "kind": "Eviction",
                        "metadata": {"name": name, "namespace": namespace},
                    },
                )
            else:  # by someone else: an autoscaler, a user
                kube_cluster.admin.request("DELETE", path)
            done.add(name)
        return len(done) == len(keys)

    wait_until(evict_or_delete_the_first_attempts, timeout=30, what="the first attempts")

    assert process.wait(120) == 0, process.stderr
    tasks = by_task(read_lines(results))
    assert sorted(tasks) == keys
    for key, lines in tasks.items():
        assert [line["attempt"] for line in lines] == [1, 2]
        one, two = lines
        assert one["outcome"] == "deleted"
        evicted = keys.index(key) % 2 == 0
        assert one["reason"] == ("EvictionByEvictionAPI" if evicted else "DeletedExternally")
        assert one["final"] is False
        assert one["decision"] == "retry:outcome=deleted matched"
        assert one["retry_in_seconds"] > 0
        assert two["outcome"] == "succeeded"
        assert two["final"] is True
        assert two["name"] == attempt_pod_name(run_id, key, 2)
    summary = flat(process.stdout)
    assert summary[0].startswith(f"asyncpod batch: 4/4 finished · run {run_id}")
    assert "retried: 4 tasks (4 more attempts); outcomes above are each task's last attempt" in (
        summary
    )
    assert pods_created(control_plane) - created_before == 8  # one pod per attempt
    wait_until(lambda: not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}={run_id}"), timeout=15)


@pytest.mark.simulated
def test_exit_codes_are_retried_only_where_a_rule_says_so_with_backoff_between_attempts(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    def failing(code: int) -> dict[str, str]:
        return {f"{SIM}duration": "200ms", f"{SIM}exit-code": str(code)}

    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [
            {"task_key": "a", "image": "busybox", "annotations": failing(75)},
            {"task_key": "b", "image": "busybox", "annotations": failing(1)},
            {"task_key": "c", "image": "busybox", "annotations": failing(75), "retries": 0},
            {
                "task_key": "d",
                "image": "busybox",
                "annotations": failing(1),
                "retries": 1,
                "retry_on": ["exit-code=1"],
            },
            {"task_key": "e", "image": "busybox", "annotations": failing(0)},
        ],
    )
    results = cli.workdir / "results.jsonl"
    created_before = pods_created(control_plane)

    process = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "codes-1", "--results", str(results),
        "--retry-on", "exit-code=75", "--retries", "2", "--progress", "none",
    )  # fmt: skip

    assert process.popen.returncode == 1, process.stderr
    tasks = by_task(read_lines(results))
    assert {k: [line["attempt"] for line in v] for k, v in tasks.items()} == {
        "a": [1, 2, 3],
        "b": [1],
        "c": [1],
        "d": [1, 2],
        "e": [1],
    }
    a = tasks["a"]
    assert [line["final"] for line in a] == [False, False, True]
    assert [line["outcome"] for line in a] == ["failed"] * 3
    assert a[0]["decision"] == "retry:exit-code=75 matched"
    assert a[2]["decision"] == "retry:exit-code=75 matched, but the task had its 3 attempts"
    for earlier, later in itertools.pairwise(a):  # the backoff: each pod made after the last ended
        assert when(later["created_at"]) >= when(earlier["finished_at"])
        assert earlier["retry_in_seconds"] > 0
    assert tasks["b"][0]["decision"] == "no rule matched"
    assert (
        tasks["c"][0]["decision"] == "retry:exit-code=75 matched, but the task had its 1 attempts"
    )
    assert tasks["d"][0]["decision"] == "retry:exit-code=1 matched"
    assert "decision" not in tasks["e"][0]
    summary = flat(process.stdout)
    assert "succeeded 1 20.0%" in summary
    assert "failed 4 80.0%" in summary
    assert "retried: 2 tasks (3 more attempts); outcomes above are each task's last attempt" in (
        summary
    )
    assert pods_created(control_plane) - created_before == 8


def test_a_bad_rule_is_a_usage_error_naming_it_and_nothing_is_created(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    jobs = write_jsonl(cli.workdir / "jobs.jsonl", [{"image": "busybox"}])
    created_before = pods_created(control_plane)
    process = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--retry-on", "reason=Evictd", "--progress", "none"
    )  # fmt: skip
    assert process.popen.returncode == 2
    assert "asyncpod batch: rule 'reason=Evictd': reason 'Evictd' is not a reason" in process.stderr

    bad = cli.workdir / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            - {task_key: x, image: busybox}
            - task_key: y
              image: busybox
              retry_on: [{reason: [Evicted], exit_codes: {between: [1]}}]
            - {task_key: z, image: busybox, retries: -1}
            """
        )
    )
    process = cli.run("batch", str(bad), *cli.cluster_args, "--progress", "none")
    assert process.popen.returncode == 2
    assert (
        f"{bad}:4: retry_on: retry_on[0].exit_codes: 'between' is not in or not_in"
        in process.stderr
    )
    assert f"{bad}:5: retries: must be a whole number >= 0, got -1" in process.stderr
    assert pods_created(control_plane) == created_before


@pytest.mark.simulated
def test_max_failures_stops_a_batch_of_broken_images_early(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    tasks = 40
    jobs = write_jsonl(
        cli.workdir / "broken.jsonl",
        [
            {"image": "registry.invalid/nope:1", "annotations": {f"{SIM}image-pull": "fail"}}
            for _ in range(tasks)
        ],
    )
    results = cli.workdir / "results.jsonl"
    created_before = pods_created(control_plane)

    process = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "stop-1", "--results", str(results),
        "--max-in-flight", "4", "--max-failures", "5", "--image-pull-timeout", "1",
        "--progress", "none",
    )  # fmt: skip

    assert process.popen.returncode == 1, process.stderr
    assert "asyncpod batch: stopped: 5 tasks failed (max_failures=5)" in process.stderr
    created = pods_created(control_plane) - created_before
    assert created <= 4 + 5
    lines = read_lines(results)
    outcomes = Counter(line["outcome"] for line in lines)
    assert outcomes["failed"] + outcomes["timed_out"] >= 5
    assert set(outcomes) <= {"failed", "timed_out", "cancelled"}
    assert len(lines) == created, process.stderr + process.stdout  # cancelled ones too
    for line in lines:
        if line["outcome"] == "cancelled":
            assert "the batch stopped (5 tasks failed" in line["message"]
    summary = flat(process.stdout)
    assert any(line.startswith("not finished") for line in summary)
    wait_until(lambda: not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}=stop-1"), timeout=15)


@pytest.mark.simulated
def test_failed_tasks_logs_are_kept_on_disk_and_named_in_their_results_line(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    run_id = "logs-1"
    log = ContainerLog(cli.workdir / "bad.log")
    log.write(["starting", "something went wrong", "exiting 3"])
    register_logs(
        kube_cluster.admin.request,
        namespace,
        attempt_pod_name(run_id, "bad", 1),
        {"main": log.path},
        follow=False,
    )
    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [
            {
                "task_key": "bad",
                "image": "busybox",
                "container_name": "main",
                "annotations": {f"{SIM}duration": "300ms", f"{SIM}exit-code": "3"},
            },
            {
                "task_key": "good",
                "image": "busybox",
                "container_name": "main",
                "annotations": {f"{SIM}duration": "300ms"},
            },
        ],
    )
    results = cli.workdir / "results.jsonl"
    kept = cli.workdir / "logs"

    process = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", run_id, "--results", str(results),
        "--logs", str(kept), "--progress", "none",
    )  # fmt: skip

    assert process.popen.returncode == 1, process.stderr
    tasks = by_task(read_lines(results))
    (bad,) = tasks["bad"]
    assert bad["log"] == str(kept / "bad" / "1.log")
    text = (kept / "bad" / "1.log").read_text()
    lines = text.splitlines()
    assert lines[0] == "==> container main <=="
    assert [line.split(" ", 1)[1] for line in lines[1:]] == log.lines_written
    assert all(line.split(" ", 1)[0].endswith("Z") for line in lines[1:])  # timestamps
    (good,) = tasks["good"]
    assert "log" not in good
    assert not (kept / "good").exists()
    assert f"logs: {kept} (of failed attempts)" in flat(process.stdout)
    wait_until(lambda: not pods(kube_cluster, namespace, f"{RUN_ID_LABEL}={run_id}"), timeout=15)


@pytest.mark.simulated
def test_sigkill_between_attempts_and_resume_runs_no_attempt_twice(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    tasks, attempts = 6, 3
    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [
            {"image": "busybox", "annotations": {f"{SIM}duration": "1s", f"{SIM}exit-code": "75"}}
            for _ in range(tasks)
        ],
    )
    results = cli.workdir / "results.jsonl"
    selector = f"{RUN_ID_LABEL}=kill-r"
    args = [
        "batch", str(jobs), *cli.cluster_args, "--run-id", "kill-r", "--results", str(results),
        "--max-in-flight", "3", "--retry-on", "exit-code=75", "--retries", str(attempts - 1),
        "--progress", "none",
    ]  # fmt: skip
    created_before = pods_created(control_plane)

    first = cli.start(*args)
    wait_until(
        lambda: results.exists() and len(results.read_text().splitlines()) >= 5,
        timeout=60,
        what="some attempts recorded",
    )
    first.popen.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    recorded = read_lines(results)
    assert len(recorded) < tasks * attempts

    second = cli.run(*args, "--resume")

    assert second.popen.returncode == 1, second.stderr  # every task failed in the end
    lines = read_lines(results)
    seen = Counter((line["task_key"], line["attempt"]) for line in lines)
    assert seen == Counter({(str(i), n): 1 for i in range(tasks) for n in range(1, attempts + 1)})
    finals = [line for line in lines if line["final"]]
    assert sorted(line["task_key"] for line in finals) == [str(i) for i in range(tasks)]
    assert all(line["attempt"] == attempts for line in finals)
    # The API server created exactly one pod per attempt over both processes.
    assert pods_created(control_plane) - created_before == tasks * attempts
    wait_until(lambda: not pods(kube_cluster, namespace, selector), timeout=15, what="cleanup")


@pytest.mark.simulated
def test_a_resumed_batch_that_stops_deletes_the_earlier_pods_it_had_not_reattached(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    tasks = 5
    fails_soon = {f"{SIM}duration": "10s", f"{SIM}exit-code": "3"}
    specs: list[dict[str, Any]] = [
        {"task_key": f"t{i}", "image": "busybox", "annotations": {f"{SIM}duration": "90s"}}
        for i in range(tasks)
    ]
    specs[0]["annotations"] = fails_soon
    jobs = write_jsonl(cli.workdir / "jobs.jsonl", specs)
    results = cli.workdir / "results.jsonl"
    selector = f"{RUN_ID_LABEL}=stop-r"
    args = ["batch", str(jobs), *cli.cluster_args, "--run-id", "stop-r", "--results", str(results)]
    created_before = pods_created(control_plane)
    first = cli.start(*args, "--max-in-flight", str(tasks), "--progress", "none")

    def all_running() -> bool:
        found = pods(kube_cluster, namespace, selector)
        running: int = sum(p["status"].get("phase") == "Running" for p in found)
        return running == tasks

    wait_until(all_running, timeout=30, what="every pod running")
    first.popen.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL

    # One at a time: t0 is reattached and fails; the stop comes before the others.
    second = cli.run(
        *args, "--resume", "--max-in-flight", "1", "--max-failures", "1", "--progress", "none"
    )

    assert second.popen.returncode == 1, second.stderr
    assert "stopped: 1 tasks failed (max_failures=1)" in second.stderr
    lines = read_lines(results)
    assert [(line["task_key"], line["outcome"]) for line in lines] == [("t0", "failed")]
    assert pods_created(control_plane) - created_before == tasks  # nothing new
    wait_until(lambda: not pods(kube_cluster, namespace, selector), timeout=30, what="cleanup")
