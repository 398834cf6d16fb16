"""End to end: real Airflow components run DAGs with asyncpod's operator on the local
control plane (kwok plays out the pods). One Airflow deployment serves the module.

Heavy (four Airflow processes plus workers): ``ASYNCPOD_SKIP_AIRFLOW_E2E=1`` skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncpod.airflow.tries import TRY_LABEL, pod_name_for
from asyncpod.airflow.xcom import SIDECAR_NAME, frame_lines
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.simulate import ContainerLog, register_logs
from tests.unit.airflow.versions import AIRFLOW, before_3_3, from_3_3

from .deployment import COMPONENTS, AirflowDeployment
from .statsd_listener import StatsdListener

pytestmark = [
    pytest.mark.integration,
    pytest.mark.simulated,
    pytest.mark.skipif(
        bool(os.environ.get("ASYNCPOD_SKIP_AIRFLOW_E2E")), reason="ASYNCPOD_SKIP_AIRFLOW_E2E is set"
    ),
]

DAGS = [
    "ap_hello",
    "ap_fail",
    "ap_timeout",
    "ap_xcom",
    "ap_logs",
    "ap_clear",
    "ap_restart",
    "ap_mapped",
    "ap_callbacks",
    "ref_callbacks",
]


@pytest.fixture(scope="module")
def statsd() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture(scope="module")
def airflow(
    kube_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory, statsd: StatsdListener
) -> Iterator[AirflowDeployment]:
    home = tmp_path_factory.mktemp("airflow-home")
    (home / "dags").mkdir()
    shutil.copy(Path(__file__).parent / "dags" / "asyncpod_e2e.py", home / "dags")
    namespace = f"airflow-e2e-{secrets.token_hex(3)}"
    kube_cluster.admin.create_namespace(namespace)
    deployment = AirflowDeployment(
        home=home,
        kubeconfig=kube_cluster.kubeconfig,
        namespace=namespace,
        # Airflow's own metrics on, to a StatsD listener: asyncpod's trigger sessions
        # report through them (asyncpod.airflow.stats).
        extra_env={
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
            # The XCom test reads values deserialized (?deserialize=true), which 3.0 refuses
            # by default.
            # Workers parse the DAG file for each task; several at once on a loaded 2-core
            # machine took over the default 30 s (seen on 3.0.6: every callbacks task failed).
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__API__ENABLE_XCOM_DESERIALIZE_SUPPORT": "True",
        },
    )
    try:
        deployment.migrate()
        for component in COMPONENTS:
            deployment.start(component)
        deployment.wait_ready(DAGS)
        yield deployment
    finally:
        deployment.stop_all()
        kube_cluster.admin.delete_namespace(namespace)


def pods(kube_cluster: TestCluster, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    query = f"?labelSelector={selector}" if selector else ""
    items: list[dict[str, Any]] = kube_cluster.admin.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods{query}"
    )["items"]
    return items


def live(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp")


def created_in(airflow: AirflowDeployment, dag_id: str, run_id: str, task_id: str) -> set[str]:
    """Which process created the task's pod: 'worker' (the try's own log file) or
    'triggerer' (a ``.trigger.<job>.log`` file beside it), from the log line it wrote."""
    folder = airflow.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return {
        "triggerer" if ".trigger." in path.name else "worker"
        for path in folder.glob("attempt=*")
        if "created pod " in path.read_text(errors="replace")
    }


def test_hello_pod_dag_succeeds_and_its_pod_is_deleted(
    airflow: AirflowDeployment, kube_cluster: TestCluster
) -> None:
    run_id = airflow.trigger("ap_hello", "hello-1")
    assert airflow.wait_run("ap_hello", run_id) == "success", airflow.task_log(
        "ap_hello", run_id, "run_hello_pod"
    )
    log = airflow.task_log("ap_hello", run_id, "run_hello_pod")
    assert "created pod default/hello-pod-" in log
    # The default: the worker creates the pod and defers (the triggerer builds no task
    # from the serialized DAG and renders nothing).
    assert created_in(airflow, "ap_hello", run_id, "run_hello_pod") == {"worker"}
    # The trigger runner froze what Airflow holds, once, with its first asyncpod trigger
    # (asyncpod/airflow/triggergc.py): in that trigger's log or the triggerer's.
    logs = (path.read_text(errors="replace") for path in airflow.home.rglob("*.log"))
    assert any("asyncpod froze" in text for text in logs)
    assert not [
        p
        for p in pods(kube_cluster, "default")
        if live(p) and p["metadata"]["name"].startswith("hello-pod-")
    ]


def test_the_triggerers_sessions_report_through_airflows_statsd(
    airflow: AirflowDeployment, statsd: StatsdListener
) -> None:
    """A deferred pod task's trigger session: pods followed, the run's outcome and its
    API requests, as Airflow's own metrics (prefix ``airflow.``) seen by StatsD."""
    run_id = airflow.trigger("ap_hello", "stats-1")
    assert airflow.wait_run("ap_hello", run_id) == "success", airflow.task_log(
        "ap_hello", run_id, "run_hello_pod"
    )
    expected = {
        "airflow.asyncpod.triggerer.pods_followed",
        "airflow.asyncpod.runs.succeeded",
        "airflow.asyncpod.api_requests.LIST",
        "airflow.asyncpod.api_requests.WATCH",
    }
    missing = statsd.wait_for(expected)
    received = sorted(n for n in statsd.names() if "asyncpod" in n)
    assert not missing, f"missing {sorted(missing)}; asyncpod metrics received: {received}"
    # Airflow's own metrics reach the same listener (the set-up is right, not only ours).
    assert [n for n in statsd.names() if n.startswith("airflow.") and "asyncpod" not in n]
    # Bounded names: no pod name, task or DAG id in asyncpod's.
    assert not [n for n in received if "hello" in n or "ap_" in n]


