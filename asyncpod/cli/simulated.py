"""Saying so when a pod "ran" on a simulated node: honest first contact (issue 18).

Why: against the demo's control plane, ``asyncpod run busybox -- sh -c 'exit 3'``
used to print nothing and exit 0: kwok played the pod (its annotations decide the
outcome, default success), no container executed, and nothing said so. A user trying
the tool first there would take that for a run. Now ``asyncpod run`` and ``asyncpod
batch`` print one note on stderr when a pod's node is simulated.

How: the run already knows its pod's node (``PodResult.node_name``); the Node object
tells whether it is simulated (:func:`simulator_of`, pure). Each node name is read at
most once per session (:class:`NodeKinds` caches the answer, and the lookup of a name
in flight is shared), and only after the pod's result is known, so it adds nothing to
a run's own requests. A batch stops reading nodes once it has said so, or once a read
was refused (the minimal Role grants nothing on nodes: then nothing is said).

What it deliberately does not do: guess from the node's name, or fail a command when
the node cannot be read (the note is a courtesy: a refused or failed read says
nothing, and is logged at debug level).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Final

from asyncpod.errors import AsyncpodError, ForbiddenError, UnauthorizedError
from asyncpod.kube.client import KubeClient
from asyncpod.kube.nodes import get_node

__all__ = ["KWOK_NODE_ANNOTATION", "KWOK_NODE_LABEL", "NodeKinds", "note", "simulator_of"]

logger = logging.getLogger(__name__)

KWOK_NODE_ANNOTATION: Final = ("kwok.x-k8s.io/node", "fake")
"""kwok's own mark: by default kwok manages exactly the nodes annotated so."""
KWOK_NODE_LABEL: Final = ("type", "kwok")
"""The label kwok's documentation and asyncpod's control plane give fake nodes."""

NODE_READ_TIMEOUT: Final = 5.0
"""A node read is a courtesy: it never holds a finished command up for long."""


def simulator_of(node: Mapping[str, Any]) -> str | None:
    """``"kwok"`` when ``node`` (a Node object) is simulated by kwok, else None.

    kwok takes the nodes annotated ``kwok.x-k8s.io/node: fake`` (its default
    ``manage-nodes-with-annotation-selector``); the label ``type: kwok`` is the one its
    examples and our control plane (:mod:`asyncpod.testing.controlplane`) also set. A
    real node (``asyncpod.dev/node: real``, any kubelet) carries neither.
    """
    metadata = node.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    key, value = KWOK_NODE_ANNOTATION
    if annotations.get(key) == value:
        return "kwok"
    key, value = KWOK_NODE_LABEL
    if labels.get(key) == value:
        return "kwok"
    return None


def note(*, pod: str, node: str, simulator: str, batch: bool = False) -> str:
    """The one line said on stderr (after the command's ``asyncpod COMMAND:`` prefix).

    A batch says it once, for the first pod found on a simulated node."""
    if batch:
        return (
            f"note: pod {pod} ran on {simulator} node {node} (simulated): no container ran; "
            "pods on simulated nodes play their exit codes and logs from annotations"
        )
    return (
        f"note: pod {pod} ran on {simulator} node {node} (simulated): no container ran; "
        "its exit code and logs were played from annotations"
    )


class NodeKinds:
    """Which simulator, if any, plays each node: each node name read once, then known.

    ``refused`` turns true at the first read the server refused (401/403): RBAC that
    does not let us read nodes will not start to, so no further read is made. A name
    being read by another caller answers None at once (a batch says its note once;
    whichever read finds a simulated node says it).
    """

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._known: dict[str, str | None] = {}
        self._reading: set[str] = set()
        self.refused = False
        self.reads = 0

    def __repr__(self) -> str:
        return f"<NodeKinds known={len(self._known)} reads={self.reads} refused={self.refused}>"

    def asked(self, node: str) -> bool:
        """Whether asking about ``node`` again would make no request."""
        return self.refused or node in self._known or node in self._reading

    async def simulator(self, node: str) -> str | None:
        """:func:`simulator_of` the node named ``node``; None when it cannot be read."""
        if node in self._known:
            return self._known[node]
        if self.refused or node in self._reading:
            return None
        self._reading.add(node)
        try:
            kind = self._known[node] = await self._read(node)
        finally:
            self._reading.discard(node)
        return kind

    async def _read(self, node: str) -> str | None:
        self.reads += 1
        try:
            answer = await asyncio.wait_for(
                get_node(self._client, node, timeout=NODE_READ_TIMEOUT), NODE_READ_TIMEOUT
            )
        except (ForbiddenError, UnauthorizedError) as error:
            self.refused = True
            logger.debug("cannot read node %s, so cannot tell if it is simulated: %s", node, error)
            return None
        except (AsyncpodError, asyncio.TimeoutError) as error:
            logger.debug("cannot read node %s: %s", node, error)
            return None
        return simulator_of(answer)
