"""``callbacks`` on the worker path, in-process, against the local control plane.

What a worker does for a deferrable task with callbacks - ``execute`` (create, defer),
the trigger to its event, ``execute_complete`` in a new operator instance (a new worker
process) - as the minimal Airflow Role's ServiceAccount. The calls, their order, their
arguments, and who deletes the pod: the trigger keeps it, the resuming worker deletes
it after ``on_pod_teardown``. The comparison with the reference under real Airflow
components is ``test_airflow_e2e.py::test_callbacks_are_called_as_the_reference_calls_them``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from asyncpod.airflow.callbacks import KubernetesPodOperatorCallback
from asyncpod.airflow.operators import KubernetesPodOperator
from asyncpod.airflow.tries import TryKey, pod_name_for
from asyncpod.testing import outcome
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.simulate import ContainerLog, register_logs

from .conftest import pod_alive
from .test_worker_path import run_worker

pytestmark = [pytest.mark.integration, pytest.mark.simulated]


class Recorder(KubernetesPodOperatorCallback):
    calls: ClassVar[list[dict[str, Any]]] = []

    @staticmethod
    def _record(method: str, **kwargs: Any) -> None:
        pod = kwargs.get("pod", kwargs.get("pod_request"))
        Recorder.calls.append(
            {
                "method": method,
                "mode": kwargs.get("mode"),
                "client": type(kwargs.get("client")).__name__,
                "pod": pod,
                "context": kwargs.get("context"),
            }
        )

    @staticmethod
    def on_sync_client_creation(**kwargs: Any) -> None:
        Recorder._record("on_sync_client_creation", **kwargs)

    @staticmethod
    def on_pod_manifest_created(**kwargs: Any) -> None:
        kwargs["pod_request"].metadata.annotations["cost.example/team"] = "blue"
        Recorder._record("on_pod_manifest_created", **kwargs)

    @staticmethod
    def on_pod_creation(**kwargs: Any) -> None:
        Recorder._record("on_pod_creation", **kwargs)

    @staticmethod
    def on_pod_starting(**kwargs: Any) -> None:
        Recorder._record("on_pod_starting", **kwargs)

    @staticmethod
    def progress_callback(**kwargs: Any) -> None:
        Recorder._record("progress_callback", **kwargs)
        Recorder.calls[-1].update(
            line=kwargs["line"], container=kwargs["container_name"], at=kwargs["timestamp"]
        )

    @staticmethod
    def on_pod_completion(**kwargs: Any) -> None:
        Recorder._record("on_pod_completion", **kwargs)

    @staticmethod
    def on_pod_teardown(**kwargs: Any) -> None:
        Recorder._record("on_pod_teardown", **kwargs)
        # The client works (the task's connection) and the pod is not deleted yet.
        pod = kwargs["pod"]
        live = kwargs["client"].read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
        Recorder.calls[-1]["live"] = live.metadata.deletion_timestamp is None

    @staticmethod
    def on_pod_cleanup(**kwargs: Any) -> None:
        Recorder._record("on_pod_cleanup", **kwargs)


def operator(kubeconfig: Path, namespace: str, **outcome_args: Any) -> KubernetesPodOperator:
    return KubernetesPodOperator(
        task_id="cb", image="busybox:1.36", namespace=namespace,
        config_file=str(kubeconfig), kubernetes_conn_id=None, get_logs=False,
        annotations=outcome(duration=1, **outcome_args), callbacks=[Recorder],
    )  # fmt: skip


def context(key: TryKey) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id, map_index=key.map_index,
        try_number=key.try_number, xcom_push=lambda **_: None,
    )  # fmt: skip
    return {"ti": ti}


@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
async def test_the_worker_calls_the_callbacks_and_deletes_the_pod_after_teardown(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, fails: bool
) -> None:
    from airflow.sdk.exceptions import AirflowException
    from kubernetes.client import V1Pod  # type: ignore[import-untyped]

    Recorder.calls = []
    key = TryKey("dag", "cb", "run-1", -1, 1)
    trigger = await asyncio.to_thread(
        run_worker, operator(sa_kubeconfig, namespace, exit_code=3 if fails else 0), key
    )
    assert [c["method"] for c in Recorder.calls] == [
        "on_sync_client_creation", "on_pod_manifest_created", "on_pod_creation",
    ]  # fmt: skip
    created = Recorder.calls[2]["pod"]
    assert isinstance(created, V1Pod)
    assert created.metadata.name == trigger.pod_name
    assert created.metadata.annotations["cost.example/team"] == "blue"  # the changed request
    assert trigger.on_finish_action == "keep_pod"

    event = await asyncio.wait_for(anext(trigger.run()), 120)
    assert event.payload["status"] == ("failed" if fails else "success")
    assert not event.payload["pod_deleted"]
    assert pod_alive(kube_cluster, namespace, trigger.pod_name)  # kept for the callbacks

    Recorder.calls = []
    resumed = operator(sa_kubeconfig, namespace)  # a new worker process: a new instance
    if fails:
        with pytest.raises(AirflowException, match="exit code 3"):
            await asyncio.to_thread(resumed.execute_complete, context(key), event.payload)
    else:
        await asyncio.to_thread(resumed.execute_complete, context(key), event.payload)
    expected = ["on_sync_client_creation", "on_pod_completion", "on_pod_teardown"]
    assert Recorder.calls[2]["live"] is True
    assert [c["method"] for c in Recorder.calls] == expected + ([] if fails else ["on_pod_cleanup"])
    for call in Recorder.calls[1:]:
        assert call["mode"] == "sync"
        assert call["client"] == "CoreV1Api"
        assert isinstance(call["pod"], V1Pod)
        assert call["pod"].metadata.uid == trigger.pod_uid
        assert call["context"]["ti"].task_id == "cb"
    assert not pod_alive(kube_cluster, namespace, trigger.pod_name)


async def test_not_deferrable_the_pod_start_and_each_log_line_are_called_back(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """The reference's sync path: ``on_pod_starting`` once the pod runs, then
    ``progress_callback`` for each line (before it is logged, ``log_formatter``
    formatting it), then completion, teardown, the deletion, cleanup - one client."""
    import pendulum
    from kubernetes.client import V1Pod

    key = TryKey("dag", "cbsync", "run-1", -1, 1)
    name = pod_name_for("cbsync", dag_id="dag", task_id="cbsync", run_id="run-1",
                        map_index=-1, try_number=1)  # fmt: skip
    log_file = ContainerLog(tmp_path / "base.log")
    log_file.write(["first line", "second line"])
    register_logs(kube_cluster.admin.request, namespace, name, {"base": log_file.path})
    formatted: list[tuple[str, str]] = []

    def formatter(container: str, message: str) -> str:
        formatted.append((container, message))
        return f"<{container}> {message.upper()}"

    op = KubernetesPodOperator(
        task_id="cbsync", image="busybox:1.36", namespace=namespace,
        config_file=str(sa_kubeconfig), kubernetes_conn_id=None, get_logs=True,
        annotations=outcome(duration=3), callbacks=Recorder, deferrable=False,
        log_formatter=formatter,
    )  # fmt: skip
    Recorder.calls = []
    await asyncio.to_thread(op.execute, context(key))
    methods = [c["method"] for c in Recorder.calls]
    assert methods == [
        "on_sync_client_creation", "on_pod_manifest_created", "on_pod_creation",
        "on_pod_starting", "progress_callback", "progress_callback",
        "on_pod_completion", "on_pod_teardown", "on_pod_cleanup",
    ], methods  # fmt: skip
    lines = [c for c in Recorder.calls if c["method"] == "progress_callback"]
    assert [(c["line"], c["container"]) for c in lines] == [
        ("first line", "base"), ("second line", "base"),
    ]  # fmt: skip
    assert all(isinstance(c["at"], pendulum.DateTime) for c in lines)
    assert all(isinstance(c["pod"], V1Pod) for c in lines)
    assert Recorder.calls[3]["pod"].status.phase != "Pending"
    assert formatted == [("base", "first line"), ("base", "second line")]
    assert not pod_alive(kube_cluster, namespace, name)


class Raising(KubernetesPodOperatorCallback):
    @staticmethod
    def on_pod_starting(**kwargs: Any) -> None:
        raise RuntimeError("the audit service is down")


async def test_not_deferrable_a_raising_callback_fails_the_task_and_the_pod_goes(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str
) -> None:
    """As the reference's sync path (its finally cleans up): the callback's exception
    fails the task, and the pod is deleted per ``on_finish_action``."""
    key = TryKey("dag", "cbraise", "run-1", -1, 1)
    name = pod_name_for("cbraise", dag_id="dag", task_id="cbraise", run_id="run-1",
                        map_index=-1, try_number=1)  # fmt: skip
    op = KubernetesPodOperator(
        task_id="cbraise", image="busybox:1.36", namespace=namespace,
        config_file=str(sa_kubeconfig), kubernetes_conn_id=None, get_logs=False,
        annotations=outcome(duration=30), callbacks=Raising, deferrable=False,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="audit service"):
        await asyncio.wait_for(asyncio.to_thread(op.execute, context(key)), 60)
    assert not pod_alive(kube_cluster, namespace, name)
