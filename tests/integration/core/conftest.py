"""Fixtures for the core's integration tests: least privilege, and a fault proxy.

Every ``cluster`` here authenticates as a ServiceAccount bound to exactly the minimal
Role the README documents (asyncpod.testing.rbac), never as admin.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import asyncpod
from asyncpod.testing.proxy import FaultProxy
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.rbac import service_account_kubeconfig

# Short limits keep a failing test from hanging for the production defaults' minutes.
TEST_OPTIONS = asyncpod.RunOptions(
    schedule_timeout=60, startup_timeout=60, image_pull_timeout=30, delete_grace_period=5
)


@pytest.fixture
def sa_kubeconfig(kube_cluster: TestCluster, namespace: str, tmp_path: Path) -> Path:
    return service_account_kubeconfig(
        kube_cluster.admin,
        kube_cluster.kubeconfig,
        namespace=namespace,
        out=tmp_path / "sa.kubeconfig",
    )


@pytest.fixture
async def cluster(sa_kubeconfig: Path, namespace: str) -> AsyncIterator[asyncpod.Cluster]:
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=TEST_OPTIONS, qps=None
    ) as c:
        yield c


@pytest.fixture
def proxy(kube_cluster: TestCluster) -> Iterator[FaultProxy]:
    url = urllib.parse.urlsplit(kube_cluster.admin.server)
    assert url.hostname is not None
    assert url.port is not None
    with FaultProxy(url.hostname, url.port) as relay:
        yield relay


@pytest.fixture
def proxied_kubeconfig(
    kube_cluster: TestCluster, namespace: str, tmp_path: Path, proxy: FaultProxy
) -> Path:
    return service_account_kubeconfig(
        kube_cluster.admin,
        kube_cluster.kubeconfig,
        namespace=namespace,
        out=tmp_path / "proxied.kubeconfig",
        server=f"https://{proxy.address}",
    )
