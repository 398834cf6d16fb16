"""Least privilege, made testable: the minimal Role asyncpod needs, and a kubeconfig
for a ServiceAccount bound to it.

Why: a library that quietly needs cluster-admin gets refused in real clusters. The core
integration tests run as a ServiceAccount bound to exactly :data:`MINIMAL_ROLE_RULES`
(the README documents the same Role), so a new API call that needs a permission we
did not ask for fails the suite, not a user's production run.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from asyncpod.testing.admin import AdminClient

__all__ = [
    "AIRFLOW_ROLE_RULES",
    "MINIMAL_ROLE_RULES",
    "minimal_role",
    "service_account_kubeconfig",
]

#: What asyncpod does with a namespace: create, follow (list+watch), read (a 409 on a
#: deterministic name is answered by GET), delete pods; read their logs; list the
#: events of a failed pod.
MINIMAL_ROLE_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
)

#: What the Airflow operator and trigger need: the minimal Role, and ``patch`` on pods,
#: with which a trigger records on its pod where the pod's log stopped being copied into
#: the task log (:mod:`asyncpod.airflow.logresume`), so that a trigger resumed on
#: another triggerer logs every line exactly once. Without it they still work, and a
#: fail-over may repeat log lines.
AIRFLOW_ROLE_RULES: tuple[dict[str, Any], ...] = (
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "get", "list", "watch", "delete", "patch"],
    },
    *MINIMAL_ROLE_RULES[1:],
)


def minimal_role(namespace: str, name: str = "asyncpod-runner") -> dict[str, Any]:
    """The Role object (rbac.authorization.k8s.io/v1) with :data:`MINIMAL_ROLE_RULES`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": copy.deepcopy(list(MINIMAL_ROLE_RULES)),
    }


def service_account_kubeconfig(
    admin: AdminClient,
    base_kubeconfig: Path,
    *,
    namespace: str,
    out: Path,
    rules: Sequence[dict[str, Any]] = MINIMAL_ROLE_RULES,
    name: str = "asyncpod-runner",
    server: str | None = None,
    token_seconds: int = 3600,
) -> Path:
    """Create a ServiceAccount bound to a Role with ``rules``; write its kubeconfig.

    The kubeconfig reuses ``base_kubeconfig``'s cluster entry (server and CA), with
    ``server`` overriding the URL (e.g. a :class:`FaultProxy` in front of the API
    server), and authenticates with a bound token from the TokenRequest API.
    """
    base = f"/api/v1/namespaces/{namespace}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    admin.request("POST", f"{base}/serviceaccounts", {"metadata": {"name": name}})
    role = minimal_role(namespace, name)
    role["rules"] = copy.deepcopy(list(rules))
    admin.request("POST", f"{rbac}/roles", role)
    admin.request(
        "POST",
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    )
    token = admin.request(
        "POST",
        f"{base}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
         "spec": {"expirationSeconds": token_seconds}},
    )["status"]["token"]  # fmt: skip
    config = yaml.safe_load(base_kubeconfig.read_text())
    current = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == current)
    cluster = copy.deepcopy(next(c for c in config["clusters"] if c["name"] == context["cluster"]))
    if server is not None:
        cluster["cluster"]["server"] = server
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": cluster["name"], "user": name, "namespace": namespace},
            }
        ],
        "current-context": name,
    }
    out.write_text(json.dumps(kubeconfig, indent=2))
    out.chmod(0o600)
    return out
