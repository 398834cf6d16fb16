"""XComs of any size on the real node: the native sidecar hands the file over via its log.

Pods are built the operator's way (``KubernetesPodOperator.build_manifest`` with
``do_xcom_push``: the ``xcom`` emptyDir and the ``airflow-xcom-sidecar`` native sidecar),
created and followed as a ServiceAccount bound to exactly the minimal Role (no
``pods/exec``), placed on the real node (kubelet + containerd), where busybox writes
``/airflow/xcom/return.json`` with ``sh``. The trigger's own path reads the value.
Skipped with the reason where a real node cannot run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod.airflow import KubernetesPodOperator
from asyncpod.airflow.triggers import AsyncpodPodTrigger
from asyncpod.airflow.xcom import SIDECAR_NAME, XCOM_FILE
from asyncpod.testing.pytest_plugin import RealNode, TestCluster

from .conftest import KEEP, pod_alive

pytestmark = [pytest.mark.integration, pytest.mark.real_node]

MIB = 1024 * 1024
# A cold real node starts its first sandbox slowly on a loaded 2-core machine.
LIMIT = 400


async def run_xcom_pod(
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    real_node: RealNode,
    name: str,
    script: str,
    **trigger_options: Any,
) -> dict[str, Any]:
    """Create the operator's pod as the minimal Role; its trigger's event payload."""
    operator = KubernetesPodOperator(
        task_id=name,
        image="busybox:1.36",
        cmds=["sh", "-c", script],
        do_xcom_push=True,
        node_selector=real_node.node_selector,
        tolerations=[dict(t) for t in real_node.tolerations],
    )
    manifest = operator.build_manifest()
    assert [c["name"] for c in manifest["spec"]["initContainers"]] == [SIDECAR_NAME]
    spec = asyncpod.PodSpec(container_name="base", template=manifest)
    async with asyncpod.connect(sa_kubeconfig, namespace=namespace, qps=None) as c:
        run = await c.start(spec, name=name, options=KEEP)  # the operator creates, KEEP
        await run.created()
        assert run.uid is not None
        uid = run.uid
    trigger = AsyncpodPodTrigger(
        pod_name=name,
        pod_namespace=namespace,
        pod_uid=uid,
        config_file=str(sa_kubeconfig),
        startup_timeout=300,
        do_xcom_push=True,
        **{"get_logs": False, **trigger_options},
    )
    events = [event.payload async for event in trigger.run()]
    (payload,) = events
    return payload  # type: ignore[no-any-return]


def ended_pod(kube_cluster: TestCluster, namespace: str, name: str) -> dict[str, Any]:
    """The kept pod once its phase is terminal (the sidecar may still be ending when
    the trigger fires: the run ends with the base container)."""
    deadline = time.monotonic() + 120
    while True:
        pod: dict[str, Any] = kube_cluster.admin.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods/{name}"
        )
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            return pod
        assert time.monotonic() < deadline, pod["status"]
        time.sleep(0.2)


def base_log(kube_cluster: TestCluster, namespace: str, name: str) -> str:
    path = f"/api/v1/namespaces/{namespace}/pods/{name}/log?container=base"
    text = kube_cluster.admin.request("GET", path, raw=True)
    return text.decode() if isinstance(text, bytes) else str(text)


async def test_a_1_mib_json_xcom_is_read_as_the_minimal_role(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    real_node: RealNode,
) -> None:
    # {"blob": "<random base64 characters>"}, exactly 1 MiB; the base container prints
    # the blob's SHA-256 so the test can compare what was written with what was read.
    blob_size = MIB - len('{"blob": ""}')
    script = (
        f"head -c {MIB} /dev/urandom | base64 | tr -d '\\n' | head -c {blob_size} > /tmp/blob"
        f" && {{ printf '{{\"blob\": \"'; cat /tmp/blob; printf '\"}}'; }} > {XCOM_FILE}"
        f" && wc -c < {XCOM_FILE} && sha256sum /tmp/blob"
    )
    payload = await asyncio.wait_for(
        run_xcom_pod(
            sa_kubeconfig, namespace, tmp_path, real_node, "big", script,
            on_finish_action="keep_pod",
        ),
        LIMIT,
    )  # fmt: skip
    assert payload["status"] == "success", payload
    size, digest = base_log(kube_cluster, namespace, "big").split()[:2]
    assert int(size) == MIB
    blob = payload["xcom"]["blob"]
    assert len(blob) == blob_size
    assert hashlib.sha256(blob.encode()).hexdigest() == digest
    # The native sidecar's claims, as the kubelet played them: SIGTERM once the base
    # container ended, exit 0 after the hand-over, the pod Succeeded.
    pod = ended_pod(kube_cluster, namespace, "big")
    assert pod["status"]["phase"] == "Succeeded"
    (sidecar,) = pod["status"]["initContainerStatuses"]
    assert sidecar["name"] == SIDECAR_NAME
    assert sidecar["state"]["terminated"]["exitCode"] == 0


async def test_a_3_kb_xcom_bad_json_no_file_and_a_failed_base(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    real_node: RealNode,
) -> None:
    value = {"files": [f"part-{i:05d}.parquet" for i in range(150)], "total": 150}
    text = json.dumps(value)
    assert 3000 < len(text) < 4096  # fits a termination message, too
    scripts = {
        "small": f"echo computing; cat > {XCOM_FILE} <<'JSON'\n{text}\nJSON",
        "badjson": f"printf '{{\"rows\": 3,' > {XCOM_FILE}",
        "nofile": "echo nothing to return",
        "fails": f"printf '[1]' > {XCOM_FILE}; exit 3",
    }
    payloads = await asyncio.wait_for(
        asyncio.gather(
            *(
                run_xcom_pod(
                    sa_kubeconfig,
                    namespace,
                    tmp_path,
                    real_node,
                    name,
                    script,
                    get_logs=True,
                    container_logs=True,
                    init_container_logs=True,
                    on_finish_action="delete_succeeded_pod",
                )
                for name, script in scripts.items()
            )
        ),
        LIMIT,
    )
    got = dict(zip(scripts, payloads, strict=True))
    assert got["small"]["status"] == "success", got["small"]
    assert got["small"]["xcom"] == value
    assert got["small"]["pod_deleted"] is True
    assert not pod_alive(kube_cluster, namespace, "small")

    assert got["badjson"]["status"] == "failed"
    assert got["badjson"]["reason"] == "XComError"
    assert got["badjson"]["message"].startswith(
        f"{XCOM_FILE} does not hold JSON: Expecting property name enclosed in double quotes"
    )

    assert got["nofile"]["status"] == "success", got["nofile"]
    assert got["nofile"]["xcom"] is None  # as the reference: no file, no value

    # A failing base container: the pod ends Failed by its regular container, the
    # sidecar's exit does not change that, and no XCom is read.
    assert got["fails"]["status"] == "failed"
    assert got["fails"]["exit_code"] == 3
    assert "xcom" not in got["fails"]
    pod = ended_pod(kube_cluster, namespace, "fails")
    assert pod["status"]["phase"] == "Failed"
    (sidecar,) = pod["status"]["initContainerStatuses"]
    assert "terminated" in sidecar["state"]
