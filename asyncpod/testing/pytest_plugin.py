"""pytest plugin: a real Kubernetes API server for every test session.

Installed with asyncpod (entry point ``pytest11``), so users get the same fixtures:

- ``kube_cluster`` (session): a :class:`TestCluster` - the local control plane started
  once per session, or, when ``ASYNCPOD_TEST_KUBECONFIG`` names a kubeconfig, that
  cluster instead (kind, a real one). Its ``kubeconfig`` and ``admin`` client are what
  tests use.
- ``control_plane`` (session): the :class:`LocalControlPlane` itself, for tests that
  pull its fault levers; such tests are skipped against another cluster.
- ``namespace`` (function): a fresh namespace per test, deleted afterwards.
- ``container_logs`` (function): write CRI log files that ``pods/log`` then serves.

Tests marked ``simulated`` (they need kwok to play out ``sim.asyncpod.dev/*``
annotations) are skipped against another cluster.

Tests marked ``real_node`` run real containers: when any is selected, the session's
local control plane gets a real node too (kubelet + containerd + runc, see
:mod:`asyncpod.testing.realnode`), and the ``real_node`` fixture says how to send pods
there. They are skipped, with the reason, where that cannot run (not root, no cgroups,
the Debian packages missing: ``make real-node``) or against another cluster.

Only tests that request these fixtures start anything; pure unit tests stay fast.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# pytest loads this module in every run of every project that installed asyncpod: it
# imports nothing heavy at module level. The control plane (its PKI needs
# `cryptography`) and the admin client are imported inside the fixtures that use them.
if TYPE_CHECKING:
    from asyncpod.testing.admin import AdminClient
    from asyncpod.testing.controlplane import LocalControlPlane
    from asyncpod.testing.simulate import ContainerLog

__all__ = ["RealNode", "TestCluster"]

KUBECONFIG_ENV = "ASYNCPOD_TEST_KUBECONFIG"


@dataclass(frozen=True)
class TestCluster:
    """The cluster a test session runs against."""

    __test__ = False  # not a test class, despite its name

    kubeconfig: Path
    admin: AdminClient
    local: LocalControlPlane | None

    @property
    def is_local(self) -> bool:
        return self.local is not None


@dataclass(frozen=True)
class RealNode:
    """The session's real node: put ``node_selector`` and ``tolerations`` on a pod."""

    name: str
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, str], ...]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: talks to a real Kubernetes API server (local control plane)"
    )
    config.addinivalue_line(
        "markers",
        "simulated: relies on kwok playing out sim.asyncpod.dev/* annotations (exit codes, "
        "durations, reasons); skipped when ASYNCPOD_TEST_KUBECONFIG names a real cluster",
    )
    config.addinivalue_line(
        "markers",
        "real_node: runs real containers on the local control plane's real node (kubelet + "
        "containerd); skipped with the reason where that cannot run",
    )


