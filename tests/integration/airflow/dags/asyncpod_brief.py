"""The brief's DAG: one KubernetesPodOperator task printing from python:3.11-slim.

The operator's call is the brief's, argument for argument; what changed is the
operator's import (asyncpod's, not the cncf provider's) and Airflow 3's ``schedule`` in
place of ``schedule_interval``. ``from airflow import DAG`` still works on Airflow 3.
"""

from datetime import datetime

from airflow import DAG

from asyncpod.airflow import KubernetesPodOperator

dag = DAG(
    "brief_hello_pod",
    start_date=datetime(2024, 1, 1),
    schedule=None,
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
