"""The pure lifecycle functions over pod objects recorded from a real API server.

``tests/unit/pods/recorded/<scenario>.json`` holds every version of one pod seen on a
watch (``[{"type": ..., "object": ...}, ...]``), and ``<scenario>.events.json`` the
pod's EventList for the scenarios where it did not succeed. They were produced by::

    .venv/bin/python tools/record_pods.py

which runs the scenarios on :class:`asyncpod.testing.LocalControlPlane`:
kube-apiserver, kube-scheduler and kube-controller-manager **v1.34.4** with kubelets
simulated by **kwok v0.7.0** (the stages in ``asyncpod/testing/data/stages.yaml``).
Nothing was edited by hand; only ``metadata.managedFields`` was stripped.

Each scenario is replayed version by version through :func:`lifecycle.transition`,
and the expected sequences below are what Kubernetes actually sent, read off the
recordings: note the versions that change nothing worth reporting (kwok accepting the
pod, ImagePullBackOff following ErrImagePull, kwok's grace-0 re-delete). The final
versions go through :func:`build_result`, :func:`pod_reason`,
:func:`blocking_reason`, :func:`container_results` and :func:`events_from_list`.

Values that change with every recording (uids, timestamps, node names) are compared
with the raw fields of the recording, never copied into this file; after re-recording
(new Kubernetes or kwok), a failure here means Kubernetes' behaviour changed: look
at the recording before touching the expectations.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from asyncpod.core.lifecycle import (
    PodState,
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
from asyncpod.results import ContainerKind, Outcome, PodEvent, PodResult

RECORDED = Path(__file__).parent / "pods" / "recorded"

SCENARIOS = [
    "success",
    "exit-3-message",
    "oomkilled",
    "init-second-fails",
    "image-pull-failure",
    "unschedulable",
    "deleted-while-running",
    "sidecar-0-main-2",
]
#: Scenarios whose pod did not succeed: the recorder also saved their Events.
WITH_EVENTS = [s for s in SCENARIOS if s != "success"]

P, S, R = PodState.PENDING, PodState.SCHEDULED, PodState.RUNNING
T, OK, F, D = PodState.TERMINATING, PodState.SUCCEEDED, PodState.FAILED, PodState.DELETED

PULL_MESSAGE = (
    'failed to pull and unpack image "busybox:1.36": simulated pull failure'
    " (sim.asyncpod.dev/image-pull=fail)"
)
BACKOFF_MESSAGE = 'Back-off pulling image "busybox:1.36"'

Change = tuple[PodState, PodState | None, tuple[str, ...], tuple[str, ...], str | None]

#: Per recorded version: (watch event type, what transition(previous, version) reports
#: as (state, previous, started, terminated, blocked reason), or None for no report).
EXPECTED_TRANSITIONS: dict[str, list[tuple[str, Change | None]]] = {
    "success": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),  # bound by the scheduler
        ("MODIFIED", None),  # kwok accepts it: podIP, startTime, main ContainerCreating
        ("MODIFIED", (R, S, ("main",), (), None)),
        ("MODIFIED", (OK, R, (), ("main",), None)),
    ],
    "exit-3-message": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (R, S, ("main",), (), None)),
        ("MODIFIED", (F, R, (), ("main",), None)),
    ],
    "oomkilled": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (R, S, ("main",), (), None)),
        ("MODIFIED", (F, R, (), ("main",), None)),
    ],
    "init-second-fails": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),  # every container waiting: PodInitializing
        ("MODIFIED", (S, S, ("setup",), (), None)),
        ("MODIFIED", (S, S, (), ("setup",), None)),
        ("MODIFIED", (S, S, ("migrate",), (), None)),
        ("MODIFIED", (F, S, (), ("migrate",), None)),  # main never started
    ],
    "image-pull-failure": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (S, S, (), (), "ErrImagePull")),
        ("MODIFIED", None),  # ImagePullBackOff: the same block as ErrImagePull
    ],
    "unschedulable": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (P, P, (), (), "Unschedulable")),
    ],
    "deleted-while-running": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (R, S, ("main",), (), None)),
        ("MODIFIED", (T, R, (), (), None)),  # DELETE: deletionTimestamp, grace 30 s
        ("MODIFIED", None),  # kwok's SIGTERM-obeying process: grace cut to 0
        ("DELETED", (D, T, (), (), None)),
    ],
    "sidecar-0-main-2": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (R, S, ("main", "sidecar"), (), None)),
        ("MODIFIED", (F, R, (), ("main", "sidecar"), None)),
    ],
}


def load(scenario: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((RECORDED / f"{scenario}.json").read_text())
    return events


def final(scenario: str) -> dict[str, Any]:
    pod: dict[str, Any] = load(scenario)[-1]["object"]
    return pod


def event_list(scenario: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((RECORDED / f"{scenario}.events.json").read_text())
    return body


def stamp(value: str) -> datetime:
    parsed = parse_time(value)
    assert parsed is not None
    return parsed


def result_of(scenario: str) -> PodResult:
    """build_result of the last version, with the outcome the runner would pass.

    Terminal pods need none. For the others the runner decides: an image that keeps
    failing to pull is FAILED after its grace period, a pod that never schedules is
    TIMED_OUT, a pod deleted by someone else is DELETED.
    """
    given = {
        "image-pull-failure": Outcome.FAILED,
        "unschedulable": Outcome.TIMED_OUT,
        "deleted-while-running": Outcome.DELETED,
    }.get(scenario)
    events = events_from_list(event_list(scenario)) if scenario in WITH_EVENTS else ()
    return build_result(final(scenario), outcome=given, events=events)


# --------------------------------------------------------------------------------------
# The recordings themselves
# --------------------------------------------------------------------------------------


def test_every_recording_has_expectations() -> None:
    on_disk = {p.name.removesuffix(".json") for p in RECORDED.glob("*.json")}
    pods = {n for n in on_disk if not n.endswith(".events")}
    events = {n.removesuffix(".events") for n in on_disk if n.endswith(".events")}
    assert pods == set(SCENARIOS) == set(EXPECTED_TRANSITIONS)
    assert events == set(WITH_EVENTS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recording_is_one_pod_from_creation_in_version_order(scenario: str) -> None:
    events = load(scenario)
    assert events[0]["type"] == "ADDED"
    metas = [e["object"]["metadata"] for e in events]
    assert {m["uid"] for m in metas} == {metas[0]["uid"]}
    assert {m["name"] for m in metas} == {scenario}
    versions = [int(m["resourceVersion"]) for m in metas]
    assert versions == sorted(set(versions)), "versions repeat or go backwards"
    assert all("managedFields" not in m for m in metas)
    # The first version is the pod as created: nothing has touched its status yet.
    assert events[0]["object"]["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


# --------------------------------------------------------------------------------------
# Replaying every version through transition()
# --------------------------------------------------------------------------------------


def replay(scenario: str) -> list[tuple[str, Change | None]]:
    seen: list[tuple[str, Change | None]] = []
    previous: dict[str, Any] | None = None
    for event in load(scenario):
        pod = event["object"]
        change = transition(previous, pod, deleted=event["type"] == "DELETED")
        if change is None:
            seen.append((event["type"], None))
        else:
            assert change.pod is pod
            assert change.resource_version == pod["metadata"]["resourceVersion"]
            blocked = None if change.blocked is None else change.blocked[0]
            summary = (change.state, change.previous, change.started, change.terminated, blocked)
            seen.append((event["type"], summary))
        previous = pod
    return seen


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replay_reports_what_kubernetes_did(scenario: str) -> None:
    assert replay(scenario) == EXPECTED_TRANSITIONS[scenario]


@pytest.mark.parametrize(
    ("scenario", "path"),
    [
        ("success", [P, S, R, OK]),
        ("exit-3-message", [P, S, R, F]),
        ("oomkilled", [P, S, R, F]),
        ("init-second-fails", [P, S, F]),  # init containers run while SCHEDULED
        ("image-pull-failure", [P, S]),
        ("unschedulable", [P]),
        ("deleted-while-running", [P, S, R, T, D]),
        ("sidecar-0-main-2", [P, S, R, F]),
    ],
)
def test_replay_state_path(scenario: str, path: list[PodState]) -> None:
    """The distinct states a subscriber following the pod goes through, in order."""
    states: list[PodState] = []
    previous: dict[str, Any] | None = None
    for event in load(scenario):
        change = transition(previous, event["object"], deleted=event["type"] == "DELETED")
        if change is not None and change.state_changed:
            states.append(change.state)
        previous = event["object"]
    assert states == path
    assert [s for s in states if s.terminal] == [s for s in path[-1:] if s.terminal]


def test_replay_image_pull_blocked_message_is_the_kubelets() -> None:
    events = load("image-pull-failure")
    change = transition(events[2]["object"], events[3]["object"])
    assert change is not None
    assert change.blocked == ("ErrImagePull", f"container main: {PULL_MESSAGE}")
    assert not change.state_changed
    # ErrImagePull -> ImagePullBackOff is one condition: no report, but the pod's own
    # blocking reason does move on.
    assert transition(events[3]["object"], events[4]["object"]) is None
    assert blocking_reason(events[4]["object"]) == (
        "ImagePullBackOff",
        f"container main: {BACKOFF_MESSAGE}",
    )


def test_replay_from_the_first_sight_of_a_running_pod() -> None:
    """An informer that subscribes late sees a Running pod first: main counts as started."""
    events = load("exit-3-message")
    change = transition(None, events[3]["object"])
    assert change is not None
    assert (change.state, change.previous, change.started, change.terminated) == (
        R,
        None,
        ("main",),
        (),
    )
    # And the next version ends it.
    end = transition(events[3]["object"], events[4]["object"])
    assert end is not None
    assert (end.state, end.previous, end.terminated) == (F, R, ("main",))


def test_replay_skipping_versions_still_reports_init_containers_that_ran_between() -> None:
    """A coalescing subscriber may jump from "setup running" straight to the end."""
    events = load("init-second-fails")
    change = transition(events[3]["object"], events[-1]["object"])
    assert change is not None
    assert change.state is F
    assert change.started == ()
    assert change.terminated == ("setup", "migrate")


# --------------------------------------------------------------------------------------
# State predicates on the recorded versions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "state", "terminal", "main_done"),
    [
        ("success", OK, True, True),
        ("exit-3-message", F, True, True),
        ("oomkilled", F, True, True),
        ("init-second-fails", F, True, False),  # main never ran
        ("image-pull-failure", S, False, False),
        ("unschedulable", P, False, False),
        # The DELETED event's object: still phase Running, with a deletionTimestamp.
        ("deleted-while-running", T, False, False),
        ("sidecar-0-main-2", F, True, True),
    ],
)
def test_final_version_state(
    scenario: str, state: PodState, terminal: bool, main_done: bool
) -> None:
    pod = final(scenario)
    assert pod_state(pod) is state
    assert is_terminal(pod) is terminal
    assert main_finished(pod) is main_done


def test_running_version_of_sidecar_pod_is_not_finished() -> None:
    running = load("sidecar-0-main-2")[3]["object"]
    assert pod_state(running) is R
    assert not main_finished(running)
    assert pod_reason(running) == (None, None)
    with pytest.raises(ValueError, match=r"sidecar-0-main-2 has not finished \(phase Running\)"):
        build_result(running)


# --------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------


def unschedulable_message() -> str:
    conditions = final("unschedulable")["status"]["conditions"]
    (scheduled,) = [c for c in conditions if c["type"] == "PodScheduled"]
    message: str = scheduled["message"]
    return message


@pytest.mark.parametrize(
    ("scenario", "reason", "message"),
    [
        ("success", "Completed", None),
        # The termination message is not repeated in the reason's message (it is the
        # result's termination_message).
        ("exit-3-message", "Error", "container main exited with code 3"),
        (
            "oomkilled",
            "OOMKilled",
            "container main was OOM-killed (exit code 137): it exceeded its memory limit",
        ),
        ("init-second-fails", "Error", "init container migrate exited with code 4"),
        ("image-pull-failure", "ImagePullBackOff", f"container main: {BACKOFF_MESSAGE}"),
        ("deleted-while-running", None, None),
        ("sidecar-0-main-2", "Error", "container main exited with code 2"),
    ],
)
def test_pod_reason_of_final_version(
    scenario: str, reason: str | None, message: str | None
) -> None:
    assert pod_reason(final(scenario)) == (reason, message)


def test_pod_reason_and_blocking_reason_of_unschedulable_pod_quote_the_scheduler() -> None:
    pod = final("unschedulable")
    message = unschedulable_message()
    assert message.startswith("0/3 nodes are available: 3 node(s) didn't match Pod's node")
    assert blocking_reason(pod) == ("Unschedulable", message)
    assert pod_reason(pod) == ("Unschedulable", message)
    assert not is_fatal_wait("Unschedulable")
    # The scheduler's Warning event says the same thing, word for word.
    (event,) = events_from_list(event_list("unschedulable"))
    assert (event.type, event.reason, event.message) == ("Warning", "FailedScheduling", message)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (2, None),  # ContainerCreating is on its way, not stuck
        (3, ("ErrImagePull", f"container main: {PULL_MESSAGE}")),
        (4, ("ImagePullBackOff", f"container main: {BACKOFF_MESSAGE}")),
    ],
)
def test_blocking_reason_through_the_image_pull_failure(
    index: int, expected: tuple[str, str] | None
) -> None:
    pod = load("image-pull-failure")[index]["object"]
    assert blocking_reason(pod) == expected
    if expected is not None:
        assert not is_fatal_wait(expected[0])  # the runner's grace period decides


@pytest.mark.parametrize(
    "scenario", [s for s in SCENARIOS if s not in ("image-pull-failure", "unschedulable")]
)
def test_no_blocking_reason_in_other_scenarios(scenario: str) -> None:
    assert [blocking_reason(e["object"]) for e in load(scenario)] == [None] * len(load(scenario))


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------

# name, kind, state, exit code, reason, message, termination message
Row = tuple[str, ContainerKind, str | None, int | None, str | None, str | None, str | None]
MAIN, INIT, SIDECAR = ContainerKind.MAIN, ContainerKind.INIT, ContainerKind.SIDECAR

EXPECTED_CONTAINERS: dict[str, list[Row]] = {
    "success": [("main", MAIN, "terminated", 0, "Completed", None, None)],
    "exit-3-message": [
        (
            "main",
            MAIN,
            "terminated",
            3,
            "Error",
            "bad input: row 17 has 3 columns",
            "bad input: row 17 has 3 columns",
        )
    ],
    "oomkilled": [("main", MAIN, "terminated", 137, "OOMKilled", None, None)],
    "init-second-fails": [
        ("setup", INIT, "terminated", 0, "Completed", None, None),
        (
            "migrate",
            INIT,
            "terminated",
            4,
            "Error",
            "migration 0042 failed",
            "migration 0042 failed",
        ),
        ("main", MAIN, "waiting", None, "PodInitializing", None, None),
    ],
    "image-pull-failure": [
        ("main", MAIN, "waiting", None, "ImagePullBackOff", BACKOFF_MESSAGE, None)
    ],
    # Never bound: no container status at all, the spec alone names the container.
    "unschedulable": [("main", MAIN, None, None, None, None, None)],
    # kwok removes the pod without stopping it: the DELETED object still has main running.
    "deleted-while-running": [("main", MAIN, "running", None, None, None, None)],
    "sidecar-0-main-2": [
        ("main", MAIN, "terminated", 2, "Error", None, None),
        ("sidecar", SIDECAR, "terminated", 0, "Completed", None, None),
    ],
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_container_results_of_final_version(scenario: str) -> None:
    results = container_results(final(scenario))
    rows = [
        (c.name, c.kind, c.state, c.exit_code, c.reason, c.message, c.termination_message)
        for c in results
    ]
    assert rows == EXPECTED_CONTAINERS[scenario]
    assert all(c.image == "busybox:1.36" for c in results)
    assert all(c.restart_count == 0 and c.signal is None for c in results)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_container_times_are_the_recorded_ones(scenario: str) -> None:
    pod = final(scenario)
    raw = {
        s["name"]: s["state"]
        for key in ("initContainerStatuses", "containerStatuses")
        for s in pod["status"].get(key, [])
    }
    for result in container_results(pod):
        state = raw.get(result.name, {})
        if "terminated" in state:
            assert result.started_at == stamp(state["terminated"]["startedAt"])
            assert result.finished_at == stamp(state["terminated"]["finishedAt"])
            assert result.started_at <= result.finished_at
        elif "running" in state:
            assert result.started_at == stamp(state["running"]["startedAt"])
            assert result.finished_at is None
        else:
            assert (result.started_at, result.finished_at) == (None, None)


@pytest.mark.parametrize(
    ("scenario", "container", "low", "high"),
    [
        # Asked of kwok: main runs 2 s, init containers 1 s. Timestamps have whole-second
        # resolution, so a run of d seconds shows as d or d + 1.
        ("success", "main", 2, 3),
        ("exit-3-message", "main", 2, 3),
        ("oomkilled", "main", 2, 3),
        ("sidecar-0-main-2", "main", 2, 3),
        ("sidecar-0-main-2", "sidecar", 2, 3),
        ("init-second-fails", "setup", 1, 2),
        ("init-second-fails", "migrate", 1, 2),
    ],
)
def test_container_durations_match_what_kwok_was_asked(
    scenario: str, container: str, low: int, high: int
) -> None:
    (result,) = [c for c in container_results(final(scenario)) if c.name == container]
    assert result.duration is not None
    assert timedelta(seconds=low) <= result.duration <= timedelta(seconds=high)


def test_init_containers_ran_one_after_the_other_before_the_pod_failed() -> None:
    setup, migrate, main = container_results(final("init-second-fails"))
    assert setup.finished_at is not None
    assert migrate.started_at is not None
    assert setup.finished_at <= migrate.started_at
    assert main.started_at is None


def test_main_container_choice_changes_kinds_and_order() -> None:
    """The default-container annotation says "main"; naming the other one swaps them."""
    pod = final("sidecar-0-main-2")
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "main"
    swapped = container_results(pod, main_container="sidecar")
    assert [(c.name, c.kind) for c in swapped] == [("sidecar", MAIN), ("main", SIDECAR)]
    # The failure is then a sidecar's; the "main" one exited 0.
    assert pod_reason(pod, main_container="sidecar") == ("Error", "sidecar main exited with code 2")
    result = build_result(pod, main_container="sidecar")
    assert (result.outcome, result.exit_code, result.reason) == (Outcome.FAILED, 0, "Error")


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------

# outcome, phase, reason, message, exit code, termination message
EXPECTED_RESULTS: dict[str, tuple[Outcome, str, str, str | None, int | None, str | None]] = {
    "success": (Outcome.SUCCEEDED, "Succeeded", "Completed", None, 0, None),
    "exit-3-message": (
        Outcome.FAILED,
        "Failed",
        "Error",
        "container main exited with code 3",
        3,
        "bad input: row 17 has 3 columns",
    ),
    "oomkilled": (
        Outcome.FAILED,
        "Failed",
        "OOMKilled",
        "container main was OOM-killed (exit code 137): it exceeded its memory limit",
        137,
        None,
    ),
    "init-second-fails": (
        Outcome.FAILED,
        "Failed",
        "Error",
        "init container migrate exited with code 4",
        None,  # main never ran
        None,
    ),
    "image-pull-failure": (
        Outcome.FAILED,
        "Pending",
        "ImagePullBackOff",
        f"container main: {BACKOFF_MESSAGE}",
        None,
        None,
    ),
    "unschedulable": (
        Outcome.TIMED_OUT,
        "Pending",
        "Unschedulable",
        "<scheduler>",  # the condition's message; checked against the recording
        None,
        None,
    ),
    "deleted-while-running": (
        Outcome.DELETED,
        "Running",
        "DeletedExternally",
        "the pod was deleted before it finished",
        None,
        None,
    ),
    "sidecar-0-main-2": (
        Outcome.FAILED,
        "Failed",
        "Error",
        "container main exited with code 2",
        2,
        None,
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_build_result_of_final_version(scenario: str) -> None:
    pod = final(scenario)
    result = result_of(scenario)
    outcome, phase, reason, message, exit_code, termination = EXPECTED_RESULTS[scenario]
    if message == "<scheduler>":
        message = unschedulable_message()
    assert (result.outcome, result.phase, result.reason, result.message) == (
        outcome,
        phase,
        reason,
        message,
    )
    assert result.exit_code == exit_code
    assert result.termination_message == termination
    assert result.ok is (scenario == "success")
    assert (result.namespace, result.name) == ("default", scenario)
    assert result.uid == pod["metadata"]["uid"]
    assert result.task_key == f"recorded/{scenario}"
    assert result.node_name == pod["spec"].get("nodeName")
    if scenario == "unschedulable":
        assert result.node_name is None
    else:
        assert result.node_name is not None
        assert result.node_name.startswith("kwok-node-")
    assert result.containers == container_results(pod)


@pytest.mark.parametrize(
    ("scenario", "outcome"),
    [
        ("image-pull-failure", "Pending"),
        ("unschedulable", "Pending"),
        ("deleted-while-running", "Running"),
    ],
)
def test_build_result_refuses_to_guess_for_an_unfinished_pod(scenario: str, outcome: str) -> None:
    with pytest.raises(
        ValueError, match=rf"default/{scenario} has not finished \(phase {outcome}\)"
    ):
        build_result(final(scenario))


# Which timings exist: created, scheduled, started, finished.
EXPECTED_TIMINGS: dict[str, tuple[bool, bool, bool, bool]] = {
    "success": (True, True, True, True),
    "exit-3-message": (True, True, True, True),
    "oomkilled": (True, True, True, True),
    "init-second-fails": (True, True, True, True),
    "image-pull-failure": (True, True, True, False),  # no container ever ended
    "unschedulable": (True, False, False, False),
    "deleted-while-running": (True, True, True, False),  # removed while running
    "sidecar-0-main-2": (True, True, True, True),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_result_timings_present_ordered_and_from_the_pod(scenario: str) -> None:
    pod = final(scenario)
    result = result_of(scenario)
    times = (result.created_at, result.scheduled_at, result.started_at, result.finished_at)
    assert tuple(t is not None for t in times) == EXPECTED_TIMINGS[scenario]
    present = [t for t in times if t is not None]
    assert present == sorted(present), f"timings out of order: {times}"
    assert all(t.tzinfo is timezone.utc for t in present)
    assert result.created_at == stamp(pod["metadata"]["creationTimestamp"])
    if result.scheduled_at is not None:
        (condition,) = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert condition["status"] == "True"
        assert result.scheduled_at == stamp(condition["lastTransitionTime"])
    if result.started_at is not None:
        assert result.started_at == stamp(pod["status"]["startTime"])
    if result.finished_at is not None:
        ends = [c.finished_at for c in result.containers if c.finished_at is not None]
        assert result.finished_at == max(ends)
        assert result.started_at is not None  # every pod that finished had started
        assert result.duration == result.finished_at - result.started_at


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------

# (type, reason, source, count) in the order the API server created them.
EXPECTED_EVENTS: dict[str, list[tuple[str, str, str, int]]] = {
    "exit-3-message": [
        ("Normal", "Scheduled", "default-scheduler", 1),
        ("Normal", "Started", "kwok_controller", 1),
    ],
    "oomkilled": [
        ("Normal", "Scheduled", "default-scheduler", 1),
        ("Normal", "Started", "kwok_controller", 1),
    ],
    "init-second-fails": [
        ("Normal", "Scheduled", "default-scheduler", 1),
        # One Event for both init containers: the API server aggregated the second.
        ("Normal", "Started", "kwok_controller", 2),
    ],
    "image-pull-failure": [
        ("Normal", "Scheduled", "default-scheduler", 1),
        ("Warning", "Failed", "kwok_controller", 1),
        ("Warning", "BackOff", "kwok_controller", 1),
    ],
    "unschedulable": [("Warning", "FailedScheduling", "default-scheduler", 1)],
    "deleted-while-running": [
        ("Normal", "Scheduled", "default-scheduler", 1),
        ("Normal", "Started", "kwok_controller", 1),
    ],
    "sidecar-0-main-2": [
        ("Normal", "Scheduled", "default-scheduler", 1),
        ("Normal", "Started", "kwok_controller", 1),
    ],
}


def creation_order(scenario: str) -> list[str]:
    """Event reasons in the order they were created, from the raw recording.

    client-go names an Event ``<object>.<creation time in Unix nanoseconds, hex>``, so
    the name says when each Event was first recorded, to the nanosecond.
    """
    items = event_list(scenario)["items"]
    return [
        e["reason"]
        for e in sorted(items, key=lambda e: int(e["metadata"]["name"].rsplit(".", 1)[1], 16))
    ]


@pytest.mark.parametrize("scenario", WITH_EVENTS)
def test_recorded_events_are_the_pods(scenario: str) -> None:
    body = event_list(scenario)
    uid = final(scenario)["metadata"]["uid"]
    assert body["kind"] == "EventList"
    assert {e["involvedObject"]["uid"] for e in body["items"]} == {uid}
    assert creation_order(scenario) == [r for _, r, _, _ in EXPECTED_EVENTS[scenario]]


@pytest.mark.parametrize("scenario", WITH_EVENTS)
def test_events_from_list_reads_both_event_generations(scenario: str) -> None:
    """The scheduler writes new-style Events (eventTime, reportingComponent); kwok old-style."""
    body = event_list(scenario)
    events = events_from_list(body)
    assert len(events) == len(body["items"])
    got = sorted((e.type, e.reason, e.source, e.count) for e in events)
    assert got == sorted(EXPECTED_EVENTS[scenario])
    by_reason = {e["reason"]: e for e in body["items"]}
    for event in events:
        raw = by_reason[event.reason]
        assert event.message == raw["message"]
        assert event.first_seen is not None
        assert event.last_seen is not None
        assert event.first_seen <= event.last_seen
        if raw.get("eventTime"):  # new style: MicroTime, no firstTimestamp
            assert raw["firstTimestamp"] is None
            assert event.first_seen == stamp(raw["eventTime"])
        else:
            assert event.first_seen == stamp(raw["firstTimestamp"])
            assert event.last_seen == stamp(raw["lastTimestamp"])


def test_events_say_where_the_pod_went_and_what_failed() -> None:
    node = final("image-pull-failure")["spec"]["nodeName"]
    messages = {e.reason: e.message for e in events_from_list(event_list("image-pull-failure"))}
    assert messages == {
        "Scheduled": f"Successfully assigned default/image-pull-failure to {node}",
        "Failed": "Error: ErrImagePull",
        "BackOff": "Back-off pulling image",
    }
    (started,) = [
        e for e in events_from_list(event_list("init-second-fails")) if e.reason == "Started"
    ]
    assert started.message == "Started init container"
    assert started.first_seen is not None
    assert started.last_seen is not None
    assert started.last_seen - started.first_seen >= timedelta(seconds=1)  # setup, then migrate


@pytest.mark.parametrize("scenario", WITH_EVENTS)
def test_events_from_list_is_oldest_first(scenario: str) -> None:
    # The scheduler's eventTime has microseconds, kubelets' firstTimestamp whole
    # seconds: a kubelet event in the same second as Scheduled must still come after it.
    events = events_from_list(event_list(scenario))
    assert [e.reason for e in events] == creation_order(scenario)


@pytest.mark.parametrize("scenario", WITH_EVENTS)
def test_result_carries_the_events(scenario: str) -> None:
    result = result_of(scenario)
    assert result.events == events_from_list(event_list(scenario))
    assert all(isinstance(e, PodEvent) for e in result.events)
    described = result.describe()
    assert described.startswith(f"pod default/{scenario} {result.outcome.value}")
