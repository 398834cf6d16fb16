"""The nodes API: the one call asyncpod makes about nodes, typed, over :class:`KubeClient`.

Why it exists: the CLI tells a user when a pod "ran" on a simulated node (a kwok node,
where no container executes; ``asyncpod.cli.simulated``), which needs the Node object
of the pod's ``spec.nodeName``. As for pods (:mod:`asyncpod.kube.pods`), the REST path
is spelled here so that no caller outside ``kube/`` does.

What it deliberately does not do: list or watch nodes, cache (the caller reads a node
once per name), or decide anything about the node.
"""

from __future__ import annotations

from typing import Any

from asyncpod.errors import ApiConnectionError, UsageError
from asyncpod.kube.client import KubeClient

__all__ = ["get_node", "node_path"]


def node_path(name: str) -> str:
    """``/api/v1/nodes/NAME``; UsageError for a name that cannot be one path segment."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise UsageError(f"node name must be a non-empty name without '/', got {name!r}")
    return f"/api/v1/nodes/{name}"


async def get_node(
    client: KubeClient, name: str, *, timeout: float | None = 10.0
) -> dict[str, Any]:
    """The Node as it is now (cluster-scoped: needs ``get`` on ``nodes``, which the
    minimal Role does not grant; a :class:`~asyncpod.ForbiddenError` then)."""
    path = node_path(name)
    answer = await client.request("GET", path, timeout=timeout)
    if not isinstance(answer, dict) or not isinstance(answer.get("metadata"), dict):
        raise ApiConnectionError(f"GET {path}: the answer was not a node object")
    return answer
