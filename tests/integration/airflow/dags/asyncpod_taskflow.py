"""``@task.kubernetes`` DAGs, written for the cncf provider, run by asyncpod's decorator.

Nothing here names asyncpod: ``task.kubernetes`` is whatever the installation registered
(asyncpod's where the provider is not installed, see ``without_reference.py``). The pods
run ``python:3.11-slim`` on the real node (``realnode_airflow.py``).
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
ARGS = {"retries": 0}

with DAG("ap_taskflow", schedule=None, start_date=START, catchup=False, default_args=ARGS):

    @task
    def numbers() -> list[int]:
        return [1, 2, 3, 4]

    @task.kubernetes(image="python:3.11-slim", do_xcom_push=True)
    def summarize(values, label, *, scale=1):  # type: ignore[no-untyped-def]
        # Runs in the pod, in the image's python: nothing of the DAG file but this.
        import platform

        print(f"summarizing {len(values)} values in Python {platform.python_version()}")
        return {
            "label": label,
            "total": sum(values) * scale,
            "python": platform.python_version(),
            "big": "x" * 10_000,  # over the kubelet's 4 KiB termination message
        }

    @task
    def report(summary: dict[str, object]) -> str:
        return f"{summary['label']}={summary['total']} ({len(summary['big'])} chars)"  # type: ignore[arg-type]

    @task.kubernetes(image="python:3.11-slim", do_xcom_push=True, multiple_outputs=True)
    def split(text: str) -> dict[str, object]:
        words = text.split()
        return {"words": words, "count": len(words)}

    @task
    def count_again(count: int, words: list[str]) -> str:
        return f"{count} words, first {words[0]}"

    @task.kubernetes_cmd(image="python:3.11-slim")
    def greet(who: str, run_id: str | None = None) -> list[str]:
        # Runs on the worker (with the context it asks for); the pod runs what it returns,
        # rendered as a template first.
        return ["python", "-c", f"print('hello {who} from {run_id}, task {{{{ task.task_id }}}}')"]

    @task.kubernetes(image="python:3.11-slim", do_xcom_push=True)
    def double(x: int) -> int:
        return x * 2

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    report(summarize(numbers(), "sum", scale=10))  # type: ignore[arg-type]
    total(double.expand(x=[1, 2, 3]))  # type: ignore[arg-type]
    greet("asyncpod")
    parts = split("asyncpod runs this function in a pod")
    count_again(parts["count"], parts["words"])  # type: ignore[index]

with DAG("ap_taskflow_fail", schedule=None, start_date=START, catchup=False, default_args=ARGS):

    @task.kubernetes(image="python:3.11-slim")
    def explode(items: int) -> None:
        def check(n: int) -> None:
            raise ValueError(f"cannot handle {n} items")

        check(items)

    explode(7)
