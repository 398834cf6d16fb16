"""The operator's parameters (names, parse-time errors, manifest) and the trigger's
serialize()/constructor round trip. Pure: no cluster, no Airflow database."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import models as k8s

from asyncpod.airflow import AsyncpodPodTrigger, KubernetesPodOperator
from asyncpod.airflow.operators import NO_EFFECT, UNSUPPORTED, starts_in_triggerer
from asyncpod.airflow.podbuild import XCOM_PATH
from asyncpod.airflow.provider import get_provider_info
from asyncpod.airflow.tries import TRY_LABEL, earlier_tries, pod_name_for
from asyncpod.airflow.triggers import AsyncpodPodStartTrigger, resumed_worker_deletes
from asyncpod.errors import UsageError
from tests.unit.airflow.versions import from_3_3


@dataclass
class Secret:
    """The cncf provider's ``Secret`` by its attributes (the operator reads them by name)."""

    deploy_type: str
    deploy_target: str | None
    secret: str
    key: str | None = None
    items: Any = None


def make(**kwargs: Any) -> KubernetesPodOperator:
    return KubernetesPodOperator(task_id="t", **kwargs)


def test_deferrable_is_on_by_default() -> None:
    assert make(image="busybox").deferrable is True


@pytest.mark.parametrize("param", sorted(UNSUPPORTED))
def test_unsupported_parameter_fails_at_parse_time_naming_it(param: str) -> None:
    with pytest.raises(UsageError, match=repr(param)):
        make(image="busybox", **{param: object()})


def test_reattach_on_restart_false_is_refused() -> None:
    with pytest.raises(UsageError, match="reattach_on_restart"):
        make(image="busybox", reattach_on_restart=False)


@pytest.mark.parametrize("param", NO_EFFECT)
def test_polling_knobs_are_accepted(param: str) -> None:
    assert make(image="busybox", **{param: 7}) is not None


def test_bad_actions_are_refused() -> None:
    with pytest.raises(UsageError, match="on_finish_action"):
        make(image="x", on_finish_action="explode")
    with pytest.raises(UsageError, match="on_kill_action"):
        make(image="x", on_kill_action="explode")


def test_is_delete_operator_pod_maps_to_on_finish_action() -> None:
    assert make(image="x", is_delete_operator_pod=False).on_finish_action == "keep_pod"


