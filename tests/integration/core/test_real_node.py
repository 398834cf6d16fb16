"""Real containers on the local control plane's real node (kubelet + containerd + runc).

Everything kwok plays from annotations in the other integration tests happens for real
here: exit codes come from processes, logs from their stdout/stderr, the termination
message from a file, OOMKilled from a memory limit, a slow death from a process that
ignores SIGTERM. The pods reach the real node through its selector and toleration
(the ``real_node`` fixture); the tests use only asyncpod's public API, as a least-
privileged ServiceAccount (``cluster``), and read the pod as admin only to check.

Skipped with the reason where a real node cannot run (not root, no cgroups, packages
missing: ``make real-node``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import asyncpod
from asyncpod import ContainerSpec, Outcome, PodSpec, Reason, Toleration
from asyncpod.testing import images
from asyncpod.testing.binaries import cache_dir
from asyncpod.testing.proxy import FaultProxy
from asyncpod.testing.pytest_plugin import RealNode, TestCluster
from asyncpod.testing.realnode import namespace_annotations

from .conftest import TEST_OPTIONS

pytestmark = [pytest.mark.integration, pytest.mark.real_node]

# A cold real node starts its first pod sandbox (pause image, CNI, cgroups) slowly: seen
# at 60 s+ on a loaded 2-core CI machine. These limits are for the node, not asyncpod.
REAL_NODE_OPTIONS = dataclasses.replace(TEST_OPTIONS, schedule_timeout=180, startup_timeout=300)


@pytest.fixture
async def cluster(sa_kubeconfig: Path, namespace: str) -> AsyncIterator[asyncpod.Cluster]:
    async with asyncpod.connect(
        sa_kubeconfig, namespace=namespace, options=REAL_NODE_OPTIONS, qps=None
    ) as c:
        yield c


IMAGE = "busybox:1.36"
# PID 1 in a container ignores signals it has no handler for: every long-running
# shell here traps TERM so that it ends when the kubelet asks (except where a test
# wants the opposite).
QUIT_ON_TERM = "trap 'exit 0' TERM"


def on_real_node(real_node: RealNode, image: str = IMAGE, **fields: Any) -> PodSpec:
    return PodSpec(
        image,
        node_selector=real_node.node_selector,
        tolerations=[
            Toleration(t["key"], t["operator"], effect=t["effect"]) for t in real_node.tolerations
        ],
        **fields,
    )


def sh(script: str) -> dict[str, Any]:
    return {"command": ["sh", "-c", script]}


async def test_exit_code_and_both_streams_come_from_a_real_process(
    cluster: asyncpod.Cluster, real_node: RealNode
) -> None:
    spec = on_real_node(real_node, **sh("echo to-stdout; echo to-stderr >&2; exit 3"))
    run = await cluster.start(spec)
    lines = []
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            lines.append((line.container, line.text))
    result = await run
    assert result.node_name == real_node.name
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 3
    assert result.reason == Reason.ERROR
    assert sorted(lines) == [("main", "to-stderr"), ("main", "to-stdout")]
    assert result.main is not None
    assert result.main.started_at is not None
    assert result.main.finished_at is not None
    assert result.main.finished_at >= result.main.started_at


async def test_init_containers_and_a_native_sidecar_run_in_real_order(
    cluster: asyncpod.Cluster, real_node: RealNode
) -> None:
    sidecar = f"{QUIT_ON_TERM}; echo sidecar up; while true; do sleep 1; done"
    spec = on_real_node(
        real_node,
        **sh("echo main ran; exit 0"),
        init_containers=[
            ContainerSpec("first", IMAGE, command=["sh", "-c", "echo first ran"]),
            ContainerSpec("second", IMAGE, command=["sh", "-c", "echo second ran"]),
        ],
        sidecars=[ContainerSpec("helper", IMAGE, command=["sh", "-c", sidecar])],
    )
    run = await cluster.start(spec)
    lines = []
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            lines.append((line.container, line.text))
    result = await run
    assert result.outcome is Outcome.SUCCEEDED, result.describe()
    assert set(lines) == {
        ("first", "first ran"),
        ("second", "second ran"),
        ("helper", "sidecar up"),
        ("main", "main ran"),
    }
    by_name = {c.name: c for c in result.containers}
    assert set(by_name) >= {"first", "second", "helper", "main"}
    first, second, helper, main = (by_name[n] for n in ("first", "second", "helper", "main"))
    assert first.exit_code == second.exit_code == main.exit_code == 0
    # The kubelet's own timestamps (seconds): each init container ends before the next
    # starts; the native sidecar starts after them and before main.
    assert _t(first.finished_at) <= _t(second.started_at)
    assert _t(second.finished_at) <= _t(helper.started_at) <= _t(main.started_at)


def _t(value: datetime | None) -> datetime:
    assert value is not None
    return value


async def test_logs_are_followed_live_and_resume_after_a_cut(
    proxied_kubeconfig: Path, namespace: str, proxy: FaultProxy, real_node: RealNode
) -> None:
    script = f"{QUIT_ON_TERM}; for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.4; done"
    async with asyncpod.connect(
        proxied_kubeconfig, namespace=namespace, options=REAL_NODE_OPTIONS
    ) as c:
        run = await c.start(on_real_node(real_node, **sh(script)))
        texts: list[str] = []
        cut = False
        async with contextlib.aclosing(run.logs()) as stream:
            async for line in stream:
                texts.append(line.text)
                if len(texts) == 3 and not cut:
                    cut = proxy.cut() >= 1  # the log stream (and the watch) are cut
        result = await run
    assert cut
    assert result.ok, result.describe()
    assert texts == [f"line {i}" for i in range(1, 9)]  # every line once, in order


async def test_termination_message_is_read_from_the_file_the_container_wrote(
    cluster: asyncpod.Cluster, real_node: RealNode
) -> None:
    spec = on_real_node(
        real_node, **sh("printf '{\"rows\": 42}' > /dev/termination-log; echo done")
    )
    result = await cluster.run(spec)
    assert result.ok, result.describe()
    assert result.termination_message == '{"rows": 42}'


async def test_xcom_return_json_as_the_termination_message_path(
    cluster: asyncpod.Cluster, real_node: RealNode
) -> None:
    path = "/airflow/xcom/return.json"
    spec = on_real_node(
        real_node,
        **sh(f"""printf '{{"answer": 42}}' > {path}"""),
        template={"spec": {"containers": [{"name": "main", "terminationMessagePath": path}]}},
    )
    result = await cluster.run(spec)
    assert result.ok, result.describe()
    assert result.termination_message == '{"answer": 42}'


async def test_a_real_memory_limit_ends_in_oomkilled(
    cluster: asyncpod.Cluster, real_node: RealNode
) -> None:
    # A shell variable of 64 MiB under a 16 MiB limit: the kernel's OOM killer ends it.
    spec = on_real_node(
        real_node,
        **sh("x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}"),
        resources={"limits": {"memory": "16Mi"}, "requests": {"memory": "16Mi"}},
    )
    result = await cluster.run(spec)
    assert result.outcome is Outcome.FAILED
    assert result.reason == Reason.OOM_KILLED, result.describe()
    assert result.exit_code == 137
    assert result.main is not None
    assert result.main.reason == Reason.OOM_KILLED


async def test_an_image_that_does_not_exist_fails_with_a_real_err_image_pull(
    sa_kubeconfig: Path, namespace: str, real_node: RealNode
) -> None:
    options = dataclasses.replace(REAL_NODE_OPTIONS, image_pull_timeout=5)
    async with asyncpod.connect(sa_kubeconfig, namespace=namespace, options=options) as c:
        result = await c.run(on_real_node(real_node, "busybox:0.0-no-such-tag"))
    assert result.outcome is Outcome.FAILED
    assert result.reason in (Reason.ERR_IMAGE_PULL, Reason.IMAGE_PULL_BACK_OFF), result.describe()
    failed = [e for e in result.events if e.reason == "Failed"]
    assert failed, result.events
    assert any("busybox:0.0-no-such-tag" in (e.message or "") for e in failed)


async def test_cancelling_deletes_a_pod_that_ignores_sigterm_after_its_grace_period(
    sa_kubeconfig: Path, namespace: str, kube_cluster: TestCluster, real_node: RealNode
) -> None:
    grace = 3
    options = dataclasses.replace(REAL_NODE_OPTIONS, delete_grace_period=grace)
    # A finalizer keeps the pod object after the kubelet is done with it, so its final
    # status can be read; the test removes it at the end.
    hold = "asyncpod.dev/test-hold"
    spec = on_real_node(
        real_node,
        **sh("trap 'echo TERM ignored' TERM; echo ready; while true; do sleep 0.2; done"),
        template={"metadata": {"finalizers": [hold]}},
    )
    path = ""
    try:
        async with asyncpod.connect(sa_kubeconfig, namespace=namespace, options=options) as c:
            run = await c.start(spec)
            await run.created()
            path = f"/api/v1/namespaces/{namespace}/pods/{run.name}"
            async with contextlib.aclosing(run.logs()) as stream:
                async for line in stream:
                    if line.text == "ready":
                        break
            result = await run.cancel()
        assert result is not None
        assert result.outcome is Outcome.CANCELLED
        pod = _wait_for(kube_cluster, path, lambda p: _main_state(p).get("terminated") is not None)
        terminated = _main_state(pod)["terminated"]
        assert pod["metadata"]["deletionTimestamp"]
        assert terminated["exitCode"] == 137  # SIGKILL: SIGTERM was ignored
        logs = kube_cluster.admin.request("GET", f"{path}/log?container=main", raw=True)
        assert "TERM ignored" in logs
        # Killed no earlier than the grace period after the delete (server timestamps,
        # whole seconds): deletionTimestamp is the delete plus the grace period.
        killed = datetime.fromisoformat(terminated["finishedAt"])
        deletion = datetime.fromisoformat(pod["metadata"]["deletionTimestamp"])
        assert (deletion - killed).total_seconds() <= 1
    finally:
        if path:
            with contextlib.suppress(Exception):
                kube_cluster.admin.request("PATCH", path, {"metadata": {"finalizers": None}})


def _main_state(pod: dict[str, Any]) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses") or ():
        if status["name"] == "main":
            return status.get("state") or {}
    return {}


def _wait_for(
    kube_cluster: TestCluster, path: str, ready: Any, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        pod: dict[str, Any] = kube_cluster.admin.request("GET", path)
        if ready(pod):
            return pod
        assert time.monotonic() < deadline, f"pod never got there: {pod.get('status')}"
        time.sleep(0.2)


async def test_a_pod_deleted_by_someone_else_is_reported_deleted_even_if_it_exited_zero(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str, real_node: RealNode
) -> None:
    # Exits 0 on SIGTERM: the kubelet then sets phase Succeeded before the pod goes.
    script = f"{QUIT_ON_TERM}; echo ready; while true; do sleep 0.2; done"
    run = await cluster.start(on_real_node(real_node, **sh(script)))
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            if line.text == "ready":
                break
    kube_cluster.admin.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{run.name}")
    result = await run
    assert result.main is not None
    assert result.main.exit_code == 0  # the process's own answer to SIGTERM
    assert result.outcome is Outcome.DELETED
    assert result.reason == Reason.DELETED_EXTERNALLY


# ------------------------------------------------------------ real Python (Debian's python3)
# `make real-node` builds these images (asyncpod.testing.images); a test that needs one
# skips, saying why, when it is not in the cache.


@pytest.fixture
def python_image() -> str:
    image = images.built_python_image(cache_dir())
    if image is None:
        pytest.skip(images.missing_image_reason(cache_dir(), "python"))
    return image.name


@pytest.fixture
def asyncpod_image() -> str:
    image = images.built_asyncpod_image(cache_dir())
    if image is None:
        pytest.skip(images.missing_image_reason(cache_dir(), "asyncpod"))
    return image.name


@pytest.fixture
def real_namespace(kube_cluster: TestCluster, namespace: str, real_node: RealNode) -> str:
    """``namespace``, whose every pod the API server sends to the real node (admission)."""
    kube_cluster.admin.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"annotations": namespace_annotations()}},
    )
    return namespace


def python(code: str) -> dict[str, Any]:
    return {"command": ["python", "-c", code]}


def test_the_cli_runs_debian_python_on_the_real_node(
    sa_kubeconfig: Path, real_namespace: str, python_image: str, tmp_path: Path
) -> None:
    # The CLI sets no node selector: the namespace's annotations send the pod there.
    code = "import sys; print(42); sys.exit(3)"
    argv = [
        sys.executable,
        "-m",
        "asyncpod.cli.main",
        "run",
        "-v",
        "--kubeconfig",
        str(sa_kubeconfig),
    ]
    argv += ["-n", real_namespace, python_image, "--", "python", "-c", code]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, stdin=subprocess.DEVNULL
    )
    assert (done.stdout, done.returncode) == ("42\n", 3), done.stderr
    assert "asyncpod-real-" in done.stderr  # -v names the node it ran on


async def test_a_termination_message_written_by_python_arrives(
    cluster: asyncpod.Cluster, real_node: RealNode, python_image: str
) -> None:
    code = "import json; open('/dev/termination-log', 'w').write(json.dumps({'rows': 42}))"
    result = await cluster.run(on_real_node(real_node, python_image, **python(code)))
    assert result.ok, result.describe()
    assert result.termination_message == '{"rows": 42}'


async def test_ten_thousand_lines_from_python_arrive_exactly_once_in_order(
    cluster: asyncpod.Cluster, real_node: RealNode, python_image: str
) -> None:
    # The flush and the pause: without them the node's own log file lost the output's
    # tail in 8 runs of 108 (measured 2026-12-08: the node's file, pod-logs/<pod>/main/
    # 0.log, held 8,412 lines, and asyncpod delivered exactly those):
    # the runtime (containerd 1.6 here) had not copied Python's last buffered blocks,
    # written just before the exit, into the log (our reading; not traced in
    # containerd). With them, 24 runs of 24 kept all. What is tested here is asyncpod's
    # part: every line the runtime kept, once and in order.
    code = "import sys, time\nfor i in range(10000): print(i)\nsys.stdout.flush(); time.sleep(1)"
    run = await cluster.start(on_real_node(real_node, python_image, **python(code)))
    texts = []
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            texts.append(line.text)
    result = await run
    assert result.ok, result.describe()
    assert texts == [str(i) for i in range(10000)]


async def test_python_over_its_memory_limit_is_oomkilled(
    cluster: asyncpod.Cluster, real_node: RealNode, python_image: str
) -> None:
    # 256 MiB written (not calloc'd: every page is touched) under a 32 MiB limit.
    spec = on_real_node(
        real_node,
        python_image,
        **python("x = b'a' * (256 << 20); print('survived', len(x))"),
        resources={"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}},
    )
    result = await cluster.run(spec)
    assert result.outcome is Outcome.FAILED
    assert result.reason == Reason.OOM_KILLED, result.describe()
    assert result.exit_code == 137


async def test_the_asyncpod_image_runs_as_the_dockerfiles_user(
    cluster: asyncpod.Cluster, real_node: RealNode, asyncpod_image: str
) -> None:
    # docker/Dockerfile: USER 10001:10001, WORKDIR /home/asyncpod, ENV PYTHONUNBUFFERED.
    code = "import os; print(os.getuid(), os.getgid(), os.getcwd(), os.environ['PYTHONUNBUFFERED'])"
    spec = on_real_node(real_node, asyncpod_image, command=["python3", "-c", code])
    assert await _output(cluster, spec) == ["10001 10001 /home/asyncpod 1"]


async def _output(cluster: asyncpod.Cluster, spec: PodSpec) -> list[str]:
    run = await cluster.start(spec)
    texts = []
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            texts.append(line.text)
    result = await run
    assert result.ok, (result.describe(), texts)
    return texts


async def test_the_asyncpod_image_runs_a_pod_from_inside_the_cluster(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    real_namespace: str,
    real_node: RealNode,
    asyncpod_image: str,
) -> None:
    """The CLI image as a pod: in-cluster config of a ServiceAccount with the minimal Role.

    No kube-proxy here, so the Service address 10.96.0.1 leads nowhere: the pod shares
    the host's network and is told the API server's own address through the variables
    in-cluster clients read (KUBERNETES_SERVICE_HOST/PORT; the serving certificate
    covers 127.0.0.1). The pod it creates lands on the real node too (the namespace's
    annotations) and prints hi.
    """
    url = urllib.parse.urlsplit(kube_cluster.local.server if kube_cluster.local else "")
    assert url.hostname
    assert url.port
    spec = PodSpec(
        asyncpod_image,
        args=["run", "busybox:1.36", "--", "echo", "hi"],
        env={"KUBERNETES_SERVICE_HOST": url.hostname, "KUBERNETES_SERVICE_PORT": str(url.port)},
        service_account="asyncpod-runner",  # the sa_kubeconfig fixture's, minimal Role
        template={"spec": {"hostNetwork": True}},
    )
    run = await cluster.start(spec)
    texts = []
    async with contextlib.aclosing(run.logs()) as stream:
        async for line in stream:
            texts.append(line.text)
    result = await run
    assert result.ok, (result.describe(), texts)
    assert "hi" in texts, texts
    pods = kube_cluster.admin.request("GET", f"/api/v1/namespaces/{real_namespace}/pods")
    # The pod the launcher ran: on the real node, and deleted by it (gone, or going).
    inner = [p for p in pods["items"] if p["metadata"]["name"] != run.name]
    for pod in inner:
        assert pod["spec"]["nodeName"] == real_node.name
        assert pod["metadata"].get("deletionTimestamp")


async def test_stopping_the_asyncpod_image_sends_sigint_and_the_cli_deletes_its_pod(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    real_namespace: str,
    real_node: RealNode,
    asyncpod_image: str,
) -> None:
    """docker/Dockerfile's STOPSIGNAL SIGINT, honoured by containerd on a pod delete.

    The CLI exits 130 on SIGINT and 143 on SIGTERM, after deleting its pod: the exit
    code says which signal the runtime sent.
    """
    server = kube_cluster.local.server if kube_cluster.local else ""
    url = urllib.parse.urlsplit(server)
    assert url.hostname
    assert url.port
    hold = "asyncpod.dev/test-hold"
    inner = f"{QUIT_ON_TERM}; echo ready; while true; do sleep 0.2; done"
    spec = PodSpec(
        asyncpod_image,
        args=["run", "busybox:1.36", "--", "sh", "-c", inner],
        env={"KUBERNETES_SERVICE_HOST": url.hostname, "KUBERNETES_SERVICE_PORT": str(url.port)},
        service_account="asyncpod-runner",
        template={"metadata": {"finalizers": [hold]}, "spec": {"hostNetwork": True}},
    )
    path = ""
    try:
        run = await cluster.start(spec)
        await run.created()
        path = f"/api/v1/namespaces/{real_namespace}/pods/{run.name}"
        async with contextlib.aclosing(run.logs()) as stream:
            async for line in stream:
                if line.text == "ready":
                    break
        kube_cluster.admin.request("DELETE", path)
        pod = _wait_for(kube_cluster, path, lambda p: _main_state(p).get("terminated") is not None)
        assert _main_state(pod)["terminated"]["exitCode"] == 130  # SIGINT, not SIGTERM (143)
        await run
        pods = kube_cluster.admin.request("GET", f"/api/v1/namespaces/{real_namespace}/pods")
        for other in pods["items"]:
            if other["metadata"]["name"] != run.name:  # the CLI's pod: deleted by the CLI
                assert other["metadata"].get("deletionTimestamp"), other["metadata"]
    finally:
        if path:
            with contextlib.suppress(Exception):
                kube_cluster.admin.request("PATCH", path, {"metadata": {"finalizers": None}})
