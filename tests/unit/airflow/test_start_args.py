"""The operator's serialized size, and the compact ``start_trigger_args`` it comes from.

Airflow 3.3's triggerer deserializes the whole DAG for every trigger that starts a task
(``start_from_trigger``), on its event loop; each byte of a task's serialized form is
paid per task per trigger (issue 19). These tests pin the size and check that nothing
the start trigger needs was dropped with the defaults.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from kubernetes_asyncio.client import models as k8s

from asyncpod.airflow.operators import KubernetesPodOperator
from asyncpod.airflow.triggers import (
    START_OPTION_DEFAULTS,
    START_TEMPLATE_FIELDS,
    AsyncpodPodStartTrigger,
    compact_start_kwargs,
)
from tests.unit.airflow.versions import from_3_3

#: Bytes per task of a DAG of 200 bare operators that start in the triggerer (measured
#: 1,237 after the compaction, 2,872 before it; the reference provider's operator: 957).
#: Margin for Airflow's own fields growing across 3.3.x.
PER_TASK_LIMIT = 1400
#: The same on the default worker path, which stores no ``start_trigger_args``
#: (measured 943; the reference's 957).
WORKER_PATH_LIMIT = 1000


def serialized_per_task(operator: Any, count: int = 200, **kwargs: Any) -> int:
    """The issue's measure: ``len(json.dumps(DagSerialization.to_dict(dag))) // count``."""
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("size", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
        for index in range(count):
            operator(task_id=f"t{index}", image="busybox", **kwargs)
    return len(json.dumps(DagSerialization.to_dict(dag))) // count


@from_3_3
def test_a_bare_operator_serializes_to_less_than_the_limit() -> None:
    size = serialized_per_task(KubernetesPodOperator, start_from_trigger=True)
    print(f"asyncpod, started in the triggerer: {size} bytes per task")
    assert size <= PER_TASK_LIMIT
    size = serialized_per_task(KubernetesPodOperator)
    print(f"asyncpod, worker path: {size} bytes per task")
    assert size <= WORKER_PATH_LIMIT


@from_3_3
def test_start_trigger_args_of_a_bare_operator_hold_only_the_image() -> None:
    op = KubernetesPodOperator(task_id="t", image="busybox", start_from_trigger=True)
    assert op.start_trigger_args is not None
    assert op.start_trigger_args.trigger_kwargs == {"image": "busybox"}


OPERATORS: list[dict[str, Any]] = [
    {"image": "busybox"},
    {
        "image": "busybox:{{ params.tag }}", "cmds": ["sh", "-c"], "arguments": ["echo {{ ds }}"],
        "labels": {"a": "b"}, "annotations": {"c": "d"}, "env_vars": {"E": "1"},
        "namespace": "team", "name": "named", "random_name_suffix": False,
        "kubernetes_conn_id": "other", "config_file": "/kube", "cluster_context": "ctx",
        "in_cluster": False, "base_container_name": "main", "get_logs": False,
        "container_logs": True, "init_container_logs": ["init"],
        "container_name_log_prefix_enabled": False, "startup_timeout_seconds": 30,
        "schedule_timeout_seconds": 20, "on_finish_action": "keep_pod",
        "on_kill_action": "keep_pod", "termination_grace_period": 0, "do_xcom_push": True,
        "skip_on_exit_code": [3], "log_events_on_failure": True, "hostnetwork": True,
        "termination_message_policy": "FallbackToLogsOnError",
        "automount_service_account_token": False, "active_deadline_seconds": 0,
        "tolerations": [k8s.V1Toleration(key="k", operator="Exists")],
        "node_selector": {"n": "1"},
    },
]  # fmt: skip


@from_3_3
@pytest.mark.parametrize("params", OPERATORS, ids=["bare", "everything"])
def test_the_start_trigger_follows_as_the_worker_paths_trigger_would(
    params: dict[str, Any],
) -> None:
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import BaseSerialization, DagSerialization

    with DAG("d", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
        op = KubernetesPodOperator(task_id="t", start_from_trigger=True, **params)
    # Through the serialized DAG, as the scheduler hands the kwargs to the triggerer.
    task = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("t")
    encoded = task.start_trigger_args.trigger_kwargs  # type: ignore[union-attr]
    kwargs = BaseSerialization.deserialize(encoded)
    assert kwargs == op.start_trigger_kwargs()
    started = AsyncpodPodStartTrigger(**kwargs)
    follower = op.build_trigger(namespace="n", pod_name="p", pod_uid="u")
    for option in START_OPTION_DEFAULTS:
        assert getattr(started, option) == getattr(follower, option), option
    for field in START_TEMPLATE_FIELDS:
        assert (getattr(started, field) or None) == (op.start_trigger_kwargs().get(field)), field
    assert started.random_name_suffix == op.random_name_suffix
    assert AsyncpodPodStartTrigger(**kwargs).serialize() == (
        "asyncpod.airflow.triggers.AsyncpodPodStartTrigger",
        kwargs,
    )


def test_falsy_values_that_differ_from_the_defaults_are_kept() -> None:
    op = KubernetesPodOperator(
        task_id="t", image="x", termination_grace_period=0, automount_service_account_token=False,
        active_deadline_seconds=0, startup_timeout_seconds=120, skip_on_exit_code=[0],
    )  # fmt: skip
    kwargs = op.start_trigger_kwargs()
    assert kwargs["termination_grace_period"] == 0
    assert kwargs["pod_params"] == {
        "automount_service_account_token": False,
        "active_deadline_seconds": 0,
        "termination_grace_period": 0,
    }
    assert kwargs["skip_on_exit_code"] == [0]
    assert "startup_timeout" not in kwargs
    assert compact_start_kwargs(kwargs) == kwargs  # idempotent


def test_start_trigger_args_serialized_before_the_compaction_still_load() -> None:
    full: dict[str, Any] = {
        "pod_params": {
            "hostnetwork": False,
            "tolerations": [],
            "termination_message_policy": "File",
        },
        "random_name_suffix": True,
        **dict.fromkeys(START_TEMPLATE_FIELDS),
        **START_OPTION_DEFAULTS,
        "image": "busybox",
    }
    started = AsyncpodPodStartTrigger(**full)
    assert started.serialize()[1] == {"image": "busybox"}
    assert started.log_events_on_failure is False
    assert started.container_logs is False