def test_failure_reports_exit_code_message_and_events(airflow: AirflowDeployment) -> None:
    run_id = airflow.trigger("ap_fail", "fail-1")
    assert airflow.wait_run("ap_fail", run_id) == "failed"
    log = airflow.task_log("ap_fail", run_id, "fails")
    assert "exit code 3" in log
    assert "boom at step 3" in log
    assert "pod event: Normal Scheduled" in log


def test_startup_timeout_fails_the_task_with_the_reason(
    airflow: AirflowDeployment, kube_cluster: TestCluster
) -> None:
    run_id = airflow.trigger("ap_timeout", "timeout-1")
    assert airflow.wait_run("ap_timeout", run_id) == "failed"
    log = airflow.task_log("ap_timeout", run_id, "never_starts")
    assert "ImagePullBackOff" in log or "ErrImagePull" in log
    assert not [
        p
        for p in pods(kube_cluster, airflow.namespace)
        if live(p) and "never-starts" in p["metadata"]["name"]
    ]


def test_xcom_reaches_a_downstream_task_also_1_mib(
    airflow: AirflowDeployment, kube_cluster: TestCluster, tmp_path: Path
) -> None:
    run_id = "xcom-1"
    blob = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(2**20))
    blob = blob[: 2**20 - len(json.dumps({"blob": ""}))]
    hand_overs = {
        "produce": json.dumps({"answer": 42, "items": ["a", "b"]}).encode(),
        "produce_big": json.dumps({"blob": blob}).encode(),
    }
    assert len(hand_overs["produce_big"]) == 2**20
    for task_id, content in hand_overs.items():
        pod = pod_name_for(
            task_id, dag_id="ap_xcom", task_id=task_id, run_id=run_id, map_index=-1, try_number=1
        )
        log_file = ContainerLog(tmp_path / f"{task_id}.log")
        log_file.write(frame_lines(content))
        register_logs(
            kube_cluster.admin.request, airflow.namespace, pod, {SIDECAR_NAME: log_file.path}
        )
    airflow.trigger("ap_xcom", run_id)
    assert airflow.wait_run("ap_xcom", run_id) == "success", airflow.task_log(
        "ap_xcom", run_id, "produce_big"
    )
    assert airflow.xcom("ap_xcom", run_id, "produce") == {"answer": 42, "items": ["a", "b"]}
    assert airflow.xcom("ap_xcom", run_id, "consume") == "got 42 and 2 items"
    digest = hashlib.sha256(blob.encode()).hexdigest()
    assert airflow.xcom("ap_xcom", run_id, "measure") == [len(blob), digest]


