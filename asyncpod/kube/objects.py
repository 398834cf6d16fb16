"""Namespaced objects other than a run's pods: the calls ``asyncpod batch --submit`` makes.

Why it exists: a batch submitted to the cluster (:mod:`asyncpod.cli.incluster`) creates
ConfigMaps, a ServiceAccount, a Role and RoleBinding, an Indexed Job and perhaps a
PersistentVolumeClaim, reads them back for ``status``/``results``, patches its own
pod's annotations (progress) and deletes them on ``cancel``. Those REST paths belong
here, with the rest of the API server's vocabulary (tests/unit/test_layers.py), not in
the CLI. Each call takes a :class:`Kind` (one of the constants below) and answers as
orjson-decoded dicts, like :mod:`asyncpod.kube.pods`.

What it deliberately does not do: watch (nothing here is followed; the pods of a run
are, through :class:`~asyncpod.kube.pods.Pods`), build typed models, or know kinds
beyond the few it names: a generic client for every resource is not this library's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from asyncpod.errors import ConflictError, NotFoundError, UsageError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.watch import list_objects

__all__ = [
    "CONFIG_MAP",
    "JOB",
    "PERSISTENT_VOLUME_CLAIM",
    "POD",
    "ROLE",
    "ROLE_BINDING",
    "SERVICE_ACCOUNT",
    "Kind",
    "Objects",
]


@dataclass(frozen=True, slots=True)
class Kind:
    """A namespaced resource: its API group/version prefix and its plural."""

    name: str
    prefix: str
    plural: str

    def path(self, namespace: str, name: str | None = None) -> str:
        path = f"{self.prefix}/namespaces/{_segment(namespace, 'namespace')}/{self.plural}"
        if name is not None:
            path += f"/{_segment(name, f'{self.name} name')}"
        return path


CONFIG_MAP = Kind("ConfigMap", "/api/v1", "configmaps")
SERVICE_ACCOUNT = Kind("ServiceAccount", "/api/v1", "serviceaccounts")
PERSISTENT_VOLUME_CLAIM = Kind("PersistentVolumeClaim", "/api/v1", "persistentvolumeclaims")
POD = Kind("Pod", "/api/v1", "pods")
ROLE = Kind("Role", "/apis/rbac.authorization.k8s.io/v1", "roles")
ROLE_BINDING = Kind("RoleBinding", "/apis/rbac.authorization.k8s.io/v1", "rolebindings")
JOB = Kind("Job", "/apis/batch/v1", "jobs")


def _segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or "/" in value or value in (".", ".."):
        raise UsageError(f"{what} must be a non-empty name without '/', got {value!r}")
    return value


class Objects:
    """Create, read, list, patch and delete objects of the named kinds over one client.

    Errors are the client's typed ones: 403 is a :class:`~asyncpod.errors.UsageError`
    naming the verb and resource, 404 :class:`NotFoundError`, 409 :class:`ConflictError`.
    """

    __slots__ = ("_client",)

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<Objects via {self._client!r}>"

    async def create(
        self, kind: Kind, namespace: str, manifest: Mapping[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """POST ``manifest``; with ``dry_run`` the server checks and admits it, stores nothing."""
        answer = await self._client.request(
            "POST",
            kind.path(namespace),
            params={"dryRun": "All"} if dry_run else None,
            json=manifest,
        )
        return answer if isinstance(answer, dict) else {}

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        """The object now; :class:`NotFoundError` if there is none."""
        answer = await self._client.request("GET", kind.path(namespace, name))
        return answer if isinstance(answer, dict) else {}

    async def list(
        self, kind: Kind, namespace: str, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Every object of ``kind`` in ``namespace`` matching the selector (all pages)."""
        items, _ = await list_objects(
            self._client, kind.path(namespace), label_selector=label_selector
        )
        return items

    async def patch(
        self, kind: Kind, namespace: str, name: str, merge_patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of the object (its annotations, say)."""
        answer = await self._client.request("PATCH", kind.path(namespace, name), json=merge_patch)
        return answer if isinstance(answer, dict) else {}

    async def delete(
        self, kind: Kind, namespace: str, name: str, *, propagation: str = "Background"
    ) -> bool:
        """Delete the object (and, for a Job, its pods by ``propagation``); False if gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            path = kind.path(namespace, name)
            await self._client.request("DELETE", path, json=body, decode=False)
        except NotFoundError:
            return False
        except ConflictError:
            return False
        return True
