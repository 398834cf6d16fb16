"""The results file: lines written at once, read back for --resume, crash leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncpod.cli.batch import prepare_results
from asyncpod.cli.resultsfile import ResultsWriter, read_results, record_of
from asyncpod.errors import UsageError
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult, Reason


def result(key: str, outcome: Outcome = Outcome.SUCCEEDED, code: int | None = 0) -> PodResult:
    containers = (
        ContainerResult("init", ContainerKind.INIT, state="terminated", exit_code=0),
        ContainerResult("main", ContainerKind.MAIN, state="terminated", exit_code=code),
    )
    return PodResult(
        "ns",
        f"pod-{key}",
        f"uid-{key}",
        outcome=outcome,
        reason=Reason.ERROR if code else None,
        containers=containers,
        task_key=key,
    )


def test_a_line_is_the_result_dict_plus_run_id_and_exit_codes() -> None:
    record = record_of(result("a", Outcome.FAILED, 3), run_id="r1")
    assert record["run_id"] == "r1"
    assert (record["task_key"], record["name"], record["uid"]) == ("a", "pod-a", "uid-a")
    assert (record["outcome"], record["reason"], record["exit_code"]) == ("failed", "Error", 3)
    assert record["exit_codes"] == {"init": 0, "main": 3}
    assert record["recorded_at"].endswith("+00:00")
    assert PodResult.from_dict(record) == result("a", Outcome.FAILED, 3)


def test_each_write_reaches_the_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.jsonl"
    with ResultsWriter(path, run_id="r1") as writer:
        writer.write(result("a"))
        # Not closed yet: a reader (or a crash) already sees the whole line.
        assert [json.loads(line)["task_key"] for line in path.read_text().splitlines()] == ["a"]
        writer.write(result("b"))
        assert writer.written == 2
    recorded = read_results(path)
    assert set(recorded.results) == {"a", "b"}
    assert recorded.run_ids == {"r1"}
    assert (recorded.lines, recorded.truncated_line, recorded.problems) == (2, None, [])


def test_a_line_cut_by_a_crash_is_ignored_then_dropped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsWriter(path, run_id="r1") as writer:
        writer.write(result("a"))
    whole = path.read_text()
    path.write_text(whole + whole[:40])  # the second line was being written at the kill
    recorded = read_results(path)
    assert (set(recorded.results), recorded.truncated_line, recorded.problems) == ({"a"}, 2, [])
    with ResultsWriter(path, run_id="r1") as writer:
        writer.write(result("b"))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["task_key"] for line in lines] == ["a", "b"]
    recorded = read_results(path)
    assert (set(recorded.results), recorded.truncated_line, recorded.problems) == (
        {"a", "b"},
        None,
        [],
    )


def test_the_last_line_of_a_task_wins_and_cancelled_or_error_tasks_rerun(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with ResultsWriter(path, run_id="r1") as writer:
        writer.write(result("a", Outcome.CANCELLED, None))
        writer.write(result("a", Outcome.SUCCEEDED))
        writer.write(result("b", Outcome.FAILED, 2))
        writer.write(result("c", Outcome.CANCELLED, None))
        writer.write(result("d", Outcome.ERROR, None))
        writer.write(result("e", Outcome.TIMED_OUT, None))
    recorded = read_results(path)
    assert recorded.results["a"].outcome is Outcome.SUCCEEDED
    assert recorded.done_keys() == {"a", "b", "e"}


def test_a_missing_file_reads_as_empty(tmp_path: Path) -> None:
    recorded = read_results(tmp_path / "none.jsonl")
    assert (recorded.results, recorded.lines, recorded.done_keys()) == ({}, 0, set())


def test_garbage_in_the_middle_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    good = json.dumps(record_of(result("a"), run_id="r1"))
    path.write_text(f"{good}\nnot json\n[1, 2]\n{good}\n")
    recorded = read_results(path)
    assert [p.split(": ")[0] for p in recorded.problems] == [f"{path}:2", f"{path}:3"]
    with pytest.raises(UsageError, match="not results"):
        prepare_results(path, run_id="r1", resume=True)


def test_prepare_results_refuses_to_mix_runs(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    assert prepare_results(path, run_id="r1", resume=False).lines == 0
    with ResultsWriter(path, run_id="r1") as writer:
        writer.write(result("a"))
    with pytest.raises(UsageError, match="pass --resume"):
        prepare_results(path, run_id="r1", resume=False)
    with pytest.raises(UsageError, match="belongs to run r1"):
        prepare_results(path, run_id="r2", resume=True)
    assert prepare_results(path, run_id="r1", resume=True).done_keys() == {"a"}


@pytest.mark.parametrize("where", ["/dev/full", "/dev/zero", "directory"])
def test_a_results_path_that_is_no_regular_file_is_refused_before_reading(
    where: str, tmp_path: Path
) -> None:
    # Read, /dev/full never ends: the batch grew until the kernel killed it (exit -9).
    path = tmp_path if where == "directory" else Path(where)
    with pytest.raises(UsageError, match="name a file") as refused:
        read_results(path)
    assert str(path) in str(refused.value)