def test_pod_log_lines_reach_the_task_log_exactly_once(
    airflow: AirflowDeployment, kube_cluster: TestCluster, tmp_path: Path
) -> None:
    run_id = "logs-1"
    pod = pod_name_for(
        "chatty", dag_id="ap_logs", task_id="chatty", run_id=run_id, map_index=-1, try_number=1
    )
    log_file = ContainerLog(tmp_path / "chatty.log")
    lines = [f"line {i} of the chatty pod" for i in range(20)]
    log_file.write(lines)
    register_logs(kube_cluster.admin.request, airflow.namespace, pod, {"base": log_file.path})
    airflow.trigger("ap_logs", run_id)
    assert airflow.wait_run("ap_logs", run_id) == "success"
    log = airflow.task_log("ap_logs", run_id, "chatty")
    for line in lines:
        assert log.count(f"[base] {line}") == 1, (line, log[-3000:])


def test_clearing_a_deferred_task_deletes_its_pod_and_the_next_try_runs_its_own(
    airflow: AirflowDeployment, kube_cluster: TestCluster
) -> None:
    run_id = airflow.trigger("ap_clear", "clear-1")
    airflow.wait_task_state("ap_clear", run_id, "long", "deferred")
    # Clear once the triggerer runs the trigger, so the user-action path (on_kill) is taken.
    airflow.wait(
        "the first try's trigger to start",
        lambda: "starting" in airflow.task_log("ap_clear", run_id, "long", attempt=1),
    )

    def first_pods() -> list[dict[str, Any]]:
        return [
            p
            for p in pods(kube_cluster, airflow.namespace, f"{TRY_LABEL}=1")
            if "long-" in p["metadata"]["name"]
        ]

    (first,) = airflow.wait("the first try's pod", first_pods)
    airflow.clear("ap_clear", run_id, "long")
    assert airflow.wait_run("ap_clear", run_id) == "success"

    def first_gone() -> bool:
        return not [
            p
            for p in pods(kube_cluster, airflow.namespace)
            if p["metadata"]["uid"] == first["metadata"]["uid"] and live(p)
        ]

    airflow.wait("the first try's pod to be deleted", first_gone, limit=90)
    name = first["metadata"]["name"]
    second_log = airflow.task_log("ap_clear", run_id, "long", attempt=2)
    assert "created pod" in second_log
    assert f"created pod {airflow.namespace}/{name} " not in second_log  # its own pod
    # Deleted by the first try's on_kill, or by the second try's sweep of earlier tries;
    # before 3.3 the triggerer calls no on_kill, so only the sweep can have.
    logs = airflow.task_log("ap_clear", run_id, "long")
    if AIRFLOW < (3, 3):
        assert f"deleted pod {name} of an earlier try" in logs
    else:
        assert (
            f"deleted pod {airflow.namespace}/{name}" in logs
            or f"deleted pod {name} of an earlier try" in logs
        )


def following(statsd: StatsdListener, since: int) -> bool:
    """Whether a trigger session has reported following a pod since line ``since`` of
    the StatsD listener (the ``pods_followed`` gauge above 0: a trigger is running)."""
    gauge = "airflow.asyncpod.triggerer.pods_followed:"
    return any(
        line.startswith(gauge) and float(line[len(gauge) :].split("|", 1)[0]) > 0
        for line in statsd.lines()[since:]
    )


