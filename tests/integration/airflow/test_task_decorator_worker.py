"""``@task.kubernetes(deferrable=True)`` on the worker path, in-process, on the real node.

The e2e DAGs (``test_task_decorator.py``) run the decorator's default, not deferrable,
under real Airflow components. Deferring is the operator's path once the decorator has
built the pod; this drives it as a worker and a triggerer would, without the scheduler
(whose race with a trigger firing within seconds, apache/airflow#71580, would make a
test of it flaky): ``execute`` renders the function into the pod and defers, the
trigger follows the pod (real Python in ``localhost/python:3.11-slim``, the XCom
sidecar's hand-over, as the minimal Role), and ``execute_complete`` turns the event into
the task's value or its skip.
"""

from __future__ import annotations

import asyncio
import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from asyncpod.airflow.triggers import AsyncpodPodTrigger
from asyncpod.testing.pytest_plugin import RealNode, TestCluster

from .conftest import pod_alive
from .realnode_airflow import python_image

pytestmark = [pytest.mark.integration, pytest.mark.real_node]

LIMIT = 400  # a cold real node starts its first sandbox slowly on a loaded 2-core machine


def decorated_tasks(sa_kubeconfig: Path, namespace: str, real_node: RealNode) -> dict[str, Any]:
    from airflow.sdk import DAG, task

    where: dict[str, Any] = {
        "image": python_image(),
        "namespace": namespace,
        "config_file": str(sa_kubeconfig),
        "kubernetes_conn_id": None,
        "node_selector": real_node.node_selector,
        "tolerations": [dict(t) for t in real_node.tolerations],
        "deferrable": True,
    }
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    with DAG("ap_taskflow_worker", schedule=None, start_date=start) as dag:

        @task.asyncpod_kubernetes(do_xcom_push=True, **where)
        def power(base: int, *, exponent: int) -> dict[str, Any]:
            import sys

            print(f"computing {base}**{exponent}")
            return {"value": base**exponent, "python": list(sys.version_info[:2])}

        @task.asyncpod_kubernetes(skip_on_exit_code=3, **where)
        def nothing_to_do() -> None:
            import sys

            sys.exit(3)

        power(2, exponent=100)
        nothing_to_do()
    return {t.task_id: t for t in dag.tasks}


def run_worker(op: Any, run_id: str) -> tuple[AsyncpodPodTrigger, dict[str, Any]]:
    """``execute`` as a worker runs it: the trigger it defers to, and the task's context."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="ap_taskflow_worker", task_id=op.task_id, run_id=run_id, map_index=-1,
        try_number=1, xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )  # fmt: skip
    context = {"ti": ti}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, AsyncpodPodTrigger)
    return trigger, context


async def test_deferred_decorated_tasks_return_their_value_or_skip(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    real_node: RealNode,
) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    tasks = decorated_tasks(sa_kubeconfig, namespace, real_node)
    power, skipper = tasks["power"], tasks["nothing_to_do"]
    (trigger, context), (skip_trigger, skip_context) = [
        await asyncio.to_thread(run_worker, op, "run-1") for op in (power, skipper)
    ]
    # What the worker put in the pod: the provider's variables, python -c, no shell.
    assert power.cmds[:2] == ["python", "-c"]
    assert [e["name"] for e in power.env_vars] == ["__PYTHON_SCRIPT", "__PYTHON_INPUT"]
    assert trigger.pod_name.startswith("k8s-airflow-pod-power-")

    events = await asyncio.wait_for(
        asyncio.gather(anext(trigger.run()), anext(skip_trigger.run())), LIMIT
    )
    event, skip_event = (e.payload for e in events)
    assert event["status"] == "success", event
    # As a worker calls it: no event loop running (it deletes the pod with its own).
    returned = await asyncio.to_thread(power.execute_complete, context, event)
    assert returned == {"value": 2**100, "python": [3, 11]}
    assert not pod_alive(kube_cluster, namespace, trigger.pod_name)

    assert skip_event["status"] == "skipped", skip_event
    assert skip_event["exit_code"] == 3
    with pytest.raises(AirflowSkipException, match="exited with code 3"):
        await asyncio.to_thread(skipper.execute_complete, skip_context, skip_event)
