"""The ``callbacks`` decisions and conversions (:mod:`asyncpod.airflow.callbacks`), no cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from asyncpod.airflow.callbacks import (
    CallbackCaller,
    ExecutionMode,
    KubernetesPodOperatorCallback,
    callback_list,
    merge_changes,
    pod_for_callbacks,
    pod_from_callbacks,
    resume_calls,
    sync_client,
    sync_mode,
)
from asyncpod.airflow.connection import KubeTarget
from asyncpod.airflow.operators import (
    NO_EFFECT,
    UNSUPPORTED,
    KubernetesPodOperator,
    starts_in_triggerer,
)
from asyncpod.airflow.triggers import trigger_finish_action

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1"}, "annotations": {"x": "y"}},
    "spec": {"containers": [{"name": "base", "image": "busybox"}], "restartPolicy": "Never"},
}

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: ctx, context: {cluster: c, user: u, namespace: team}}]
current-context: ctx
"""


class Recorder(KubernetesPodOperatorCallback):
    calls: list[tuple[str, dict[str, Any]]] = []  # noqa: RUF012 - a test's shared record

    @staticmethod
    def on_sync_client_creation(*, client: Any, operator: Any, **kwargs: Any) -> None:
        Recorder.calls.append(("on_sync_client_creation", {"client": client}))

    @staticmethod
    def on_pod_manifest_created(*, pod_request: Any, **kwargs: Any) -> None:
        Recorder.calls.append(("on_pod_manifest_created", kwargs))
        pod_request.metadata.labels["cost-center"] = "42"  # a callback may change the request

    @staticmethod
    def on_pod_creation(*, pod: Any, **kwargs: Any) -> None:
        Recorder.calls.append(("on_pod_creation", {"pod": pod, **kwargs}))


def test_callbacks_are_kept_as_the_reference_keeps_them() -> None:
    assert callback_list(None) == []
    assert callback_list([]) == []
    assert callback_list(Recorder) == [Recorder]
    assert callback_list([Recorder, Recorder]) == [Recorder, Recorder]


@pytest.mark.parametrize(
    ("status", "cleanup"),
    [
        ("success", True),
        ("failed", False),
        ("skipped", False),
        ("timeout", False),
        ("error", False),
    ],
)
def test_resume_calls_completion_and_teardown_always_cleanup_on_success_only(
    status: str, cleanup: bool
) -> None:
    assert resume_calls(status) == (("on_pod_completion", "on_pod_teardown"), cleanup)


def test_a_trigger_a_worker_resumes_keeps_the_pod_for_that_worker() -> None:
    assert trigger_finish_action("delete_pod", worker_resumes=True) == "keep_pod"
    assert trigger_finish_action("delete_succeeded_pod", worker_resumes=True) == "keep_pod"
    assert trigger_finish_action("delete_pod", worker_resumes=False) == "delete_pod"
    assert (
        trigger_finish_action("delete_succeeded_pod", worker_resumes=False)
        == "delete_succeeded_pod"
    )


def test_the_parameters_are_no_longer_refused() -> None:
    for name in ("callbacks", "progress_callback", "log_formatter", "logging_interval"):
        assert name not in UNSUPPORTED
    assert {"progress_callback", "logging_interval"} <= set(NO_EFFECT)
    op = KubernetesPodOperator(
        task_id="t", image="busybox", callbacks=Recorder, progress_callback=print,
        logging_interval=5, log_formatter=lambda c, m: m,
    )  # fmt: skip
    assert op.callbacks == [Recorder]


def test_a_task_with_callbacks_starts_on_a_worker() -> None:
    assert not starts_in_triggerer(
        wanted=True, deferrable=True, airflow_can=lambda: True, callbacks=True
    )
    assert starts_in_triggerer(
        wanted=True, deferrable=True, airflow_can=lambda: True, callbacks=False
    )
    op = KubernetesPodOperator(
        task_id="t", image="busybox", callbacks=[Recorder], start_from_trigger=True
    )
    assert not getattr(op, "start_from_trigger", False)


def test_only_a_trigger_run_inline_without_callbacks_deletes_its_pod() -> None:
    def told(**kwargs: Any) -> str:
        op = KubernetesPodOperator(task_id="t", image="busybox", **kwargs)
        return op.build_trigger(namespace="n", pod_name="p", pod_uid="u").on_finish_action

    assert told(callbacks=Recorder) == "keep_pod"
    assert told() == "keep_pod"  # deferrable: the resuming worker deletes
    assert told(deferrable=False) == "delete_pod"
    assert told(deferrable=False, on_finish_action="delete_succeeded_pod") == (
        "delete_succeeded_pod"
    )
    assert told(deferrable=False, callbacks=Recorder) == "keep_pod"


