"""Unit tests of asyncpod.core.lifecycle: pod dicts in, states and results out.

The pods under ``tests/unit/pods/`` are hand-built to look like what kube-apiserver
returns (see the README there); an integration test will later record the same
situations from the local control plane. Variants are made by editing a fresh copy of
a fixture inside the test, so each test says exactly what it changed.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncpod.core.lifecycle import (
    BLOCKING_WAIT_REASONS,
    FATAL_WAIT_REASONS,
    PodState,
    StateChange,
    blocking_reason,
    build_result,
    container_results,
    events_from_list,
    is_fatal_wait,
    is_terminal,
    main_finished,
    parse_time,
    pod_reason,
    pod_state,
    transition,
)
from asyncpod.errors import PodFailedError
from asyncpod.results import ContainerKind, Outcome, PodEvent, PodResult

PODS = Path(__file__).parent / "pods"
UTC = timezone.utc


def load(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture, safe to edit."""
    data: dict[str, Any] = json.loads((PODS / f"{name}.json").read_text())
    return data


def at(text: str) -> datetime:
    """2024-05-01 at HH:MM:SS[.ffffff] UTC."""
    return datetime.fromisoformat(f"2024-05-01T{text}+00:00")


ALL_PODS = [
    "pending-unschedulable",
    "image-pull-backoff",
    "running",
    "succeeded-init",
    "failed-error",
    "oomkilled",
    "deadline-exceeded",
    "evicted",
    "sidecar-native",
    "sidecar-classic",
]


# --------------------------------------------------------------------------------------
# pod_state / is_terminal / main_finished
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("pending-unschedulable", PodState.PENDING),
        ("image-pull-backoff", PodState.SCHEDULED),
        ("running", PodState.RUNNING),
        ("succeeded-init", PodState.SUCCEEDED),
        ("failed-error", PodState.FAILED),
        ("oomkilled", PodState.FAILED),
        ("deadline-exceeded", PodState.FAILED),
        ("evicted", PodState.FAILED),
        ("sidecar-native", PodState.SUCCEEDED),
        ("sidecar-classic", PodState.RUNNING),
    ],
)
def test_pod_state_of_fixtures(name: str, state: PodState) -> None:
    assert pod_state(load(name)) is state


def test_pod_state_terminating_unknown_and_empty() -> None:
    pod = load("running")
    pod["metadata"]["deletionTimestamp"] = "2024-05-01T10:01:00Z"
    assert pod_state(pod) is PodState.TERMINATING
    pod["status"]["phase"] = "Failed"  # a terminal phase wins over the deletion mark
    assert pod_state(pod) is PodState.FAILED
    unknown = load("running")
    unknown["status"]["phase"] = "Unknown"
    assert pod_state(unknown) is PodState.UNKNOWN
    assert pod_state({}) is PodState.PENDING
    assert pod_state({"status": None, "spec": None, "metadata": None}) is PodState.PENDING


@pytest.mark.parametrize("name", ALL_PODS)
def test_is_terminal_matches_phase(name: str) -> None:
    pod = load(name)
    assert is_terminal(pod) is (pod["status"]["phase"] in ("Succeeded", "Failed"))


def test_pod_state_terminal_property() -> None:
    assert {s for s in PodState if s.terminal} == {
        PodState.SUCCEEDED,
        PodState.FAILED,
        PodState.DELETED,
    }


@pytest.mark.parametrize(
    ("name", "finished"),
    [
        ("sidecar-classic", True),
        ("succeeded-init", True),
        ("running", False),
        ("pending-unschedulable", False),
        ("image-pull-backoff", False),
    ],
)
def test_main_finished(name: str, finished: bool) -> None:
    assert main_finished(load(name)) is finished


def test_main_finished_uses_named_container() -> None:
    pod = load("sidecar-classic")
    assert main_finished(pod, main_container="logship") is False


