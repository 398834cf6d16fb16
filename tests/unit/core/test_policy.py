"""The runner's pure decisions: each state, each deadline, each 409, each cleanup policy."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from asyncpod.core.policy import (
    CREATE_ATTEMPT_ANNOTATION,
    Cleanup,
    ConflictVerdict,
    RunClock,
    RunOptions,
    Verdict,
    clock_from_pod,
    deleted_after_record,
    judge,
    next_deadline,
    resolve_conflict,
    should_collect_events,
    should_delete,
)
from asyncpod.errors import OptionError, UsageError
from asyncpod.results import Outcome, PodResult, Reason

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    phase: str = "Pending",
    *,
    node: str | None = None,
    waiting: str | None = None,
    running_since: datetime | None = None,
    terminated: int | None = None,
    unschedulable: bool = False,
    created: datetime = T0,
    scheduled_at: datetime | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if waiting is not None:
        state = {"waiting": {"reason": waiting, "message": f"{waiting} detail"}}
    if running_since is not None:
        state = {"running": {"startedAt": stamp(running_since)}}
    if terminated is not None:
        state = {"terminated": {"exitCode": terminated, "reason": "Error"}}
    conditions = []
    if unschedulable:
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available",
            }
        )
    if scheduled_at is not None:
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(scheduled_at)}
        )
    return {
        "metadata": {"name": "p", "uid": "u1", "creationTimestamp": stamp(created)},
        "spec": {"nodeName": node, "containers": [{"name": "main"}]}
        if node
        else {"containers": [{"name": "main"}]},
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [{"name": "main", "state": state}] if state else [],
        },
    }


OPTIONS = RunOptions(schedule_timeout=10, startup_timeout=20, image_pull_timeout=5, deadline=100)


def test_a_terminal_pod_ends_the_run_as_the_pod_says() -> None:
    clock = RunClock(created=0.0)
    assert judge(pod("Succeeded"), clock, OPTIONS, now=1.0, main_container=None) == Verdict(None)
    assert judge(pod("Failed"), clock, OPTIONS, now=1.0, main_container=None) == Verdict(None)


def test_main_container_exited_while_sidecars_keep_the_pod_running_ends_the_run() -> None:
    exited = pod("Running", node="n", terminated=0)
    assert judge(exited, RunClock(created=0.0), OPTIONS, now=1.0, main_container="main") == (
        Verdict(None)
    )


def test_pending_within_the_schedule_timeout_waits_and_says_until_when() -> None:
    clock = RunClock(created=0.0)
    assert judge(pod(), clock, OPTIONS, now=4.0, main_container=None) is None
    assert next_deadline(clock, OPTIONS, now=4.0) == pytest.approx(6.0)


def test_unschedulable_past_the_schedule_timeout_quotes_the_scheduler() -> None:
    verdict = judge(
        pod(unschedulable=True), RunClock(created=0.0), OPTIONS, now=10.0, main_container=None
    )
    assert verdict == Verdict(Outcome.TIMED_OUT, Reason.UNSCHEDULABLE, "0/3 nodes are available")


def test_pending_without_a_reason_past_the_schedule_timeout_is_a_schedule_timeout() -> None:
    verdict = judge(pod(), RunClock(created=0.0), OPTIONS, now=10.0, main_container=None)
    assert verdict is not None
    assert (verdict.outcome, verdict.reason) == (Outcome.TIMED_OUT, Reason.SCHEDULE_TIMEOUT)


def test_scheduling_starts_the_startup_clock() -> None:
    clock = RunClock(created=0.0)
    assert judge(pod(node="n"), clock, OPTIONS, now=3.0, main_container=None) is None
    assert clock.scheduled == 3.0
    assert next_deadline(clock, OPTIONS, now=3.0) == pytest.approx(20.0)
    verdict = judge(pod(node="n"), clock, OPTIONS, now=23.0, main_container=None)
    assert verdict is not None
    assert (verdict.outcome, verdict.reason) == (Outcome.TIMED_OUT, Reason.STARTUP_TIMEOUT)


def test_running_stops_the_startup_clock_and_only_the_deadline_remains() -> None:
    clock = RunClock(created=0.0)
    running = pod("Running", node="n", running_since=T0)
    assert judge(running, clock, OPTIONS, now=5.0, main_container=None) is None
    assert clock.started == 5.0
    assert next_deadline(clock, OPTIONS, now=5.0) == pytest.approx(95.0)
    verdict = judge(running, clock, OPTIONS, now=100.0, main_container=None)
    assert verdict is not None
    assert (verdict.outcome, verdict.reason) == (Outcome.TIMED_OUT, Reason.RUN_TIMEOUT)


def test_image_pull_failure_gets_its_grace_period_then_fails() -> None:
    clock = RunClock(created=0.0)
    pulling = pod(node="n", waiting=Reason.ERR_IMAGE_PULL)
    assert judge(pulling, clock, OPTIONS, now=1.0, main_container=None) is None
    assert clock.blocked_since == 1.0
    assert judge(pulling, clock, OPTIONS, now=5.9, main_container=None) is None
    verdict = judge(pulling, clock, OPTIONS, now=6.0, main_container=None)
    assert verdict is not None
    assert (verdict.outcome, verdict.reason) == (Outcome.FAILED, Reason.ERR_IMAGE_PULL)


def test_a_pull_that_recovers_resets_the_grace_period() -> None:
    clock = RunClock(created=0.0)
    judge(
        pod(node="n", waiting=Reason.ERR_IMAGE_PULL), clock, OPTIONS, now=1.0, main_container=None
    )
    judge(pod(node="n"), clock, OPTIONS, now=2.0, main_container=None)
    assert clock.blocked_since is None


def test_a_fatal_wait_fails_at_once() -> None:
    verdict = judge(
        pod(node="n", waiting=Reason.INVALID_IMAGE_NAME),
        RunClock(created=0.0),
        OPTIONS,
        now=0.1,
        main_container=None,
    )
    assert verdict is not None
    assert (verdict.outcome, verdict.reason) == (Outcome.FAILED, Reason.INVALID_IMAGE_NAME)


def test_no_limits_means_no_deadline() -> None:
    unlimited = RunOptions(
        schedule_timeout=None, startup_timeout=None, image_pull_timeout=None, deadline=None
    )
    clock = RunClock(created=0.0)
    assert judge(pod(), clock, unlimited, now=1e6, main_container=None) is None
    assert next_deadline(clock, unlimited, now=1e6) is None


def test_a_passed_deadline_is_never_a_negative_wait() -> None:
    assert next_deadline(RunClock(created=0.0), OPTIONS, now=500.0) == 0.0


# ------------------------------------------------------------------ reattach clocks
def test_reattach_counts_every_limit_from_the_pods_own_timestamps() -> None:
    now_wall = T0 + timedelta(seconds=50)
    reattached = pod(
        "Running",
        node="n",
        running_since=T0 + timedelta(seconds=8),
        scheduled_at=T0 + timedelta(seconds=3),
    )
    clock = clock_from_pod(reattached, now=1000.0, wall_now=now_wall)
    assert clock.created == pytest.approx(950.0)
    assert clock.scheduled == pytest.approx(953.0)
    assert clock.started == pytest.approx(958.0)
    # The whole-run deadline (100 s) passes 100 s after the pod's creation, not ours.
    assert next_deadline(clock, OPTIONS, now=1000.0) == pytest.approx(50.0)


def test_a_pending_pod_reattached_keeps_its_schedule_clock() -> None:
    clock = clock_from_pod(pod(), now=1000.0, wall_now=T0 + timedelta(seconds=12))
    assert clock.scheduled is None
    verdict = judge(pod(), clock, OPTIONS, now=1000.0, main_container=None)
    assert verdict is not None
    assert verdict.reason == Reason.SCHEDULE_TIMEOUT


def test_a_server_clock_ahead_of_ours_never_puts_milestones_in_the_future() -> None:
    clock = clock_from_pod(pod(), now=1000.0, wall_now=T0 - timedelta(seconds=30))
    assert clock.created == 1000.0


# ------------------------------------------------------------------ 409
def existing(
    *,
    token: str | None = None,
    run: str | None = "r1",
    task: str | None = "t1",
    deleting: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "p",
        "labels": {"asyncpod.dev/run-id": run} if run else {},
        "annotations": {"asyncpod.dev/task-key": task} if task else {},
    }
    if token is not None:
        metadata["annotations"][CREATE_ATTEMPT_ANNOTATION] = token
    if deleting:
        metadata["deletionTimestamp"] = stamp(T0)
    return {"metadata": metadata}


def conflict(found: dict[str, Any], *, generated: bool = False) -> ConflictVerdict:
    return resolve_conflict(
        found,
        token="tok",
        generated_name=generated,
        run_id="r1",
        task_key="t1",
        run_id_label="asyncpod.dev/run-id",
        task_key_annotation="asyncpod.dev/task-key",
    )


def test_our_own_token_means_the_lost_answer_was_a_success() -> None:
    assert conflict(existing(token="tok")) is ConflictVerdict.OURS
    assert conflict(existing(token="tok", run=None, task=None), generated=True) is (
        ConflictVerdict.OURS
    )


def test_a_random_name_taken_by_another_pod_draws_another() -> None:
    assert conflict(existing(token="other"), generated=True) is ConflictVerdict.OTHER_NAME


def test_the_same_run_and_task_from_an_earlier_process_is_reattached() -> None:
    assert conflict(existing(token="earlier")) is ConflictVerdict.REATTACH
    assert conflict(existing(token="earlier", deleting=True)) is ConflictVerdict.BEING_DELETED


def test_another_run_or_task_is_refused() -> None:
    assert conflict(existing(run="r2")) is ConflictVerdict.FOREIGN
    assert conflict(existing(task="t2")) is ConflictVerdict.FOREIGN


# ------------------------------------------------------------------ cleanup
@pytest.mark.parametrize(
    ("cleanup", "outcome", "succeeded", "finished", "expected"),
    [
        (Cleanup.DELETE, Outcome.SUCCEEDED, True, True, True),
        (Cleanup.DELETE, Outcome.FAILED, False, True, True),
        (Cleanup.DELETE, Outcome.CANCELLED, False, False, True),
        (Cleanup.DELETE, None, False, False, True),
        (Cleanup.DELETE, Outcome.DELETED, False, False, False),
        (Cleanup.KEEP, Outcome.CANCELLED, False, False, False),
        (Cleanup.DELETE_ON_SUCCESS, Outcome.SUCCEEDED, True, True, True),
        (Cleanup.DELETE_ON_SUCCESS, Outcome.FAILED, False, True, False),
        (Cleanup.DELETE_ON_SUCCESS, Outcome.TIMED_OUT, False, False, True),
        (Cleanup.DELETE_ON_SUCCESS, None, False, False, True),
        # RECORD_FIRST keeps every pod whose result is handed over, finished or not.
        (Cleanup.RECORD_FIRST, Outcome.SUCCEEDED, True, True, False),
        (Cleanup.RECORD_FIRST, Outcome.FAILED, False, True, False),
        (Cleanup.RECORD_FIRST, Outcome.TIMED_OUT, False, False, False),
        (Cleanup.RECORD_FIRST, Outcome.DELETED, False, False, False),
        (Cleanup.RECORD_FIRST, Outcome.CANCELLED, False, True, True),
        (Cleanup.RECORD_FIRST, Outcome.ERROR, False, False, True),
        (Cleanup.RECORD_FIRST, None, False, False, True),
    ],
)
def test_should_delete(
    cleanup: Cleanup, outcome: Outcome | None, succeeded: bool, finished: bool, expected: bool
) -> None:
    options = RunOptions(cleanup=cleanup)
    assert should_delete(options, outcome, succeeded=succeeded, pod_finished=finished) is expected


@pytest.mark.parametrize("cleanup", [Cleanup.DELETE, Cleanup.DELETE_ON_SUCCESS, Cleanup.KEEP])
@pytest.mark.parametrize("outcome", list(Outcome))
@pytest.mark.parametrize(("succeeded", "finished"), [(True, True), (False, True), (False, False)])
def test_every_pod_is_deleted_once_by_the_run_or_after_its_record(
    cleanup: Cleanup, outcome: Outcome, succeeded: bool, finished: bool
) -> None:
    """Together, a RECORD_FIRST run and its recorder delete exactly what a run with
    the user's cleanup would have deleted, and no pod twice."""
    by_run = should_delete(
        RunOptions(cleanup=Cleanup.RECORD_FIRST), outcome, succeeded=succeeded,
        pod_finished=finished,
    )  # fmt: skip
    after = deleted_after_record(cleanup, outcome, succeeded=succeeded, pod_finished=finished)
    alone = should_delete(
        RunOptions(cleanup=cleanup), outcome, succeeded=succeeded, pod_finished=finished
    )
    assert not (by_run and after)
    if outcome in (Outcome.CANCELLED, Outcome.ERROR):
        assert by_run  # nothing final to record: the run's own delete
        assert not after
    else:
        assert not by_run
        assert after is alone


