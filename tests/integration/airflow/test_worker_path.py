"""The worker path of a mapped task, counted by the API server itself.

A worker runs ``KubernetesPodOperator.execute`` for one mapped task instance: it
creates the try's pod and defers. It must make no WATCH and no namespace-wide LIST of
pods (issue 19: it made one of each per task); what reattaching needs (a 409 because
this try's pod exists) it asks with a selector that matches only the task instance's
pods, at most one LIST. Here ``execute`` runs in-process, as a worker runs it, as the
minimal Role's ServiceAccount; the deferred triggers then run to their end.

Counting: ``apiserver_request_total`` of the session's control plane. LISTs and WATCHes
are counted with ``scope="namespace"`` only (a LIST or WATCH of one namespace's pods):
the scheduler, kwok, the kubelet and the controllers list and watch pods cluster-wide
(``scope="cluster"``), so their requests stay out of the count; nothing but this test's
worker talks to its namespace while it counts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from asyncpod.airflow.creation import try_selector
from asyncpod.airflow.operators import KubernetesPodOperator
from asyncpod.airflow.tries import TryKey, pod_name_for
from asyncpod.airflow.triggers import AsyncpodPodTrigger
from asyncpod.kube.pods import Pods
from asyncpod.testing import outcome
from asyncpod.testing.controlplane import LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster

from .conftest import pod_alive

pytestmark = [pytest.mark.integration, pytest.mark.simulated]


def mapped_operator(kubeconfig: Path, namespace: str, tmp_path: Path) -> KubernetesPodOperator:
    """The operator a worker unmaps for one index (``partial`` kwargs + one ``expand`` value)."""
    return KubernetesPodOperator(
        task_id="mapped", image="busybox:1.36", namespace=namespace,
        config_file=str(kubeconfig), kubernetes_conn_id=None, get_logs=False,
        annotations=outcome(duration=2), arguments=["one"], start_from_trigger=False,
    )  # fmt: skip


def run_worker(op: KubernetesPodOperator, key: TryKey) -> AsyncpodPodTrigger:
    """``execute`` as a worker runs it; the trigger it defers to."""
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

    ti = SimpleNamespace(
        dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id,
        map_index=key.map_index, try_number=key.try_number,
    )  # fmt: skip
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"ti": ti})
    trigger = deferred.value.trigger
    assert isinstance(trigger, AsyncpodPodTrigger)
    return trigger


async def test_a_mapped_task_on_the_worker_path_makes_no_watch_and_no_namespace_wide_list(
    control_plane: LocalControlPlane,
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    selectors: list[str | None] = []
    original_list = Pods.list

    async def spy_list(self: Pods, ns: str, **kw: Any) -> Any:
        selectors.append(kw.get("label_selector"))
        return await original_list(self, ns, **kw)

    monkeypatch.setattr(Pods, "list", spy_list)
    op = mapped_operator(sa_kubeconfig, namespace, tmp_path)
    keys = [TryKey("ap_mapped", "mapped", "run-1", index, 1) for index in range(3)]

    # 1. Each mapped task instance's first try: create and defer.
    before = control_plane.request_counts(namespaced_lists_only=True)
    triggers = [await asyncio.to_thread(run_worker, op, key) for key in keys]
    spent = control_plane.request_counts(namespaced_lists_only=True) - before
    nonzero = {key: count for key, count in spent.counts.items() if count}
    print(f"first tries, 3 tasks: {nonzero}")
    assert spent.get("WATCH", "pods") == 0
    assert spent.get("LIST", "pods") == 0  # a first try has nothing to reattach or sweep
    assert spent.get("POST", "pods") == 3
    for key, trigger in zip(keys, triggers, strict=True):
        name = pod_name_for("mapped", dag_id=key.dag_id, task_id=key.task_id,
                            run_id=key.run_id, map_index=key.map_index, try_number=1)  # fmt: skip
        pod = kube_cluster.admin.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        assert trigger.pod_name == name
        assert trigger.pod_uid == pod["metadata"]["uid"]
        assert trigger.pod_resource_version is not None
        assert int(trigger.pod_resource_version) <= int(pod["metadata"]["resourceVersion"])
        assert trigger.serialize()[1]["pod_resource_version"] == trigger.pod_resource_version

    # 2. A worker restarted within the try: 409, one selected LIST, the same pod.
    before = control_plane.request_counts(namespaced_lists_only=True)
    again = await asyncio.to_thread(run_worker, op, keys[0])
    spent = control_plane.request_counts(namespaced_lists_only=True) - before
    assert (spent.get("WATCH", "pods"), spent.get("LIST", "pods")) == (0, 1)
    assert spent.get("POST", "pods") == 1
    assert again.pod_uid == triggers[0].pod_uid
    assert selectors == [try_selector(keys[0])]

    # 3. The next try of one task: its own pod; one selected LIST sweeps the first try's.
    retry = TryKey("ap_mapped", "mapped", "run-1", 1, 2)
    before = control_plane.request_counts(namespaced_lists_only=True)
    second = await asyncio.to_thread(run_worker, op, retry)
    spent = control_plane.request_counts(namespaced_lists_only=True) - before
    assert (spent.get("WATCH", "pods"), spent.get("LIST", "pods")) == (0, 1)
    assert selectors[-1] == try_selector(retry)
    assert second.pod_uid != triggers[1].pod_uid
    assert not pod_alive(kube_cluster, namespace, triggers[1].pod_name)

    # The deferred triggers follow the pods they were handed, to their end.
    monkeypatch.undo()
    payloads = await asyncio.wait_for(
        asyncio.gather(*(anext(t.run()) for t in (triggers[0], triggers[2], second))), 120
    )
    assert [p.payload["status"] for p in payloads] == ["success"] * 3
    assert [p.payload["pod_uid"] for p in payloads] == [
        triggers[0].pod_uid, triggers[2].pod_uid, second.pod_uid,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "exit_code", "kept"),
    [("delete_pod", 0, False), ("delete_succeeded_pod", 3, True)],
    ids=["deleted", "failed-and-kept"],
)
async def test_the_worker_that_resumes_applies_on_finish_action_not_the_trigger(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    action: str,
    exit_code: int,
    kept: bool,
) -> None:
    """A deferred task's trigger sends no DELETE from the triggerer's loop: it keeps the
    pod, and the worker that resumes the task (a new operator instance) deletes it, by
    uid, as ``on_finish_action`` says for the event's outcome."""
    try:
        from airflow.sdk.exceptions import AirflowException
    except ImportError:  # Airflow 3.0: not in the task SDK yet
        from airflow.exceptions import AirflowException  # type: ignore[attr-defined,no-redef,unused-ignore]

    def worker_op() -> KubernetesPodOperator:
        return KubernetesPodOperator(
            task_id="fin", image="busybox:1.36", namespace=namespace,
            config_file=str(sa_kubeconfig), kubernetes_conn_id=None, get_logs=False,
            annotations=outcome(duration=1, exit_code=exit_code), on_finish_action=action,
        )  # fmt: skip

    key = TryKey("ap_finish", "fin", f"run-{action}", -1, 1)
    trigger = await asyncio.to_thread(run_worker, worker_op(), key)
    assert trigger.on_finish_action == "keep_pod"
    event = await asyncio.wait_for(anext(trigger.run()), 120)
    assert event.payload["pod_deleted"] is False
    assert pod_alive(kube_cluster, namespace, trigger.pod_name)  # the trigger kept it

    ti = SimpleNamespace(
        dag_id=key.dag_id, task_id=key.task_id, run_id=key.run_id, map_index=key.map_index,
        try_number=key.try_number, xcom_push=lambda **_: None,
    )  # fmt: skip
    resumed = worker_op()  # a new worker process: a new instance
    if exit_code:
        with pytest.raises(AirflowException, match=f"exit code {exit_code}"):
            await asyncio.to_thread(resumed.execute_complete, {"ti": ti}, event.payload)
    else:
        await asyncio.to_thread(resumed.execute_complete, {"ti": ti}, event.payload)
    assert pod_alive(kube_cluster, namespace, trigger.pod_name) is kept
