"""What ``asyncpod batch FILE --submit`` creates: every manifest, decided without I/O.

Why: the objects of an in-cluster batch are a contract between three commands run at
different times on different machines (``--submit`` makes them; ``status``, ``results``
and ``cancel`` find them later by the run's label) and the shard pods that read them.
Building them in one pure function makes that contract testable without a server and
keeps the command's I/O (:mod:`asyncpod.cli.incluster`) a thin loop of creates.

Everything carries ``asyncpod.dev/batch=RUN`` (:data:`BATCH_LABEL`); the first input
ConfigMap also holds the submission (:data:`SUBMISSION_KEY`: shards, tasks per shard,
claim, image, where shard pods are placed), which is what ``status`` and ``results``
read, so they need nothing but the run id. The task pods the shards create carry the
ordinary ``asyncpod.dev/run-id`` label instead, like a local batch's, so a shard never
mistakes another shard's launcher pod for a task of the run.

The Job: Indexed, ``completions`` = ``parallelism`` = K, ``restartPolicy: Never`` with
``backoffLimitPerIndex`` (a shard pod that dies is replaced with the same index and
resumes from its own results file), a ``podFailurePolicy`` that does not count
disruptions (eviction, preemption, node loss) against that limit and fails an index at
once on exit code 2 (a usage error no other pod can fix). A shard exits 0 once every
task of its share has a final result, whatever the outcomes.

What it does not do: decide anything about tasks (the shards run the ordinary batch), or
pick a storage class (``--results-size`` makes a claim of the cluster's default class).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from asyncpod.cli.packedinput import MANIFEST_KEY, Packed
from asyncpod.spec import MANAGED_BY_LABEL, MANAGED_BY_VALUE

__all__ = [
    "BATCH_LABEL",
    "INPUT_DIR",
    "PROGRESS_ANNOTATION",
    "RESULTS_DIR",
    "ROLE_LABEL",
    "SHARD_RULES",
    "SUBMISSION_KEY",
    "Submission",
    "claim_name",
    "input_name",
    "job_name",
    "launcher_name",
    "manifests",
    "not_passed_to_shards",
    "selector",
    "shard_results_path",
]

BATCH_LABEL: Final = "asyncpod.dev/batch"
ROLE_LABEL: Final = "asyncpod.dev/batch-role"
PROGRESS_ANNOTATION: Final = "asyncpod.dev/progress"
SUBMISSION_KEY: Final = "submission.json"
INPUT_DIR: Final = "/input"
RESULTS_DIR: Final = "/results"
INDEX_VAR: Final = "$(JOB_COMPLETION_INDEX)"
"""Expanded by the kubelet from the variable the Job controller gives each pod."""

#: What a shard needs: the launcher's own minimal Role (asyncpod.testing.rbac), plus
#: patching its own pod's annotations (progress). Nothing about Jobs or ConfigMaps.
SHARD_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "get", "list", "watch", "delete", "patch"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
)


@dataclass(frozen=True, slots=True)
class Submission:
    """One in-cluster batch, as submitted: what every manifest is made from."""

    run_id: str
    namespace: str
    shards: int
    image: str
    tasks: int
    per_shard: tuple[int, ...]
    shard_args: tuple[str, ...]
    """``asyncpod`` arguments of every shard, with :data:`INDEX_VAR` where its index goes."""
    claim: str
    claim_size: str | None = None
    """Create the claim with this size (``--results-size``); None: it exists already."""
    access_mode: str = "ReadWriteMany"
    backoff_limit_per_index: int = 6
    template: Mapping[str, Any] = field(default_factory=dict)
    """A partial pod template merged into the shards' (placement, env, host network)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "shards": self.shards,
            "image": self.image,
            "tasks": self.tasks,
            "per_shard": list(self.per_shard),
            "claim": self.claim,
            "template": dict(self.template),
        }


def not_passed_to_shards(
    *,
    logs: object,
    logs_for: object,
    metrics_port: object,
    report: bool,
    clusters: int,
    cleanup: str,
) -> list[str]:
    """The options given that the shards cannot honour (refused, not silently dropped).

    Kept logs, a metrics endpoint and the HTML report would live on a shard's pod, gone
    with it; the shards run on the cluster they were submitted to, so only one; and a
    shard deletes each pod only once its result is recorded (what makes a killed shard
    lose and duplicate nothing), which another ``--cleanup`` would undo.
    """
    refused = []
    if logs is not None or logs_for is not None:
        refused.append("--logs/--logs-for (a shard's kept logs would be lost with its pod)")
    if metrics_port is not None:
        refused.append("--metrics-port (scrape the shards' pods instead)")
    if report:
        refused.append("--report (run 'asyncpod report' on 'batch results' output)")
    if clusters > 1:
        refused.append("several --context/--kubeconfig (the shards run in one cluster)")
    if cleanup != "delete":
        refused.append(f"--cleanup {cleanup} (shards delete each pod once its result is kept)")
    return refused


