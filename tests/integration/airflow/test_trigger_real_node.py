"""AsyncpodPodTrigger on the real node: the XCom value is a file a real process wrote.

The pod is built the operator's way (base container, ``terminationMessagePath`` at
``/airflow/xcom/return.json`` as ``podbuild`` sets it for ``do_xcom_push``), placed on
the real node (kubelet + containerd), and the trigger reads the value from the
termination message the kubelet copied out of that file. Skipped with the reason
where a real node cannot run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod.airflow.podbuild import XCOM_PATH
from asyncpod.airflow.triggers import AsyncpodPodTrigger
from asyncpod.testing.pytest_plugin import RealNode, TestCluster

from .conftest import KEEP, pod_alive

pytestmark = [pytest.mark.integration, pytest.mark.real_node]


async def test_xcom_is_the_file_a_real_container_wrote(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    real_node: RealNode,
) -> None:
    spec = asyncpod.PodSpec(
        "busybox:1.36",
        command=[
            "sh",
            "-c",
            f"""echo computing; printf '{{"rows": 3, "ok": true}}' > {XCOM_PATH}""",
        ],
        container_name="base",
        node_selector=real_node.node_selector,
        tolerations=[
            asyncpod.Toleration(t["key"], t["operator"], effect=t["effect"])
            for t in real_node.tolerations
        ],
        template={"spec": {"containers": [{"name": "base", "terminationMessagePath": XCOM_PATH}]}},
    )
    async with asyncpod.connect(kube_cluster.kubeconfig, namespace=namespace, qps=None) as c:
        run = await c.start(spec, name="xcom", options=KEEP)  # the operator creates, KEEP
        await run.created()
        assert run.uid is not None
        uid = run.uid
    trigger = AsyncpodPodTrigger(
        pod_name="xcom",
        pod_namespace=namespace,
        pod_uid=uid,
        config_file=str(sa_kubeconfig),
        log_state_dir=str(tmp_path / "state"),
        get_logs=False,
        startup_timeout=60,
        do_xcom_push=True,
    )
    events: list[dict[str, Any]] = []

    async def fire() -> None:
        events.extend([event.payload async for event in trigger.run()])

    await asyncio.wait_for(fire(), 90)
    (payload,) = events
    assert payload["status"] == "success", payload
    assert payload["exit_code"] == 0
    assert payload["xcom"] == {"rows": 3, "ok": True}
    assert payload["pod_deleted"] is True
    assert not pod_alive(kube_cluster, namespace, "xcom")
