"""Which nodes are simulated, and reading each node once (asyncpod/cli/simulated.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from asyncpod.cli.simulated import NodeKinds, note, simulator_of
from asyncpod.errors import ForbiddenError, ServerError
from asyncpod.kube.client import KubeClient

# As the local control plane makes them (asyncpod/testing/controlplane.py, _create_nodes)
# and as a kubelet registers itself (the real node), trimmed to their metadata.
KWOK_NODE = {
    "kind": "Node",
    "metadata": {
        "name": "kwok-node-0",
        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": {"kubernetes.io/hostname": "kwok-node-0", "type": "kwok"},
    },
}
REAL_NODE = {
    "kind": "Node",
    "metadata": {
        "name": "asyncpod-real-0",
        "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        "labels": {"kubernetes.io/hostname": "asyncpod-real-0", "asyncpod.dev/node": "real"},
    },
}


def test_a_kwok_node_is_simulated_by_its_annotation_or_its_label() -> None:
    assert simulator_of(KWOK_NODE) == "kwok"
    only_annotation = {"metadata": {"annotations": {"kwok.x-k8s.io/node": "fake"}}}
    only_label = {"metadata": {"labels": {"type": "kwok"}}}
    assert simulator_of(only_annotation) == "kwok"
    assert simulator_of(only_label) == "kwok"


@pytest.mark.parametrize(
    "node",
    [
        REAL_NODE,
        {"metadata": {}},
        {},
        {"metadata": {"annotations": None, "labels": None}},
        {"metadata": {"annotations": {"kwok.x-k8s.io/node": "real"}}},  # not kwok's value
        {"metadata": {"labels": {"type": "gpu"}}},
    ],
)
def test_other_nodes_are_not_simulated(node: dict[str, Any]) -> None:
    assert simulator_of(node) is None


def test_the_note_names_the_pod_the_node_and_what_did_not_happen() -> None:
    line = note(pod="default/asyncpod-x", node="kwok-node-0", simulator="kwok")
    assert line.startswith(
        "note: pod default/asyncpod-x ran on kwok node kwok-node-0 (simulated): no container ran"
    )
    assert "\n" not in line
    assert "\n" not in note(pod="a/b", node="n", simulator="kwok", batch=True)


class FakeClient:
    """Answers GET /api/v1/nodes/NAME from a dict, or raises what it is told to."""

    def __init__(self, nodes: dict[str, Any], error: Exception | None = None) -> None:
        self.nodes = nodes
        self.error = error
        self.paths: list[str] = []

    async def request(self, method: str, path: str, **_: Any) -> Any:
        assert method == "GET"
        self.paths.append(path)
        if self.error is not None:
            raise self.error
        return self.nodes[path.rsplit("/", 1)[1]]


async def test_each_node_is_read_once() -> None:
    client = FakeClient({"kwok-node-0": KWOK_NODE, "asyncpod-real-0": REAL_NODE})
    kinds = NodeKinds(cast("KubeClient", client))

    assert await kinds.simulator("kwok-node-0") == "kwok"
    assert await kinds.simulator("asyncpod-real-0") is None
    assert await kinds.simulator("kwok-node-0") == "kwok"
    assert kinds.asked("kwok-node-0")
    assert not kinds.asked("kwok-node-1")

    assert client.paths == ["/api/v1/nodes/kwok-node-0", "/api/v1/nodes/asyncpod-real-0"]
    assert kinds.reads == 2


async def test_a_refused_read_says_nothing_and_stops_reading() -> None:
    refused = ForbiddenError('nodes "kwok-node-0" is forbidden', status=403)
    client = FakeClient({}, error=refused)
    kinds = NodeKinds(cast("KubeClient", client))

    assert await kinds.simulator("kwok-node-0") is None
    assert await kinds.simulator("kwok-node-1") is None  # RBAC will not change: no read

    assert kinds.refused
    assert client.paths == ["/api/v1/nodes/kwok-node-0"]


async def test_a_failed_read_says_nothing() -> None:
    client = FakeClient({}, error=ServerError("etcd is down", status=500))
    kinds = NodeKinds(cast("KubeClient", client))

    assert await kinds.simulator("kwok-node-0") is None
    assert not kinds.refused
