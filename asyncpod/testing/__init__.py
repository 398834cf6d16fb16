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

import importlib
from typing import TYPE_CHECKING, Any, Final

from asyncpod.testing.admin import AdminClient, AdminRequestError
from asyncpod.testing.binaries import Binaries, BuildError, ensure_binaries
from asyncpod.testing.realnode import (  # standard library only: cheap to import
    REAL_NODE_SELECTOR,
    REAL_NODE_TOLERATIONS,
    real_node_unavailable,
)
from asyncpod.testing.simulate import ContainerLog, cri_line, logs_object, outcome, register_logs

if TYPE_CHECKING:
    from asyncpod.testing.controlplane import (
        ControlPlaneError,
        LocalControlPlane,
        RequestCounts,
        parse_request_counts,
    )

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

# The control plane makes its PKI with `cryptography`; it is imported when first used,
# so that loading the pytest plugin (which every pytest run of every project that
# installed asyncpod does) costs nothing until a test asks for a cluster.
_LAZY: Final = {
    "ControlPlaneError": "asyncpod.testing.controlplane",
    "LocalControlPlane": "asyncpod.testing.controlplane",
    "RequestCounts": "asyncpod.testing.controlplane",
    "parse_request_counts": "asyncpod.testing.controlplane",
}

if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'asyncpod.testing' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})