# --------------------------------------------------------------------------------------
# parse_time
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", at("10:00:00")),
        ("2024-05-01T10:00:01.204186Z", at("10:00:01.204186")),
        ("2024-05-01T10:00:01.5Z", at("10:00:01.500000")),
        ("2024-05-01T10:00:01.123456789Z", at("10:00:01.123456")),  # log timestamps: ns
        ("2024-05-01t10:00:00z", at("10:00:00")),
        ("2024-05-01T12:00:00+02:00", at("10:00:00")),
        ("2024-05-01T08:30:00-0130", at("10:00:00")),
        ("2024-05-01T10:00:60Z", at("10:00:59")),  # leap second clamped
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [None, ""])
def test_parse_time_empty(text: str | None) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize(
    "text",
    ["2024-05-01", "2024-05-01T10:00:00", "2024-13-01T10:00:00Z", "yesterday", "2024-05-01T10:00Z"],
)
def test_parse_time_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_time(text)


# --------------------------------------------------------------------------------------
# container_results
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "succeeded-init",
            [
                ("fetch", ContainerKind.INIT),
                ("unpack", ContainerKind.INIT),
                ("main", ContainerKind.MAIN),
            ],
        ),
        (
            "sidecar-native",
            [
                ("migrate", ContainerKind.INIT),
                ("main", ContainerKind.MAIN),
                ("proxy", ContainerKind.SIDECAR),
            ],
        ),
        # The kubelet sorts containerStatuses by name; results follow the spec.
        ("sidecar-classic", [("main", ContainerKind.MAIN), ("logship", ContainerKind.SIDECAR)]),
        ("pending-unschedulable", [("main", ContainerKind.MAIN)]),
    ],
)
def test_container_results_order_and_kinds(
    name: str, expected: list[tuple[str, ContainerKind]]
) -> None:
    results = container_results(load(name))
    assert [(c.name, c.kind) for c in results] == expected


def test_container_results_of_a_succeeded_pod() -> None:
    fetch, unpack, main = container_results(load("succeeded-init"))
    assert fetch.state == "terminated"
    assert fetch.exit_code == 0
    assert fetch.reason == "Completed"
    assert fetch.image == "curlimages/curl:8.7.1"  # the spec's, not the resolved one
    assert (fetch.started_at, fetch.finished_at) == (at("10:00:02"), at("10:00:04"))
    assert unpack.duration == timedelta(seconds=1)
    assert main.termination_message == '{"rows": 1024}'
    assert main.restart_count == 0


def test_container_results_of_a_pod_never_scheduled() -> None:
    (main,) = container_results(load("pending-unschedulable"))
    assert main.state is None
    assert main.exit_code is None
    assert main.image == "python:3.12-slim"


def test_container_results_of_a_waiting_container() -> None:
    (main,) = container_results(load("image-pull-backoff"))
    assert main.state == "waiting"
    assert main.reason == "ImagePullBackOff"
    assert main.message is not None
    assert "registry.example.com/team/trainer:v2" in main.message
    assert main.exit_code is None


def test_container_results_read_last_state_while_waiting_to_restart() -> None:
    pod = load("sidecar-native")
    proxy = pod["status"]["initContainerStatuses"][1]
    proxy["lastState"] = {"terminated": proxy["state"]["terminated"]}
    proxy["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    proxy["restartCount"] = 3
    result = next(c for c in container_results(pod) if c.name == "proxy")
    assert (result.state, result.reason, result.exit_code) == ("waiting", "CrashLoopBackOff", 143)
    assert result.finished_at == at("10:00:21")
    assert result.restart_count == 3


def test_container_results_ignore_last_state_while_running() -> None:
    pod = load("running")
    pod["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T10:00:03Z"}
    }
    (main,) = container_results(pod)
    assert main.state == "running"
    assert main.exit_code is None
    assert main.finished_at is None


def test_container_results_main_container_from_annotation_or_argument() -> None:
    pod = load("sidecar-classic")
    kinds = {c.name: c.kind for c in container_results(pod, main_container="logship")}
    assert kinds == {"logship": ContainerKind.MAIN, "main": ContainerKind.SIDECAR}
    pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] = "logship"
    assert container_results(pod)[0].name == "logship"
    del pod["metadata"]["annotations"]
    assert container_results(pod)[0].name == "main"  # the default name


