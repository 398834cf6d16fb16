"""The reference operator's parameters → one raw pod manifest (pure functions).

Why it exists: ``KubernetesPodOperator``'s parameters arrive as ``kubernetes`` client
models (``V1EnvVar``, ``V1Volume``, ...), plain dicts, the provider's ``Secret``
objects, names, or a pod template (file, dict, ``full_pod_spec``). This module turns all
of them into one camelCase manifest, so the rest of asyncpod sees only JSON. It needs
neither the ``kubernetes`` package nor the cncf provider: models are read by duck
typing (``openapi_types`` / ``attribute_map``), ``Secret`` by its attributes.

Precedence is the reference's: the template (``pod_template_file``, else
``pod_template_dict``), then ``full_pod_spec`` over it, then the operator's own
parameters over both (the base container matched by name).

What it deliberately does not do: talk to a cluster, or validate what Kubernetes
validates (the API server's 422 says it better).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from asyncpod.airflow.xcom import XCOM_FILE, add_xcom_sidecar
from asyncpod.errors import UsageError

__all__ = ["XCOM_PATH", "build_manifest", "merge", "secret_to_json", "to_api"]

#: Where the image writes its XCom value; the XCom sidecar hands it over
#: (:mod:`asyncpod.airflow.xcom`).
XCOM_PATH = XCOM_FILE


def to_api(value: Any) -> Any:
    """A ``kubernetes``/``kubernetes_asyncio`` model (or nesting of them) as camelCase JSON."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_api(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_api(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    types = getattr(value, "openapi_types", None)
    names = getattr(value, "attribute_map", None)
    if isinstance(types, Mapping) and isinstance(names, Mapping):
        out = {}
        for attr in types:
            item = getattr(value, attr, None)
            if item is not None:
                out[names[attr]] = to_api(item)
        return out
    raise UsageError(f"cannot turn {type(value).__name__} into a Kubernetes object")


def merge(base: Any, over: Any) -> Any:
    """Deep-merge ``over`` onto ``base``: dicts key by key, containers by name, else replace."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(over, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *over])
    ):
        merged = {i["name"]: i for i in base}
        order = [i["name"] for i in base]
        for item in over:
            if item["name"] in merged:
                merged[item["name"]] = merge(merged[item["name"]], item)
            else:
                merged[item["name"]] = copy.deepcopy(item)
                order.append(item["name"])
        return [merged[n] for n in order]
    return copy.deepcopy(over)


def _template(file: str | None, data: Mapping[str, Any] | None) -> dict[str, Any]:
    if file:
        try:
            loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise UsageError(f"pod_template_file {file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"pod_template_file {file} does not hold a pod manifest")
        return loaded
    return dict(to_api(data)) if data else {}


def secret_to_json(secret: Any) -> dict[str, Any]:
    """The provider's ``Secret`` (or its JSON form) as JSON, for a trigger's kwargs."""
    if isinstance(secret, Mapping):
        return dict(secret)
    return {
        "deploy_type": secret.deploy_type,
        "deploy_target": secret.deploy_target,
        "secret": secret.secret,
        "key": getattr(secret, "key", None),
        "items": to_api(getattr(secret, "items", None)),
    }


def _env(env_vars: Any, runtime_envs: Any, secrets: Iterable[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(env_vars, Mapping):
        out += [{"name": str(k), "value": str(v)} for k, v in env_vars.items()]
    elif env_vars:
        out += [to_api(e) for e in env_vars]
    out += [to_api(e) for e in runtime_envs or ()]
    for secret in secrets:
        if secret.deploy_type == "env" and secret.key is not None:
            ref = {"name": secret.secret, "key": secret.key}
            out.append({"name": secret.deploy_target, "valueFrom": {"secretKeyRef": ref}})
    return out


def _secret_parts(
    secrets: Iterable[Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    env_from, volumes, mounts = [], [], []
    for index, secret in enumerate(secrets):
        if secret.deploy_type == "env" and secret.key is None:
            env_from.append({"secretRef": {"name": secret.secret}})
        elif secret.deploy_type == "volume":
            name = f"secretvol{index}"
            source: dict[str, Any] = {"secretName": secret.secret}
            if getattr(secret, "items", None):
                source["items"] = to_api(secret.items)
            volumes.append({"name": name, "secret": source})
            mounts.append({"name": name, "mountPath": secret.deploy_target, "readOnly": True})
        elif secret.deploy_type != "env":
            raise UsageError(f"secrets: unknown deploy_type {secret.deploy_type!r}")
    return env_from, volumes, mounts


class _SecretView:
    """Attribute access over a secret's JSON form."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.deploy_type = data.get("deploy_type")
        self.deploy_target = data.get("deploy_target")
        self.secret = data.get("secret")
        self.key = data.get("key")
        self.items = data.get("items")


