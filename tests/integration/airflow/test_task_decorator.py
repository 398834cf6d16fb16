"""``@task.kubernetes`` end to end: real Airflow components, real Python in real pods.

The DAGs (``dags/asyncpod_taskflow.py``) are written for the cncf provider and run
unchanged in an environment where asyncpod is installed instead of it
(``without_reference.py``): api-server, scheduler, dag-processor and triggerer against
the local control plane, every pod on the real node (kubelet + containerd) running
``python:3.11-slim`` (``realnode_airflow.py``). Judged: the function's arguments (an
upstream XCom, a positional and a keyword argument) reach the pod; its return value,
larger than a termination message, is read downstream, also unrolled by
``multiple_outputs`` and gathered from a mapped task; ``@task.kubernetes_cmd`` runs the
command its function built; an exception fails the task with its traceback, the function's own
lines included, in the task log; no pod is left.

Heavy (four Airflow processes and real containers): ``ASYNCPOD_SKIP_AIRFLOW_E2E=1`` skips it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from asyncpod.testing.pytest_plugin import RealNode, TestCluster

from .deployment import COMPONENTS, AirflowDeployment
from .realnode_airflow import python_image, real_node_namespace, short_name_alias
from .without_reference import environment_without_reference

pytestmark = [
    pytest.mark.integration,
    pytest.mark.real_node,
    pytest.mark.skipif(
        bool(os.environ.get("ASYNCPOD_SKIP_AIRFLOW_E2E")), reason="ASYNCPOD_SKIP_AIRFLOW_E2E is set"
    ),
]

DAGS = ["ap_taskflow", "ap_taskflow_fail"]
# A cold real node starts its first sandboxes slowly on a loaded 2-core machine.
RUN_LIMIT = 480.0


class DeploymentWithoutReference(AirflowDeployment):
    """The harness's deployment, run from the environment without the cncf provider."""

    bin_dir: Path

    @property
    def bin(self) -> Path:
        return self.bin_dir


@pytest.fixture(scope="module")
def airflow(
    kube_cluster: TestCluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowDeployment]:
    source = python_image()
    home = tmp_path_factory.mktemp("airflow-taskflow")
    (home / "dags").mkdir()
    shutil.copy(Path(__file__).parent / "dags" / "asyncpod_taskflow.py", home / "dags")
    namespace = f"airflow-taskflow-{secrets.token_hex(3)}"
    kube_cluster.admin.create_namespace(namespace)
    deployment = DeploymentWithoutReference(
        home=home, kubeconfig=kube_cluster.kubeconfig, namespace=namespace
    )
    deployment.bin_dir = environment_without_reference(tmp_path_factory.mktemp("venv"))
    with ExitStack() as stack:
        stack.callback(kube_cluster.admin.delete_namespace, namespace)
        stack.enter_context(real_node_namespace(kube_cluster, namespace))
        stack.enter_context(short_name_alias(kube_cluster, source))
        stack.callback(deployment.stop_all)
        deployment.migrate()
        for component in COMPONENTS:
            deployment.start(component)
        deployment.wait_ready(DAGS)
        yield deployment


def our_pods(kube_cluster: TestCluster, namespace: str) -> list[dict[str, Any]]:
    path = (
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/managed-by=asyncpod"
    )
    items: list[dict[str, Any]] = kube_cluster.admin.request("GET", path)["items"]
    return items


def wait_no_pods(kube_cluster: TestCluster, namespace: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while pods := our_pods(kube_cluster, namespace):
        assert time.monotonic() < deadline, [p["metadata"]["name"] for p in pods]
        time.sleep(0.5)


def log_text(airflow: AirflowDeployment, dag_id: str, run_id: str, task_id: str) -> str:
    """The task log's messages, one a line (the files hold JSON lines)."""
    lines = []
    for line in airflow.task_log(dag_id, run_id, task_id).splitlines():
        try:
            lines.append(str(json.loads(line).get("event", "")))
        except ValueError:
            lines.append(line)
    return "\n".join(lines)


def test_the_installation_registered_asyncpods_decorator(airflow: AirflowDeployment) -> None:
    code = (
        "from airflow.sdk import task; "
        "print(task.kubernetes.__module__, task.kubernetes_cmd.__module__, "
        "task.asyncpod_kubernetes.__module__)"
    )
    result = subprocess.run(
        [str(airflow.bin / "python"), "-c", code],
        env=airflow.env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert result.stdout.split() == ["asyncpod.airflow.decorators"] * 3


def test_arguments_go_in_and_return_values_come_out(
    airflow: AirflowDeployment, kube_cluster: TestCluster
) -> None:
    run_id = airflow.trigger("ap_taskflow", "taskflow-1")
    state = airflow.wait_run("ap_taskflow", run_id, limit=RUN_LIMIT)
    logs = {t: log_text(airflow, "ap_taskflow", run_id, t) for t in ("summarize", "split", "greet")}
    assert state == "success", logs
    # asyncpod's operator ran the pod (its own log line), in Debian's Python 3.11.
    assert "created pod" in logs["summarize"]
    assert "summarizing 4 values in Python 3.11." in logs["summarize"]
    summary = airflow.xcom("ap_taskflow", run_id, "summarize")
    assert summary["label"] == "sum"
    assert summary["total"] == 100
    assert summary["python"].startswith("3.11.")
    assert airflow.xcom("ap_taskflow", run_id, "report") == "sum=100 (10000 chars)"
    # multiple_outputs: one XCom per key, read downstream by key.
    assert airflow.xcom("ap_taskflow", run_id, "split", key="count") == 7
    assert airflow.xcom("ap_taskflow", run_id, "count_again") == "7 words, first asyncpod"
    # Mapped: one pod per value, the values gathered downstream.
    assert airflow.xcom("ap_taskflow", run_id, "total") == 12
    # @task.kubernetes_cmd: the command the function built, its template rendered.
    assert "[base] hello asyncpod from taskflow-1, task greet" in logs["greet"]
    wait_no_pods(kube_cluster, airflow.namespace)


def test_an_exception_fails_the_task_with_its_traceback(
    airflow: AirflowDeployment, kube_cluster: TestCluster
) -> None:
    run_id = airflow.trigger("ap_taskflow_fail", "taskflow-fail-1")
    state = airflow.wait_run("ap_taskflow_fail", run_id, limit=RUN_LIMIT)
    log = log_text(airflow, "ap_taskflow_fail", run_id, "explode")
    assert state == "failed", log
    assert airflow.task("ap_taskflow_fail", run_id, "explode")["state"] == "failed"
    # The traceback, as the pod's Python printed it to stderr, from the function's frame
    # on, with the function's own source lines.
    traceback = [line.removeprefix("[base] ") for line in log.splitlines() if "[base]" in line]
    assert traceback == [
        "Traceback (most recent call last):",
        '  File "<@task.kubernetes explode>", line 5, in explode',
        "    check(items)",
        '  File "<@task.kubernetes explode>", line 3, in check',
        '    raise ValueError(f"cannot handle {n} items")',
        "ValueError: cannot handle 7 items",
    ], log
    assert "exit code 1" in log  # the task's failure names the pod's exit
    wait_no_pods(kube_cluster, airflow.namespace)
