"""Unit tests of asyncpod.results: derived properties, the summary line, the dict form."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from asyncpod.errors import AsyncpodError, PodFailedError, SpecError
from asyncpod.results import (
    ContainerKind,
    ContainerResult,
    Outcome,
    PodEvent,
    PodResult,
    Reason,
)

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make(outcome: Outcome = Outcome.FAILED, **overrides: Any) -> PodResult:
    fields: dict[str, Any] = {
        "outcome": outcome,
        "phase": "Failed",
        "reason": "Error",
        "message": "container main exited with code 3",
        "containers": (
            ContainerResult(
                "setup",
                ContainerKind.INIT,
                state="terminated",
                exit_code=0,
                reason="Completed",
                started_at=t(1),
                finished_at=t(2),
            ),
            ContainerResult(
                "main",
                ContainerKind.MAIN,
                state="terminated",
                image="python:3.12-slim",
                exit_code=3,
                reason="Error",
                message="boom",
                termination_message="boom",
                started_at=t(3),
                finished_at=t(15.3),
            ),
            ContainerResult("proxy", ContainerKind.SIDECAR, state="running", restart_count=2),
        ),
        "created_at": T0,
        "scheduled_at": t(0.5),
        "started_at": t(1),
        "finished_at": t(13.3),
        "events": (
            PodEvent(
                "Warning",
                "BackOff",
                "Back-off restarting",
                count=3,
                first_seen=t(1),
                last_seen=t(9),
                source="kubelet",
            ),
        ),
        "termination_message": "boom",
        "node_name": "kwok-node-0",
        "task_key": "shard/3",
    }
    fields.update(overrides)
    return PodResult("default", "job-1", "uid-1", **fields)


# --------------------------------------------------------------------------------------
# derived properties
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", list(Outcome))
def test_ok_only_for_succeeded(outcome: Outcome) -> None:
    assert make(outcome).ok is (outcome is Outcome.SUCCEEDED)


def test_outcome_values_are_stable() -> None:
    # These strings are written to JSONL result files; changing one breaks resume.
    assert {o.name: o.value for o in Outcome} == {
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "TIMED_OUT": "timed_out",
        "CANCELLED": "cancelled",
        "DELETED": "deleted",
        "ERROR": "error",
    }
    assert [k.value for k in ContainerKind] == ["init", "main", "sidecar"]


def test_exit_code_is_the_main_containers() -> None:
    result = make()
    assert result.exit_code == 3
    assert result.main is result.containers[1]
    assert make(containers=()).exit_code is None
    assert make(containers=()).main is None


def test_container_lookup() -> None:
    result = make()
    proxy = result.container("proxy")
    assert proxy is not None
    assert proxy.restart_count == 2
    assert result.container("nope") is None


@pytest.mark.parametrize(
    ("started", "created", "finished", "expected"),
    [
        (t(1), T0, t(13.3), timedelta(seconds=12.3)),
        (None, T0, t(13.3), timedelta(seconds=13.3)),  # never started: from creation
        (t(1), T0, None, None),
        (None, None, t(5), None),
    ],
)
def test_duration(
    started: datetime | None,
    created: datetime | None,
    finished: datetime | None,
    expected: timedelta | None,
) -> None:
    result = make(started_at=started, created_at=created, finished_at=finished)
    assert result.duration == expected


def test_container_duration() -> None:
    main = make().containers[1]
    assert main.duration == timedelta(seconds=12.3)
    assert ContainerResult("x", ContainerKind.MAIN, started_at=t(1)).duration is None


def test_results_are_frozen() -> None:
    result = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.outcome = Outcome.SUCCEEDED  # type: ignore[misc]


def test_reason_constants_match_kubernetes_spelling() -> None:
    assert Reason.OOM_KILLED == "OOMKilled"
    assert Reason.IMAGE_PULL_BACK_OFF == "ImagePullBackOff"
    assert Reason.DELETED_EXTERNALLY == "DeletedExternally"


# --------------------------------------------------------------------------------------
# raise_for_outcome / describe
# --------------------------------------------------------------------------------------


def test_raise_for_outcome_returns_self_when_ok() -> None:
    result = make(Outcome.SUCCEEDED, reason="Completed", message=None)
    assert result.raise_for_outcome() is result


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.SUCCEEDED])
def test_raise_for_outcome_raises_with_the_result(outcome: Outcome) -> None:
    result = make(outcome)
    with pytest.raises(PodFailedError) as info:
        result.raise_for_outcome()
    assert info.value.result is result
    assert str(info.value) == result.describe()
    assert isinstance(info.value, AsyncpodError)


def test_describe_failed() -> None:
    assert make().describe() == (
        "pod default/job-1 failed (Error, exit code 3) after 12.3s on kwok-node-0:"
        " container main exited with code 3; termination message: 'boom'"
    )


def test_describe_succeeded_omits_termination_message() -> None:
    result = make(Outcome.SUCCEEDED, reason="Completed", message=None, termination_message="42")
    assert result.describe() == (
        "pod default/job-1 succeeded (Completed, exit code 3) after 12.3s on kwok-node-0"
    )


def test_describe_never_created() -> None:
    result = PodResult(
        "ns",
        "job-2",
        None,
        outcome=Outcome.ERROR,
        reason="CreateFailed",
        message="403 Forbidden:\n  pods is forbidden",
    )
    assert (
        result.describe() == "pod ns/job-2 error (CreateFailed): 403 Forbidden: pods is forbidden"
    )


def test_describe_is_one_line_and_bounded() -> None:
    long = "line\n" * 500
    text = make(message=long, termination_message="x" * 1000 + "\nend").describe()
    assert "\n" not in text
    assert len(text) < 700
    assert "…" in text


def test_describe_skips_termination_message_equal_to_message() -> None:
    text = make(message="boom\n", termination_message="boom").describe()
    assert text.count("boom") == 1


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.04, "0.0s"), (59.94, "59.9s"), (125, "2m05s"), (3723, "1h02m03s")],
)
def test_describe_formats_durations(seconds: float, shown: str) -> None:
    text = make(started_at=T0, finished_at=t(seconds)).describe()
    assert f" after {shown} " in text


# --------------------------------------------------------------------------------------
# dict form
# --------------------------------------------------------------------------------------


def test_to_dict_is_json_ready() -> None:
    data = make().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["outcome"] == "failed"
    assert data["ok"] is False
    assert data["exit_code"] == 3
    assert data["duration_seconds"] == pytest.approx(12.3)
    assert data["created_at"] == "2024-05-01T10:00:00+00:00"
    assert data["containers"][1]["kind"] == "main"
    assert data["containers"][1]["finished_at"] == "2024-05-01T10:00:15.300000+00:00"
    assert data["events"][0] == {
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off restarting",
        "count": 3,
        "first_seen": "2024-05-01T10:00:01+00:00",
        "last_seen": "2024-05-01T10:00:09+00:00",
        "source": "kubelet",
    }


@pytest.mark.parametrize(
    "result",
    [
        make(),
        make(Outcome.SUCCEEDED, reason="Completed", message=None, events=()),
        PodResult("ns", "never-created", None, outcome=Outcome.ERROR, reason="CreateFailed"),
        make(Outcome.DELETED, containers=(), created_at=None, finished_at=None),
    ],
)
def test_dict_round_trip(result: PodResult) -> None:
    assert PodResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_from_dict_accepts_z_and_naive_times_and_ignores_unknown_keys() -> None:
    data = make().to_dict()
    data["created_at"] = "2024-05-01T10:00:00Z"
    data["finished_at"] = "2024-05-01T10:00:13.300000"
    data["written_by"] = "asyncpod 9.9"
    result = PodResult.from_dict(data)
    assert result.created_at == T0
    assert result.finished_at == t(13.3)
    assert result.finished_at is not None
    assert result.finished_at.tzinfo is not None


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        ({"outcome": "exploded"}, "outcome", "'exploded' is not one of succeeded, failed"),
        ({"outcome": None}, "outcome", "is required"),
        ({"name": 7}, "name", "must be a string, got int"),
        ({"created_at": "last tuesday"}, "created_at", "not an ISO-8601 time"),
        ({"containers": {"main": {}}}, "containers", "must be a list"),
        (
            {"containers": [{"name": "main", "kind": "main", "exit_code": "3"}]},
            "containers[0].exit_code",
            "an integer",
        ),
        (
            {"containers": [{"name": "main", "kind": "main", "exit_code": True}]},
            "containers[0].exit_code",
            "True",
        ),
        ({"containers": [{"name": "main", "kind": "primary"}]}, "containers[0].kind", "'primary'"),
        ({"containers": ["main"]}, "containers[0]", "must be a mapping"),
        ({"events": [{"type": "Normal", "reason": "X"}]}, "events[0].message", "is required"),
    ],
)
def test_from_dict_errors_name_the_field(edit: dict[str, Any], field: str, problem: str) -> None:
    data = make().to_dict()
    data.update(edit)
    with pytest.raises(SpecError) as info:
        PodResult.from_dict(data)
    assert info.value.field == field
    assert problem in info.value.problem


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(SpecError, match="must be a mapping"):
        PodResult.from_dict([])  # type: ignore[arg-type]
