"""``asyncpod batch`` as a subprocess against the local control plane.

What a user of a batch relies on, checked from the outside: the results file line by
line, the summary, the exit code, that a bad input creates nothing, that Ctrl-C leaves
no pod behind, and that a run killed with SIGKILL and resumed creates each pod once
(counted by the API server itself: POST pods answered 201).
"""

from __future__ import annotations

import json
import signal
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from asyncpod.spec import RUN_ID_LABEL, TASK_KEY_ANNOTATION, deterministic_pod_name
from asyncpod.testing import LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster
from tests.cli.helpers import Cli, pod_creates, pods, pods_created, wait_until

pytestmark = pytest.mark.integration

SIM = "sim.asyncpod.dev/"


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_jsonl(path: Path, specs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(spec) + "\n" for spec in specs))
    return path


@pytest.mark.simulated
def test_batch_template_runs_every_row_and_records_each_result(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    jobs = cli.workdir / "jobs.yaml"
    jobs.write_text(
        textwrap.dedent(
            """\
            template:
              task_key: "shard-{n}"
              image: busybox:1.36
              args: [sh, -c, "echo shard {n}; exit {code}"]
              annotations: "{sim}"
            defaults: {code: 0, sim: {sim.asyncpod.dev/duration: 300ms}}
            parameters:
              - {n: 1}
              - {n: 2}
              - {n: 3, code: 3, sim: {sim.asyncpod.dev/duration: 200ms, sim.asyncpod.dev/exit-code: "3"}}
              - {n: 4}
              - {n: 5, code: 137, sim: {sim.asyncpod.dev/exit-code: "137", sim.asyncpod.dev/reason: OOMKilled}}
              - {n: 6}
              - {n: 7}
              - {n: 8}
            """
        )
    )
    results = cli.workdir / "out" / "results.jsonl"

    process = cli.run(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "tpl-1",
        "--results", str(results), "--max-in-flight", "4", "--progress", "lines",
    )  # fmt: skip

    assert process.popen.returncode == 1, process.stderr  # two tasks failed
    lines = read_lines(results)
    assert len(lines) == 8
    by_key = {line["task_key"]: line for line in lines}
    assert sorted(by_key) == [f"shard-{n}" for n in range(1, 9)]
    for key, line in by_key.items():
        assert line["run_id"] == "tpl-1"
        assert line["namespace"] == namespace
        assert line["name"] == deterministic_pod_name("tpl-1", key)
        assert line["uid"]
        assert line["node_name"].startswith("kwok-node-")
        assert line["created_at"]
        assert line["finished_at"]
    expected = {f"shard-{n}": ("succeeded", 0, "Completed") for n in (1, 2, 4, 6, 7, 8)}
    expected["shard-3"] = ("failed", 3, "Error")
    expected["shard-5"] = ("failed", 137, "OOMKilled")
    assert {
        key: (line["outcome"], line["exit_code"], line["reason"]) for key, line in by_key.items()
    } == expected
    assert by_key["shard-5"]["exit_codes"] == {"main": 137}
    assert by_key["shard-5"]["events"], "events are collected for failed pods"

    summary = [" ".join(line.split()) for line in process.stdout.splitlines()]
    assert summary[0].startswith("asyncpod batch: 8/8 finished · run tpl-1")
    assert "succeeded 6 75.0%" in summary
    assert "failed 2 25.0%" in summary
    assert any(line.startswith("failed Error 1 shard-3:") for line in summary)
    assert any(line.startswith("failed OOMKilled 1 shard-5:") for line in summary)
    assert f"results: {results}" in summary
    assert "8 pods from" in process.stderr
    wait_until(lambda: not pods(kube_cluster, namespace), timeout=15, what="cleanup")


@pytest.mark.simulated
def test_batch_of_successes_exits_0(cli: Cli, kube_cluster: TestCluster, namespace: str) -> None:
    jobs = write_jsonl(
        cli.workdir / "ok.jsonl",
        [{"image": "busybox", "annotations": {f"{SIM}duration": "200ms"}} for _ in range(5)],
    )
    process = cli.run("batch", str(jobs), *cli.cluster_args, "--run-id", "ok-1")

    assert process.popen.returncode == 0, process.stderr
    lines = read_lines(cli.workdir / "ok-1.results.jsonl")  # the default results path
    assert sorted(line["task_key"] for line in lines) == ["0", "1", "2", "3", "4"]
    assert {line["outcome"] for line in lines} == {"succeeded"}
    assert "5/5 finished" in process.stdout


def test_bad_input_names_each_line_and_creates_nothing(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    jobs = cli.workdir / "bad.yaml"
    jobs.write_text(
        textwrap.dedent(
            """\
            - {image: busybox}
            - {image: busybox}
            - {imagee: busybox}
            - {image: busybox}
            - image: busybox
              resources: {limits: {memory: "lots"}}
            """
        )
    )
    before = pods_created(control_plane)

    process = cli.run("batch", str(jobs), *cli.cluster_args, "--run-id", "bad-1")

    assert process.popen.returncode == 2
    errors = process.stderr.splitlines()
    assert f"{jobs}:3: imagee: unknown key; did you mean 'image'?" in errors
    assert any(line.startswith(f"{jobs}:6: resources.limits.memory:") for line in errors)
    assert "2 problems; nothing was created" in process.stderr
    assert not (cli.workdir / "bad-1.results.jsonl").exists()
    assert pods(kube_cluster, namespace) == []
    assert pods_created(control_plane) == before


@pytest.mark.simulated
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_cancels_the_runs_in_flight_deletes_their_pods_and_summarises(
    cli: Cli, kube_cluster: TestCluster, namespace: str, signum: signal.Signals, code: int
) -> None:
    jobs = write_jsonl(
        cli.workdir / "long.jsonl",
        [
            {"task_key": f"t{i}", "image": "busybox", "annotations": {f"{SIM}duration": "60s"}}
            for i in range(30)
        ],
    )
    selector = f"{RUN_ID_LABEL}=int-1"
    process = cli.start(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "int-1", "--max-in-flight", "10",
        "--progress", "lines", "--progress-interval", "0.5",
    )  # fmt: skip

    def ten_running() -> bool:
        found = pods(kube_cluster, namespace, selector)
        running: int = sum(p["status"].get("phase") == "Running" for p in found)
        return running == 10

    wait_until(ten_running, timeout=30, what="10 pods running")
    process.popen.send_signal(signum)

    assert process.wait(60) == code
    wait_until(lambda: not pods(kube_cluster, namespace, selector), timeout=15, what="cleanup")
    summary = [" ".join(line.split()) for line in process.stdout.splitlines()]
    assert summary[0].startswith("asyncpod batch: 0/30 finished · run int-1")
    assert "not finished 30 100.0%" in summary
    assert (
        "interrupted: 10 runs in flight cancelled (pods deleted); 30 tasks not finished" in summary
    )
    assert "to finish this run: asyncpod batch" in process.stderr
    assert "--run-id int-1 --resume" in process.stderr


@pytest.mark.simulated
def test_ctrl_c_during_the_create_burst_leaves_no_pod_behind(
    cli: Cli, kube_cluster: TestCluster, namespace: str
) -> None:
    # Cancelled while creates are on the wire: a pod may be created after its run
    # gave up on the request. None may survive the batch.
    jobs = write_jsonl(
        cli.workdir / "burst.jsonl",
        [{"image": "busybox", "annotations": {f"{SIM}duration": "60s"}} for _ in range(40)],
    )
    selector = f"{RUN_ID_LABEL}=burst-1"
    process = cli.start(
        "batch", str(jobs), *cli.cluster_args, "--run-id", "burst-1",
        "--max-in-flight", "40", "--qps", "0", "--progress", "none",
    )  # fmt: skip
    wait_until(lambda: "pods from" in process.stderr, timeout=30, what="the batch to start")
    time.sleep(0.1)
    process.popen.send_signal(signal.SIGINT)

    assert process.wait(60) == 130
    assert "interrupted:" in process.stdout
    time.sleep(1)  # a create still in the API server's hands would show up by now
    wait_until(lambda: not pods(kube_cluster, namespace, selector), timeout=15, what="cleanup")


@pytest.mark.simulated
def test_resume_after_sigkill_reattaches_and_creates_no_pod_twice(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    tasks = 12
    jobs = write_jsonl(
        cli.workdir / "jobs.jsonl",
        [{"image": "busybox", "annotations": {f"{SIM}duration": "2s"}} for _ in range(tasks)],
    )
    results = cli.workdir / "results.jsonl"
    selector = f"{RUN_ID_LABEL}=kill-1"
    args = [
        "batch", str(jobs), *cli.cluster_args, "--run-id", "kill-1",
        "--results", str(results), "--max-in-flight", "4", "--progress", "none",
    ]  # fmt: skip
    created_before = pod_creates(control_plane)

    first = cli.start(*args)
    # Kill in the middle of the second wave: 4 results recorded, 4 pods mid-run.
    wait_until(
        lambda: results.exists() and len(results.read_text().splitlines()) >= 4,
        timeout=30,
        what="the first wave of results",
    )
    time.sleep(0.7)
    first.popen.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    lines = read_lines(results)
    recorded = len(lines)
    # A recorded pod still there (its delete was to follow its line) is deleted by
    # the resumed batch, not reattached: its result is on file.
    names = {line["name"] for line in lines}
    alive = sum(p["metadata"]["name"] not in names for p in pods(kube_cluster, namespace, selector))
    assert recorded < tasks
    assert alive >= 1, "no pod was left to reattach to"

    second = cli.run(*args, "--resume")

    assert second.popen.returncode == 0, second.stderr
    assert f"resuming: {recorded} tasks already recorded, {tasks - recorded} to run" in (
        second.stderr
    )
    lines = read_lines(results)
    assert Counter(line["task_key"] for line in lines) == Counter(str(i) for i in range(tasks))
    assert {line["outcome"] for line in lines} == {"succeeded"}
    summary = [" ".join(line.split()) for line in second.stdout.splitlines()]
    assert summary[0].startswith(f"asyncpod batch: {tasks}/{tasks} finished · run kill-1")
    assert f"reattached: {alive} pods of an earlier attempt" in summary
    # The API server created exactly one pod per task over both attempts (a create in
    # flight at the SIGKILL may have been answered 504 and stored all the same).
    created = pod_creates(control_plane) - created_before
    assert created.allow(tasks), created
    wait_until(lambda: not pods(kube_cluster, namespace, selector), timeout=15, what="cleanup")


@pytest.mark.simulated
def test_a_resumed_batch_deletes_the_pods_whose_results_are_recorded_as_its_cleanup_says(
    cli: Cli, control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    """What a process killed between a result's line and its pod's delete leaves: the
    pods of recorded tasks. Made here for certain by a first run that keeps every pod."""
    ok = {"image": "busybox", "annotations": {f"{SIM}duration": "200ms"}}
    failing = {"image": "busybox", "annotations": {f"{SIM}exit-code": "3"}}
    jobs = write_jsonl(cli.workdir / "jobs.jsonl", [ok, ok, failing])
    results = cli.workdir / "results.jsonl"
    selector = f"{RUN_ID_LABEL}=sweep-1"
    args = [
        "batch", str(jobs), *cli.cluster_args, "--run-id", "sweep-1",
        "--results", str(results), "--progress", "none",
    ]  # fmt: skip
    first = cli.run(*args, "--cleanup", "keep")
    assert first.popen.returncode == 1, first.stderr  # one task failed
    assert len(pods(kube_cluster, namespace, selector)) == 3
    created_before = pods_created(control_plane)

    second = cli.run(*args, "--resume", "--cleanup", "delete-on-success")

    assert second.popen.returncode == 1, second.stderr
    assert "deleting 2 pods whose results were recorded" in second.stderr
    assert "0 to run; 0 pods of this run still exist" in " ".join(second.stderr.split())
    assert pods_created(control_plane) == created_before  # nothing made again
    assert len(read_lines(results)) == 3
    wait_until(
        lambda: [p["metadata"]["annotations"][TASK_KEY_ANNOTATION]
                 for p in pods(kube_cluster, namespace, selector)] == ["2"],
        timeout=30, what="only the failed task's pod kept",
    )  # fmt: skip


def test_a_namespace_that_does_not_exist_is_a_usage_error(
    cli: Cli, kube_cluster: TestCluster, control_plane: LocalControlPlane, tmp_path: Path
) -> None:
    jobs = write_jsonl(tmp_path / "jobs.jsonl", [{"image": "busybox"} for _ in range(40)])
    created_before = pods_created(control_plane)

    process = cli.run(
        "batch", str(jobs), "--kubeconfig", str(kube_cluster.kubeconfig),
        "--namespace", "no-such-namespace", "--run-id", "nons-1", "--max-in-flight", "5",
    )  # fmt: skip

    assert process.popen.returncode == 2, process.stderr
    assert (
        "asyncpod batch: namespace 'no-such-namespace' does not exist on this cluster"
        in process.stderr
    )
    assert "--namespace" in process.stderr
    assert "Traceback" not in process.stderr
    assert all(line.startswith("asyncpod batch") for line in process.stderr.splitlines())
    assert not (tmp_path / "nons-1.results.jsonl").exists()  # nothing ran
    assert pods_created(control_plane) == created_before
