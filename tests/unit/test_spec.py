"""Unit tests of asyncpod.spec: normalisation, validation, rendering, identity."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import pickle
import re
from decimal import Decimal
from typing import Any

import pytest

from asyncpod.errors import SpecError, UsageError
from asyncpod.spec import (
    DEFAULT_CONTAINER_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RUN_ID_LABEL,
    TASK_HASH_LABEL,
    TASK_KEY_ANNOTATION,
    ContainerSpec,
    EnvFrom,
    EnvVar,
    PodSpec,
    Resources,
    Toleration,
    VolumeMount,
    deterministic_pod_name,
    task_key_hash,
)
from asyncpod.spec._container import CONTAINER_FIELDS
from asyncpod.spec._pod import POD_KEYS
from asyncpod.spec._quantity import parse_quantity

LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def full_spec() -> PodSpec:
    """A spec that sets every field, valid as a whole."""
    return PodSpec(
        "registry.example.com/team/trainer:v2",
        ["python", "-m", "train"],
        args=["--epochs", "3"],
        name="train-1",
        task_key="train/shard 1",
        container_name="trainer",
        env={"MODE": "fast", "PORT": "8080"},
        env_from=[EnvFrom(config_map="settings", prefix="APP_")],
        resources={"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        volume_mounts=[
            VolumeMount("data", "/data"),
            VolumeMount("cfg", "/etc/app", read_only=True),
        ],
        security_context={"runAsNonRoot": True, "runAsUser": 1000},
        working_dir="/work",
        image_pull_policy="IfNotPresent",
        termination_message_policy="FallbackToLogsOnError",
        labels={"team": "ml", "app.kubernetes.io/name": "trainer"},
        annotations={"example.com/owner": "ana@example.com"},
        node_selector={"disktype": "ssd"},
        tolerations=[Toleration("gpu", "Exists", effect="NoSchedule")],
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "app"}}],
        service_account="trainer",
        image_pull_secrets=["regcred"],
        init_containers=[ContainerSpec("fetch", "curlimages/curl:8.7.1", args=["-O", "x"])],
        sidecars=[
            ContainerSpec(
                "proxy",
                "envoyproxy/envoy:v1.30.1",
                env=[EnvVar.from_secret("TOKEN", "proxy-creds", "token")],
                resources=Resources(limits={"cpu": "100m"}),
            )
        ],
        native_sidecars=True,
        pod_security_context={"fsGroup": 2000},
        active_deadline_seconds=3600,
        termination_grace_period_seconds=10,
        priority_class_name="batch-low",
        template={"metadata": {"labels": {"from": "template"}}, "spec": {"hostNetwork": False}},
    )


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------


def test_minimal_manifest() -> None:
    manifest = PodSpec("busybox", ["echo", "hi"]).to_manifest(namespace="jobs")
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": "jobs",
            "generateName": "asyncpod-",
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
            "annotations": {DEFAULT_CONTAINER_ANNOTATION: "main"},
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["echo", "hi"]}],
        },
    }


def test_full_manifest() -> None:
    manifest = full_spec().to_manifest(namespace="ml", labels={RUN_ID_LABEL: "run-1"})
    metadata, spec = manifest["metadata"], manifest["spec"]
    assert metadata["name"] == "train-1"
    assert "generateName" not in metadata
    assert metadata["labels"] == {
        "from": "template",
        "team": "ml",
        "app.kubernetes.io/name": "trainer",
        RUN_ID_LABEL: "run-1",
        TASK_HASH_LABEL: task_key_hash("train/shard 1"),
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
    }
    assert metadata["annotations"] == {
        "example.com/owner": "ana@example.com",
        TASK_KEY_ANNOTATION: "train/shard 1",
        DEFAULT_CONTAINER_ANNOTATION: "trainer",
    }
    (main,) = spec["containers"]
    assert main == {
        "name": "trainer",
        "image": "registry.example.com/team/trainer:v2",
        "command": ["python", "-m", "train"],
        "args": ["--epochs", "3"],
        "workingDir": "/work",
        "env": [{"name": "MODE", "value": "fast"}, {"name": "PORT", "value": "8080"}],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "APP_"}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
        ],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    assert spec["initContainers"] == [
        {"name": "fetch", "image": "curlimages/curl:8.7.1", "args": ["-O", "x"]},
        {
            "name": "proxy",
            "image": "envoyproxy/envoy:v1.30.1",
            "env": [
                {
                    "name": "TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": "proxy-creds", "key": "token"}},
                }
            ],
            "resources": {"limits": {"cpu": "100m"}},
            "restartPolicy": "Always",
        },
    ]
    assert spec["restartPolicy"] == "Never"
    assert spec["volumes"] == [
        {"name": "data", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "app"}},
    ]
    assert spec["nodeSelector"] == {"disktype": "ssd"}
    assert spec["tolerations"] == [{"operator": "Exists", "key": "gpu", "effect": "NoSchedule"}]
    assert spec["affinity"] == {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}
    }
    assert spec["serviceAccountName"] == "trainer"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["securityContext"] == {"fsGroup": 2000}
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["terminationGracePeriodSeconds"] == 10
    assert spec["priorityClassName"] == "batch-low"
    assert spec["hostNetwork"] is False  # from the template
    assert json.loads(json.dumps(manifest)) == manifest


def test_classic_sidecars_are_ordinary_containers() -> None:
    spec = PodSpec(
        "busybox", sidecars=[ContainerSpec("log", "fluent/fluent-bit:3.0")], native_sidecars=False
    )
    body = spec.to_manifest(namespace="ns")["spec"]
    assert [c["name"] for c in body["containers"]] == ["main", "log"]
    assert "restartPolicy" not in body["containers"][1]
    assert "initContainers" not in body


@pytest.mark.parametrize(
    ("spec_name", "name", "generate_name", "expected"),
    [
        (None, None, None, {"generateName": "asyncpod-"}),
        (None, None, "train-", {"generateName": "train-"}),
        ("from-spec", None, "train-", {"name": "from-spec"}),
        ("from-spec", "from-call", None, {"name": "from-call"}),
    ],
)
def test_manifest_naming(
    spec_name: str | None, name: str | None, generate_name: str | None, expected: dict[str, str]
) -> None:
    metadata = PodSpec("busybox", name=spec_name).to_manifest(
        namespace="ns", name=name, generate_name=generate_name
    )["metadata"]
    assert {k: v for k, v in metadata.items() if k in ("name", "generateName")} == expected


def test_manifest_labels_precedence_and_ownership_always_wins() -> None:
    spec = PodSpec("busybox", labels={"a": "spec", "b": "spec"})
    labels = spec.to_manifest(
        namespace="ns", labels={"b": "call", MANAGED_BY_LABEL: "someone-else"}
    )["metadata"]["labels"]
    assert labels == {"a": "spec", "b": "call", MANAGED_BY_LABEL: MANAGED_BY_VALUE}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"namespace": "ns", "name": "Bad Name"}, "name"),
        ({"namespace": "ns", "generate_name": "Bad_"}, "generate_name"),
        ({"namespace": "ns", "labels": {"run id": "x"}}, 'labels["run id"]'),
        ({"namespace": "ns", "labels": {RUN_ID_LABEL: "has space"}}, f'labels["{RUN_ID_LABEL}"]'),
    ],
)
def test_manifest_rejects_bad_call_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        PodSpec("busybox").to_manifest(**kwargs)
    assert info.value.field == field


def test_user_default_container_annotation_is_kept() -> None:
    spec = PodSpec("busybox", annotations={DEFAULT_CONTAINER_ANNOTATION: "other"})
    annotations = spec.to_manifest(namespace="ns")["metadata"]["annotations"]
    assert annotations[DEFAULT_CONTAINER_ANNOTATION] == "other"


def test_env_rendering() -> None:
    spec = PodSpec(
        "busybox",
        env=[
            EnvVar("PLAIN", "1"),
            EnvVar("EMPTY"),
            EnvVar.from_secret("PW", "db", "password", optional=True),
            EnvVar.from_config_map("CONF", "app", "conf.yaml"),
            EnvVar.from_field("POD_IP", "status.podIP"),
        ],
    )
    env = spec.to_manifest(namespace="ns")["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "PLAIN", "value": "1"},
        {"name": "EMPTY"},
        {
            "name": "PW",
            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": True}},
        },
        {"name": "CONF", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "conf.yaml"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    assert spec.validate() is spec


def test_env_from_rendering() -> None:
    spec = PodSpec(
        "busybox", env_from=[EnvFrom(secret="db", optional=True), EnvFrom(config_map="app")]
    )
    assert spec.to_manifest(namespace="ns")["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "db", "optional": True}},
        {"configMapRef": {"name": "app"}},
    ]


def test_template_merge() -> None:
    template: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "copied-from-kubectl",
            "namespace": "elsewhere",
            "uid": "1234",
            "resourceVersion": "99",
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": {"team": "template", "keep": "yes"},
            "annotations": {"example.com/a": "template"},
        },
        "spec": {
            "restartPolicy": "OnFailure",
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}],
            "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
            "containers": [
                {
                    "name": "helper",
                    "image": "busybox",
                    "command": ["sleep", "infinity"],
                },
                {
                    "name": "main",
                    "image": "python:3.12",
                    "command": ["python", "default.py"],
                    "env": [{"name": "A", "value": "template"}, {"name": "B", "value": "template"}],
                    "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}},
                    "ports": [{"containerPort": 8080}],
                    "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm", "readOnly": True}],
                },
            ],
        },
    }
    spec = PodSpec(
        command=["python", "job.py"],
        env={"B": "override", "C": "new"},
        resources={"limits": {"cpu": "4", "memory": "1Gi"}},
        labels={"team": "spec"},
        volumes=[{"name": "data", "emptyDir": {}}],
        volume_mounts=[VolumeMount("shm", "/dev/shm"), VolumeMount("data", "/data")],
        template=template,
    )
    assert spec.validate() is spec  # the image and the shm volume come from the template
    manifest = spec.to_manifest(namespace="ns")
    metadata = manifest["metadata"]
    assert {"name", "uid", "resourceVersion", "creationTimestamp"}.isdisjoint(metadata)
    assert metadata["namespace"] == "ns"
    assert metadata["generateName"] == "asyncpod-"
    assert metadata["labels"] == {"team": "spec", "keep": "yes", MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    assert metadata["annotations"]["example.com/a"] == "template"
    body = manifest["spec"]
    assert body["restartPolicy"] == "Never"
    assert body["hostAliases"] == [{"ip": "10.0.0.1", "hostnames": ["db"]}]
    assert [v["name"] for v in body["volumes"]] == ["shm", "data"]
    helper, main = body["containers"]
    assert helper == template["spec"]["containers"][0]
    assert main["image"] == "python:3.12"
    assert main["command"] == ["python", "job.py"]
    assert main["env"] == [
        {"name": "A", "value": "template"},
        {"name": "B", "value": "override"},
        {"name": "C", "value": "new"},
    ]
    assert main["resources"] == {"requests": {"cpu": "1"}, "limits": {"cpu": "4", "memory": "1Gi"}}
    assert main["ports"] == [{"containerPort": 8080}]
    assert main["volumeMounts"] == [  # merged by mountPath
        {"name": "shm", "mountPath": "/dev/shm", "readOnly": True},
        {"name": "data", "mountPath": "/data"},
    ]


def test_rendering_neither_mutates_nor_aliases() -> None:
    template: dict[str, Any] = {
        "metadata": {"labels": {"x": "1"}},
        "spec": {"containers": [{"name": "main", "image": "a"}]},
    }
    before = copy.deepcopy(template)
    spec = PodSpec(template=template, security_context={"capabilities": {"drop": ["ALL"]}})
    template["spec"]["containers"][0]["image"] = "changed-by-caller"
    first = spec.to_manifest(namespace="ns")
    first["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"].append("MORE")
    first["metadata"]["labels"]["x"] = "mutated"
    second = spec.to_manifest(namespace="ns")
    assert second["spec"]["containers"][0]["image"] == "a"
    assert second["spec"]["containers"][0]["securityContext"] == {"capabilities": {"drop": ["ALL"]}}
    assert second["metadata"]["labels"]["x"] == "1"
    assert spec.template == before


def test_spec_is_frozen_and_copies_inputs() -> None:
    labels = {"a": "1"}
    env = {"A": "1"}
    spec = PodSpec("busybox", labels=labels, env=env)
    labels["a"] = "2"
    env["B"] = "2"
    assert spec.labels == {"a": "1"}
    assert spec.env == (EnvVar("A", "1"),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.image = "other"  # type: ignore[misc]


def test_replace_and_pickle() -> None:
    spec = full_spec()
    # The main container's keywords are not dataclass fields any more; replace() still
    # takes them at run time (mypy only knows the fields).
    other = dataclasses.replace(spec, image="busybox", labels={"x": "y"})  # type: ignore[call-arg]
    assert other.image == "busybox"
    assert other.sidecars == spec.sidecars
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_main_container_view() -> None:
    main = full_spec().main_container
    assert main.name == "trainer"
    assert main.env == (EnvVar("MODE", "fast"), EnvVar("PORT", "8080"))
    assert main.to_manifest() == full_spec().to_manifest(namespace="ns")["spec"]["containers"][0]


# --------------------------------------------------------------------------------------
# construction: types and shapes
# --------------------------------------------------------------------------------------


def test_env_and_args_accept_yaml_integers() -> None:
    spec = PodSpec("busybox", args=["--n", 5], env={"PORT": 8080})  # type: ignore[list-item,arg-type]
    assert spec.args == ("--n", "5")
    assert spec.env == (EnvVar("PORT", "8080"),)


def test_resources_accept_numbers() -> None:
    spec = PodSpec(
        "busybox",
        resources={"requests": {"cpu": 0.5, "nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}},
    )
    assert spec.resources == Resources(
        requests={"cpu": "0.5", "nvidia.com/gpu": "1"}, limits={"nvidia.com/gpu": "1"}
    )
    assert spec.validate() is spec


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        ({"image": 5}, "image", "must be a string, got int"),
        ({"command": "echo hi"}, "command", "not a single string; for a shell line use"),
        ({"args": {"a": 1}}, "args", "must be a list of strings"),
        ({"args": ["--ratio", 0.5]}, "args[1]", "quote it"),
        ({"labels": {"a": 1}}, 'labels["a"]', "quote it"),
        ({"labels": ["a"]}, "labels", "must be a mapping"),
        ({"node_selector": {"gpu": True}}, 'node_selector["gpu"]', "True"),
        ({"env": {"DEBUG": True}}, 'env["DEBUG"]', "quote it"),
        ({"env": {"RATIO": 1.10}}, 'env["RATIO"]', "1.1"),
        ({"env": {"PW": {"secret": "db", "kee": "pw"}}}, 'env["PW"].kee', "did you mean 'key'"),
        ({"env": [{"value": "x"}]}, "env[0].name", "is required"),
        ({"env": ["A=1"]}, "env[0]", "must be an EnvVar or a mapping"),
        ({"env": "A=1"}, "env", "must be a list of env vars"),
        ({"env_from": [{"secrets": "db"}]}, "env_from[0].secrets", "did you mean 'secret'"),
        ({"resources": {"request": {"cpu": "1"}}}, "resources.request", "did you mean 'requests'"),
        ({"resources": {"limits": {"cpu": True}}}, "resources.limits.cpu", "quantity"),
        ({"volume_mounts": [{"name": "data"}]}, "volume_mounts[0].mount_path", "is required"),
        (
            {"volume_mounts": [{"name": "d", "mountPath": "/d"}]},
            "volume_mounts[0].mountPath",
            "mount_path",
        ),
        (
            {"tolerations": [{"key": "a", "tolerationSeconds": 5}]},
            "tolerations[0].tolerationSeconds",
            "toleration_seconds",
        ),
        (
            {"tolerations": [{"key": "a", "toleration_seconds": "5"}]},
            "tolerations[0].toleration_seconds",
            "integer",
        ),
        ({"active_deadline_seconds": True}, "active_deadline_seconds", "must be an integer"),
        ({"active_deadline_seconds": 1.5}, "active_deadline_seconds", "must be an integer"),
        ({"native_sidecars": "yes"}, "native_sidecars", "true or false"),
        ({"volumes": [["name", "x"]]}, "volumes[0]", "must be a mapping"),
        ({"sidecars": [{"name": "x", "img": "y"}]}, "sidecars[0].img", "did you mean 'image'"),
        ({"sidecars": [{"image": "y"}]}, "sidecars[0].name", "is required"),
        (
            {"sidecars": [{"name": "x", "image": "y", "env": {"A": 1.5}}]},
            'sidecars[0].env["A"]',
            "quote",
        ),
        ({"init_containers": ["busybox"]}, "init_containers[0]", "must be a mapping"),
        ({"template": "pod.yaml"}, "template", "must be a mapping"),
    ],
)
def test_construction_rejects_wrong_shapes(
    kwargs: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(SpecError) as info:
        PodSpec(**kwargs)
    assert info.value.field == field
    assert problem in info.value.problem


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


def test_full_spec_is_valid() -> None:
    spec = full_spec()
    assert spec.problems() == []
    assert spec.validate() is spec


def mounts(*names: str) -> list[VolumeMount]:
    return [VolumeMount(n, f"/mnt/{n}") for n in names]


VOLUMES = [{"name": "data", "emptyDir": {}}]


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        # image
        ({"image": None}, "image", "is required"),
        ({"image": ""}, "image", "must not be empty"),
        ({"image": "Ubuntu:22.04"}, "image", "not a valid image reference"),
        ({"image": "busy box"}, "image", "whitespace"),
        ({"image": "busybox:"}, "image", "not a valid image reference"),
        ({"image": "repo@sha256:abc"}, "image", "not a valid image reference"),
        # names
        ({"name": "My_Pod"}, "name", "DNS-1123 subdomain"),
        ({"name": "a" * 254}, "name", "at most 253"),
        ({"container_name": "Main"}, "container_name", "DNS-1123 label"),
        ({"container_name": "m" * 64}, "container_name", "at most 63"),
        ({"task_key": ""}, "task_key", "must not be empty"),
        ({"service_account": "Robot"}, "service_account", "DNS-1123 subdomain"),
        ({"priority_class_name": "high_prio"}, "priority_class_name", "DNS-1123"),
        ({"image_pull_secrets": ["ok", "Not OK"]}, "image_pull_secrets[1]", "DNS-1123"),
        # labels, annotations, node selector
        ({"labels": {"bad key": "x"}}, 'labels["bad key"]', "not a valid qualified name"),
        ({"labels": {"-lead": "x"}}, 'labels["-lead"]', "not a valid qualified name"),
        ({"labels": {"example.com/": "x"}}, 'labels["example.com/"]', "empty name part"),
        ({"labels": {"/name": "x"}}, 'labels["/name"]', "empty prefix"),
        ({"labels": {"Example.com/name": "x"}}, 'labels["Example.com/name"]', "key prefix"),
        ({"labels": {"k" * 64: "x"}}, f'labels["{"k" * 64}"]', "at most 63"),
        ({"labels": {"a": "v" * 64}}, 'labels["a"]', "64 characters"),
        ({"labels": {"a": "white space"}}, 'labels["a"]', "not a valid label value"),
        ({"labels": {"a": "trailing-"}}, 'labels["a"]', "not a valid label value"),
        ({"labels": {MANAGED_BY_LABEL: "helm"}}, f'labels["{MANAGED_BY_LABEL}"]', "reserved"),
        ({"labels": {RUN_ID_LABEL: "r"}}, f'labels["{RUN_ID_LABEL}"]', "reserved"),
        (
            {"annotations": {"bad key": "any value at all"}},
            'annotations["bad key"]',
            "qualified name",
        ),
        (
            {"annotations": {TASK_KEY_ANNOTATION: "x"}},
            f'annotations["{TASK_KEY_ANNOTATION}"]',
            "task_key",
        ),
        ({"annotations": {"big": "x" * 300_000}}, "annotations", "256 KiB"),
        ({"node_selector": {"disk": "fast ssd"}}, 'node_selector["disk"]', "label value"),
        # resources (main container fields sit at the top level)
        (
            {"resources": {"limits": {"memory": "1GB"}}},
            "resources.limits.memory",
            "not a Kubernetes quantity",
        ),
        ({"resources": {"requests": {"cpu": "-1"}}}, "resources.requests.cpu", "negative"),
        ({"resources": {"requests": {"cpu": "1e"}}}, "resources.requests.cpu", "quantity"),
        (
            {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}},
            "resources.requests.cpu",
            "more than the limit '1500m'",
        ),
        (
            {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1000Mi"}}},
            "resources.requests.memory",
            "more than the limit",
        ),
        (
            {"resources": {"limits": {"nvidia.com/gpu": "0.5"}}},
            'resources.limits["nvidia.com/gpu"]',
            "whole numbers",
        ),
        (
            {"resources": {"requests": {"nvidia.com/gpu": "1"}}},
            'resources.limits["nvidia.com/gpu"]',
            "cannot be overcommitted",
        ),
        (
            {"resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}},
            'resources.requests["nvidia.com/gpu"]',
            "equal to limits",
        ),
        (
            {"resources": {"requests": {"bad name": "1"}}},
            'resources.requests["bad name"]',
            "invalid resource name",
        ),
        # env
        ({"env": [EnvVar("A=B", "1")]}, "env[0].name", "without '='"),
        ({"env": [EnvVar("", "1")]}, "env[0].name", "non-empty"),
        ({"env": [EnvVar("A", "1"), EnvVar("A", "2")]}, "env[1].name", "already set by env[0]"),
        ({"env": [EnvVar("A", secret="db")]}, "env[0].key", "is required with secret"),
        ({"env": [EnvVar("A", secret="db", config_map="c", key="k")]}, "env[0]", "choose one"),
        ({"env": [EnvVar("A", "1", secret="db", key="k")]}, "env[0].value", "cannot be combined"),
        ({"env": [EnvVar("A", secret="DB", key="k")]}, "env[0].secret", "DNS-1123"),
        ({"env": [EnvVar("A", config_map="c", key="bad key")]}, "env[0].key", "not a valid key"),
        ({"env": [EnvVar("A", "1", key="k")]}, "env[0].key", "only meaningful"),
        ({"env": [EnvVar("A", "1", optional=True)]}, "env[0].optional", "only applies"),
        ({"env": [EnvVar("A", field_path="")]}, "env[0].field_path", "must not be empty"),
        ({"env_from": [EnvFrom()]}, "env_from[0]", "exactly one"),
        ({"env_from": [EnvFrom(secret="a", config_map="b")]}, "env_from[0]", "exactly one"),
        ({"env_from": [EnvFrom(secret="a", prefix="X=")]}, "env_from[0].prefix", "'='"),
        # volumes and mounts
        (
            {"volume_mounts": mounts("nope")},
            "volume_mounts[0].name",
            "no volume named 'nope' (declared volumes: none)",
        ),
        (
            {"volumes": VOLUMES, "volume_mounts": mounts("data", "other")},
            "volume_mounts[1].name",
            "declared volumes: data",
        ),
        (
            {"volumes": VOLUMES, "volume_mounts": [VolumeMount("data", "data")]},
            "volume_mounts[0].mount_path",
            "absolute",
        ),
        (
            {
                "volumes": VOLUMES,
                "volume_mounts": [VolumeMount("data", "/a"), VolumeMount("data", "/a")],
            },
            "volume_mounts[1].mount_path",
            "already mounted by volume_mounts[0]",
        ),
        (
            {"volumes": VOLUMES, "volume_mounts": [VolumeMount("data", "/a", sub_path="../etc")]},
            "volume_mounts[0].sub_path",
            "relative",
        ),
        (
            {"volumes": [*VOLUMES, {"name": "data", "emptyDir": {}}]},
            "volumes[1].name",
            "already declared by volumes[0]",
        ),
        ({"volumes": [{"emptyDir": {}}]}, "volumes[0].name", "is required"),
        ({"volumes": [{"name": "Data", "emptyDir": {}}]}, "volumes[0].name", "DNS-1123 label"),
        ({"volumes": [{"name": "data"}]}, "volumes[0]", "needs a source"),
        ({"volumes": [{"name": "data", "empty_dir": {}}]}, "volumes[0].empty_dir", "'emptyDir'"),
        # other container fields
        ({"image_pull_policy": "Sometimes"}, "image_pull_policy", "Always, IfNotPresent, Never"),
        (
            {"termination_message_policy": "Logs"},
            "termination_message_policy",
            "FallbackToLogsOnError",
        ),
        ({"working_dir": "work"}, "working_dir", "absolute"),
        (
            {"security_context": {"run_as_user": 1000}},
            "security_context.run_as_user",
            "'runAsUser'",
        ),
        ({"pod_security_context": {"fs_group": 1}}, "pod_security_context.fs_group", "'fsGroup'"),
        ({"affinity": {"node_affinity": {}}}, "affinity.node_affinity", "nodeAffinity"),
        # scheduling
        ({"tolerations": [Toleration("a", "In")]}, "tolerations[0].operator", "Exists, Equal"),
        ({"tolerations": [Toleration("a", effect="NoRun")]}, "tolerations[0].effect", "NoSchedule"),
        (
            {"tolerations": [Toleration(None, "Equal", value="x")]},
            "tolerations[0].key",
            "unless operator is Exists",
        ),
        (
            {"tolerations": [Toleration("a", "Exists", value="x")]},
            "tolerations[0].value",
            "must be empty",
        ),
        (
            {"tolerations": [Toleration("a", value="bad value")]},
            "tolerations[0].value",
            "label value",
        ),
        ({"tolerations": [Toleration("bad key")]}, "tolerations[0].key", "qualified name"),
        (
            {"tolerations": [Toleration("a", toleration_seconds=5, effect="NoSchedule")]},
            "tolerations[0].toleration_seconds",
            "NoExecute",
        ),
        # deadlines
        ({"active_deadline_seconds": 0}, "active_deadline_seconds", "positive"),
        ({"active_deadline_seconds": -5}, "active_deadline_seconds", "got -5"),
        (
            {"termination_grace_period_seconds": -1},
            "termination_grace_period_seconds",
            "zero or positive",
        ),
        # containers
        (
            {"sidecars": [ContainerSpec("main", "busybox")]},
            "sidecars[0].name",
            "already used by container_name",
        ),
        (
            {"init_containers": [ContainerSpec("x", "a")], "sidecars": [ContainerSpec("x", "b")]},
            "sidecars[0].name",
            "already used by init_containers[0].name",
        ),
        ({"sidecars": [ContainerSpec("Proxy", "envoy")]}, "sidecars[0].name", "DNS-1123 label"),
        ({"sidecars": [ContainerSpec("proxy", None)]}, "sidecars[0].image", "is required"),
        (
            {"init_containers": [ContainerSpec("init", "UPPER")]},
            "init_containers[0].image",
            "image reference",
        ),
        (
            {"sidecars": [ContainerSpec("p", "envoy", resources={"limits": {"memory": "lots"}})]},
            "sidecars[0].resources.limits.memory",
            "quantity",
        ),
        (
            {"sidecars": [ContainerSpec("p", "envoy", env={"A=": "1"})]},
            "sidecars[0].env[0].name",
            "'='",
        ),
        (
            {"sidecars": [ContainerSpec("p", "envoy", volume_mounts=mounts("x"))]},
            "sidecars[0].volume_mounts[0].name",
            "no volume named 'x'",
        ),
        # template
        ({"template": {"kind": "Deployment", "spec": {}}}, "template.kind", "must be Pod"),
        ({"template": {"apiVersion": "apps/v1", "spec": {}}}, "template.apiVersion", "must be v1"),
        ({"template": {"containers": []}}, "template", "nest it under 'spec'"),
        ({"template": {"spec": []}}, "template.spec", "must be a mapping"),
        ({"template": {"spec": {"containers": {}}}}, "template.spec.containers", "must be a list"),
        (
            {"template": {"spec": {"containers": [{"image": "x"}]}}},
            "template.spec.containers[0].name",
            "is required",
        ),
        (
            {"template": {"spec": {"containers": [{"name": "helper"}]}}},
            "template.spec.containers[0].image",
            "is required",
        ),
        (
            {"template": {"spec": {"initContainers": [{"name": "main", "image": "x"}]}}},
            "container_name",
            "already used by template.spec.initContainers[0]",
        ),
    ],
)
def test_validation_names_the_field(kwargs: dict[str, Any], field: str, problem: str) -> None:
    kwargs.setdefault("image", "busybox")
    spec = PodSpec(**kwargs)
    with pytest.raises(SpecError) as info:
        spec.validate()
    error = info.value
    assert (error.field, problem in error.problem) == (field, True), str(error)
    assert str(error) == f"{field}: {error.problem}"
    assert isinstance(error, UsageError)
    assert isinstance(error, ValueError)
    assert error in spec.problems() or any(str(p) == str(error) for p in spec.problems())


def test_native_sidecar_colliding_with_template_container() -> None:
    spec = PodSpec(
        "busybox",
        sidecars=[ContainerSpec("proxy", "envoy")],
        template={"spec": {"containers": [{"name": "proxy", "image": "other"}]}},
    )
    (problem,) = spec.problems()
    assert problem.field == "template.spec.containers[0].name"
    assert "already used by sidecars[0]" in problem.problem


def test_template_can_supply_the_main_image() -> None:
    spec = PodSpec(template={"spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    assert spec.problems() == []
    renamed = dataclasses.replace(spec, container_name="worker")  # type: ignore[call-arg]
    (problem,) = renamed.problems()
    assert problem.field == "image"
    assert "give the container 'worker' an image in template.spec.containers" in problem.problem


def test_problems_lists_everything() -> None:
    spec = PodSpec(
        None,
        labels={"bad key": "x"},
        resources={"limits": {"memory": "1GB"}},
        active_deadline_seconds=-1,
    )
    fields = [p.field for p in spec.problems()]
    assert fields == [
        "resources.limits.memory",
        "image",
        'labels["bad key"]',
        "active_deadline_seconds",
    ]


def test_container_spec_on_its_own() -> None:
    container = ContainerSpec("fetch", "curlimages/curl:8.7.1", command=["curl"], env={"A": "1"})
    assert container.validate() is container
    assert container.to_manifest() == {
        "name": "fetch",
        "image": "curlimages/curl:8.7.1",
        "command": ["curl"],
        "env": [{"name": "A", "value": "1"}],
    }
    with pytest.raises(SpecError, match=r"resources\.limits\.cpu"):
        ContainerSpec("x", "busybox", resources={"limits": {"cpu": "fast"}}).validate()


# --------------------------------------------------------------------------------------
# quantities and image references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("100m", Decimal("0.1")),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("+2", Decimal(2)),
        ("-1", Decimal(-1)),
        ("1k", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        ("1.5Gi", Decimal(1610612736)),
        ("1Ei", Decimal(2**60)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1e-3", Decimal("0.001")),
        ("1E", Decimal(10**18)),  # exa, not an exponent
        ("250u", Decimal("0.00025")),
        ("2n", Decimal("0.000000002")),
    ],
)
def testparse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "1GB", "1e", "Gi", "1 Gi", "1.2.3", "one", "1i", "1KI", "0x10", "\uff11"]
)
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:1.36",
        "library/busybox:latest",
        "docker.io/library/busybox",
        "localhost:5000/team/app:v1.2.3-rc_1",
        "registry.example.com:443/a/b/c/d",
        "ghcr.io/o/r@sha256:" + "a" * 64,
        "ghcr.io/o/r:tag@sha256:" + "0" * 64,
        "my_registry.local/app",  # a registry host may not be a DNS name, but the repo path can
        "[::1]:5000/app",
        "MyRegistry/app",  # an uppercase first component is a registry host
        "a__b/c--d/e.f",
    ],
)
def test_valid_image_references(image: str) -> None:
    assert PodSpec(image).problems() == []


@pytest.mark.parametrize(
    "image",
    [
        "Busybox",
        "busybox:",
        ":latest",
        "busybox::1",
        "a/B",
        "-a",
        "a-/b",
        "busybox:" + "x" * 129,
        "a@sha256:123",
    ],
)
def test_invalid_image_references(image: str) -> None:
    (problem,) = PodSpec(image).problems()
    assert problem.field == "image"


def test_pathological_image_is_rejected_quickly() -> None:
    (problem,) = PodSpec("a" * 5000).problems()
    assert problem.field == "image"
    assert len(PodSpec("a-" * 1000 + "!").problems()) == 1


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("a", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("example.com/" + "a" * 63, True),
        ("a." * 126 + "a/b", True),  # a 253-character prefix
        ("a." * 127 + "a/b", False),
        ("app.kubernetes.io/name", True),
        ("under_score.dots-dash", True),
        ("a/b/c", False),
    ],
)
def test_label_key_limits(key: str, ok: bool) -> None:
    problems = PodSpec("busybox", labels={key: "v"}).problems()
    assert (problems == []) is ok


# --------------------------------------------------------------------------------------
# dict form
# --------------------------------------------------------------------------------------


def test_from_dict_batch_entry() -> None:
    entry = {
        "image": "python:3.12-slim",
        "command": ["python", "-c", "print(1)"],
        "task_key": "row-17",
        "env": {"MODE": "fast", "PW": {"secret": "db", "key": "password"}},
        "env_from": [{"config_map": "settings"}],
        "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "256Mi"}},
        "labels": {"team": "ml"},
        "volumes": [{"name": "data", "emptyDir": {}}],
        "volume_mounts": [{"name": "data", "mount_path": "/data", "read_only": True}],
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "init_containers": [
            {"name": "fetch", "image": "curlimages/curl:8.7.1", "args": ["-O", "u"]}
        ],
        "sidecars": [{"name": "proxy", "image": "envoyproxy/envoy:v1.30.1"}],
    }
    spec = PodSpec.from_dict(entry).validate()
    assert spec.env == (EnvVar("MODE", "fast"), EnvVar.from_secret("PW", "db", "password"))
    assert spec.volume_mounts == (VolumeMount("data", "/data", read_only=True),)
    assert spec.tolerations == (Toleration("gpu", "Exists", effect="NoSchedule"),)
    assert spec.init_containers[0] == ContainerSpec(
        "fetch", "curlimages/curl:8.7.1", args=["-O", "u"]
    )
    assert spec.env_from == (EnvFrom(config_map="settings"),)


@pytest.mark.parametrize(
    ("entry", "field", "problem"),
    [
        ({"imagee": "x"}, "imagee", "did you mean 'image'"),
        ({"image": "x", "nodeSelector": {}}, "nodeSelector", "did you mean 'node_selector'"),
        ({"image": "x", "zzz": 1}, "zzz", "expected one of: active_deadline_seconds, affinity"),
        ({"image": "x", 3: 1}, "[3]", "unknown key"),
        (
            {"image": "x", "sidecars": [{"name": "a", "imagee": "b"}]},
            "sidecars[0].imagee",
            "'image'",
        ),
        (
            {"image": "x", "env": [{"name": "A", "valueFrom": {}}]},
            "env[0].valueFrom",
            "unknown key",
        ),
        ({"image": "x", "command": "python main.py"}, "command", "single string"),
    ],
)
def test_from_dict_errors_carry_field_and_line(
    entry: dict[Any, Any], field: str, problem: str
) -> None:
    with pytest.raises(SpecError) as info:
        PodSpec.from_dict(entry, line=12)
    assert info.value.field == field
    assert problem in info.value.problem
    assert info.value.line == 12
    assert str(info.value).startswith(f"line 12: {field}: ")
    with pytest.raises(SpecError) as no_line:
        PodSpec.from_dict(entry)
    assert no_line.value.line is None


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(SpecError, match="must be a mapping") as info:
        PodSpec.from_dict(["busybox"], line=2)  # type: ignore[arg-type]
    assert info.value.line == 2
    with pytest.raises(SpecError, match="line 4: name: is required"):
        ContainerSpec.from_dict({"image": "x"}, line=4)


@pytest.mark.parametrize(
    "spec",
    [
        PodSpec("busybox"),
        PodSpec(template={"spec": {"containers": [{"name": "main", "image": "busybox"}]}}),
        PodSpec("busybox", env=[EnvVar("A", "1"), EnvVar("A", "2")]),  # invalid, still round-trips
        PodSpec("busybox", env=[EnvVar("EMPTY")], native_sidecars=False),
        full_spec(),
    ],
)
def test_dict_round_trip(spec: PodSpec) -> None:
    data = spec.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert PodSpec.from_dict(data) == spec


def test_to_dict_is_compact() -> None:
    assert PodSpec("busybox").to_dict() == {"image": "busybox"}
    assert full_spec().to_dict()["env"] == {"MODE": "fast", "PORT": "8080"}
    assert full_spec().to_dict()["sidecars"][0]["env"] == [
        {"name": "TOKEN", "secret": "proxy-creds", "key": "token"}
    ]


def test_dict_vocabulary_matches_the_fields() -> None:
    pod_fields = {f.name for f in dataclasses.fields(PodSpec)} - {"main_container"}
    main_container_keys = {"image", "container_name", *CONTAINER_FIELDS}
    assert set(POD_KEYS) == pod_fields | main_container_keys
    assert {"name", "image", *CONTAINER_FIELDS} == {
        f.name for f in dataclasses.fields(ContainerSpec)
    }


# --------------------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------------------


def test_deterministic_pod_name_is_pinned() -> None:
    # Pinned: changing the algorithm would make pods created by an older asyncpod
    # unrecognisable after an upgrade, so a resumed batch would duplicate them.
    assert deterministic_pod_name("run-20240501", "shard/7") == "run-20240501-shard-7-qdwefdizx3itj"
    assert task_key_hash("shard/7") == "bjgejrctrgtdiazfd42z"


@pytest.mark.parametrize(
    ("run_id", "task_key"),
    [
        ("run-1", "a"),
        ("", ""),
        ("RUN_ID", "Task Key With Spaces"),
        ("r" * 100, "t" * 300),
        ("2024-05-01", "---"),
        ("ümlaut", "日本語のタスク"),
        ("run", "x" * 80 + "-" + "y" * 10),
        ("-", "-trailing-"),
    ],
)
def test_deterministic_pod_name_is_a_dns_label(run_id: str, task_key: str) -> None:
    name = deterministic_pod_name(run_id, task_key)
    assert len(name) <= 63
    assert LABEL_RE.fullmatch(name), name
    assert deterministic_pod_name(run_id, task_key) == name
    assert PodSpec("busybox", name=name).problems() == []


def test_deterministic_pod_name_distinguishes_inputs() -> None:
    names = {
        deterministic_pod_name("run", "a"),
        deterministic_pod_name("run", "A"),  # same slug, different key
        deterministic_pod_name("run", "a "),
        deterministic_pod_name("run2", "a"),
        deterministic_pod_name("a", "b-c"),
        deterministic_pod_name("a-b", "c"),
    }
    assert len(names) == 6


def test_deterministic_pod_name_is_readable() -> None:
    name = deterministic_pod_name("nightly-etl", "customers/2024-05-01")
    assert name.startswith("nightly-etl-customers-2024-05-01-")
    assert deterministic_pod_name("", "").startswith("asyncpod-")


def test_task_key_hash_is_a_label_value() -> None:
    value = task_key_hash("any text / at all: ✓")
    assert len(value) == 20
    assert LABEL_RE.fullmatch(value)
    assert task_key_hash("a") != task_key_hash("b")


# --------------------------------------------------------------------------------------
# the main container is a ContainerSpec held by the pod
# --------------------------------------------------------------------------------------

MAIN_CONTAINER_ATTRIBUTES = ("image", "container_name", *CONTAINER_FIELDS)


def test_main_container_is_a_field_and_the_attributes_delegate_to_it() -> None:
    spec = full_spec()
    main = spec.main_container
    assert "main_container" in {f.name for f in dataclasses.fields(PodSpec)}
    assert isinstance(main, ContainerSpec)
    assert spec.main_container is main  # held, not rebuilt on each access
    for attribute in MAIN_CONTAINER_ATTRIBUTES:
        own = "name" if attribute == "container_name" else attribute
        assert getattr(spec, attribute) == getattr(main, own), attribute
    assert not {"image", "command", "env"} & {f.name for f in dataclasses.fields(PodSpec)}


def test_a_spec_built_from_a_container_equals_one_built_from_keywords() -> None:
    keywords = PodSpec(
        "busybox",
        ["sh", "-c", "echo hi"],
        container_name="worker",
        env={"A": "1"},
        resources={"limits": {"memory": "64Mi"}},
        labels={"team": "ml"},
    )
    container = ContainerSpec(
        "worker",
        "busybox",
        command=["sh", "-c", "echo hi"],
        env={"A": "1"},
        resources={"limits": {"memory": "64Mi"}},
    )
    built = PodSpec(main_container=container, labels={"team": "ml"})
    assert built == keywords
    assert built.main_container is container
    assert built.to_dict() == keywords.to_dict()
    assert built.to_manifest(namespace="ns") == keywords.to_manifest(namespace="ns")


def test_keywords_override_the_given_main_container() -> None:
    container = ContainerSpec("worker", "busybox", command=["sleep", "1"], args=["x"])
    spec = PodSpec(image="alpine:3", args=(), working_dir="/w", main_container=container)
    assert spec.main_container == ContainerSpec(
        "worker", "alpine:3", command=["sleep", "1"], working_dir="/w"
    )
    assert container.args == ("x",)  # the given container is not changed


def test_replace_reaches_the_main_container_at_run_time() -> None:
    spec = full_spec()
    cleared = dataclasses.replace(spec, command=(), env=None)  # type: ignore[call-arg]
    assert cleared.command == ()
    assert cleared.env == ()
    assert cleared.args == spec.args
    assert cleared.container_name == "trainer"
    swapped = dataclasses.replace(spec, main_container=ContainerSpec("solo", "busybox"))
    assert swapped.container_name == "solo"
    assert swapped.resources == Resources()
    assert swapped.labels == spec.labels
    assert dataclasses.replace(spec, task_key="other").main_container is spec.main_container


def test_main_container_errors_name_the_pod_fields() -> None:
    with pytest.raises(SpecError) as caught:
        PodSpec("busybox", container_name=3)  # type: ignore[arg-type]
    assert caught.value.field == "container_name"
    with pytest.raises(SpecError) as caught:
        PodSpec(main_container={"name": "main"})  # type: ignore[arg-type]
    assert caught.value.field == "main_container"
    with pytest.raises(SpecError) as caught:
        PodSpec("busybox", env={"A": 1.5})  # type: ignore[arg-type]
    assert caught.value.field == 'env["A"]'
    with pytest.raises(SpecError) as caught:
        PodSpec("busybox", main_container=ContainerSpec("Bad_Name", "busybox")).validate()
    assert caught.value.field == "container_name"


def test_constructor_keeps_every_keyword_in_order() -> None:
    keywords = list(inspect.signature(PodSpec).parameters)
    assert keywords == [
        "image", "command", "args", "name", "task_key", "container_name", "env",
        "env_from", "resources", "volume_mounts", "security_context", "working_dir",
        "image_pull_policy", "termination_message_policy", "labels", "annotations",
        "node_selector", "tolerations", "affinity", "volumes", "service_account",
        "image_pull_secrets", "init_containers", "sidecars", "native_sidecars",
        "pod_security_context", "active_deadline_seconds",
        "termination_grace_period_seconds", "priority_class_name", "template",
        "main_container",
    ]  # fmt: skip
    assert PodSpec() == PodSpec(main_container=ContainerSpec("main", None))
    assert PodSpec().to_dict() == {}


def test_every_main_container_attribute_is_read_only() -> None:
    spec = PodSpec("busybox")
    for attribute in (*MAIN_CONTAINER_ATTRIBUTES, "main_container", "labels"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(spec, attribute, None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(spec, attribute)


def test_positional_patterns_match_the_constructor() -> None:
    match PodSpec("busybox", ["echo"], name="n"):
        case PodSpec("busybox", ("echo",), (), "n"):
            matched = True
        case _:
            matched = False
    assert matched