def test_container_results_report_statuses_missing_from_spec() -> None:
    pod = load("succeeded-init")
    del pod["spec"]
    names = [(c.name, c.kind) for c in container_results(pod)]
    assert names == [
        ("fetch", ContainerKind.INIT),
        ("unpack", ContainerKind.INIT),
        ("main", ContainerKind.MAIN),
    ]


def test_container_results_tolerate_bad_timestamps() -> None:
    pod = load("failed-error")
    pod["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"] = "not a time"
    (main,) = container_results(pod)
    assert main.started_at is None
    assert main.exit_code == 3


# --------------------------------------------------------------------------------------
# blocking_reason / is_fatal_wait
# --------------------------------------------------------------------------------------


def test_blocking_reason_unschedulable() -> None:
    blocked = blocking_reason(load("pending-unschedulable"))
    assert blocked is not None
    assert blocked[0] == "Unschedulable"
    assert "3 Insufficient cpu" in blocked[1]


def test_blocking_reason_image_pull_names_the_container() -> None:
    assert blocking_reason(load("image-pull-backoff")) == (
        "ImagePullBackOff",
        'container main: Back-off pulling image "registry.example.com/team/trainer:v2"',
    )


@pytest.mark.parametrize("name", ["running", "succeeded-init", "failed-error", "sidecar-classic"])
def test_blocking_reason_none_when_progressing_or_done(name: str) -> None:
    assert blocking_reason(load(name)) is None


def test_blocking_reason_ignores_a_stale_unschedulable_condition_once_bound() -> None:
    pod = load("pending-unschedulable")
    pod["spec"]["nodeName"] = "kwok-node-2"  # bound before the condition was updated
    assert blocking_reason(pod) is None


def test_blocking_reason_none_for_ordinary_waiting() -> None:
    pod = load("image-pull-backoff")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    assert blocking_reason(pod) is None


def test_blocking_reason_init_container_first() -> None:
    pod = load("succeeded-init")
    pod["status"]["phase"] = "Pending"
    pod["status"]["initContainerStatuses"][1]["state"] = {
        "waiting": {
            "reason": "CreateContainerConfigError",
            "message": 'secret "db-creds" not found',
        }
    }
    pod["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ErrImagePull", "message": "not found"}
    }
    assert blocking_reason(pod) == (
        "CreateContainerConfigError",
        'container unpack: secret "db-creds" not found',
    )


def test_blocking_reason_without_message_uses_reason() -> None:
    pod = load("image-pull-backoff")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "InvalidImageName"}}
    assert blocking_reason(pod) == ("InvalidImageName", "container main: InvalidImageName")


@pytest.mark.parametrize(
    ("reason", "fatal"),
    [
        ("InvalidImageName", True),
        ("CreateContainerConfigError", True),
        ("ErrImageNeverPull", True),
        ("ErrImagePull", False),
        ("ImagePullBackOff", False),
        ("CreateContainerError", False),
        ("ContainerCreating", False),
        ("Unschedulable", False),
        (None, False),
    ],
)
def test_is_fatal_wait(reason: str | None, fatal: bool) -> None:
    assert is_fatal_wait(reason) is fatal


def test_fatal_reasons_are_blocking_reasons() -> None:
    assert FATAL_WAIT_REASONS < BLOCKING_WAIT_REASONS


# --------------------------------------------------------------------------------------
# pod_reason
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason", "message_part"),
    [
        ("succeeded-init", "Completed", None),
        ("sidecar-native", "Completed", None),
        ("failed-error", "Error", "container main exited with code 3"),
        ("oomkilled", "OOMKilled", "container main was OOM-killed (exit code 137)"),
        ("deadline-exceeded", "DeadlineExceeded", "longer than the specified deadline"),
        ("evicted", "Evicted", "low on resource: ephemeral-storage"),
        ("pending-unschedulable", "Unschedulable", "Insufficient cpu"),
        ("image-pull-backoff", "ImagePullBackOff", "container main: Back-off"),
        ("sidecar-classic", "Completed", "container main exited with code 0"),
        ("running", None, None),
    ],
)
def test_pod_reason_of_fixtures(name: str, reason: str | None, message_part: str | None) -> None:
    got_reason, got_message = pod_reason(load(name))
    assert got_reason == reason
    if message_part is None:
        assert got_message is None
    else:
        assert got_message is not None
        assert message_part in got_message


