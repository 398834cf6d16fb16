"""The local control plane and its kwok stages, checked against the real API server.

These tests use only the harness's own admin client and raw HTTP watches (no asyncpod
core), so they pin down what the simulated kubelet does: the exact phase, exit codes,
reasons and ordering that the library's own integration tests will rely on.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from asyncpod.testing import AdminClient, AdminRequestError, LocalControlPlane, nodecleanup, outcome
from asyncpod.testing.pytest_plugin import TestCluster

# Outcomes come from kwok playing out sim.asyncpod.dev/* annotations.
pytestmark = [pytest.mark.integration, pytest.mark.simulated]


def pod_manifest(
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    containers: tuple[str, ...] = ("main",),
    init_containers: tuple[str, ...] = (),
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{"name": c, "image": "busybox:1.36"} for c in containers],
    }
    if init_containers:
        spec["initContainers"] = [{"name": c, "image": "busybox:1.36"} for c in init_containers]
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": spec,
    }


def watch_pod(
    cluster: TestCluster,
    namespace: str,
    name: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Every version of the pod seen on a watch, up to the first one ``until`` accepts."""
    query = urllib.parse.urlencode(
        {"watch": "1", "fieldSelector": f"metadata.name={name}", "timeoutSeconds": int(timeout)}
    )
    seen: list[dict[str, Any]] = []
    for event_type, obj in _stream(cluster.admin, f"/api/v1/namespaces/{namespace}/pods?{query}"):
        if event_type == "ERROR":
            raise AssertionError(f"watch error: {obj}")
        seen.append(obj)
        if until(obj):
            return seen
    raise AssertionError(f"pod {namespace}/{name} never reached the state; last: {seen[-1:]}")


def _stream(admin: AdminClient, path: str) -> Generator[tuple[str, dict[str, Any]], None, None]:
    request = urllib.request.Request(admin.server + path)
    with urllib.request.urlopen(request, context=admin.ssl_context, timeout=60) as response:
        for line in response:
            event = json.loads(line)
            yield event["type"], event["object"]


