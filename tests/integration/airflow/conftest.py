"""Helpers for the Airflow trigger's integration tests: pods made the operator's way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

import asyncpod
from asyncpod.testing.admin import AdminRequestError
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.rbac import AIRFLOW_ROLE_RULES, service_account_kubeconfig

KEEP = asyncpod.RunOptions(cleanup=asyncpod.Cleanup.KEEP, collect_events=False)


async def make_pods(
    kube_cluster: TestCluster,
    namespace: str,
    annotations_by_name: Mapping[str, Mapping[str, str]],
    **spec: Any,
) -> dict[str, str]:
    """Create pods as the operator does (KEEP, managed labels); their uids by name."""
    uids: dict[str, str] = {}
    async with asyncpod.connect(kube_cluster.kubeconfig, namespace=namespace, qps=None) as c:
        runs = [
            await c.start(
                asyncpod.PodSpec(
                    "busybox:1.36", container_name="base", annotations=dict(ann), **spec
                ),
                name=name,
                options=KEEP,
            )
            for name, ann in annotations_by_name.items()
        ]
        for run in runs:
            await run.created()
            assert run.name is not None
            assert run.uid is not None
            uids[run.name] = run.uid
    return uids


def pod_alive(kube_cluster: TestCluster, namespace: str, name: str) -> bool:
    """The pod exists and nobody asked to delete it."""
    try:
        pod = kube_cluster.admin.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    except AdminRequestError as error:
        if error.status == 404:
            return False
        raise
    return not pod["metadata"].get("deletionTimestamp")


async def wait_until(condition: Callable[[], bool], *, limit: float = 30.0) -> None:
    """Poll a test's own observation (a log list, a counter) with a bound."""
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the observation
            await anyio.sleep(0.05)


@pytest.fixture
def sa_kubeconfig(kube_cluster: TestCluster, namespace: str, tmp_path: Path) -> Path:
    """A ServiceAccount bound to exactly the Airflow Role (the minimal Role and ``patch``
    on pods, for the log resume point; no pods/exec)."""
    return service_account_kubeconfig(
        kube_cluster.admin,
        kube_cluster.kubeconfig,
        namespace=namespace,
        out=tmp_path / "sa.kubeconfig",
        rules=AIRFLOW_ROLE_RULES,
    )
