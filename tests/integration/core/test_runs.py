"""One pod end to end against the real API server: results, states, timeouts, cleanup."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import asyncpod
from asyncpod import Outcome, PodSpec, PodState, Reason
from asyncpod.core import cluster as cluster_module
from asyncpod.core.cluster import MANAGED_SELECTOR
from asyncpod.core.informer import PodInformer
from asyncpod.testing import LocalControlPlane, outcome
from asyncpod.testing.pytest_plugin import TestCluster

# Outcomes come from kwok playing out sim.asyncpod.dev/* annotations.
pytestmark = [pytest.mark.integration, pytest.mark.simulated]


def pods_in(kube_cluster: TestCluster, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube_cluster.admin.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods"
    )["items"]
    return items


async def wait_until_gone(kube_cluster: TestCluster, namespace: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while pods_in(kube_cluster, namespace):
        assert time.monotonic() < deadline, f"pods left: {pods_in(kube_cluster, namespace)}"
        await asyncio.sleep(0.1)


async def test_success_with_termination_message(cluster: asyncpod.Cluster) -> None:
    spec = PodSpec("busybox:1.36", ["sh", "-c", "echo ok"],
                   annotations=outcome(duration=0.3, message='{"rows": 42}'))  # fmt: skip
    result = await cluster.run(spec)
    assert result.outcome is Outcome.SUCCEEDED
    assert result.ok
    assert result.phase == "Succeeded"
    assert result.exit_code == 0
    assert result.termination_message == '{"rows": 42}'
    assert result.node_name is not None
    assert result.node_name.startswith("kwok-node-")
    assert result.created_at is not None
    assert result.scheduled_at is not None
    assert result.finished_at is not None
    assert result.events == ()  # only collected for runs that did not succeed


@pytest.mark.parametrize(
    ("annotations", "code", "reason"),
    [
        (outcome(duration=0.2, exit_code=3), 3, Reason.ERROR),
        (outcome(duration=0.2, exit_code=137, reason="OOMKilled"), 137, Reason.OOM_KILLED),
    ],
)
async def test_failure_carries_exit_code_reason_and_events(
    cluster: asyncpod.Cluster, annotations: dict[str, str], code: int, reason: str
) -> None:
    result = await cluster.run(PodSpec("busybox:1.36", annotations=annotations))
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == code
    assert result.reason == reason
    assert result.main is not None
    assert result.main.reason == reason
    assert {e.reason for e in result.events} >= {"Scheduled", "Started"}
    with pytest.raises(asyncpod.PodFailedError) as raised:
        result.raise_for_outcome()
    assert f"exit code {code}" in str(raised.value)


async def test_failed_init_container_is_reported(cluster: asyncpod.Cluster) -> None:
    spec = PodSpec(
        "busybox:1.36",
        init_containers=[asyncpod.ContainerSpec("migrate", "busybox:1.36")],
        annotations=outcome(init_duration=0.2, containers={"migrate": {"exit_code": 5}}),
    )
    result = await cluster.run(spec)
    assert result.outcome is Outcome.FAILED
    migrate = result.container("migrate")
    assert migrate is not None
    assert migrate.kind is asyncpod.ContainerKind.INIT
    assert migrate.exit_code == 5
    assert result.exit_code is None  # main never ran


async def test_a_run_that_records_no_changes_ends_the_same_and_refuses_states_and_logs(
    cluster: asyncpod.Cluster,
) -> None:
    """``record_changes=False`` (a launcher's runs, ``Cluster.follow``): the same result
    from the pod's latest version alone; asking for its changes or logs is an error."""
    spec = PodSpec("busybox:1.36", annotations=outcome(duration=0.3, exit_code=3))
    run = cluster.new_run(spec, record_changes=False)
    with pytest.raises(asyncpod.UsageError, match="records no state changes"):
        async for _ in run.states():
            pass
    with pytest.raises(asyncpod.UsageError, match="records no state changes"):
        run.logs()

    result = await run.drive()

    assert result is not None
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 3
    assert run.pod is not None
    assert run.pod["status"]["phase"] == "Failed"
    assert "state=failed" in repr(run)


async def test_states_arrive_in_order(cluster: asyncpod.Cluster) -> None:
    run = await cluster.start(PodSpec("busybox:1.36", annotations=outcome(duration=0.5)))
    seen = [change.state async for change in run.states()]
    result = await run
    assert result.ok
    assert seen[0] in (PodState.PENDING, PodState.SCHEDULED)
    assert seen[-1] is PodState.SUCCEEDED
    assert PodState.RUNNING in seen
    order = [PodState.PENDING, PodState.SCHEDULED, PodState.RUNNING, PodState.SUCCEEDED]
    indexes = [order.index(state) for state in seen if state in order]
    assert indexes == sorted(indexes)


async def test_image_pull_failure_fails_after_the_grace_period(
    cluster: asyncpod.Cluster,
) -> None:
    spec = PodSpec("registry.invalid/nope:1", annotations=outcome(image_pull_fails=True,
                                                                  image_pull_backoff_after=0.3))  # fmt: skip
    options = asyncpod.RunOptions(image_pull_timeout=1.5, startup_timeout=60)
    started = time.monotonic()
    result = await cluster.run(spec, options=options)
    assert result.outcome is Outcome.FAILED
    assert result.reason in (Reason.ERR_IMAGE_PULL, Reason.IMAGE_PULL_BACK_OFF)
    assert result.message
    assert 1.5 <= time.monotonic() - started < 15
    assert {"Failed", "BackOff"} & {e.reason for e in result.events}


async def test_unschedulable_times_out_with_the_schedulers_reason(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    spec = PodSpec("busybox:1.36", node_selector={"no-such-node": "x"})
    result = await cluster.run(spec, options=asyncpod.RunOptions(schedule_timeout=2))
    assert result.outcome is Outcome.TIMED_OUT
    assert result.reason == Reason.UNSCHEDULABLE
    assert result.message is not None
    assert "nodes are available" in result.message
    await wait_until_gone(kube_cluster, namespace)  # a timed-out pod is deleted


async def test_run_deadline_deletes_the_pod(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    spec = PodSpec("busybox:1.36", annotations=outcome(duration="1h"))
    result = await cluster.run(spec, options=asyncpod.RunOptions(deadline=1.5))
    assert result.outcome is Outcome.TIMED_OUT
    assert result.reason == Reason.RUN_TIMEOUT
    await wait_until_gone(kube_cluster, namespace)


async def test_cancelling_the_awaiting_task_deletes_the_pod(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    run = await cluster.start(PodSpec("busybox:1.36", annotations=outcome(duration="1h")))
    async for change in run.states():
        if change.state is PodState.RUNNING:
            break
    waiter = asyncio.ensure_future(run.result())
    await asyncio.sleep(0.1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    result = await run.cancel()  # idempotent: returns the recorded result
    assert result is not None
    assert result.outcome is Outcome.CANCELLED
    await wait_until_gone(kube_cluster, namespace)


async def test_closing_the_session_deletes_every_pod_it_started(
    sa_kubeconfig: Any, kube_cluster: TestCluster, namespace: str
) -> None:
    async with asyncpod.connect(sa_kubeconfig, namespace=namespace) as session:
        runs = [
            await session.start(PodSpec("busybox:1.36", annotations=outcome(duration="1h")))
            for _ in range(3)
        ]
        for run in runs:
            await run.created()
        assert len(pods_in(kube_cluster, namespace)) == 3
    assert all(run.done() for run in runs)
    assert {(await run.cancel()).outcome for run in runs} == {Outcome.CANCELLED}  # type: ignore[union-attr]
    await wait_until_gone(kube_cluster, namespace)


async def test_pod_deleted_by_someone_else(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    run = await cluster.start(PodSpec("busybox:1.36", annotations=outcome(duration="1h")))
    await run.created()
    kube_cluster.admin.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{run.name}")
    result = await run
    assert result.outcome is Outcome.DELETED
    assert result.reason == Reason.DELETED_EXTERNALLY


async def test_invalid_spec_fails_before_any_request(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    before = cluster.client.statistics().requests_sent
    with pytest.raises(asyncpod.SpecError) as raised:
        await cluster.start(PodSpec("busybox:1.36", labels={"bad key!": "x"}))
    assert "labels" in raised.value.field
    assert cluster.client.statistics().requests_sent == before
    assert pods_in(kube_cluster, namespace) == []


async def test_server_side_rejection_lists_its_causes(cluster: asyncpod.Cluster) -> None:
    spec = PodSpec("busybox:1.36", template={"spec": {"dnsPolicy": "Sometimes"}})
    with pytest.raises(asyncpod.InvalidRequestError) as raised:
        await cluster.run(spec)
    assert raised.value.status == 422
    assert any("dnsPolicy" in cause for cause in raised.value.causes)


async def test_deterministic_name_reattaches_instead_of_duplicating(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    spec = PodSpec("busybox:1.36", task_key="job-7", annotations=outcome(duration=1.5))
    first = await cluster.start(spec, name="task-7", run_id="r1")
    await first.created()
    second = await cluster.start(spec, name="task-7", run_id="r1")
    results = await asyncio.gather(first.result(), second.result())
    assert second.reattached
    assert not first.reattached
    assert {r.uid for r in results} == {first.uid}
    assert all(r.ok for r in results)


async def test_name_taken_by_another_run_is_a_conflict(cluster: asyncpod.Cluster) -> None:
    spec = PodSpec("busybox:1.36", task_key="a", annotations=outcome(duration=2))
    first = await cluster.start(spec, name="shared", run_id="run-a")
    await first.created()
    other = await cluster.start(spec, name="shared", run_id="run-b")
    with pytest.raises(asyncpod.ConflictError, match="another run"):
        await other
    assert (await first).ok


async def test_attach_follows_an_existing_pod_and_checks_its_uid(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster, namespace: str
) -> None:
    manifest = PodSpec("busybox:1.36", annotations=outcome(duration=1)).to_manifest(
        namespace=namespace, name="external"
    )
    created = kube_cluster.admin.request("POST", f"/api/v1/namespaces/{namespace}/pods", manifest)
    with pytest.raises(asyncpod.NotFoundError, match="another took its name"):
        await cluster.attach("external", uid="00000000-0000-0000-0000-000000000000")
    run = await cluster.attach("external", uid=created["metadata"]["uid"])
    result = await run
    assert result.ok
    assert result.uid == created["metadata"]["uid"]


async def test_missing_permission_names_it_and_leaves_no_pod(
    kube_cluster: TestCluster, namespace: str, tmp_path: Any
) -> None:
    from asyncpod.testing.rbac import MINIMAL_ROLE_RULES, service_account_kubeconfig

    rules = [dict(rule) for rule in MINIMAL_ROLE_RULES]
    rules[0] = {**rules[0], "verbs": ["create", "get", "list", "delete"]}  # no watch
    kubeconfig = service_account_kubeconfig(
        kube_cluster.admin, kube_cluster.kubeconfig, namespace=namespace,
        out=tmp_path / "nowatch.kubeconfig", rules=rules, name="no-watch",
    )  # fmt: skip
    async with asyncpod.connect(kubeconfig, namespace=namespace) as session:
        with pytest.raises(asyncpod.ForbiddenError) as raised:
            await session.run(PodSpec("busybox:1.36", annotations=outcome(duration=5)))
        # Said at the first denial: the LIST that worked is no sign that the watch did,
        # so no retry window (it once took a minute to say so).
        (informer,) = session.statistics().informers
        assert (informer.watches_opened, informer.reconnects) == (1, 0)
    assert raised.value.status == 403
    assert 'cannot watch resource "pods"' in str(raised.value)
    await wait_until_gone(kube_cluster, namespace)


async def test_a_create_refused_by_a_quota_is_said_at_once_without_looking_for_the_pod(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    control_plane: LocalControlPlane,
    namespace: str,
) -> None:
    quota = {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    kube_cluster.admin.request("POST", f"/api/v1/namespaces/{namespace}/resourcequotas", quota)
    before = control_plane.request_counts()
    for _ in range(3):
        with pytest.raises(asyncpod.ForbiddenError) as raised:
            await cluster.run(PodSpec("busybox:1.36", annotations=outcome(duration=1)))
        assert raised.value.status == 403
        assert "quota" in str(raised.value)
    spent = control_plane.request_counts() - before
    # A refusal is an answer: nothing was made, so no run read its pod by name to look
    # for a create whose answer was lost (each once did, 4 times, with 2.5 s of waits).
    # Cluster-wide: no other component reads single pods here.
    assert spent.get("GET", "pods") == 0
    assert spent.get("POST", "pods") == 3


async def test_one_watch_serves_every_run_of_a_namespace(
    cluster: asyncpod.Cluster, kube_cluster: TestCluster
) -> None:
    runs = [
        await cluster.start(PodSpec("busybox:1.36", annotations=outcome(duration=0.3)))
        for _ in range(10)
    ]
    results = await asyncio.gather(*(run.result() for run in runs))
    assert all(r.ok for r in results)
    (informer,) = cluster.statistics().informers
    assert informer.watches_opened == 1
    assert informer.lists == 1
    shared = cluster.informer(selector="app.kubernetes.io/managed-by=asyncpod")
    assert "watches=1" in repr(shared)


async def test_the_hot_path_builds_no_typed_models(
    cluster: asyncpod.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes_asyncio.client.models import v1_pod

    built: list[object] = []
    original = v1_pod.V1Pod.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(v1_pod.V1Pod, "__init__", counting)
    result = await cluster.run(PodSpec("busybox:1.36", annotations=outcome(duration=0.3)))
    assert result.ok
    assert built == []  # watch events, create and delete stayed orjson dicts
    v1_pod.V1Pod()
    assert len(built) == 1  # the probe itself works


async def test_attach_right_after_the_create_waits_for_the_watch_instead_of_reading(
    cluster: asyncpod.Cluster,
    kube_cluster: TestCluster,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A grace no loaded machine outlasts, so only the behaviour is tested, not timing.
    monkeypatch.setattr(cluster_module, "ATTACH_GRACE_SECONDS", 60.0)
    informer = cluster.informer(namespace, selector=MANAGED_SELECTOR)
    await informer.wait_synced()
    manifest = PodSpec("busybox:1.36", annotations=outcome(duration=1)).to_manifest(
        namespace=namespace, name="fresh"
    )
    before = per_pod_gets(cluster, informer)
    # The POST blocks the loop, so its watch event is at best in the socket's buffer.
    created = kube_cluster.admin.request("POST", f"/api/v1/namespaces/{namespace}/pods", manifest)
    assert informer.get("fresh") is None

    run = await cluster.attach("fresh", uid=created["metadata"]["uid"])

    assert per_pod_gets(cluster, informer) == before  # no GET of the pod
    result = await run
    assert result.ok
    assert result.uid == created["metadata"]["uid"]


def per_pod_gets(cluster: asyncpod.Cluster, informer: PodInformer) -> int:
    """The session's GETs that were not its informer's LISTs or WATCHes."""
    stats = informer.statistics()
    sent = cluster.client.statistics().requests_sent.get("GET", 0)
    return sent - stats.lists - stats.watches_opened
