"""The pure lifecycle functions over pods recorded from a **real** kubelet.

``tests/unit/pods/recorded/real/`` holds what a real node reported (kubelet v1.34.4,
containerd 1.6, runc, cgroup v1; see its README.md), recorded by::

    .venv/bin/python tools/record_pods.py --real-node

The scenarios mirror kwok's in ``test_lifecycle_recorded.py``, with real processes:
a shell that exits 3 after writing /dev/termination-log, a 64 MiB shell variable
under a 16 MiB limit, an image tag that was never imported, a DELETE while running.
What the real kubelet does differently from kwok, and these tests pin down:

- A container that exits at once is never reported running: the pod goes from
  ContainerCreating straight to terminated while still Pending, then Failed. The
  transition reports the container in ``terminated`` only, and the pod never RUNNING.
- A DELETE of a running pod whose process exits 0 on SIGTERM ends in phase
  **Succeeded** before the DELETED event (kwok goes straight to DELETED);
  :func:`ended_by_deletion` names that case so a runner can report a deletion.
- Containers of one pod finish in separate versions (sidecar first, then main),
  native sidecars are stopped after main, and the termination message is the file's.

Values that change with every recording (uids, timestamps, node names) are read from
the recording, never copied here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asyncpod.core.lifecycle import (
    PodState,
    build_result,
    ended_by_deletion,
    events_from_list,
    is_terminal,
    main_finished,
    pod_reason,
    pod_state,
    transition,
)
from asyncpod.results import ContainerKind, Outcome, PodResult

RECORDED = Path(__file__).parent / "pods" / "recorded" / "real"

P, S, R = PodState.PENDING, PodState.SCHEDULED, PodState.RUNNING
T, OK, F, D = PodState.TERMINATING, PodState.SUCCEEDED, PodState.FAILED, PodState.DELETED
Change = tuple[PodState, PodState | None, tuple[str, ...], tuple[str, ...], str | None]

#: Per recorded version: what transition(previous, version) reports as (state, previous,
#: started, terminated, blocked reason), or None for no report.
EXPECTED: dict[str, list[tuple[str, Change | None]]] = {
    "success": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),  # ContainerCreating
        ("MODIFIED", (R, S, ("main",), (), None)),
        ("MODIFIED", (R, R, (), ("main",), None)),  # main exited; phase still Running
        ("MODIFIED", (OK, R, (), (), None)),
    ],
    "exit-3-message": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (S, S, (), ("main",), None)),  # never seen running
        ("MODIFIED", (F, S, (), (), None)),
    ],
    "oomkilled": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (S, S, (), ("main",), None)),
        ("MODIFIED", (F, S, (), (), None)),
    ],
    "init-second-fails": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),  # every container waiting: PodInitializing
        ("MODIFIED", (S, S, (), ("setup",), None)),
        ("MODIFIED", (S, S, (), ("migrate",), None)),
        ("MODIFIED", (F, S, (), (), None)),
    ],
    "image-pull-failure": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (S, S, (), (), "ErrImagePull")),
        ("MODIFIED", None),  # ImagePullBackOff: the same block
    ],
    "deleted-while-running": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (R, S, ("main",), (), None)),
        ("MODIFIED", (T, R, (), (), None)),  # DELETE: deletionTimestamp, grace 30 s
        ("MODIFIED", None),
        ("MODIFIED", (OK, T, (), ("main",), None)),  # SIGTERM -> exit 0 -> Succeeded
        ("MODIFIED", None),  # the kubelet's final delete: grace 0
        ("DELETED", (D, OK, (), (), None)),
    ],
    "sidecar-0-main-2": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (R, S, ("main", "sidecar"), (), None)),
        ("MODIFIED", (R, R, (), ("sidecar",), None)),
        ("MODIFIED", (R, R, (), ("main",), None)),
        ("MODIFIED", (F, R, (), (), None)),
    ],
    "native-sidecar": [
        ("ADDED", (P, None, (), (), None)),
        ("MODIFIED", (S, P, (), (), None)),
        ("MODIFIED", None),
        ("MODIFIED", (S, S, (), ("setup",), None)),
        ("MODIFIED", (S, S, ("helper",), (), None)),  # the sidecar starts before main
        ("MODIFIED", (R, S, ("main",), (), None)),
        ("MODIFIED", (R, R, (), ("main",), None)),
        ("MODIFIED", (R, R, (), ("helper",), None)),  # stopped after main
        ("MODIFIED", (OK, R, (), (), None)),
    ],
}


def load(scenario: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((RECORDED / f"{scenario}.json").read_text())
    return events


def final(scenario: str) -> dict[str, Any]:
    pod: dict[str, Any] = load(scenario)[-1]["object"]
    return pod


def result_of(scenario: str, outcome: Outcome | None = None) -> PodResult:
    path = RECORDED / f"{scenario}.events.json"
    events = events_from_list(json.loads(path.read_text())) if path.exists() else ()
    return build_result(final(scenario), outcome=outcome, events=events)


def test_every_recording_has_expectations() -> None:
    pods = {p.stem for p in RECORDED.glob("*.json") if not p.stem.endswith(".events")}
    assert pods == set(EXPECTED)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_recording_comes_from_the_real_node(scenario: str) -> None:
    events = load(scenario)
    assert events[0]["type"] == "ADDED"
    assert {e["object"]["metadata"]["uid"] for e in events} == {
        events[0]["object"]["metadata"]["uid"]
    }
    bound = [e["object"]["spec"].get("nodeName") for e in events[1:]]
    assert set(bound) == {"asyncpod-real-0"}
    statuses = final(scenario)["status"].get("containerStatuses") or []
    ran = [s for s in statuses if "terminated" in (s.get("state") or {})]
    # Real container IDs, from containerd (kwok leaves them out).
    assert all(s["state"]["terminated"]["containerID"].startswith("containerd://") for s in ran)


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_replay_reports_what_the_real_kubelet_did(scenario: str) -> None:
    seen: list[tuple[str, Change | None]] = []
    previous: dict[str, Any] | None = None
    for event in load(scenario):
        pod = event["object"]
        change = transition(previous, pod, deleted=event["type"] == "DELETED")
        if change is None:
            seen.append((event["type"], None))
        else:
            blocked = None if change.blocked is None else change.blocked[0]
            seen.append(
                (
                    event["type"],
                    (change.state, change.previous, change.started, change.terminated, blocked),
                )
            )
        previous = pod
    assert seen == EXPECTED[scenario]


def test_exit_code_and_termination_message_come_from_the_process() -> None:
    result = result_of("exit-3-message")
    assert result.outcome is Outcome.FAILED
    assert (result.exit_code, result.reason) == (3, "Error")
    assert result.termination_message == "bad input: row 17 has 3 columns"
    assert result.message == "container main exited with code 3"
    assert {e.reason for e in result.events} >= {"Scheduled", "Pulled", "Created", "Started"}


def test_oomkilled_from_a_real_memory_limit() -> None:
    result = result_of("oomkilled")
    assert result.outcome is Outcome.FAILED
    assert (result.exit_code, result.reason) == (137, "OOMKilled")
    assert pod_reason(final("oomkilled"))[0] == "OOMKilled"


def test_init_container_failure_keeps_its_message_and_main_never_ran() -> None:
    result = result_of("init-second-fails")
    by_name = {c.name: c for c in result.containers}
    assert by_name["migrate"].kind is ContainerKind.INIT
    assert (by_name["migrate"].exit_code, by_name["migrate"].reason) == (4, "Error")
    assert by_name["migrate"].termination_message == "migration 0042 failed"
    assert by_name["main"].state == "waiting"
    assert result.message == "init container migrate exited with code 4"


def test_image_pull_failure_is_the_kubelets_own_error() -> None:
    pod = final("image-pull-failure")
    assert pod_state(pod) is S
    assert not is_terminal(pod)
    result = result_of("image-pull-failure", Outcome.FAILED)
    assert result.reason == "ImagePullBackOff"
    assert result.message is not None
    assert "localhost/busybox:0.0-no-such-tag" in result.message
    assert "connection refused" in result.message  # no registry: it fails at once
    failed = [e for e in result.events if e.reason == "Failed"]
    assert any("ErrImagePull" in (e.message or "") for e in failed)


def test_classic_sidecar_main_finishing_ends_the_run_before_the_phase_does() -> None:
    versions = [e["object"] for e in load("sidecar-0-main-2")]
    main_done = next(i for i, pod in enumerate(versions) if main_finished(pod))
    assert versions[main_done]["status"]["phase"] == "Running"
    assert build_result(versions[main_done]).exit_code == 2


def test_native_sidecar_runs_between_init_and_main_and_is_stopped_after() -> None:
    result = result_of("native-sidecar")
    assert result.outcome is Outcome.SUCCEEDED
    by_name = {c.name: c for c in result.containers}
    setup, helper, main = by_name["setup"], by_name["helper"], by_name["main"]
    assert helper.kind is ContainerKind.SIDECAR
    assert setup.finished_at is not None
    assert helper.started_at is not None
    assert main.started_at is not None
    assert helper.finished_at is not None
    assert main.finished_at is not None
    assert setup.finished_at <= helper.started_at <= main.started_at
    assert main.finished_at <= helper.finished_at


def test_a_deleted_pod_that_exited_zero_on_sigterm_is_named_by_ended_by_deletion() -> None:
    versions = [e["object"] for e in load("deleted-while-running")]
    succeeded = next(i for i, pod in enumerate(versions) if pod["status"]["phase"] == "Succeeded")
    before, after = versions[succeeded - 1], versions[succeeded]
    assert pod_state(before) is T
    assert pod_state(after) is OK  # the phase alone says it succeeded ...
    assert ended_by_deletion(pod_state(before), after)  # ... but the deletion ended it
    assert not ended_by_deletion(R, after)
    assert not ended_by_deletion(T, before)
    deleted = build_result(versions[-1], outcome=Outcome.DELETED)
    assert deleted.reason == "DeletedExternally"
    assert deleted.exit_code == 0  # the process's own exit code is kept
