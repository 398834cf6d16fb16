"""benchmarks.retries' pure parts: which tasks are evicted, the attempts check, the table."""

from __future__ import annotations

from typing import Any

import pytest

from asyncpod.cli.batch import failure_policy
from asyncpod.core.failurepolicy import DEFAULT_RULES
from benchmarks.retries import check_attempts, per_result, pick_evictions, retries_table
from benchmarks.workload import pod_names


def test_pick_evictions_draws_the_share_reproducibly() -> None:
    names = pod_names(10_000)
    chosen = pick_evictions(names, 0.05, seed=16)
    assert len(chosen) == 500
    assert len(set(chosen)) == 500
    assert set(chosen) <= set(names)
    assert chosen == sorted(chosen)
    assert chosen == pick_evictions(names, 0.05, seed=16)
    assert chosen != pick_evictions(names, 0.05, seed=17)
    assert pick_evictions(names, 0.0, seed=1) == []
    assert len(pick_evictions(pod_names(2_000), 0.05, seed=1)) == 100


def test_pick_evictions_refuses_a_share_outside_0_1() -> None:
    with pytest.raises(ValueError, match="share"):
        pick_evictions(["a"], 1.5, seed=0)


def test_check_attempts_passes_when_evicted_tasks_took_two_attempts_and_others_one() -> None:
    ok = check_attempts(
        pods=4, completed=4, errors=0, evicted=["a", "b"], attempts_over_one={"a": 2, "b": 2}
    )
    assert ok == []


def test_check_attempts_names_what_is_wrong() -> None:
    problems = check_attempts(
        pods=5, completed=3, errors=1, evicted=["a", "b"], attempts_over_one={"a": 3, "c": 2}
    )
    assert problems == [
        "2 of 5 tasks without a succeeded final result",
        "1 wrong results",
        "2 evicted tasks without exactly 2 attempts (a: 3, b: 1)",
        "1 tasks not evicted took more than 1 attempt (c: 2)",
    ]


def test_per_result_divides_each_verb_by_the_final_results() -> None:
    assert per_result({"POST pods": 210, "DELETE pods": 200}, 200) == {
        "POST pods": 1.05,
        "DELETE pods": 1.0,
    }
    assert per_result({"POST pods": 1}, 0) == {}


def test_the_contender_runs_the_policy_of_the_cli_retries_option() -> None:
    policy = failure_policy(3, ())
    assert policy.max_attempts == 4
    assert policy.rules == DEFAULT_RULES


def _row(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run": "B: 5 evicted, --retries 3",
        "pods": 100,
        "summary": {
            "status": "ok",
            "completed": 100,
            "wall_s": 50.0,
            "pods_per_s": 2.0,
            "requests_per_pod": 2.1,
            "cpu_s": 0.5,
            "rss_growth_mib": 10.0,
        },
        "extra": {"attempts": 105, "attempts_histogram": {"1": 95, "2": 5}},
        "requests": {"by_verb": {"DELETE pods": 100, "POST pods": 105}, "not_2xx": {}},
        "evictions": {"evicted": 5},
        "check": [],
        "loadavg_before": [1.0, 1.0, 1.0],
        "loadavg_after": [2.0, 1.0, 1.0],
        "loadavg_during": {"mean": 1.5, "max": 2.5},
    }
    row.update(over)
    return row


def test_retries_table_reports_per_final_result_and_per_attempt() -> None:
    table = retries_table([_row()])
    line = table.splitlines()[2]
    assert "| 5 |" in line  # evicted
    assert "105 (1: 95, 2: 5)" in line
    assert "POST pods 105 (1.050)" in line
    assert "| 5.00 | 4.76 |" in line  # CPU ms per final result, per attempt
    assert "1.0→2.0; 1.5, 2.5" in line
    wrong = retries_table([_row(check=["1 wrong results"])]).splitlines()[2]
    assert "100 (wrong)" in wrong