def terminated(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def statuses(pod: dict[str, Any], key: str = "containerStatuses") -> dict[str, dict[str, Any]]:
    return {s["name"]: s["state"] for s in pod.get("status", {}).get(key, [])}


def create(cluster: TestCluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.admin.request("POST", f"/api/v1/namespaces/{namespace}/pods", manifest)


@pytest.mark.parametrize(
    ("annotations", "containers", "phase", "expected"),
    [
        pytest.param(
            outcome(duration=0.2), ("main",), "Succeeded", {"main": (0, "Completed", None)},
            id="success",
        ),
        pytest.param(
            outcome(duration=0.2, exit_code=3, message="bad input"), ("main",), "Failed",
            {"main": (3, "Error", "bad input")}, id="exit-3",
        ),
        pytest.param(
            outcome(duration=0.2, exit_code=137, reason="OOMKilled"), ("main",), "Failed",
            {"main": (137, "OOMKilled", None)}, id="oomkilled",
        ),
        pytest.param(
            outcome(duration=0.2, exit_code=2, containers={"sidecar": {"exit_code": 0}}),
            ("main", "sidecar"), "Failed",
            {"main": (2, "Error", None), "sidecar": (0, "Completed", None)},
            id="per-container",
        ),
    ],
)  # fmt: skip
def test_outcome_sets_phase_exit_code_and_reason(
    kube_cluster: TestCluster,
    namespace: str,
    annotations: dict[str, str],
    containers: tuple[str, ...],
    phase: str,
    expected: dict[str, tuple[int, str, str | None]],
) -> None:
    create(
        kube_cluster, namespace, pod_manifest("p", annotations=annotations, containers=containers)
    )
    final = watch_pod(kube_cluster, namespace, "p", terminated)[-1]
    assert final["status"]["phase"] == phase
    got = {
        name: (state["terminated"]["exitCode"], state["terminated"]["reason"],
               state["terminated"].get("message"))
        for name, state in statuses(final).items()
    }  # fmt: skip
    assert got == expected
    assert final["spec"]["nodeName"].startswith("kwok-node-")


def test_init_containers_finish_in_order_before_main_starts(
    kube_cluster: TestCluster, namespace: str
) -> None:
    create(
        kube_cluster,
        namespace,
        pod_manifest(
            "p", annotations=outcome(duration=0.2, init_duration=0.2), init_containers=("a", "b")
        ),
    )
    history = watch_pod(kube_cluster, namespace, "p", terminated)
    # Reduce every observed version to "which containers run, which are done".
    order: list[str] = []
    for pod in history:
        for key in ("initContainerStatuses", "containerStatuses"):
            for name, state in statuses(pod, key).items():
                for phase in ("running", "terminated"):
                    mark = f"{name}:{phase}"
                    if phase in state and mark not in order:
                        order.append(mark)
    assert history[-1]["status"]["phase"] == "Succeeded"
    assert order.index("a:terminated") < order.index("b:running")
    assert order.index("b:terminated") < order.index("main:running")


def test_failed_init_container_fails_the_pod_without_starting_main(
    kube_cluster: TestCluster, namespace: str
) -> None:
    annotations = outcome(init_duration=0.1, containers={"a": {"exit_code": 7}})
    create(
        kube_cluster,
        namespace,
        pod_manifest("p", annotations=annotations, init_containers=("a", "b")),
    )
    final = watch_pod(kube_cluster, namespace, "p", terminated)[-1]
    assert final["status"]["phase"] == "Failed"
    init = statuses(final, "initContainerStatuses")
    assert init["a"]["terminated"]["exitCode"] == 7
    assert init["a"]["terminated"]["reason"] == "Error"
    assert "waiting" in init["b"]
    assert "waiting" in statuses(final)["main"]


def test_image_pull_failure_goes_from_errimagepull_to_backoff(
    kube_cluster: TestCluster, namespace: str
) -> None:
    annotations = outcome(image_pull_fails=True, image_pull_backoff_after=0.3)
    create(kube_cluster, namespace, pod_manifest("p", annotations=annotations))

    def waiting_reason(pod: dict[str, Any]) -> str | None:
        state = statuses(pod).get("main", {})
        return state.get("waiting", {}).get("reason") if "waiting" in state else None

    history = watch_pod(
        kube_cluster, namespace, "p", lambda pod: waiting_reason(pod) == "ImagePullBackOff"
    )
    reasons = [waiting_reason(pod) for pod in history]
    assert "ErrImagePull" in reasons
    assert reasons.index("ErrImagePull") < reasons.index("ImagePullBackOff")
    assert history[-1]["status"]["phase"] == "Pending"
    events = kube_cluster.admin.request(
        "GET", f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.name=p"
    )["items"]
    assert {"Failed", "BackOff"} <= {e["reason"] for e in events}


def test_unschedulable_pod_gets_podscheduled_false(
    kube_cluster: TestCluster, namespace: str
) -> None:
    create(kube_cluster, namespace, pod_manifest("p", node_selector={"no-such": "label"}))

    def unschedulable(pod: dict[str, Any]) -> bool:
        return any(
            c["type"] == "PodScheduled"
            and c["status"] == "False"
            and c["reason"] == "Unschedulable"
            for c in pod.get("status", {}).get("conditions", [])
        )

    final = watch_pod(kube_cluster, namespace, "p", unschedulable)[-1]
    assert final["status"]["phase"] == "Pending"
    assert "nodeName" not in final["spec"]


def test_delete_honours_the_grace_period(kube_cluster: TestCluster, namespace: str) -> None:
    create(kube_cluster, namespace, pod_manifest("stubborn", annotations=outcome(
        duration="1h", ignore_sigterm=True)))  # fmt: skip
    create(kube_cluster, namespace, pod_manifest("polite", annotations=outcome(duration="1h")))
    for name in ("stubborn", "polite"):
        watch_pod(kube_cluster, namespace, name, lambda p: p["status"].get("phase") == "Running")
    started = time.monotonic()
    for name in ("stubborn", "polite"):
        kube_cluster.admin.request(
            "DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", {"gracePeriodSeconds": 4}
        )

    def gone_after(name: str) -> float:
        while True:
            try:
                kube_cluster.admin.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
            except AdminRequestError as error:
                assert error.status == 404
                return time.monotonic() - started
            assert time.monotonic() - started < 20, f"{name} was never removed"
            time.sleep(0.05)

    assert gone_after("polite") < 2.5  # exits on SIGTERM
    # Waits out the 4 s grace period; deletionTimestamp has whole seconds, so kwok may
    # act up to a second early.
    assert gone_after("stubborn") >= 2.9


def test_pods_log_serves_the_file_and_follows_appended_lines(
    kube_cluster: TestCluster,
    namespace: str,
    container_logs: Callable[..., dict[str, Any]],
) -> None:
    logs = container_logs("p", ["main"])
    logs["main"].write(["first line", "second line"])
    create(kube_cluster, namespace, pod_manifest("p", annotations=outcome(duration="30s")))
    watch_pod(kube_cluster, namespace, "p", lambda p: p["status"].get("phase") == "Running")
    base = f"/api/v1/namespaces/{namespace}/pods/p/log"

    plain = kube_cluster.admin.request("GET", f"{base}?container=main", raw=True)
    assert plain.splitlines() == ["first line", "second line"]

    request = urllib.request.Request(
        kube_cluster.admin.server + f"{base}?container=main&follow=true&timestamps=true"
    )
    with urllib.request.urlopen(
        request, context=kube_cluster.admin.ssl_context, timeout=15
    ) as stream:
        head = [stream.readline().decode().rstrip("\n") for _ in range(2)]
        logs["main"].write(["appended while following"])
        appended = stream.readline().decode().rstrip("\n")
    stamp, _, text = appended.partition(" ")
    assert [line.partition(" ")[2] for line in head] == ["first line", "second line"]
    assert text == "appended while following"
    assert stamp.endswith("Z")
    assert stamp[:4].isdigit()


def test_data_survives_an_apiserver_restart(
    control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    body = {"metadata": {"name": "keep"}, "data": {"answer": "42"}}
    kube_cluster.admin.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body)
    old_pid = control_plane.pids["kube-apiserver"]
    control_plane.restart_apiserver()
    assert control_plane.pids["kube-apiserver"] != old_pid
    got = kube_cluster.admin.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/keep")
    assert got["data"] == {"answer": "42"}


def test_watch_from_a_compacted_resource_version_gets_410(
    control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    old_version = kube_cluster.admin.request("GET", path)["metadata"]["resourceVersion"]
    for index in range(5):
        kube_cluster.admin.request("POST", path, {"metadata": {"name": f"c{index}"}})
    control_plane.compact_etcd()
    # The API server's watch cache still remembers recent versions; a restart drops it,
    # so the old version must now be answered from (compacted) etcd.
    control_plane.restart_apiserver()
    query = urllib.parse.urlencode(
        {"watch": "1", "resourceVersion": old_version, "timeoutSeconds": 5}
    )
    try:
        with contextlib.closing(_stream(kube_cluster.admin, f"{path}?{query}")) as events:
            first = next(events)
    except urllib.error.HTTPError as error:  # some versions answer with the HTTP status
        assert error.code == 410
        return
    event_type, status = first
    assert event_type == "ERROR"
    assert status["code"] == 410
    assert status["reason"] in ("Expired", "Gone")


def test_metrics_count_requests_by_verb_and_resource(
    control_plane: LocalControlPlane, kube_cluster: TestCluster, namespace: str
) -> None:
    # Namespaced only: other components LIST pods cluster-wide (after the restarts above too).
    before = control_plane.request_counts(namespaced_lists_only=True)
    for _ in range(7):
        kube_cluster.admin.request("GET", f"/api/v1/namespaces/{namespace}/pods")
    # PodTemplates, not ConfigMaps: the controller-manager POSTs each new namespace's
    # kube-root-ca.crt ConfigMap whenever it gets to it, which made this count 4 once.
    for index in range(3):
        container = {"name": "c", "image": "busybox:1.36"}
        body = {
            "metadata": {"name": f"m{index}"},
            "template": {"spec": {"containers": [container]}},
        }
        kube_cluster.admin.request("POST", f"/api/v1/namespaces/{namespace}/podtemplates", body)
    delta = control_plane.request_counts(namespaced_lists_only=True) - before
    assert delta.get("LIST", "pods") == 7
    assert delta.get("POST", "podtemplates") == 3
    assert delta.get("GET", "podtemplates") == 0


def test_stop_leaves_no_process_and_no_directory(kube_cluster: TestCluster) -> None:
    if kube_cluster.local is None:
        pytest.skip("the local control plane only")
    plane = LocalControlPlane(nodes=1)
    with plane:
        pids = dict(plane.pids)
        workdir = plane.workdir
        assert set(pids) == {
            "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"
        }  # fmt: skip
    assert workdir is not None
    assert not Path(workdir).exists()
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) outlived stop()"
    # Nor its reaper (asyncpod.testing.reaper), whose command line names the directory.
    assert living(nodecleanup.processes_mentioning(str(workdir))) == []


def living(pids: list[int]) -> list[int]:
    return [pid for pid in pids if not nodecleanup.is_zombie(pid)]


# Starts a plane, says where it is, and waits to be killed.
OWNER = """
import json, sys, time
from asyncpod.testing import LocalControlPlane
plane = LocalControlPlane(nodes=1)
plane.start()
print(json.dumps({"workdir": str(plane.workdir), "pids": plane.pids}), flush=True)
time.sleep(600)
"""


def test_an_owner_killed_without_stop_leaves_no_process_and_no_directory(
    kube_cluster: TestCluster,
) -> None:
    """SIGKILL the process that started a plane: nothing of the plane outlives it."""
    if kube_cluster.local is None:
        pytest.skip("the local control plane only")
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
    finally:
        owner.kill()
        _, errors = owner.communicate(timeout=30)
    assert line, f"the owner did not start its plane: {errors}"
    started = json.loads(line)
    workdir, pids = started["workdir"], started["pids"]
    assert set(pids) >= {"etcd", "kube-apiserver", "kwok"}

    def remains() -> list[int]:
        return living(nodecleanup.processes_mentioning(workdir))

    deadline = time.monotonic() + 60  # the reaper's grace is 10 s; a loaded machine
    while (remains() or Path(workdir).exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert remains() == [], f"processes of {workdir} outlived their owner"
    assert not Path(workdir).exists()
    for name, pid in pids.items():
        assert nodecleanup.is_zombie(pid), f"{name} (pid {pid}) outlived its owner"