def test_merge_applies_only_what_changed() -> None:
    original = {"metadata": {"labels": {"a": "1"}, "unknown": 1}, "spec": {"newField": True}}
    before = {"metadata": {"labels": {"a": "1"}}, "spec": {}}
    after = {"metadata": {"labels": {"a": "2", "b": "3"}}, "spec": {}}
    assert merge_changes(original, before, after) == {
        "metadata": {"labels": {"a": "2", "b": "3"}, "unknown": 1},
        "spec": {"newField": True},
    }
    removed: dict[str, Any] = {"metadata": {}, "spec": {}}
    assert merge_changes(original, before, removed)["metadata"] == {"unknown": 1}
    assert merge_changes(original, before, before) == original


def test_pods_are_v1pod_objects_when_kubernetes_is_importable() -> None:
    from kubernetes.client import V1Pod  # type: ignore[import-untyped]

    pod = pod_for_callbacks(POD)
    assert isinstance(pod, V1Pod)
    assert pod.metadata.name == "p"
    assert pod.spec.containers[0].image == "busybox"
    assert pod_from_callbacks(pod) == POD


def test_without_kubernetes_pods_are_dicts_and_there_is_no_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    monkeypatch.setitem(sys.modules, "kubernetes.client", None)
    pod = pod_for_callbacks(POD)
    assert pod == POD
    assert pod is not POD
    pod["metadata"]["labels"]["b"] = "2"
    assert POD["metadata"]["labels"] == {"a": "1"}
    assert pod_from_callbacks(pod)["metadata"]["labels"] == {"a": "1", "b": "2"}
    config = tmp_path / "config"
    config.write_text(KUBECONFIG)
    assert sync_client(KubeTarget(config_file=str(config))) is None


def test_the_sync_client_is_built_from_the_same_kubeconfig(tmp_path: Path) -> None:
    from kubernetes.client import CoreV1Api

    config = tmp_path / "config"
    config.write_text(KUBECONFIG)
    client = sync_client(KubeTarget(config_file=str(config), context="ctx"))
    assert isinstance(client, CoreV1Api)
    assert client.api_client.configuration.host == "https://127.0.0.1:6443"
    inline = sync_client(
        KubeTarget(kube_config={"apiVersion": "v1", "kind": "Config", "clusters": []})
    )
    assert inline is None  # a config the loader refuses: None, logged


def test_sync_mode_is_the_references_enum_and_equal_to_ours() -> None:
    from airflow.providers.cncf.kubernetes.callbacks import ExecutionMode as Theirs

    assert sync_mode() is Theirs.SYNC
    assert sync_mode() == ExecutionMode.SYNC
    assert sync_mode() == "sync"  # str enums: equal by value


def test_the_caller_makes_one_client_and_honours_a_changed_request(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(KUBECONFIG)
    Recorder.calls = []
    op = KubernetesPodOperator(task_id="t", image="busybox", callbacks=Recorder)
    targets: list[int] = []

    def target() -> KubeTarget:
        targets.append(1)
        return KubeTarget(config_file=str(config))

    caller = CallbackCaller(op.callbacks, operator=op, target=target)
    manifest = {**POD, "spec": {**POD["spec"], "someFutureField": {"k": "v"}}}
    changed = caller.manifest_created(manifest, {"ti": None})
    assert changed["metadata"]["labels"] == {"a": "1", "cost-center": "42"}
    assert changed["spec"]["someFutureField"] == {"k": "v"}  # unknown to the models: kept
    caller.call("on_pod_creation", {"ti": None}, pod=caller.pod(POD))
    assert [name for name, _ in Recorder.calls] == [
        "on_sync_client_creation", "on_pod_manifest_created", "on_pod_creation",
    ]  # fmt: skip
    assert targets == [1]
    creation = Recorder.calls[2][1]
    assert creation["mode"] == "sync"
    assert creation["operator"] is op
    assert creation["client"] is Recorder.calls[0][1]["client"]
    assert creation["pod"].metadata.name == "p"


def test_not_deferrable_a_pod_that_never_started_gets_no_more_calls() -> None:
    assert resume_calls("timeout", started=False) == ((), False)
    assert resume_calls("success", started=True) == (
        ("on_pod_completion", "on_pod_teardown"),
        True,
    )


def test_the_inline_trigger_lets_the_hook_format_each_line() -> None:
    from asyncpod.airflow.operators import _InlineTrigger, _log_time
    from asyncpod.kube.logs import LogLine

    seen: list[LogLine] = []
    logged: list[str] = []

    def hook(line: LogLine) -> str | None:
        seen.append(line)
        return None if line.text == "plain" else f"<{line.container}> {line.text}"

    trigger = _InlineTrigger(on_line=hook, pod_name="p", pod_namespace="n")
    trigger.log.info = lambda fmt, *args: logged.append(fmt % args)  # type: ignore[method-assign]
    trigger._emit_line(LogLine("2024-05-01T10:00:00.123456789Z", "formatted", "base"))
    trigger._emit_line(LogLine("2024-05-01T10:00:01Z", "plain", "base"))
    assert logged == ["<base> formatted", "[base] plain"]
    assert len(seen) == 2
    assert _log_time("2024-05-01T10:00:00.123456789Z").year == 2024
    assert _log_time("not a time") is None
