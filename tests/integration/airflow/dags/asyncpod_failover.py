"""The DAG of the triggerer fail-over test: 100 pod tasks, started in the triggerer.

Their pods run until the test ends them (it lowers ``sim.asyncpod.dev/duration``), so
the fail-over happens while every one of them runs, however loaded the machine is.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from asyncpod.airflow import KubernetesPodOperator
from asyncpod.testing import outcome

TASKS = 100

with DAG(
    "ap_failover",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    default_args={"retries": 0},
):
    for index in range(TASKS):
        KubernetesPodOperator(
            task_id=f"t_{index:03d}",
            image="busybox:1.36",
            annotations=outcome(duration=1800),
            get_logs=True,
            start_from_trigger=True,
        )