_WANTS_REAL_NODE = pytest.StashKey[bool]()
_REAL_NODE_ERROR = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from asyncpod.testing.realnode import real_node_unavailable

    real = [item for item in items if item.get_closest_marker("real_node") is not None]
    reason = (
        f"needs the local control plane's real node; {KUBECONFIG_ENV} points at another cluster"
        if os.environ.get(KUBECONFIG_ENV)
        else real_node_unavailable()
    )
    config.stash[_WANTS_REAL_NODE] = bool(real) and reason is None
    if reason is not None:
        for item in real:
            item.add_marker(pytest.mark.skip(reason=reason))
    if not os.environ.get(KUBECONFIG_ENV):
        return
    skip = pytest.mark.skip(
        reason=f"needs kwok's simulated kubelets; {KUBECONFIG_ENV} points at another cluster"
    )
    for item in items:
        if item.get_closest_marker("simulated") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kube_cluster(request: pytest.FixtureRequest) -> Iterator[TestCluster]:
    from asyncpod.testing.admin import AdminClient
    from asyncpod.testing.binaries import BuildError
    from asyncpod.testing.controlplane import ControlPlaneError, LocalControlPlane
    from asyncpod.testing.realnode import RealNodeSetupError

    external = os.environ.get(KUBECONFIG_ENV)
    if external:
        path = Path(external)
        yield TestCluster(kubeconfig=path, admin=AdminClient.from_kubeconfig(path), local=None)
        return
    # One control plane per session; it gets the real node only when a selected test
    # needs it, so a kwok-only run starts nothing more.
    nodes = int(os.environ.get("ASYNCPOD_TEST_NODES", "3"))
    plane = LocalControlPlane(nodes=nodes, real_nodes=0)
    if request.config.stash.get(_WANTS_REAL_NODE, False):
        plane = LocalControlPlane(nodes=nodes, real_nodes=1)
        try:
            plane.start()
        except (ControlPlaneError, BuildError, RealNodeSetupError, OSError) as error:
            # The kwok tests still run; every real_node test fails with this reason.
            request.config.stash[_REAL_NODE_ERROR] = str(error)
            plane = LocalControlPlane(nodes=nodes, real_nodes=0)
    with plane:
        assert plane.admin is not None
        yield TestCluster(kubeconfig=plane.kubeconfig, admin=plane.admin, local=plane)
    if plane.real_node_leftovers:
        raise RuntimeError(f"the real node left things behind: {plane.real_node_leftovers}")


@pytest.fixture(scope="session")
def control_plane(kube_cluster: TestCluster) -> LocalControlPlane:
    if kube_cluster.local is None:
        pytest.skip(f"needs the local control plane's fault levers ({KUBECONFIG_ENV} is set)")
    return kube_cluster.local


@pytest.fixture(scope="session")
def real_node(kube_cluster: TestCluster, request: pytest.FixtureRequest) -> RealNode:
    """The real node of the session's control plane (tests marked ``real_node`` only)."""
    from asyncpod.testing.realnode import REAL_NODE_SELECTOR, REAL_NODE_TOLERATIONS

    error = request.config.stash.get(_REAL_NODE_ERROR, None)
    if error is not None:
        pytest.fail(f"the real node did not start: {error}", pytrace=False)
    local = kube_cluster.local
    if local is None or not local.real_node_names:
        pytest.skip("no real node in this session (mark the test `real_node`)")
    return RealNode(
        name=local.real_node_names[0],
        node_selector=dict(REAL_NODE_SELECTOR),
        tolerations=tuple(dict(t) for t in REAL_NODE_TOLERATIONS),
    )


@pytest.fixture
def namespace(kube_cluster: TestCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(3)}"
    kube_cluster.admin.create_namespace(name)
    yield name
    kube_cluster.admin.delete_namespace(name)


@pytest.fixture
def container_logs(
    kube_cluster: TestCluster, namespace: str, tmp_path: Path
) -> Callable[..., dict[str, ContainerLog]]:
    """``logs = container_logs("pod-name", ["main"])``; then ``logs["main"].write([...])``.

    Registers a kwok ``Logs`` object so the real ``pods/{name}/log`` endpoint serves
    the files (with ``follow=true``, appended lines arrive). Local control plane only:
    kwok must be able to read the files.
    """
    from asyncpod.testing.simulate import ContainerLog, register_logs

    if kube_cluster.local is None:
        pytest.skip("simulated container logs need the local control plane")

    def make(pod: str, containers: Sequence[str] = ("main",)) -> dict[str, ContainerLog]:
        files: dict[str, ContainerLog] = {}
        for container in containers:
            path = tmp_path / f"{pod}.{container}.log"
            path.touch()
            files[container] = ContainerLog(path)
        register_logs(
            kube_cluster.admin.request, namespace, pod, {c: f.path for c, f in files.items()}
        )
        return files

    return make