@from_3_3
def test_marking_a_deferred_task_failed_deletes_its_pod_through_on_kill(
    airflow: AirflowDeployment, kube_cluster: TestCluster, statsd: StatsdListener
) -> None:
    since = len(statsd.lines())
    run_id = airflow.trigger("ap_markfail", "markfail-1")
    airflow.wait_task_state("ap_markfail", run_id, "doomed", "deferred")
    # On the worker path the pod exists before the triggerer runs the trigger; on_kill
    # is the running trigger's. Wait for it to follow the pod (a task marked failed
    # before its trigger ever ran leaves its pod: see the README's Airflow limits).
    airflow.wait("the trigger to follow the pod", lambda: following(statsd, since))

    def doomed() -> list[dict[str, Any]]:
        return [
            p
            for p in pods(kube_cluster, airflow.namespace)
            if "doomed-" in p["metadata"]["name"] and live(p)
        ]

    (pod,) = airflow.wait("the pod", doomed)
    path = f"/api/v2/dags/ap_markfail/dagRuns/{run_id}/taskInstances/doomed"
    airflow.api("PATCH", path, {"new_state": "failed"})
    # No next try will sweep it: only the trigger's on_kill can delete it.
    airflow.wait("on_kill to delete the pod", lambda: not doomed(), limit=90)
    assert airflow.task(run_id=run_id, dag_id="ap_markfail", task_id="doomed")["state"] == "failed"
    assert pod["metadata"]["name"]


@before_3_3
def test_before_3_3_marking_a_deferred_task_failed_leaves_its_pod(
    airflow: AirflowDeployment, kube_cluster: TestCluster, statsd: StatsdListener
) -> None:
    """Airflow 3.0-3.2 cancel the trigger without calling its on_kill: the pod is left
    (a later try would sweep it; none comes here), as the README's Airflow limits say."""
    since = len(statsd.lines())
    run_id = airflow.trigger("ap_markfail", "markfail-old")
    airflow.wait_task_state("ap_markfail", run_id, "doomed", "deferred")
    airflow.wait("the trigger to follow the pod", lambda: following(statsd, since))
    name = pod_name_for(
        "doomed", dag_id="ap_markfail", task_id="doomed", run_id=run_id, map_index=-1, try_number=1
    )
    (pod,) = airflow.wait(
        "the pod",
        lambda: [
            p
            for p in pods(kube_cluster, airflow.namespace)
            if p["metadata"]["name"] == name and live(p)
        ],
    )
    path = f"/api/v2/dags/ap_markfail/dagRuns/{run_id}/taskInstances/doomed"
    airflow.api("PATCH", path, {"new_state": "failed"})
    assert airflow.task(run_id=run_id, dag_id="ap_markfail", task_id="doomed")["state"] == "failed"
    # Long past the seconds 3.3's on_kill takes (the test above waits for it).
    time.sleep(30)
    uid = pod["metadata"]["uid"]
    assert [p for p in pods(kube_cluster, airflow.namespace) if p["metadata"]["uid"] == uid]
    kube_cluster.admin.request("DELETE", f"/api/v1/namespaces/{airflow.namespace}/pods/{name}")