@pytest.mark.parametrize(
    ("outcome", "cancelled", "collect", "expected"),
    [
        (Outcome.FAILED, False, True, True),
        (Outcome.TIMED_OUT, False, True, True),
        (Outcome.SUCCEEDED, False, True, False),
        (Outcome.FAILED, False, False, False),  # collect_events=False
        (Outcome.CANCELLED, True, True, False),  # a Ctrl-C: no LIST per run
        (Outcome.CANCELLED, False, True, False),
        (None, False, True, False),
    ],
)
def test_events_are_listed_for_failures_only_never_for_a_cancellation(
    outcome: Outcome | None, cancelled: bool, collect: bool, expected: bool
) -> None:
    result = None if outcome is None else PodResult("ns", "p", "u", outcome=outcome)
    options = RunOptions(collect_events=collect)
    assert should_collect_events(options, result, cancelled=cancelled) is expected


def test_a_recorder_with_record_first_deletes_nothing() -> None:
    assert not deleted_after_record(
        Cleanup.RECORD_FIRST, Outcome.SUCCEEDED, succeeded=True, pod_finished=True
    )


# ------------------------------------------------------------------ options
@pytest.mark.parametrize(
    "bad",
    [
        {"schedule_timeout": 0},
        {"deadline": -1},
        {"create_retry_window": -1},
        {"delete_grace_period": -5},
        {"cleanup": "sometimes"},
    ],
)
def test_options_that_cannot_be_honoured_are_a_usage_error_naming_the_field(
    bad: dict[str, Any],
) -> None:
    with pytest.raises(OptionError) as raised:
        RunOptions(**bad)
    assert isinstance(raised.value, UsageError)
    assert isinstance(raised.value, ValueError)  # what callers caught before
    assert next(iter(bad)) in str(raised.value)