def _pull_secrets(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"name": n.strip()} for n in value.split(",") if n.strip()]
    return [to_api(v) for v in value or ()]


def build_manifest(p: Mapping[str, Any], *, labels: Mapping[str, str]) -> dict[str, Any]:
    """The pod for operator parameters ``p`` (their names as in the reference operator)."""
    base = _template(p.get("pod_template_file"), p.get("pod_template_dict"))
    if p.get("full_pod_spec") is not None:
        base = merge(base, to_api(p["full_pod_spec"]))
    secrets = [_SecretView(secret_to_json(s)) for s in p.get("secrets") or ()]
    secret_env_from, secret_volumes, secret_mounts = _secret_parts(secrets)
    container: dict[str, Any] = {"name": p["base_container_name"]}
    if p.get("image"):
        container["image"] = p["image"]
    if p.get("cmds"):
        container["command"] = list(p["cmds"])
    if p.get("arguments"):
        container["args"] = list(p["arguments"])
    env = _env(p.get("env_vars"), p.get("pod_runtime_info_envs"), secrets)
    if env:
        container["env"] = env
    env_from = [to_api(e) for e in p.get("env_from") or ()] + secret_env_from
    env_from += [{"configMapRef": {"name": n}} for n in p.get("configmaps") or ()]
    if env_from:
        container["envFrom"] = env_from
    mounts = [to_api(m) for m in p.get("volume_mounts") or ()] + secret_mounts
    if mounts:
        container["volumeMounts"] = mounts
    for key, field in (
        ("ports", "ports"),
        ("container_resources", "resources"),
        ("container_security_context", "securityContext"),
        ("image_pull_policy", "imagePullPolicy"),
    ):
        if p.get(key):
            container[field] = to_api(p[key])
    container["terminationMessagePolicy"] = p.get("termination_message_policy") or "File"
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never"}
    volumes = [to_api(v) for v in p.get("volumes") or ()] + secret_volumes
    if volumes:
        spec["volumes"] = volumes
    for key, field in (
        ("node_selector", "nodeSelector"),
        ("tolerations", "tolerations"),
        ("affinity", "affinity"),
        ("service_account_name", "serviceAccountName"),
        ("security_context", "securityContext"),
        ("init_containers", "initContainers"),
        ("host_aliases", "hostAliases"),
        ("dnspolicy", "dnsPolicy"),
        ("dns_config", "dnsConfig"),
        ("hostname", "hostname"),
        ("subdomain", "subdomain"),
        ("schedulername", "schedulerName"),
        ("runtime_class_name", "runtimeClassName"),
        ("priority_class_name", "priorityClassName"),
    ):
        if p.get(key):
            spec[field] = to_api(p[key])
    for key, field in (
        ("termination_grace_period", "terminationGracePeriodSeconds"),
        ("active_deadline_seconds", "activeDeadlineSeconds"),
        ("automount_service_account_token", "automountServiceAccountToken"),
    ):
        if p.get(key) is not None:
            spec[field] = p[key]
    if p.get("hostnetwork"):
        spec["hostNetwork"] = True
    pull = _pull_secrets(p.get("image_pull_secrets"))
    if pull:
        spec["imagePullSecrets"] = pull
    metadata: dict[str, Any] = {
        "labels": {**(p.get("labels") or {}), **labels},
        "annotations": dict(p.get("annotations") or {}),
    }
    pod: dict[str, Any] = merge(
        base, {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    )
    if p.get("do_xcom_push"):
        pod = add_xcom_sidecar(
            pod,
            base_container_name=p["base_container_name"],
            security_context=to_api(p.get("xcom_sidecar_container_security_context")),
        )
    return pod