def test_sigterm_and_restart_of_the_triggerer_while_pods_run(
    airflow: AirflowDeployment, kube_cluster: TestCluster, tmp_path: Path
) -> None:
    run_id = "restart-1"
    tasks = [f"steady_{i}" for i in range(3)]
    files: dict[str, ContainerLog] = {}
    for task_id in tasks:
        pod = pod_name_for(
            task_id, dag_id="ap_restart", task_id=task_id, run_id=run_id, map_index=-1, try_number=1
        )
        files[task_id] = ContainerLog(tmp_path / f"{task_id}.log")
        files[task_id].write([f"{task_id} before {k}" for k in range(5)])
        register_logs(
            kube_cluster.admin.request, airflow.namespace, pod, {"base": files[task_id].path}
        )
    airflow.trigger("ap_restart", run_id)
    for task_id in tasks:
        airflow.wait_task_state("ap_restart", run_id, task_id, "deferred", limit=150)

    def steady_uids() -> set[str]:
        return {
            p["metadata"]["uid"]
            for p in pods(kube_cluster, airflow.namespace)
            if "steady-" in p["metadata"]["name"]
        }

    # Started in the triggerer: the pods appear once the triggers have created them.
    def three_pods() -> set[str] | None:
        found = steady_uids()
        return found if len(found) == 3 else None

    before: set[str] = airflow.wait("the three pods", three_pods)

    def first_lines_logged() -> bool:  # streamed into the task logs before the restart
        return all(
            f"[base] {t} before 4" in airflow.task_log("ap_restart", run_id, t) for t in tasks
        )

    airflow.wait("the first lines in the task logs", first_lines_logged)
    airflow.stop("triggerer", sig=signal.SIGTERM, limit=60)
    for task_id in tasks:  # written while no triggerer runs
        files[task_id].write([f"{task_id} during {k}" for k in range(5)])
    still = {
        p["metadata"]["uid"]
        for p in pods(kube_cluster, airflow.namespace)
        if "steady-" in p["metadata"]["name"] and live(p)
    }
    assert still == before  # a triggerer shutdown never deletes a pod
    airflow.start("triggerer")
    assert airflow.wait_run("ap_restart", run_id, limit=240) == "success"
    for task_id in tasks:
        log = airflow.task_log("ap_restart", run_id, task_id)
        # Created once; after the restart the new trigger reattached to that same pod.
        uids = set(re.findall(r"pod \S+ \(uid ([0-9a-f-]+)\)", log))
        assert len(uids) == 1, uids
        assert uids <= before
        assert log.count("created pod") == 1
        # Opted in: started in the triggerer where Airflow can (3.3+), else on a worker.
        assert created_in(airflow, "ap_restart", run_id, task_id) == (
            {"triggerer"} if AIRFLOW >= (3, 3) else {"worker"}
        )
        for line in files[task_id].lines_written:  # every pod log line exactly once
            assert log.count(f"[base] {line}") == 1, (line, log[-2000:])
    after = {
        p["metadata"]["uid"]
        for p in pods(kube_cluster, airflow.namespace)
        if "steady-" in p["metadata"]["name"] and live(p)
    }
    assert after == set()  # each deleted once it finished, none created twice


def test_a_mapped_task_creates_on_the_worker_and_defers(
    airflow: AirflowDeployment, kube_cluster: TestCluster
) -> None:
    run_id = airflow.trigger("ap_mapped", "mapped-1")
    assert airflow.wait_run("ap_mapped", run_id) == "success"
    folder = airflow.home / "logs" / "dag_id=ap_mapped" / f"run_id={run_id}" / "task_id=mapped"
    worker_logs = [p.read_text() for p in sorted(folder.rglob("attempt=1.log"))]
    assert len(worker_logs) == 2
    assert all("created pod" in log and "Pausing task as DEFERRED" in log for log in worker_logs)
    assert not [
        p
        for p in pods(kube_cluster, airflow.namespace)
        if live(p) and "mapped-" in p["metadata"]["name"]
    ]


DAG_TEST_SCRIPT = """
import datetime
from airflow.sdk import DAG
from asyncpod.airflow import KubernetesPodOperator
from asyncpod.testing import outcome

with DAG("ap_dagtest", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    first = KubernetesPodOperator(
        task_id="first", image="busybox:1.36", get_logs=False,
        annotations=outcome(duration=0.5),
    )
    second = KubernetesPodOperator(
        task_id="second", image="busybox:1.36", get_logs=False,
        annotations=outcome(duration=0.5),
    )
    first >> second

if __name__ == "__main__":
    run = dag.test()
    print("DAGTEST-STATE", run.state)
    for ti in run.get_task_instances():
        print("DAGTEST-TASK", ti.task_id, ti.state)
"""


