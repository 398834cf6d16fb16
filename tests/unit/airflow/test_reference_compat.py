"""Compatibility with the reference operator (the cncf.kubernetes provider, installed
in the dev environment only to compare against): parameter names, template fields, and
the issue's hello-pod DAG parsing with either import."""

from __future__ import annotations

import datetime
import inspect

import pytest

from asyncpod.airflow import KubernetesPodOperator

REFERENCE = pytest.importorskip("airflow.providers.cncf.kubernetes.operators.pod")


def test_every_reference_parameter_is_accepted_by_name() -> None:
    ours = inspect.signature(KubernetesPodOperator.__init__).parameters
    theirs = inspect.signature(REFERENCE.KubernetesPodOperator.__init__).parameters
    missing = [name for name in theirs if name not in ours]
    assert missing == []


def test_template_fields_are_the_reference_ones() -> None:
    assert tuple(KubernetesPodOperator.template_fields) == tuple(
        REFERENCE.KubernetesPodOperator.template_fields
    )


def test_hello_pod_dag_parses_with_both_imports() -> None:
    from airflow.sdk import DAG

    for operator in (KubernetesPodOperator, REFERENCE.KubernetesPodOperator):
        with DAG("hello", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
            run_pod = operator(
                namespace="default", image="python:3.9-slim", cmds=["python", "-c"],
                arguments=['print("Hello from KubernetesPodOperator")'],
                labels={"app": "airflow"}, name="hello-pod", task_id="run_hello_pod",
                get_logs=True, dag=dag,
            )  # fmt: skip
        assert dag.get_task("run_hello_pod") is run_pod
