"""A triggerer fail-over, end to end: the triggerer holding 100 deferred pod tasks is
SIGKILLed, and another triggerer with its own AIRFLOW_HOME (its own log folder and
disk, as on another host) takes its triggers over.

Judged: every task succeeds; each pod log line is in the task's logs exactly once
(both homes' files together: lines the first triggerer logged stay in its files, the
second logs only what follows); no pod is created twice; none is left.

Heavy (four Airflow processes, a second triggerer, 100 pods): ``ASYNCPOD_SKIP_AIRFLOW_E2E=1``
skips it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncpod.airflow.tries import pod_name_for
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.simulate import PREFIX, ContainerLog, register_logs

from .deployment import COMPONENTS, AirflowDeployment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.simulated,
    pytest.mark.skipif(
        bool(os.environ.get("ASYNCPOD_SKIP_AIRFLOW_E2E")), reason="ASYNCPOD_SKIP_AIRFLOW_E2E is set"
    ),
]

DAG_ID = "ap_failover"
TASKS = 100  # as in dags/asyncpod_failover.py
TASK_IDS = [f"t_{index:03d}" for index in range(TASKS)]


@pytest.fixture(scope="module")
def airflow(
    kube_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("airflow-home")
    (home / "dags").mkdir()
    shutil.copy(Path(__file__).parent / "dags" / "asyncpod_failover.py", home / "dags")
    namespace = f"airflow-failover-{secrets.token_hex(3)}"
    kube_cluster.admin.create_namespace(namespace)
    deployment = AirflowDeployment(
        home=home,
        kubeconfig=kube_cluster.kubeconfig,
        namespace=namespace,
        extra_env={"AIRFLOW__CORE__PARALLELISM": "16"},
    )
    try:
        deployment.migrate()
        for component in COMPONENTS:
            deployment.start(component)
        deployment.wait_ready([DAG_ID])
        yield deployment
    finally:
        deployment.stop_all()
        kube_cluster.admin.delete_namespace(namespace)


def task_files(home: Path, run_id: str, task_id: str) -> list[Path]:
    folder = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
    return sorted(folder.glob("attempt=*")) if folder.exists() else []


def task_log(homes: list[Path], run_id: str, task_id: str) -> str:
    """The task's logs in every home: the worker's and each triggerer's files."""
    return "\n".join(
        path.read_text(errors="replace")
        for home in homes
        for path in task_files(home, run_id, task_id)
    )


def pods(kube_cluster: TestCluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube_cluster.admin.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods"
    )["items"]
    return items


@pytest.mark.timeout(1500)  # 100 tasks, each resumed on a worker once its pod ends
def test_a_sigkilled_triggerers_tasks_finish_on_another_with_every_log_line_once(
    airflow: AirflowDeployment,
    kube_cluster: TestCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_id = "failover-1"
    files: dict[str, ContainerLog] = {}
    names: dict[str, str] = {}
    logs_dir = tmp_path_factory.mktemp("pod-logs")
    for task_id in TASK_IDS:
        names[task_id] = pod_name_for(
            task_id, dag_id=DAG_ID, task_id=task_id, run_id=run_id, map_index=-1, try_number=1
        )
        files[task_id] = ContainerLog(logs_dir / f"{task_id}.log")
        files[task_id].write([f"{task_id} before {k}" for k in range(5)])
        register_logs(
            kube_cluster.admin.request,
            airflow.namespace,
            names[task_id],
            {"base": files[task_id].path},
        )
    airflow.trigger(DAG_ID, run_id)

    def deferred() -> bool:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=1000"
        states = [ti["state"] for ti in airflow.api("GET", path)["task_instances"]]
        return len(states) == TASKS and all(s == "deferred" for s in states)

    airflow.wait("every task deferred", deferred, limit=600)
    first_home = [airflow.home]

    def logged_everywhere(homes: list[Path], marker: str) -> bool:
        return all(f"[base] {t} {marker}" in task_log(homes, run_id, t) for t in TASK_IDS)

    airflow.wait(
        "the first lines in every task log",
        lambda: logged_everywhere(first_home, "before 4"),
        limit=300,
    )
    created = {
        p["metadata"]["name"]: p["metadata"]["uid"] for p in pods(kube_cluster, airflow.namespace)
    }
    assert set(created) == set(names.values())

    # The triggerer that holds every trigger dies at once, with whatever it had read.
    airflow.stop("triggerer", sig=signal.SIGKILL)
    for task_id in TASK_IDS:  # written while no triggerer runs
        files[task_id].write([f"{task_id} during {k}" for k in range(5)])

    # Another triggerer, another AIRFLOW_HOME: nothing of the first one's disk.
    second = AirflowDeployment(
        home=tmp_path_factory.mktemp("airflow-home-2"),
        kubeconfig=airflow.kubeconfig,
        namespace=airflow.namespace,
        port=airflow.port,
        database=airflow.home / "airflow.db",
        extra_env={
            # Take over a silent triggerer's triggers after 10 s, not the default 30 s.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        },
    )
    both = [airflow.home, second.home]
    try:
        second.start("triggerer")
        second.wait(
            "the second triggerer to log what was written meanwhile",
            lambda: logged_everywhere([second.home], "during 4"),
            limit=300,
        )
        for task_id in TASK_IDS:
            files[task_id].write([f"{task_id} after {k}" for k in range(5)])
        second.wait(
            "the last lines in every task log",
            lambda: logged_everywhere([second.home], "after 4"),
            limit=300,
        )
        for name in names.values():  # the pods end now (kwok reads the new duration)
            kube_cluster.admin.request(
                "PATCH",
                f"/api/v1/namespaces/{airflow.namespace}/pods/{name}",
                {"metadata": {"annotations": {f"{PREFIX}duration": "1ms"}}},
            )
        assert airflow.wait_run(DAG_ID, run_id, limit=600) == "success"
    finally:
        second.stop_all()

    for task_id in TASK_IDS:
        log = task_log(both, run_id, task_id)
        for line in files[task_id].lines_written:  # every pod log line exactly once
            assert log.count(f"[base] {line}") == 1, (task_id, line, log[-3000:])
        assert log.count("created pod") == 1, (task_id, log[-3000:])
        uids = set(re.findall(r"pod \S+ \(uid ([0-9a-f-]+)\)", log))
        assert uids == {created[names[task_id]]}, uids
    # Each deleted by the worker that resumed its task (kwok removes a deleted pod at once).
    airflow.wait("every pod deleted", lambda: not pods(kube_cluster, airflow.namespace), limit=60)