def test_dag_test_runs_each_trigger_on_its_own_loop(
    kube_cluster: TestCluster, tmp_path: Path
) -> None:
    import subprocess

    home = tmp_path / "home"
    home.mkdir()
    namespace = f"airflow-dagtest-{secrets.token_hex(3)}"
    kube_cluster.admin.create_namespace(namespace)
    try:
        deployment = AirflowDeployment(
            home=home, kubeconfig=kube_cluster.kubeconfig, namespace=namespace
        )
        deployment.migrate()
        (home / "dags").mkdir()
        script = home / "dags" / "dagtest.py"  # dag.test() wants the DAG in the bundle
        script.write_text(DAG_TEST_SCRIPT, encoding="utf-8")
        result = subprocess.run(
            [str(deployment.bin / "python"), str(script)],
            env=deployment.env(), capture_output=True, timeout=240, check=False,
        )  # fmt: skip
        out = result.stdout.decode(errors="replace")
        assert "DAGTEST-STATE success" in out, (
            out[-3000:],
            result.stderr.decode(errors="replace")[-3000:],
        )
        assert "DAGTEST-TASK first success" in out
        assert "DAGTEST-TASK second success" in out
        assert [p for p in pods(kube_cluster, namespace) if live(p)] == []
    finally:
        kube_cluster.admin.delete_namespace(namespace)


def callback_calls(airflow: AirflowDeployment, impl: str, task_id: str) -> list[dict[str, Any]]:
    """The recording callback's calls for one operator's task (the DAG file's ``Recording``)."""
    record = airflow.home / "callback-calls.jsonl"
    lines = record.read_text().splitlines() if record.exists() else []
    calls = [json.loads(line) for line in lines]
    return [c for c in calls if c["impl"] == impl and c["task_id"] == task_id]


def test_callbacks_are_called_as_the_reference_calls_them(
    airflow: AirflowDeployment, kube_cluster: TestCluster
) -> None:
    """The same DAG with the reference operator and with asyncpod's, one recording
    callback class, deferred and not: the same methods in the same order with the same
    mode, the same argument types (the ``kubernetes`` package is installed here:
    CoreV1Api, V1Pod), all in task processes, none in the triggerer's; a label a
    callback adds to the pod request is on the pod created."""
    runs = {dag_id: airflow.trigger(dag_id, "callbacks-1") for dag_id in ("ref_callbacks",
            "ap_callbacks")}  # fmt: skip
    tasks = {"ok": "success", "fails": "failed", "ok_sync": "success", "fails_sync": "failed"}
    for dag_id, run_id in runs.items():
        assert airflow.wait_run(dag_id, run_id, limit=240) == "failed"  # "fails" fails
        for task_id, state in tasks.items():
            found = airflow.task(dag_id, run_id, task_id)["state"]
            assert found == state, airflow.task_log(dag_id, run_id, task_id)[-6000:]
    triggerer_group = airflow.processes["triggerer"].pid  # its forked runner included
    made = ["on_sync_client_creation", "on_pod_manifest_created", "on_pod_creation"]
    for task_id, state in tasks.items():
        reference = callback_calls(airflow, "reference", task_id)
        ours = callback_calls(airflow, "asyncpod", task_id)
        print(f"{task_id}: reference {[(c['method'], c['mode']) for c in reference]}")
        print(f"{task_id}: asyncpod  {[(c['method'], c['mode']) for c in ours]}")
        shape = ("method", "mode", "client", "pod", "has_context")
        assert [tuple(c[k] for k in shape) for c in ours] == [
            tuple(c[k] for k in shape) for c in reference
        ]
        cleanup = ["on_pod_cleanup"] if state == "success" else []
        if task_id.endswith("_sync"):  # one process, one client
            expected = [*made, "on_pod_starting", "on_pod_completion", "on_pod_teardown"]
            assert len({c["pid"] for c in ours}) == 1
        else:  # the first worker creates and defers; the one that resumes has its own client
            expected = [*made, "on_sync_client_creation", "on_pod_completion", "on_pod_teardown"]
            assert len({c["pid"] for c in ours[:3]} | {c["pid"] for c in ours[3:]}) == 2
        assert [c["method"] for c in ours] == expected + cleanup
        assert triggerer_group not in {c["pgid"] for c in ours + reference}
        creation = next(c for c in ours if c["method"] == "on_pod_creation")
        assert creation["labels"]["cost-center"] == "e2e"
        assert {c["mode"] for c in ours if c["mode"] is not None} == {"sync"}
    namespace = airflow.namespace
    assert not [p for p in pods(kube_cluster, namespace) if p["metadata"]["name"].startswith("cb-")
                and live(p)]  # fmt: skip