def test_pod_reason_error_keeps_termination_message_out() -> None:
    _, message = pod_reason(load("failed-error"))
    assert message == "container main exited with code 3"


def test_pod_reason_failed_init_container_comes_first() -> None:
    pod = load("succeeded-init")
    pod["status"]["phase"] = "Failed"
    unpack = pod["status"]["initContainerStatuses"][1]["state"]["terminated"]
    unpack.update(exitCode=1, reason="Error")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
    assert pod_reason(pod) == ("Error", "init container unpack exited with code 1")


def test_pod_reason_disruption_target_without_status_reason() -> None:
    pod = load("evicted")
    del pod["status"]["reason"]
    reason, message = pod_reason(pod)
    assert reason == "TerminationByKubelet"
    assert message is not None
    assert message.startswith("The node was low on resource")


def test_pod_reason_runtime_error_includes_its_message() -> None:
    pod = load("failed-error")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    terminated.update(
        exitCode=128,
        reason="StartError",
        message='exec: "validate": executable file not found in $PATH',
    )
    assert pod_reason(pod) == (
        "StartError",
        'container main exited with code 128: exec: "validate": executable file not found in $PATH',
    )


def test_pod_reason_oomkilled_sidecar_beats_main_error() -> None:
    pod = load("sidecar-classic")
    pod["status"]["phase"] = "Failed"
    pod["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 137, "reason": "OOMKilled"}
    }
    pod["status"]["containerStatuses"][1]["state"]["terminated"].update(exitCode=1, reason="Error")
    assert pod_reason(pod) == (
        "OOMKilled",
        "sidecar logship was OOM-killed (exit code 137): it exceeded its memory limit",
    )


def test_pod_reason_signal_is_reported() -> None:
    pod = load("failed-error")
    pod["status"]["containerStatuses"][0]["state"]["terminated"].update(exitCode=143, signal=15)
    assert pod_reason(pod) == ("Error", "container main exited with code 143 (signal 15)")


def test_pod_reason_failed_without_any_detail() -> None:
    pod = load("pending-unschedulable")
    pod["status"] = {"phase": "Failed", "message": "node lost"}
    assert pod_reason(pod) == ("Error", "node lost")


# --------------------------------------------------------------------------------------
# build_result
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("succeeded-init", Outcome.SUCCEEDED),
        ("sidecar-native", Outcome.SUCCEEDED),  # the sidecar's 143 does not count
        ("sidecar-classic", Outcome.SUCCEEDED),  # pod still Running; main exited 0
        ("failed-error", Outcome.FAILED),
        ("oomkilled", Outcome.FAILED),
        ("evicted", Outcome.FAILED),
        ("deadline-exceeded", Outcome.TIMED_OUT),
    ],
)
def test_build_result_outcome_from_pod(name: str, outcome: Outcome) -> None:
    result = build_result(load(name))
    assert result.outcome is outcome
    assert result.ok is (outcome is Outcome.SUCCEEDED)


def test_build_result_of_a_succeeded_pod() -> None:
    result = build_result(load("succeeded-init"))
    assert (result.namespace, result.name) == ("default", "report-h2k9d")
    assert result.uid == "2c3d4e5f-6071-4829-ab3c-4d5e6f7a8b04"
    assert result.phase == "Succeeded"
    assert (result.reason, result.message) == ("Completed", None)
    assert result.created_at == at("10:00:00")
    assert result.scheduled_at == at("10:00:01")
    assert result.started_at == at("10:00:01")  # status.startTime
    assert result.finished_at == at("10:00:30")  # the latest container exit
    assert result.duration == timedelta(seconds=29)
    assert result.exit_code == 0
    assert result.termination_message == '{"rows": 1024}'
    assert result.node_name == "kwok-node-0"
    assert [c.name for c in result.containers] == ["fetch", "unpack", "main"]
    assert result.raise_for_outcome() is result


