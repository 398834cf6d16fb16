"""The brief's DAG in a real container, under the real scheduler and triggerer.

``dags/asyncpod_brief.py`` is the brief's DAG with only the operator's import and
Airflow 3's ``schedule`` changed: ``KubernetesPodOperator(namespace="default",
image="python:3.11-slim", cmds=["python", "-c"], arguments=['print("Hello from
KubernetesPodOperator")'], ...)``. Real api-server, scheduler, dag-processor and
triggerer (LocalExecutor) against the local control plane; the ``default`` namespace
sends its pods to the real node for this module (``realnode_airflow.py``), where
containerd runs Debian's Python 3.11 under the name ``python:3.11-slim``. Judged: the
run succeeds, the task log holds the line the container printed, the pod ran on the
real node and is deleted afterwards.

Heavy (four Airflow processes and a real container): ``ASYNCPOD_SKIP_AIRFLOW_E2E=1``
skips it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from asyncpod.airflow.tries import TRY_LABEL
from asyncpod.testing.pytest_plugin import RealNode, TestCluster

from .deployment import COMPONENTS, AirflowDeployment
from .realnode_airflow import python_image, real_node_namespace, short_name_alias

pytestmark = [
    pytest.mark.integration,
    pytest.mark.real_node,
    pytest.mark.skipif(
        bool(os.environ.get("ASYNCPOD_SKIP_AIRFLOW_E2E")), reason="ASYNCPOD_SKIP_AIRFLOW_E2E is set"
    ),
]

DAG_ID = "brief_hello_pod"
TASK_ID = "run_hello_pod"
NAMESPACE = "default"  # the brief's


@pytest.fixture(scope="module")
def airflow(
    kube_cluster: TestCluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowDeployment]:
    source = python_image()
    home = tmp_path_factory.mktemp("airflow-brief")
    (home / "dags").mkdir()
    shutil.copy(Path(__file__).parent / "dags" / "asyncpod_brief.py", home / "dags")
    # The connection's namespace is only a default: the brief names "default".
    namespace = f"airflow-brief-{secrets.token_hex(3)}"
    kube_cluster.admin.create_namespace(namespace)
    deployment = AirflowDeployment(
        home=home, kubeconfig=kube_cluster.kubeconfig, namespace=namespace
    )
    with ExitStack() as stack:
        stack.callback(kube_cluster.admin.delete_namespace, namespace)
        stack.enter_context(real_node_namespace(kube_cluster, NAMESPACE))
        stack.enter_context(short_name_alias(kube_cluster, source))
        stack.callback(deployment.stop_all)
        deployment.migrate()
        for component in COMPONENTS:
            deployment.start(component)
        deployment.wait_ready([DAG_ID])
        yield deployment


def hello_pods(kube_cluster: TestCluster) -> list[dict[str, Any]]:
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={TRY_LABEL}"
    items = kube_cluster.admin.request("GET", path)["items"]
    return [p for p in items if p["metadata"]["name"].startswith("hello-pod-")]


def test_the_briefs_dag_prints_hello_from_a_real_python_container(
    airflow: AirflowDeployment, kube_cluster: TestCluster, real_node: RealNode
) -> None:
    run_id = airflow.trigger(DAG_ID, "brief-1")
    # Watch the pod while it exists: it must land on the real node.
    nodes: set[str] = set()
    deadline = time.monotonic() + 480
    while airflow.run_state(DAG_ID, run_id) not in ("success", "failed"):
        assert time.monotonic() < deadline, airflow.task_log(DAG_ID, run_id, TASK_ID)
        nodes |= {p["spec"].get("nodeName") for p in hello_pods(kube_cluster)} - {None}
        time.sleep(0.5)
    log = airflow.task_log(DAG_ID, run_id, TASK_ID)
    assert airflow.run_state(DAG_ID, run_id) == "success", log
    assert "Hello from KubernetesPodOperator" in log
    assert f"created pod {NAMESPACE}/hello-pod-" in log
    assert nodes == {real_node.name}, nodes
    # The pod is deleted (not merely marked for deletion) once the task is done.
    deadline = time.monotonic() + 120
    while pods := hello_pods(kube_cluster):
        assert time.monotonic() < deadline, [p["metadata"]["name"] for p in pods]
        time.sleep(0.5)
