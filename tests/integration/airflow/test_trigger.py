"""AsyncpodPodTrigger against the local control plane, without an Airflow database.

The trigger is built as a benchmark would build it (``config_file``, no connection id)
and its ``run()`` driven on the test's loop, as the triggerer drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from asyncpod.airflow.connection import KubeTarget
from asyncpod.airflow.resumehold import RESUME_HOLD
from asyncpod.airflow.sessions import session_statistics, shared_cluster
from asyncpod.airflow.triggers import AsyncpodPodStartTrigger, AsyncpodPodTrigger
from asyncpod.airflow.xcom import SIDECAR_NAME, XCOM_FILE, add_xcom_sidecar, frame_lines
from asyncpod.errors import UsageError
from asyncpod.testing import outcome
from asyncpod.testing.controlplane import LocalControlPlane
from asyncpod.testing.pytest_plugin import TestCluster
from asyncpod.testing.rbac import MINIMAL_ROLE_RULES, service_account_kubeconfig
from tests.unit.airflow.versions import from_3_3

from .conftest import make_pods, pod_alive, wait_until

if TYPE_CHECKING:
    from asyncpod.airflow.operators import KubernetesPodOperator

pytestmark = [pytest.mark.integration, pytest.mark.simulated]

TRIGGER_LOGGER = "asyncpod.airflow.triggers.AsyncpodPodTrigger"


def trigger_for(
    kubeconfig: Path, namespace: str, name: str, uid: str, tmp_path: Path, **kw: Any
) -> AsyncpodPodTrigger:
    options: dict[str, Any] = {"get_logs": False, "startup_timeout": 60}
    options.update(kw)
    return AsyncpodPodTrigger(
        pod_name=name,
        pod_namespace=namespace,
        pod_uid=uid,
        config_file=str(kubeconfig),
        **options,
    )


async def fire(trigger: AsyncpodPodTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1  # exactly one event, then the generator returns
    payload: dict[str, Any] = events[0]
    return payload


async def test_success_fires_once_and_deletes_the_pod(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    uids = await make_pods(kube_cluster, namespace, {"ok": outcome(duration=0.5)})
    payload = await asyncio.wait_for(
        fire(trigger_for(sa_kubeconfig, namespace, "ok", uids["ok"], tmp_path)), 60
    )
    assert payload["status"] == "success"
    assert payload["exit_code"] == 0
    assert payload["pod_uid"] == uids["ok"]
    assert payload["pod_deleted"] is True
    assert not pod_alive(kube_cluster, namespace, "ok")
    assert session_statistics().sessions == 0  # released with the last trigger


async def test_an_event_soon_after_the_deferral_waits_out_the_resume_hold(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """A pod that ends just after its task deferred: the event comes no sooner than
    RESUME_HOLD after the deferral (Airflow's stale-exit race: resumehold.py)."""
    uids = await make_pods(kube_cluster, namespace, {"quick": outcome(duration=0.2)})
    deferred_at = time.time()
    trigger = trigger_for(
        sa_kubeconfig, namespace, "quick", uids["quick"], tmp_path, deferred_at=deferred_at
    )
    payload = await asyncio.wait_for(fire(trigger), 60 + RESUME_HOLD)
    assert payload["status"] == "success"
    assert time.time() >= deferred_at + RESUME_HOLD  # a sleep is never shorter


async def test_failure_carries_exit_code_message_and_events_and_keeps_per_policy(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    uids = await make_pods(
        kube_cluster, namespace, {"bad": outcome(duration=0.3, exit_code=3, message="boom")}
    )
    trigger = trigger_for(
        sa_kubeconfig,
        namespace,
        "bad",
        uids["bad"],
        tmp_path,
        on_finish_action="delete_succeeded_pod",
    )
    payload = await asyncio.wait_for(fire(trigger), 60)
    assert payload["status"] == "failed"
    assert payload["exit_code"] == 3
    assert "boom" in str(payload["message"]) or payload["reason"] == "Error"
    assert any("Scheduled" in e for e in payload["events"])
    assert pod_alive(kube_cluster, namespace, "bad")  # failed pods stay with this policy


async def test_skip_on_exit_code(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    uids = await make_pods(kube_cluster, namespace, {"skip": outcome(duration=0.3, exit_code=99)})
    trigger = trigger_for(
        sa_kubeconfig, namespace, "skip", uids["skip"], tmp_path, skip_on_exit_code=[99]
    )
    assert (await asyncio.wait_for(fire(trigger), 60))["status"] == "skipped"


async def test_xcom_from_the_sidecar_log_of_a_simulated_pod(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    container_logs: Callable[..., dict[str, Any]],
) -> None:
    """kwok runs the sidecar as an init container and serves the log registered for it
    (the sidecar's shell runs on the real node: test_xcom_real_node.py)."""
    hand_overs = {"small": b'{"rows": 3, "ok": true}', "bad": b"{oops", "none": None}
    for name, content in hand_overs.items():
        container_logs(name, [SIDECAR_NAME])[SIDECAR_NAME].write(frame_lines(content))
    template = add_xcom_sidecar(
        {"spec": {"containers": [{"name": "base"}]}}, base_container_name="base"
    )
    uids = await make_pods(
        kube_cluster,
        namespace,
        {name: outcome(duration=0.3) for name in hand_overs},
        template=template,
    )
    triggers = [
        trigger_for(sa_kubeconfig, namespace, name, uids[name], tmp_path, do_xcom_push=True)
        for name in hand_overs
    ]
    small, bad, none = await asyncio.wait_for(asyncio.gather(*map(fire, triggers)), 60)
    assert small["status"] == "success", small
    assert small["xcom"] == {"rows": 3, "ok": True}
    assert bad["status"] == "failed"
    assert bad["reason"] == "XComError"
    assert bad["message"].startswith(f"{XCOM_FILE} does not hold JSON: ")
    assert none["status"] == "success"
    assert none["xcom"] is None


async def test_startup_timeout(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    uids = await make_pods(kube_cluster, namespace, {"stuck": outcome(image_pull_fails=True)})
    trigger = trigger_for(
        sa_kubeconfig, namespace, "stuck", uids["stuck"], tmp_path, startup_timeout=2
    )
    payload = await asyncio.wait_for(fire(trigger), 60)
    assert payload["status"] in ("failed", "timeout")
    assert payload["reason"] in ("ErrImagePull", "ImagePullBackOff", "StartupTimeout")
    assert not pod_alive(kube_cluster, namespace, "stuck")  # delete_pod: it goes


async def test_a_replaced_pod_is_not_followed(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    uids = await make_pods(kube_cluster, namespace, {"same": outcome(duration=30)})
    trigger = trigger_for(sa_kubeconfig, namespace, "same", "00000000-not-the-uid", tmp_path)
    payload = await asyncio.wait_for(fire(trigger), 60)
    assert payload["status"] == "error"
    assert payload["reason"] == "PodNotFound"
    assert pod_alive(kube_cluster, namespace, "same")  # a namesake is never deleted
    assert uids


async def test_logs_exactly_once_across_a_triggerer_restart(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    container_logs: Callable[..., dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    logs = container_logs("chatty", ["base"])
    logs["base"].write(["one", "two", "two"])
    uids = await make_pods(kube_cluster, namespace, {"chatty": outcome(duration=6)})
    logged = log_collector(capsys, caplog)

    first = trigger_for(sa_kubeconfig, namespace, "chatty", uids["chatty"], tmp_path, get_logs=True)
    task = asyncio.ensure_future(fire(first))
    await wait_until(lambda: len(logged()) >= 3)
    task.cancel()  # the triggerer stops: cleanup only, the pod stays
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await first.cleanup()
    assert pod_alive(kube_cluster, namespace, "chatty")
    logs["base"].write(["three", "two"])  # "two" again, later: a new line, not a replay
    second = trigger_for(
        sa_kubeconfig, namespace, "chatty", uids["chatty"], tmp_path, get_logs=True
    )
    payload = await asyncio.wait_for(fire(second), 60)
    assert payload["status"] == "success"
    assert logged() == ["one", "two", "two", "three", "two"]


def log_collector(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Callable[[], list[str]]:
    """The ``[base]`` lines the triggers logged so far. Airflow 3.3's structlog setup
    renders a trigger's log to stdout (in a triggerer, the task log); 3.0-3.2 leave it to
    the standard library's logging (the records pytest captures). One of the two holds
    every line."""
    from_stdout: list[str] = []

    def logged() -> list[str]:
        for row in capsys.readouterr().out.splitlines():
            if "[base] " in row and TRIGGER_LOGGER in row:
                from_stdout.append(row.split("[base] ", 1)[1].split("  ", 1)[0].strip())
        if from_stdout:
            return from_stdout
        return [
            record.getMessage().split("[base] ", 1)[1]
            for record in caplog.records
            if record.name == TRIGGER_LOGGER and record.getMessage().startswith("[base] ")
        ]

    return logged


async def test_two_triggers_following_one_pod_at_once_log_each_line_once(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
    container_logs: Callable[..., dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An overlapping fail-over: the old trigger still runs when the new one starts. The
    resume point on the pod is swapped, never overwritten, so only one logs a line."""
    logs = container_logs("twice", ["base"])
    logs["base"].write(["one", "two", "two"])
    uids = await make_pods(kube_cluster, namespace, {"twice": outcome(duration=8)})
    logged = log_collector(capsys, caplog)
    first, second = (
        trigger_for(sa_kubeconfig, namespace, "twice", uids["twice"], tmp_path, get_logs=True)
        for _ in range(2)
    )
    both = asyncio.gather(fire(first), fire(second))
    await wait_until(lambda: len(logged()) >= 3)
    logs["base"].write(["three", "two"])
    payloads = await asyncio.wait_for(both, 60)
    assert {p["status"] for p in payloads} == {"success"}
    assert logged() == ["one", "two", "two", "three", "two"]


async def test_without_patch_on_pods_the_lines_are_logged_and_a_warning_says_why(
    kube_cluster: TestCluster,
    namespace: str,
    tmp_path: Path,
    container_logs: Callable[..., dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kubeconfig = service_account_kubeconfig(
        kube_cluster.admin,
        kube_cluster.kubeconfig,
        namespace=namespace,
        out=tmp_path / "nopatch.kubeconfig",
        rules=MINIMAL_ROLE_RULES,
        name="asyncpod-nopatch",
    )
    logs = container_logs("nopatch", ["base"])
    logs["base"].write(["alpha", "beta"])
    uids = await make_pods(kube_cluster, namespace, {"nopatch": outcome(duration=2)})
    logged = log_collector(capsys, caplog)
    trigger = trigger_for(
        kubeconfig, namespace, "nopatch", uids["nopatch"], tmp_path, get_logs=True
    )
    payload = await asyncio.wait_for(fire(trigger), 60)
    assert payload["status"] == "success"
    assert logged() == ["alpha", "beta"]
    assert "grant 'patch' on pods" in caplog.text + capsys.readouterr().out


async def test_sessions_are_shared_per_loop_and_closed_by_the_last_user(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    uids = await make_pods(
        kube_cluster, namespace, {f"s{i}": outcome(duration=2) for i in range(3)}
    )
    triggers = [trigger_for(sa_kubeconfig, namespace, n, u, tmp_path) for n, u in uids.items()]
    tasks = [asyncio.ensure_future(fire(t)) for t in triggers]
    await wait_until(lambda: session_statistics().users >= 3)
    assert session_statistics().sessions == 1
    results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
    assert [r["status"] for r in results] == ["success"] * 3
    assert session_statistics().sessions == 0

    # dag.test() style: a fresh loop per trigger, in another thread; nothing leaks across.
    more = await make_pods(
        kube_cluster, namespace, {f"l{i}": outcome(duration=0.3) for i in range(2)}
    )
    seen: list[tuple[str, int]] = []

    def run_in_new_loops() -> None:
        for name, uid in more.items():
            trigger = trigger_for(sa_kubeconfig, namespace, name, uid, tmp_path)

            async def once(t: AsyncpodPodTrigger = trigger) -> None:
                event = await anext(t.run())
                seen.append((event.payload["status"], session_statistics().sessions))

            asyncio.run(once())

    thread = threading.Thread(target=run_in_new_loops)
    thread.start()
    await asyncio.to_thread(thread.join, 60)
    assert seen == [("success", 0), ("success", 0)]


async def test_200_triggers_on_one_loop_share_one_watch_and_never_get_a_pod(
    kube_cluster: TestCluster,
    sa_kubeconfig: Path,
    control_plane: LocalControlPlane,
    namespace: str,
    tmp_path: Path,
) -> None:
    count = 200
    uids = await make_pods(
        kube_cluster, namespace, {f"many-{i}": outcome(duration=4) for i in range(count)}
    )
    triggers = [trigger_for(sa_kubeconfig, namespace, n, u, tmp_path) for n, u in uids.items()]
    before = control_plane.request_counts()
    # Join the triggers' shared session (same cluster identity) to read its own counters.
    async with shared_cluster(KubeTarget(config_file=str(sa_kubeconfig)), namespace) as c:
        payloads = await asyncio.wait_for(asyncio.gather(*(fire(t) for t in triggers)), 240)
        stats = c.statistics()
    spent = control_plane.request_counts() - before
    assert [p["status"] for p in payloads] == ["success"] * count
    assert {p["pod_uid"] for p in payloads} == set(uids.values())
    assert all(p["pod_deleted"] for p in payloads)  # on_finish_action
    assert spent.get("GET", "pods") == 0  # cluster-wide: attached from the watch's cache
    (informer,) = stats.informers  # one watch for the namespace, whatever the count
    print(
        f"{count} triggers: server pod GET={spent.get('GET', 'pods'):g}; session lists={informer.lists} watches={informer.watches_opened} reconnects={informer.reconnects} requests={dict(stats.client.requests_sent)}"
    )
    assert informer.lists == 1
    # One watch, reopened only after the server ended it (an API server may end a watch
    # early, seen once in a loaded matrix run) or a reconnect, never one per trigger.
    assert informer.watches_opened <= 1 + informer.reconnects + informer.watches_ended
    # Every GET the session sent was its LIST or a WATCH: no per-pod request at all.
    assert stats.client.requests_sent.get("GET", 0) == informer.lists + informer.watches_opened
    assert session_statistics().sessions == 0


def start_operator(kubeconfig: Path, namespace: str, **kw: Any) -> KubernetesPodOperator:
    """The DAG's task that starts in the triggerer (and that a worker resumes)."""
    from asyncpod.airflow.operators import KubernetesPodOperator

    return KubernetesPodOperator(
        task_id="started", image="busybox:1.36", namespace=namespace, config_file=str(kubeconfig),
        kubernetes_conn_id=None, get_logs=False, start_from_trigger=True, **kw,
    )  # fmt: skip


def start_trigger(
    kubeconfig: Path, namespace: str, tmp_path: Path, try_number: int, **kw: Any
) -> AsyncpodPodStartTrigger:
    """A start trigger as the triggerer builds it, with the task instance it sets."""
    op = start_operator(kubeconfig, namespace, **kw)
    kwargs = dict((op.start_trigger_args.trigger_kwargs or {}) if op.start_trigger_args else {})
    trigger = AsyncpodPodStartTrigger(**kwargs)
    trigger.task_instance = SimpleNamespace(  # type: ignore[assignment]
        dag_id="d", task_id="started", run_id="r1", map_index=-1, try_number=try_number
    )
    return trigger


@from_3_3
async def test_start_trigger_creates_once_per_try_and_a_new_try_replaces_the_old_pod(
    kube_cluster: TestCluster, sa_kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    slow = outcome(duration=30)
    first = start_trigger(sa_kubeconfig, namespace, tmp_path, 1, annotations=slow)
    task = asyncio.ensure_future(fire(first))
    await wait_until(lambda: first.pod_uid is not None)
    task.cancel()  # triggerer restart: the pod stays
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert pod_alive(kube_cluster, namespace, first.pod_name)
    again = start_trigger(sa_kubeconfig, namespace, tmp_path, 1, annotations=slow)
    task = asyncio.ensure_future(fire(again))
    await wait_until(lambda: again.pod_uid is not None)
    assert (again.pod_name, again.pod_uid) == (first.pod_name, first.pod_uid)  # reattached
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # A new try: its own pod; the first try's pod goes.
    quick = outcome(duration=0.5)
    second = start_trigger(sa_kubeconfig, namespace, tmp_path, 2, annotations=quick)
    payload = await asyncio.wait_for(fire(second), 60)
    assert payload["status"] == "success"
    assert second.pod_name != first.pod_name
    assert second.pod_name.endswith("-2")
    assert not pod_alive(kube_cluster, namespace, first.pod_name)
    # The trigger keeps its pod; the worker that resumes the task deletes it.
    assert payload["pod_deleted"] is False
    assert pod_alive(kube_cluster, namespace, second.pod_name)
    resumed = start_operator(sa_kubeconfig, namespace, annotations=quick)
    ti = SimpleNamespace(xcom_push=lambda **_: None)
    await asyncio.to_thread(resumed.execute_complete, {"ti": ti}, payload)
    assert not pod_alive(kube_cluster, namespace, second.pod_name)


async def test_a_shared_cluster_entered_twice_is_refused_and_leaves_no_session(
    sa_kubeconfig: Path, namespace: str
) -> None:
    use = shared_cluster(KubeTarget(config_file=str(sa_kubeconfig)), namespace)
    async with use as cluster:
        with pytest.raises(UsageError, match="entered once"):
            await use.__aenter__()
        assert session_statistics().sessions == 1  # the first entry's, still open
        assert cluster.namespace == namespace
    assert session_statistics().sessions == 0