def test_build_result_of_a_failed_pod() -> None:
    result = build_result(load("failed-error"))
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 3
    assert result.task_key == "validate/shard-3"
    assert result.termination_message is not None
    assert result.termination_message.endswith("17 rows without an id\n")
    with pytest.raises(PodFailedError) as info:
        result.raise_for_outcome()
    assert info.value.result is result
    text = str(info.value)
    assert "pod default/validate-x7c1p failed (Error, exit code 3) after 11.0s" in text
    assert "ValueError: shard 3 has 17 rows without an id" in text
    assert "\n" not in text


def test_build_result_started_falls_back_to_first_container_start() -> None:
    pod = load("succeeded-init")
    del pod["status"]["startTime"]
    assert build_result(pod).started_at == at("10:00:02")


def test_build_result_finished_falls_back_to_conditions_when_nothing_ran() -> None:
    pod = load("image-pull-backoff")
    pod["status"].update(phase="Failed", reason="DeadlineExceeded", message="deadline")
    pod["status"]["conditions"][2]["lastTransitionTime"] = "2024-05-01T10:01:00Z"
    result = build_result(pod)
    assert result.outcome is Outcome.TIMED_OUT
    assert result.reason == "DeadlineExceeded"
    assert result.finished_at == at("10:01:00")
    assert result.exit_code is None


def test_build_result_requires_an_outcome_for_an_unfinished_pod() -> None:
    with pytest.raises(ValueError, match=r"default/etl-5m9xz has not finished \(phase Running\)"):
        build_result(load("running"))


@pytest.mark.parametrize(
    ("name", "outcome", "reason", "message_part"),
    [
        ("running", Outcome.CANCELLED, "Cancelled", "cancelled"),
        ("running", Outcome.DELETED, "DeletedExternally", "deleted"),
        ("running", Outcome.TIMED_OUT, "RunTimeout", "deadline"),
        # A stuck pod that timed out says why it was stuck ...
        ("image-pull-backoff", Outcome.TIMED_OUT, "ImagePullBackOff", "Back-off pulling"),
        # ... but a cancellation is a cancellation.
        ("image-pull-backoff", Outcome.CANCELLED, "Cancelled", "cancelled"),
        ("pending-unschedulable", Outcome.ERROR, "Unschedulable", "Insufficient"),
    ],
)
def test_build_result_default_reason_for_given_outcome(
    name: str, outcome: Outcome, reason: str, message_part: str
) -> None:
    result = build_result(load(name), outcome=outcome)
    assert result.outcome is outcome
    assert result.reason == reason
    assert result.message is not None
    assert message_part in result.message


def test_build_result_explicit_reason_and_message_win() -> None:
    result = build_result(
        load("pending-unschedulable"),
        outcome=Outcome.TIMED_OUT,
        reason="ScheduleTimeout",
        message="not scheduled within 300s",
    )
    assert (result.reason, result.message) == ("ScheduleTimeout", "not scheduled within 300s")
    assert result.scheduled_at is None
    assert result.started_at is None
    assert result.duration is None
    assert result.node_name is None
    assert result.task_key == "train/7"


def test_build_result_keeps_explicit_reason_with_derived_message() -> None:
    result = build_result(load("oomkilled"), reason="Custom")
    assert (result.reason, result.message) == ("Custom", None)


def test_build_result_carries_events() -> None:
    events = events_from_list(load("events-image-pull"))
    result = build_result(load("image-pull-backoff"), outcome=Outcome.FAILED, events=iter(events))
    assert result.events == events


def test_build_result_does_not_mutate_the_pod() -> None:
    pod = load("evicted")
    before = copy.deepcopy(pod)
    build_result(pod, events=())
    assert pod == before


@pytest.mark.parametrize("name", ALL_PODS)
def test_build_result_round_trips_through_dict(name: str) -> None:
    pod = load(name)
    outcome = None if is_terminal(pod) or main_finished(pod) else Outcome.CANCELLED
    result = build_result(pod, outcome=outcome)
    assert PodResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --------------------------------------------------------------------------------------
# events_from_list
# --------------------------------------------------------------------------------------


