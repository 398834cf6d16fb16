"""What a resumed batch deletes before it starts: pods whose results are on file."""

from __future__ import annotations

from typing import Any

import pytest

from asyncpod.cli.sweep import attempt_of, sweep
from asyncpod.core.policy import Cleanup
from asyncpod.core.scheduler import ATTEMPT_ANNOTATION
from asyncpod.spec import TASK_KEY_ANNOTATION


def pod(
    name: str,
    key: str | None,
    attempt: str | None = "1",
    phase: str = "Succeeded",
    deleting: bool = False,
) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if key is not None:
        annotations[TASK_KEY_ANNOTATION] = key
    if attempt is not None:
        annotations[ATTEMPT_ANNOTATION] = attempt
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "annotations": annotations}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-06T00:00:00Z"
    return {"metadata": metadata, "status": {"phase": phase}}


def test_only_recorded_attempts_of_this_batchs_tasks_are_swept() -> None:
    found = sweep(
        [
            pod("a-1", "a"),  # a: attempt 1 recorded
            pod("b-2", "b", attempt="2", phase="Running"),  # b: only attempt 1 recorded
            pod("c-1", "c"),  # c: nothing recorded (reattached)
            pod("x-1", "x"),  # another shard's task
            pod("anon", None),
        ],
        recorded_attempts={"a": 1, "b": 1, "x": 5},
        tasks={"a", "b", "c"},
        cleanup=Cleanup.DELETE,
    )
    assert found.delete == (("a-1", "uid-a-1"),)
    assert found.recorded == {"a-1"}


def test_earlier_attempts_of_a_retried_task_are_swept() -> None:
    found = sweep(
        [pod("a-1", "a", phase="Failed"), pod("a-2", "a", attempt="2", phase="Pending")],
        recorded_attempts={"a": 1},
        tasks={"a"},
        cleanup=Cleanup.DELETE,
    )
    assert found.recorded == {"a-1"}


@pytest.mark.parametrize(
    ("cleanup", "phase", "deleted"),
    [
        (Cleanup.DELETE, "Succeeded", True),
        (Cleanup.DELETE, "Failed", True),
        (Cleanup.DELETE, "Running", True),  # a timed-out pod, recorded before its delete
        (Cleanup.DELETE_ON_SUCCESS, "Succeeded", True),
        (Cleanup.DELETE_ON_SUCCESS, "Failed", False),  # kept for inspection
        (Cleanup.DELETE_ON_SUCCESS, "Running", True),  # never left running
        (Cleanup.KEEP, "Succeeded", False),
        (Cleanup.KEEP, "Running", False),
    ],
)
def test_the_users_cleanup_decides_as_it_would_have_after_the_line(
    cleanup: Cleanup, phase: str, deleted: bool
) -> None:
    found = sweep(
        [pod("a-1", "a", phase=phase)], recorded_attempts={"a": 1}, tasks={"a"}, cleanup=cleanup
    )
    assert bool(found.delete) is deleted
    assert found.recorded == {"a-1"}  # deleted or kept, never reattached


def test_a_pod_being_deleted_is_not_deleted_again() -> None:
    found = sweep(
        [pod("a-1", "a", deleting=True)],
        recorded_attempts={"a": 1},
        tasks={"a"},
        cleanup=Cleanup.DELETE,
    )
    assert found.delete == ()
    assert found.recorded == {"a-1"}


@pytest.mark.parametrize(("value", "attempt"), [(None, 1), ("3", 3), ("three", 1)])
def test_attempt_of(value: str | None, attempt: int) -> None:
    annotations = {} if value is None else {ATTEMPT_ANNOTATION: value}
    assert attempt_of(annotations) == attempt