def test_manifest_from_kubernetes_models_and_secrets() -> None:
    op = make(
        image="busybox",
        cmds=["sh", "-c"],
        arguments=["echo hi"],
        env_vars=[k8s.V1EnvVar(name="A", value="1")],
        secrets=[Secret("env", "PASSWORD", "db", "pw"), Secret("volume", "/etc/s", "certs")],
        configmaps=["cm1"],
        container_resources=k8s.V1ResourceRequirements(limits={"memory": "1Gi"}),
        tolerations=[k8s.V1Toleration(key="k", operator="Exists")],
        node_selector={"disk": "ssd"},
        image_pull_secrets="reg1,reg2",
        labels={"team": "x"},
        do_xcom_push=True,
        active_deadline_seconds=60,
        termination_grace_period=5,
    )
    pod = op.build_manifest(extra_labels={"extra": "1"})
    (base,) = pod["spec"]["containers"]
    assert base["name"] == "base"
    assert base["env"] == [
        {"name": "A", "value": "1"},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    ]
    assert base["envFrom"] == [{"configMapRef": {"name": "cm1"}}]
    assert base["resources"] == {"limits": {"memory": "1Gi"}}
    assert [m["mountPath"] for m in base["volumeMounts"]] == ["/airflow/xcom", "/etc/s"]
    assert XCOM_PATH == "/airflow/xcom/return.json"
    assert "terminationMessagePath" not in base  # the XCom sidecar hands the file over
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["airflow-xcom-sidecar"]
    assert pod["spec"]["volumes"][0] == {"name": "xcom", "emptyDir": {}}
    assert pod["spec"]["volumes"][1]["secret"] == {"secretName": "certs"}
    assert pod["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "reg1"}, {"name": "reg2"}]
    assert pod["spec"]["activeDeadlineSeconds"] == 60
    assert pod["spec"]["terminationGracePeriodSeconds"] == 5
    assert pod["metadata"]["labels"] == {"team": "x", "extra": "1"}


def test_template_file_then_full_pod_spec_then_parameters(tmp_path: Path) -> None:
    template = tmp_path / "pod.yaml"
    template.write_text(
        "spec:\n  containers:\n  - name: base\n    image: from-template\n    workingDir: /w\n"
        "  - name: helper\n    image: helper\n  priorityClassName: low\n",
        encoding="utf-8",
    )
    full = k8s.V1Pod(spec=k8s.V1PodSpec(containers=[], priority_class_name="high"))
    pod = make(
        image="from-param", pod_template_file=str(template), full_pod_spec=full
    ).build_manifest()
    names = [c["name"] for c in pod["spec"]["containers"]]
    assert (
        names == ["base", "helper"] or pod["spec"]["containers"] == []
    )  # full spec replaces lists
    pod = make(image="from-param", pod_template_file=str(template)).build_manifest()
    base = pod["spec"]["containers"][0]
    assert (base["image"], base["workingDir"]) == ("from-param", "/w")
    assert pod["spec"]["priorityClassName"] == "low"


def test_pod_names_are_per_try_deterministic_and_valid() -> None:
    common: dict[str, Any] = {
        "dag_id": "d",
        "task_id": "t",
        "run_id": "manual__2024",
        "map_index": -1,
    }
    first = pod_name_for("Hello_Pod", try_number=1, **common)
    assert first == pod_name_for("Hello_Pod", try_number=1, **common)
    assert first != pod_name_for("Hello_Pod", try_number=2, **common)
    assert first != pod_name_for("Hello_Pod", try_number=1, **{**common, "map_index": 0})
    long = pod_name_for("x" * 200, try_number=12, **common)
    assert len(long) <= 63
    assert long.endswith("-12")
    assert first.startswith("hello-pod-")
    assert pod_name_for("exact", try_number=3, random_suffix=False, **common) == "exact"


TRIGGER_VALUES: dict[str, Any] = {
    "pod_name": "p-1",
    "pod_namespace": "ns",
    "pod_uid": "0f1e",
    "pod_resource_version": "4711",
    "kubernetes_conn_id": "my_k8s",
    "config_file": "/kube/config",
    "cluster_context": "ctx",
    "in_cluster": False,
    "base_container_name": "main",
    "get_logs": False,
    "container_logs": ["a", "b"],
    "init_container_logs": True,
    "container_name_log_prefix_enabled": False,
    "startup_timeout": 33,
    "schedule_timeout": 44,
    "deadline": 55,
    "on_finish_action": "keep_pod",
    "on_kill_action": "keep_pod",
    "termination_grace_period": 7,
    "do_xcom_push": True,
    "skip_on_exit_code": [3, 4],
    "log_events_on_failure": False,
    "deferred_at": 1796554245.5,
}


def test_trigger_round_trips_every_parameter() -> None:
    classpath, kwargs = AsyncpodPodTrigger(**TRIGGER_VALUES).serialize()
    assert classpath == "asyncpod.airflow.triggers.AsyncpodPodTrigger"
    assert kwargs == TRIGGER_VALUES
    assert set(kwargs) == set(inspect.signature(AsyncpodPodTrigger.__init__).parameters) - {"self"}
    again = AsyncpodPodTrigger(**kwargs).serialize()
    assert again == (classpath, kwargs)


def test_operator_parameters_reach_the_trigger() -> None:
    op = make(
        image="x", kubernetes_conn_id="c", config_file="/f", cluster_context="k", in_cluster=False,
        base_container_name="main", get_logs=True, container_logs="main", init_container_logs=True,
        startup_timeout_seconds=9, schedule_timeout_seconds=8, on_finish_action="keep_pod",
        on_kill_action="keep_pod", termination_grace_period=3, do_xcom_push=True,
        skip_on_exit_code=[5, 2], log_events_on_failure=True,
        container_name_log_prefix_enabled=False,
    )  # fmt: skip
    _, kwargs = op.build_trigger(
        namespace="ns", pod_name="p", pod_uid="u", pod_resource_version="9"
    ).serialize()
    assert kwargs | {"deadline": None} == {
        "pod_name": "p", "pod_namespace": "ns", "pod_uid": "u", "pod_resource_version": "9",
        "kubernetes_conn_id": "c",
        "config_file": "/f", "cluster_context": "k", "in_cluster": False,
        "base_container_name": "main", "get_logs": True, "container_logs": ["main"],
        "init_container_logs": True, "container_name_log_prefix_enabled": False,
        "startup_timeout": 9, "schedule_timeout": 8, "deadline": None,
        "on_finish_action": "keep_pod", "on_kill_action": "keep_pod",
        "termination_grace_period": 3, "do_xcom_push": True, "skip_on_exit_code": [2, 5],
        "log_events_on_failure": True, "deferred_at": None,
    }  # fmt: skip


def test_no_secret_reaches_a_serialized_trigger() -> None:
    op = make(
        image="x",
        env_vars={"API_TOKEN": "tok-VALUE-123"},
        secrets=[Secret("env", "PW", "db-secret", "password")],
        kubernetes_conn_id="conn-with-inline-kubeconfig",
    )
    _, kwargs = op.build_trigger(namespace="ns", pod_name="p", pod_uid="u").serialize()
    text = json.dumps(kwargs)
    assert "tok-VALUE-123" not in text
    assert "db-secret" not in text
    assert set(kwargs) == set(TRIGGER_VALUES)  # a reference and options, nothing else


def test_provider_is_registered_under_the_distribution_name() -> None:
    info = get_provider_info()
    assert info["package-name"] == "asyncpod"
    (ep,) = [
        e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("asyncpod")
    ]
    assert ep.load() is get_provider_info


def test_provider_info_is_valid_for_airflows_own_schema() -> None:
    from airflow.providers_manager import _create_provider_info_schema_validator

    _create_provider_info_schema_validator().validate(get_provider_info())  # type: ignore[no-untyped-call]
    options = get_provider_info()["config"]["asyncpod"]["options"]
    assert set(options) == {"client_qps", "client_burst"}


def test_earlier_tries_are_the_live_pods_of_lower_try_numbers() -> None:
    def pod(name: str, try_label: str | None, *, deleting: bool = False) -> dict[str, Any]:
        labels = {TRY_LABEL: try_label} if try_label is not None else {}
        metadata: dict[str, Any] = {"name": name, "labels": labels}
        if deleting:
            metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": metadata}

    pods = [
        pod("a", "1"),
        pod("b", "2"),
        pod("c", "3"),
        pod("d", "1", deleting=True),
        pod("e", None),
        pod("f", "x"),
    ]
    assert [p["metadata"]["name"] for p in earlier_tries(pods, 3)] == ["a", "b"]
    assert earlier_tries(pods, 1) == []


@from_3_3
def test_a_task_starts_in_the_triggerer_only_when_the_dag_asks() -> None:
    op = make(image="busybox")
    assert op.start_from_trigger is False  # the default: the worker creates, then defers
    assert op.start_trigger_args is None  # nothing extra in the serialized DAG
    assert make(image="busybox", start_from_trigger=True).start_from_trigger is True


@pytest.mark.parametrize(
    ("wanted", "deferrable", "airflow_can", "expected"),
    [
        (None, True, True, False),  # the default: the worker path
        (False, True, True, False),
        (True, True, True, True),
        (True, False, True, False),  # not deferrable: the worker runs the trigger inline
        (None, True, False, False),
        (False, False, False, False),
    ],
)
def test_where_a_task_starts(
    wanted: bool | None, deferrable: bool, airflow_can: bool, expected: bool
) -> None:
    asked: list[bool] = []

    def can() -> bool:
        asked.append(True)
        return airflow_can

    assert starts_in_triggerer(wanted, deferrable=deferrable, airflow_can=can) is expected
    assert bool(asked) == bool(wanted and deferrable)  # Airflow's version read only if needed


def test_asking_to_start_in_the_triggerer_where_airflow_cannot_is_refused() -> None:
    with pytest.raises(UsageError, match=r"Airflow 3\.3"):
        starts_in_triggerer(wanted=True, deferrable=True, airflow_can=lambda: False)


@from_3_3
def test_an_opted_in_deferrable_task_starts_in_the_triggerer_on_3_3() -> None:
    op = make(
        start_from_trigger=True,
        image="busybox:{{ params.tag }}",
        env_vars={"TOKEN": "plain-env-value"},
        secrets=[Secret("env", "PW", "db-secret", "password")],
        container_resources=k8s.V1ResourceRequirements(limits={"cpu": "1"}),
        tolerations=[k8s.V1Toleration(key="k", operator="Exists")],
        do_xcom_push=True,
    )
    assert op.start_from_trigger is True
    args = op.start_trigger_args
    assert args is not None
    assert args.trigger_cls == "asyncpod.airflow.triggers.AsyncpodPodStartTrigger"
    assert args.next_method == "execute_complete"
    kwargs = args.trigger_kwargs or {}
    assert kwargs["image"] == "busybox:{{ params.tag }}"  # rendered by the triggerer
    assert kwargs["container_resources"] == {"limits": {"cpu": "1"}}
    assert kwargs["pod_params"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert kwargs["pod_params"]["secrets"][0]["secret"] == "db-secret"  # a name, not a value
    json.dumps(kwargs)  # plain JSON: Airflow stores it in the serialized DAG
    assert AsyncpodPodStartTrigger(**kwargs).serialize() == (args.trigger_cls, kwargs)


@from_3_3
def test_the_start_trigger_builds_the_same_pod_as_the_worker(tmp_path: Path) -> None:
    from asyncpod.airflow.podbuild import build_manifest

    op = make(
        start_from_trigger=True,
        image="busybox", cmds=["sh"], labels={"a": "b"}, node_selector={"n": "1"},
        volumes=[k8s.V1Volume(name="v", empty_dir=k8s.V1EmptyDirVolumeSource())],
        init_containers=[k8s.V1Container(name="init", image="busybox")], do_xcom_push=True,
    )  # fmt: skip
    trigger = AsyncpodPodStartTrigger(**(op.start_trigger_args.trigger_kwargs or {}))  # type: ignore[union-attr]
    params = {**trigger.pod_params, **{f: getattr(trigger, f) for f in (
        "image", "name", "hostname", "cmds", "annotations", "arguments", "env_vars", "labels",
        "pod_template_file", "pod_template_dict", "namespace", "container_resources", "volumes",
        "volume_mounts", "env_from", "configmaps", "node_selector")}}  # fmt: skip
    params.update(
        base_container_name=trigger.base_container_name, do_xcom_push=trigger.do_xcom_push
    )
    assert build_manifest(params, labels={}) == op.build_manifest()


def test_start_from_trigger_can_be_turned_off_and_needs_deferrable() -> None:
    assert make(image="x", start_from_trigger=False).start_from_trigger is False
    assert make(image="x", deferrable=False).start_from_trigger is False
    assert KubernetesPodOperator.start_from_trigger is False  # mapped tasks: on a worker


def test_the_integration_needs_neither_the_cncf_provider_nor_the_kubernetes_client() -> None:
    import subprocess
    import sys

    # Make both unimportable (a None entry in sys.modules raises ImportError), then use
    # the integration: parse a DAG, build a pod, serialize a trigger.
    code = """
import sys
for name in ("kubernetes", "airflow.providers.cncf.kubernetes.operators",
             "airflow.providers.cncf.kubernetes.hooks", "airflow.providers.cncf.kubernetes.utils"):
    sys.modules[name] = None
from asyncpod.airflow import KubernetesPodOperator
op = KubernetesPodOperator(task_id="t", image="busybox", secrets=[])
op.build_manifest()
op.build_trigger(namespace="n", pod_name="p", pod_uid="u").serialize()
print("OK")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.stdout.strip().splitlines()[-1:] == ["OK"], out.stderr[-2000:]


class _PushedXComs:
    """The task instance's ``xcom_push``, all that ``execute_complete`` needs of it."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize("deleted", [True, False])
def test_the_worker_logs_the_deletion_the_trigger_left_to_it(
    deleted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # keep_pod: the worker deletes nothing itself (that is test_worker_path.py's, against
    # a real API server); a trigger that deleted the pod says so and the worker logs it.
    op = KubernetesPodOperator(task_id="t", image="busybox:1.36", on_finish_action="keep_pod")
    said: list[str] = []
    monkeypatch.setattr(op.log, "info", lambda msg, *args: said.append(msg % args))
    event = {"status": "success", "pod_namespace": "ns", "pod_name": "p", "pod_deleted": deleted}
    ti = _PushedXComs()

    assert op.execute_complete({"ti": ti}, event) is None

    assert ti.pushed == {"pod_name": "p", "pod_namespace": "ns"}
    assert ("deleted pod ns/p" in said) is deleted
    assert "pod ns/p succeeded" in said


_ENDED = {"pod_namespace": "ns", "pod_name": "p", "pod_uid": "u", "pod_deleted": False}


@pytest.mark.parametrize(
    ("event", "action", "deletes"),
    [
        ({**_ENDED, "outcome": "succeeded"}, "delete_pod", True),
        ({**_ENDED, "outcome": "failed"}, "delete_pod", True),
        ({**_ENDED, "outcome": "error"}, "delete_pod", True),  # the pod may still run
        ({**_ENDED, "outcome": "failed"}, "delete_succeeded_pod", False),
        ({**_ENDED, "outcome": "succeeded"}, "delete_succeeded_pod", True),
        ({**_ENDED, "outcome": "timed_out"}, "delete_active_pod", True),
        ({**_ENDED, "outcome": "succeeded"}, "delete_active_pod", False),
        ({**_ENDED, "outcome": "succeeded"}, "keep_pod", False),
        ({**_ENDED, "outcome": "deleted"}, "delete_pod", False),  # gone already
        ({**_ENDED, "outcome": "succeeded", "pod_deleted": True}, "delete_pod", False),
        ({**_ENDED, "outcome": "error", "pod_name": ""}, "delete_pod", False),  # never made
    ],
)
def test_the_resumed_worker_deletes_what_on_finish_action_says_and_the_trigger_left(
    event: dict[str, Any], action: str, deletes: bool
) -> None:
    assert resumed_worker_deletes(event, action) is deletes
