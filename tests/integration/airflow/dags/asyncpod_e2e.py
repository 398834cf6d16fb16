"""DAGs the end-to-end tests run on real Airflow components against the local control plane.

Outcomes come from kwok (``sim.asyncpod.dev/*`` annotations); the namespace and the
kubeconfig come from the ``kubernetes_default`` connection the harness sets.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from asyncpod.airflow import KubernetesPodOperator
from asyncpod.airflow.operators import supports_start_from_trigger
from asyncpod.testing import outcome

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, default_args={"retries": 0})


# The DAG, unchanged but for the import line.
dag = _dag("ap_hello")
run_pod = KubernetesPodOperator(
    namespace="default",
    image="python:3.9-slim",
    cmds=["python", "-c"],
    arguments=['print("Hello from KubernetesPodOperator")'],
    labels={"app": "airflow"},
    name="hello-pod",
    task_id="run_hello_pod",
    get_logs=True,
    dag=dag,
)

with _dag("ap_fail"):
    KubernetesPodOperator(
        task_id="fails",
        image="busybox:1.36",
        annotations=outcome(duration=0.5, exit_code=3, message="boom at step 3"),
        log_events_on_failure=True,
        get_logs=False,
    )

with _dag("ap_timeout"):
    KubernetesPodOperator(
        task_id="never_starts",
        image="busybox:1.36",
        annotations=outcome(image_pull_fails=True),
        startup_timeout_seconds=3,
        get_logs=False,
    )

# The XCom sidecar's hand-over is a kwok log the test registers (frame_lines).
with _dag("ap_xcom"):
    produce = KubernetesPodOperator(
        task_id="produce",
        image="busybox:1.36",
        annotations=outcome(duration=0.5),
        do_xcom_push=True,
        get_logs=False,
    )

    @task
    def consume(value: dict[str, object]) -> str:
        return f"got {value['answer']} and {len(value['items'])} items"  # type: ignore[arg-type]

    consume(produce.output)  # type: ignore[arg-type]

    big = KubernetesPodOperator(
        task_id="produce_big",
        image="busybox:1.36",
        annotations=outcome(duration=0.5),
        do_xcom_push=True,
        get_logs=False,
    )

    @task
    def measure(value: dict[str, str]) -> list[object]:
        import hashlib

        blob = value["blob"]
        return [len(blob), hashlib.sha256(blob.encode()).hexdigest()]

    measure(big.output)  # type: ignore[arg-type]

with _dag("ap_logs"):
    KubernetesPodOperator(
        task_id="chatty",
        name="chatty",
        image="busybox:1.36",
        annotations=outcome(duration=3),
        get_logs=True,
    )

with _dag("ap_clear"):
    KubernetesPodOperator(
        task_id="long",
        image="busybox:1.36",
        # The first try runs long (it gets cleared); the next one finishes at once.
        annotations={
            **outcome(duration=1),
            "sim.asyncpod.dev/duration": "{{ '300s' if ti.try_number == 1 else '1s' }}",
        },
        get_logs=False,
    )

with _dag("ap_restart"):
    # Started in the triggerer (opt-in; the default is the worker path) where Airflow can
    # (3.3+; before, the worker path): a restart must reattach the triggers to their pods.
    for index in range(3):
        KubernetesPodOperator(
            task_id=f"steady_{index}",
            image="busybox:1.36",
            annotations=outcome(duration=25),
            get_logs=True,
            start_from_trigger=supports_start_from_trigger(),
        )

with _dag("ap_mapped"):
    # Mapped: starts on a worker (expand() values never reach a trigger started by the
    # scheduler), which creates the pod and defers. The pods run 10 s: a deferring
    # worker's exit is an executor "success" event, and a scheduler that handles it only
    # after the task was already resumed (seen on this loaded machine, 7 s late, with a
    # 0.5 s pod) marks the running task failed - an Airflow race, not the operator's.
    KubernetesPodOperator.partial(
        task_id="mapped",
        image="busybox:1.36",
        annotations=outcome(duration=10),
        get_logs=False,
    ).expand(arguments=[["first"], ["second"]])

with _dag("ap_markfail"):
    KubernetesPodOperator(
        task_id="doomed",
        image="busybox:1.36",
        annotations=outcome(duration=300),
        get_logs=False,
    )


# ``callbacks``: one DAG with asyncpod's operator, the same DAG with the reference's;
# a callback class records every call (method, mode, argument types, process) to a file
# in AIRFLOW_HOME that the test compares. Subclassing the provider's base class, as a
# DAG written for the provider does.
def _callback_dags() -> None:
    import json
    import os
    from pathlib import Path
    from typing import Any

    from airflow.providers.cncf.kubernetes.callbacks import KubernetesPodOperatorCallback
    from airflow.providers.cncf.kubernetes.operators.pod import (
        KubernetesPodOperator as ReferenceOperator,
    )

    record = Path(__file__).resolve().parent.parent / "callback-calls.jsonl"

    def write(method: str, operator: Any, **kwargs: Any) -> None:
        pod = kwargs.get("pod", kwargs.get("pod_request"))
        metadata = getattr(pod, "metadata", None)
        mode = kwargs.get("mode")
        entry = {
            "impl": "asyncpod" if type(operator).__module__.startswith("asyncpod") else "reference",
            "dag_id": operator.dag_id,
            "task_id": operator.task_id,
            "method": method,
            "mode": getattr(mode, "value", mode),
            "client": type(kwargs.get("client")).__name__,
            "pod": type(pod).__name__ if pod is not None else None,
            "pod_name": getattr(metadata, "name", None),
            "labels": dict(getattr(metadata, "labels", None) or {}),
            "has_context": kwargs.get("context") is not None,
            "pgid": os.getpgid(0),
            "pid": os.getpid(),
        }
        with record.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    def recorder(method: str) -> Any:
        def call(*, operator: Any, **kwargs: Any) -> None:
            write(method, operator, **kwargs)

        return staticmethod(call)

    class Recording(KubernetesPodOperatorCallback):
        on_sync_client_creation = recorder("on_sync_client_creation")
        on_pod_creation = recorder("on_pod_creation")
        on_pod_starting = recorder("on_pod_starting")
        on_pod_completion = recorder("on_pod_completion")
        on_pod_teardown = recorder("on_pod_teardown")
        on_pod_cleanup = recorder("on_pod_cleanup")
        on_operator_resuming = recorder("on_operator_resuming")

        @staticmethod
        def on_pod_manifest_created(*, operator: Any, **kwargs: Any) -> None:
            # What a cost-tagging callback does: the pod is created with the label.
            kwargs["pod_request"].metadata.labels["cost-center"] = "e2e"
            write("on_pod_manifest_created", operator, **kwargs)

    for dag_id, operator in (("ap_callbacks", KubernetesPodOperator),
                             ("ref_callbacks", ReferenceOperator)):  # fmt: skip
        with _dag(dag_id):
            # Deferred, and not (the reference's default is deferrable=False, asyncpod's True).
            for suffix, deferrable in (("", True), ("_sync", False)):
                operator(
                    task_id=f"ok{suffix}",
                    name="cb-ok",
                    image="busybox:1.36",
                    annotations=outcome(duration=8),
                    get_logs=False,
                    callbacks=Recording,
                    deferrable=deferrable,
                )
                operator(
                    task_id=f"fails{suffix}",
                    name="cb-fails",
                    image="busybox:1.36",
                    annotations=outcome(duration=8, exit_code=3, message="boom"),
                    get_logs=False,
                    callbacks=[Recording],
                    deferrable=deferrable,
                )


_callback_dags()