def test_events_from_list_sorted_with_both_field_generations() -> None:
    events = events_from_list(load("events-image-pull"))
    assert [(e.reason, e.count) for e in events] == [
        ("Scheduled", 1),
        ("Pulling", 4),
        ("Failed", 4),
        ("BackOff", 12),
        ("Failed", 9),
    ]
    scheduled, pulling, failed, backoff, series = events
    # New-style: eventTime only, source in reportingComponent.
    assert scheduled.first_seen == at("10:00:01.204186")
    assert scheduled.last_seen == scheduled.first_seen
    assert scheduled.source == "default-scheduler"
    # Old-style: firstTimestamp / lastTimestamp / count / source.component.
    assert (pulling.first_seen, pulling.last_seen) == (at("10:00:02"), at("10:02:09"))
    assert pulling.source == "kubelet"
    assert failed.type == "Warning"
    assert "NotFound" in failed.message
    assert backoff.type == "Normal"
    assert backoff.last_seen == at("10:08:00")  # still backing off: last, yet listed by first
    # series: count and lastObservedTime.
    assert (series.first_seen, series.last_seen) == (at("10:04:00.511324"), at("10:06:30.100200"))


def test_events_from_list_events_k8s_io_names_and_gaps() -> None:
    body = {
        "items": [
            {
                "reason": "Killing",
                "note": "Stopping container main",
                "deprecatedCount": 2,
                "deprecatedFirstTimestamp": "2024-05-01T10:00:09Z",
                "deprecatedLastTimestamp": "2024-05-01T10:00:10Z",
                "deprecatedSource": {"component": "kubelet"},
                "type": "Normal",
            },
            {"reason": "Mystery", "metadata": {}},
        ]
    }
    untimed, killing = events_from_list(body)
    assert untimed == PodEvent("Normal", "Mystery", "")
    assert killing == PodEvent(
        "Normal",
        "Killing",
        "Stopping container main",
        count=2,
        first_seen=at("10:00:09"),
        last_seen=at("10:00:10"),
        source="kubelet",
    )


def test_events_from_list_empty() -> None:
    assert events_from_list({"kind": "EventList", "items": []}) == ()
    assert events_from_list({}) == ()


# --------------------------------------------------------------------------------------
# transition
# --------------------------------------------------------------------------------------


def test_transition_first_sight_is_always_reported() -> None:
    pod = load("running")
    change = transition(None, pod)
    assert change == StateChange(PodState.RUNNING, None, started=("main",))
    assert change is not None
    assert change.pod is pod
    assert change.state_changed
    assert change.resource_version == "1410"


def test_transition_first_sight_of_a_finished_and_a_stuck_pod() -> None:
    done = transition(None, load("succeeded-init"))
    assert done is not None
    assert done.terminated == ("fetch", "unpack", "main")
    stuck = transition(None, load("pending-unschedulable"))
    assert stuck is not None
    assert stuck.blocked is not None
    assert stuck.blocked[0] == "Unschedulable"


def test_transition_nothing_observable() -> None:
    pod = load("running")
    assert transition(pod, pod) is None
    newer = copy.deepcopy(pod)
    newer["metadata"]["resourceVersion"] = "1411"
    newer["status"]["conditions"][0]["lastProbeTime"] = "2024-05-01T10:00:09Z"
    newer["metadata"]["labels"]["extra"] = "x"
    assert transition(pod, newer) is None


def test_transition_scheduled() -> None:
    old = load("pending-unschedulable")
    new = copy.deepcopy(old)
    new["spec"]["nodeName"] = "kwok-node-1"
    new["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T10:00:30Z"}
    ]
    change = transition(old, new)
    assert change == StateChange(PodState.SCHEDULED, PodState.PENDING)


def test_transition_container_started_then_terminated() -> None:
    waiting = load("image-pull-backoff")
    waiting["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ContainerCreating"}
    }
    running = copy.deepcopy(waiting)
    running["status"]["phase"] = "Running"
    running["status"]["containerStatuses"][0]["state"] = {
        "running": {"startedAt": "2024-05-01T10:00:04Z"}
    }
    done = copy.deepcopy(running)
    done["status"]["phase"] = "Succeeded"
    done["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 0, "reason": "Completed"}
    }
    assert transition(waiting, running) == StateChange(
        PodState.RUNNING, PodState.SCHEDULED, started=("main",)
    )
    assert transition(running, done) == StateChange(
        PodState.SUCCEEDED, PodState.RUNNING, terminated=("main",)
    )
    # Missed the running state entirely: only the termination is reported.
    assert transition(waiting, done) == StateChange(
        PodState.SUCCEEDED, PodState.SCHEDULED, terminated=("main",)
    )


