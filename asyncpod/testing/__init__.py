"""A real Kubernetes control plane for tests, shipped for asyncpod's users too.

Like envtest, but with a scheduler, a controller-manager and kwok-simulated nodes, so
pods are scheduled, "run", exit with the codes a test asks for, produce events and
serve logs through the real ``pods/log`` endpoint. No Docker needed: the binaries are
built from the official Go modules (:func:`ensure_binaries`).

Typical use, through the pytest plugin that installs with asyncpod::

    async def test_exit_code(kube_cluster, namespace):
        annotations = outcome(duration="1s", exit_code=3)
        ...

or directly::

    with LocalControlPlane(nodes=3) as plane:
        print(plane.kubeconfig)

For real containers, ``LocalControlPlane(real_nodes=1)`` adds a kubelet + containerd
node (root; ``make real-node`` installs what it needs); pods reach it with
``nodeSelector: REAL_NODE_SELECTOR`` and ``tolerations: REAL_NODE_TOLERATIONS``.

Set ``ASYNCPOD_TEST_KUBECONFIG`` to run the same tests against another cluster.
"""

from __future__ import annotations

from asyncpod.testing.admin import AdminClient, AdminRequestError
from asyncpod.testing.binaries import Binaries, BuildError, ensure_binaries
from asyncpod.testing.controlplane import (
    ControlPlaneError,
    LocalControlPlane,
    RequestCounts,
    parse_request_counts,
)
from asyncpod.testing.realnode import (
    REAL_NODE_SELECTOR,
    REAL_NODE_TOLERATIONS,
    real_node_unavailable,
)
from asyncpod.testing.simulate import ContainerLog, cri_line, logs_object, outcome, register_logs

__all__ = [
    "REAL_NODE_SELECTOR",
    "REAL_NODE_TOLERATIONS",
    "AdminClient",
    "AdminRequestError",
    "Binaries",
    "BuildError",
    "ContainerLog",
    "ControlPlaneError",
    "LocalControlPlane",
    "RequestCounts",
    "cri_line",
    "ensure_binaries",
    "logs_object",
    "outcome",
    "parse_request_counts",
    "real_node_unavailable",
    "register_logs",
]