def selector(run_id: str, role: str | None = None) -> str:
    """The label selector of a run's submitted objects (of one role: shard, results)."""
    return f"{BATCH_LABEL}={run_id}" + (f",{ROLE_LABEL}={role}" if role else "")


def job_name(run_id: str) -> str:
    return f"{run_id}-shards"


def launcher_name(run_id: str) -> str:
    return f"{run_id}-launcher"


def input_name(run_id: str, part: int) -> str:
    return f"{run_id}-input-{part}"


def claim_name(run_id: str) -> str:
    return f"{run_id}-results"


def shard_results_path(index: int | str) -> str:
    return f"{RESULTS_DIR}/shard-{index}.jsonl"


def labels(run_id: str, role: str | None = None) -> dict[str, str]:
    out = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, BATCH_LABEL: run_id}
    if role:
        out[ROLE_LABEL] = role
    return out


def _metadata(name: str, submission: Submission, role: str | None = None) -> dict[str, Any]:
    return {"name": name, "labels": labels(submission.run_id, role)}


def input_config_maps(submission: Submission, packed: Packed) -> list[dict[str, Any]]:
    maps = []
    for index, part in enumerate(packed.parts):
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(input_name(submission.run_id, index), submission, "input"),
            "binaryData": dict(part),
        }
        if index == 0:
            body["data"] = {
                MANIFEST_KEY: json.dumps(packed.manifest, sort_keys=True),
                SUBMISSION_KEY: json.dumps(submission.to_json(), sort_keys=True),
            }
        maps.append(body)
    return maps


def rbac(submission: Submission) -> list[dict[str, Any]]:
    """The shards' ServiceAccount, its Role (:data:`SHARD_RULES`) and the binding."""
    name = launcher_name(submission.run_id)
    group = "rbac.authorization.k8s.io"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(name, submission)},
        {
            "apiVersion": f"{group}/v1",
            "kind": "Role",
            "metadata": _metadata(name, submission),
            "rules": copy.deepcopy(list(SHARD_RULES)),
        },
        {
            "apiVersion": f"{group}/v1",
            "kind": "RoleBinding",
            "metadata": _metadata(name, submission),
            "roleRef": {"apiGroup": group, "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": name, "namespace": submission.namespace}
            ],
        },
    ]


def claim(submission: Submission) -> dict[str, Any] | None:
    if submission.claim_size is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(submission.claim, submission, "results"),
        "spec": {
            "accessModes": [submission.access_mode],
            "resources": {"requests": {"storage": submission.claim_size}},
        },
    }


def job(submission: Submission, parts: int) -> dict[str, Any]:
    run_id = submission.run_id
    container: dict[str, Any] = {
        "name": "shard",
        "image": submission.image,
        "command": ["asyncpod"],
        "args": list(submission.shard_args),
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "volumeMounts": [
            {"name": "input", "mountPath": INPUT_DIR, "readOnly": True},
            {"name": "results", "mountPath": RESULTS_DIR},
        ],
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": launcher_name(run_id),
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            {
                "name": "input",
                "projected": {
                    "sources": [
                        {"configMap": {"name": input_name(run_id, i)}} for i in range(parts)
                    ]
                },
            },
            {"name": "results", "persistentVolumeClaim": {"claimName": submission.claim}},
        ],
    }
    template = merge_template(
        {"metadata": {"labels": labels(run_id, "shard")}, "spec": pod_spec},
        submission.template,
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(job_name(run_id), submission, "job"),
        "spec": {
            "completionMode": "Indexed",
            "completions": submission.shards,
            "parallelism": submission.shards,
            "backoffLimitPerIndex": submission.backoff_limit_per_index,
            "podFailurePolicy": {
                "rules": [
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                    # 2: a usage error (the input, an option): another pod cannot help.
                    {
                        "action": "FailIndex",
                        "onExitCodes": {"containerName": "shard", "operator": "In", "values": [2]},
                    },
                ]
            },
            "template": template,
        },
    }


def manifests(submission: Submission, packed: Packed) -> list[dict[str, Any]]:
    """Every object, in the order to create them (the Job last: it starts the shards)."""
    out = input_config_maps(submission, packed)
    out += rbac(submission)
    made = claim(submission)
    if made is not None:
        out.append(made)
    out.append(job(submission, len(packed.parts)))
    return out


def merge_template(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into ``base``: dicts key by key, ``containers`` by name, other
    lists and values replaced (``env`` appended)."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if key == "containers" and isinstance(value, Sequence):
            out[key] = _merge_named(out.get(key) or [], value)
        elif key == "env" and isinstance(value, Sequence) and isinstance(out.get(key), list):
            out[key] = [*out[key], *copy.deepcopy(list(value))]
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_template(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_named(base: Sequence[Any], overlay: Sequence[Any]) -> list[Any]:
    merged = [copy.deepcopy(item) for item in base]
    for item in overlay:
        name = item.get("name") if isinstance(item, Mapping) else None
        target = next((i for i, c in enumerate(merged) if c.get("name") == name), None)
        if target is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[target] = merge_template(merged[target], item)
    return merged