def test_transition_sidecar_container_change_without_state_change() -> None:
    old = load("sidecar-classic")
    new = copy.deepcopy(old)
    new["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": 0, "reason": "Completed"}
    }
    change = transition(old, new)
    assert change == StateChange(PodState.RUNNING, PodState.RUNNING, terminated=("logship",))
    assert change is not None
    assert not change.state_changed


def test_transition_becoming_blocked_and_image_pull_flapping() -> None:
    creating = load("image-pull-backoff")
    creating["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ContainerCreating"}
    }
    pulling_failed = copy.deepcopy(creating)
    pulling_failed["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "ErrImagePull", "message": "not found"}
    }
    backoff = load("image-pull-backoff")
    change = transition(creating, pulling_failed)
    assert change == StateChange(
        PodState.SCHEDULED,
        PodState.SCHEDULED,
        blocked=("ErrImagePull", "container main: not found"),
    )
    # The kubelet alternates ErrImagePull and ImagePullBackOff: not news.
    assert transition(pulling_failed, backoff) is None
    assert transition(backoff, pulling_failed) is None
    # A different reason is.
    config = copy.deepcopy(backoff)
    config["status"]["containerStatuses"][0]["state"] = {
        "waiting": {"reason": "CreateContainerConfigError", "message": "secret missing"}
    }
    blocked = transition(backoff, config)
    assert blocked is not None
    assert blocked.blocked == ("CreateContainerConfigError", "container main: secret missing")
    # So is getting unstuck.
    unblocked = transition(backoff, creating)
    assert unblocked == StateChange(PodState.SCHEDULED, PodState.SCHEDULED)


def test_transition_restart_is_reported() -> None:
    old = load("running")
    restarted = copy.deepcopy(old)
    restarted["status"]["containerStatuses"][0]["restartCount"] = 1
    assert transition(old, restarted) == StateChange(
        PodState.RUNNING, PodState.RUNNING, started=("main",)
    )
    crashed = copy.deepcopy(old)
    crashed["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    crashed["status"]["containerStatuses"][0]["restartCount"] = 1
    assert transition(old, crashed) == StateChange(
        PodState.RUNNING, PodState.RUNNING, terminated=("main",)
    )


@pytest.mark.parametrize("name", ["running", "succeeded-init", "pending-unschedulable"])
def test_transition_deleted_is_always_reported(name: str) -> None:
    pod = load(name)
    change = transition(pod, pod, deleted=True)
    assert change is not None
    assert change.state is PodState.DELETED
    assert change.previous is pod_state(pod)
    assert change.blocked is None
    first = transition(None, pod, deleted=True)
    assert first is not None
    assert first.state is PodState.DELETED


def test_transition_terminating() -> None:
    old = load("running")
    new = copy.deepcopy(old)
    new["metadata"]["deletionTimestamp"] = "2024-05-01T10:02:00Z"
    assert transition(old, new) == StateChange(PodState.TERMINATING, PodState.RUNNING)


@pytest.mark.parametrize("old_name", ALL_PODS)
@pytest.mark.parametrize("new_name", ["running", "succeeded-init", "image-pull-backoff"])
def test_transition_does_not_mutate_inputs(old_name: str, new_name: str) -> None:
    old, new = load(old_name), load(new_name)
    old_copy, new_copy = copy.deepcopy(old), copy.deepcopy(new)
    transition(old, new)
    transition(None, new, deleted=True)
    assert (old, new) == (old_copy, new_copy)


def test_state_change_ignores_pod_in_equality() -> None:
    a = StateChange(PodState.RUNNING, None, pod={"metadata": {"resourceVersion": "1"}})
    b = StateChange(PodState.RUNNING, None, pod={"metadata": {"resourceVersion": "2"}})
    assert a == b
    assert "resourceVersion" not in repr(a)
    assert StateChange(PodState.RUNNING, None).resource_version is None
