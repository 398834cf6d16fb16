"""A results file read for a report: whatever an interrupted or resumed batch left in it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from asyncpod.cli.resultsfile import record_of
from asyncpod.report import read_tasks, tasks_of
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def result(key: str, outcome: Outcome = Outcome.SUCCEEDED, *, ran: bool = True) -> PodResult:
    main = ContainerResult(
        "main", ContainerKind.MAIN, exit_code=0, started_at=at(5), finished_at=at(9)
    )
    return PodResult(
        "ns", f"pod-{key}", f"uid-{key}", outcome=outcome, task_key=key,
        created_at=at(0), scheduled_at=at(1), started_at=at(2) if ran else None,
        finished_at=at(9) if ran else None, containers=(main,) if ran else (),
    )  # fmt: skip


def line(
    res: PodResult,
    *,
    recorded: float | None = None,
    run_id: str = "run-1",
    attempt: int | None = None,
    final: bool | None = None,
) -> bytes:
    record = record_of(res, run_id=run_id, extra={"attempt": attempt, "final": final})
    if recorded is not None:
        record["recorded_at"] = at(recorded).isoformat()
    return orjson.dumps(record) + b"\n"


def test_a_task_keeps_its_times_as_seconds_and_runs_from_its_main_container() -> None:
    (task,) = tasks_of([result("a")])
    assert task.key == "a"
    assert task.created == T0.timestamp()
    assert task.scheduled == at(1).timestamp()
    assert task.running == at(5).timestamp()  # the container's start, not the kubelet's
    assert task.finished == task.end == at(9).timestamp()


def test_a_resumed_runs_file_gives_each_task_once_the_last_line_winning(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(
        line(result("a", Outcome.CANCELLED, ran=False), recorded=30)
        + line(result("b"))
        + b"\n"  # blank lines are nothing
        + line(result("a"))
    )
    loaded = read_tasks(path)
    assert [t.key for t in loaded.tasks] == ["b", "a"]
    assert loaded.tasks[1].outcome is Outcome.SUCCEEDED
    assert loaded.duplicates == 1
    assert loaded.lines == 3
    assert loaded.run_ids == {"run-1"}
    assert loaded.problems == []


def test_lines_that_hold_no_result_are_problems_not_failures(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    good = line(result("a"))
    path.write_bytes(good + b"[1, 2]\n" + b'{"namespace": "ns"}\n' + good[:40])
    loaded = read_tasks(path)
    assert [t.key for t in loaded.tasks] == ["a"]
    assert len(loaded.problems) == 3
    assert loaded.problems[0].startswith(f"{path}:2: ")
    assert "name: is required" in loaded.problems[1]
    assert loaded.problems[2].startswith(f"{path}:4: ")
    assert loaded.problems[2].endswith("(cut short: the batch was killed?)")


def test_a_result_without_times_ends_when_it_was_recorded(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(line(result("a", Outcome.CANCELLED, ran=False), recorded=30))
    (task,) = read_tasks(path).tasks
    assert task.running is None
    assert task.finished is None
    assert task.end == at(30).timestamp()


def test_a_recorded_time_that_cannot_be_read_is_unknown(tmp_path: Path) -> None:
    record = record_of(result("a", Outcome.CANCELLED, ran=False), run_id="run-1")
    for bad in ("yesterday", 12, "2026-12-05T12:00:00"):  # the last has no zone
        record["recorded_at"] = bad
        path = tmp_path / "r.jsonl"
        path.write_bytes(orjson.dumps(record) + b"\n")
        (task,) = read_tasks(path).tasks
        assert task.end is None


def test_files_of_two_runs_put_together_keep_both_runs_tasks(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(line(result("a")) + line(result("a"), run_id="run-2"))
    loaded = read_tasks(path)
    assert len(loaded.tasks) == 2
    assert loaded.duplicates == 0
    assert loaded.run_ids == {"run-1", "run-2"}


def test_a_retried_task_is_one_task_and_one_pod_per_attempt(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    evicted = result("a", Outcome.FAILED)
    path.write_bytes(
        line(evicted, attempt=1, final=False)
        + line(result("b"))
        + line(result("a"), attempt=2, final=True)
        + line(result("a"), attempt=2, final=True)  # a resumed run wrote it again
    )
    loaded = read_tasks(path)
    assert [(t.key, t.attempt, t.outcome) for t in loaded.tasks] == [
        ("b", 1, Outcome.SUCCEEDED),
        ("a", 2, Outcome.SUCCEEDED),
    ]
    assert [(t.key, t.attempt) for t in loaded.pods] == [("a", 1), ("b", 1), ("a", 2)]
    assert loaded.retried == 1
    assert loaded.duplicates == 1


@pytest.mark.parametrize("attempt", [0, -1, "2", True, None])
def test_an_attempt_that_is_not_a_positive_number_is_the_first(
    tmp_path: Path, attempt: object
) -> None:
    record = record_of(result("a"), run_id="run-1")
    record["attempt"] = attempt
    path = tmp_path / "r.jsonl"
    path.write_bytes(orjson.dumps(record) + b"\n")
    (task,) = read_tasks(path).pods
    assert task.attempt == 1
