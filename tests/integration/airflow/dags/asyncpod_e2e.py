"""DAGs the end-to-end tests run on real Airflow components against the local control plane.

Outcomes come from kwok (``sim.asyncpod.dev/*`` annotations); the namespace and the
kubeconfig come from the ``kubernetes_default`` connection the harness sets.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from asyncpod.airflow import KubernetesPodOperator
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
    # Started in the triggerer (opt-in; the default is the worker path): a restart must
    # reattach the start triggers to the pods they made.
    for index in range(3):
        KubernetesPodOperator(
            task_id=f"steady_{index}",
            image="busybox:1.36",
            annotations=outcome(duration=25),
            get_logs=True,
            start_from_trigger=True,
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
