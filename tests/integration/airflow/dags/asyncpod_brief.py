"""The brief's DAG: one KubernetesPodOperator task printing from python:3.11-slim.

As the brief writes it but for the operator's import (asyncpod's, not the cncf
provider's) and Airflow 3's ``schedule`` in place of ``schedule_interval``; the
operator's call is the brief's, argument for argument.
"""

from datetime import datetime

from airflow.sdk import DAG

from asyncpod.airflow import KubernetesPodOperator

default_args = {
    "owner": "airflow",
    "start_date": datetime(2024, 1, 1),
    "retries": 0,
}

dag = DAG(
    "brief_hello_pod",
    default_args=default_args,
    schedule=None,
    catchup=False,
)

run_pod = KubernetesPodOperator(
    namespace="default",
    image="python:3.11-slim",
    cmds=["python", "-c"],
    arguments=['print("Hello from KubernetesPodOperator")'],
    labels={"app": "airflow"},
    name="hello-pod",
    task_id="run_hello_pod",
    get_logs=True,
    dag=dag,
)