def test_judge_does_not_mutate_the_pod() -> None:
    subject = pod(node="n", waiting=Reason.ERR_IMAGE_PULL)
    before = copy.deepcopy(subject)
    judge(subject, RunClock(created=0.0), OPTIONS, now=1.0, main_container=None)
    assert subject == before


def test_a_pod_deleted_by_somebody_else_that_then_exits_0_is_deleted_not_succeeded() -> None:
    clock = RunClock(created=0.0)
    terminating = pod("Running", node="n", running_since=T0)
    terminating["metadata"]["deletionTimestamp"] = stamp(T0)
    assert judge(terminating, clock, OPTIONS, now=1.0, main_container=None) is None
    exited = pod("Succeeded", node="n", terminated=0)
    exited["metadata"]["deletionTimestamp"] = stamp(T0)
    assert judge(exited, clock, OPTIONS, now=2.0, main_container=None) == Verdict(Outcome.DELETED)


def test_a_pod_that_succeeds_by_itself_is_succeeded() -> None:
    clock = RunClock(created=0.0)
    judge(pod("Running", node="n", running_since=T0), clock, OPTIONS, now=1.0, main_container=None)
    assert judge(
        pod("Succeeded", node="n", terminated=0), clock, OPTIONS, now=2.0, main_container=None
    ) == Verdict(None)
