"""Which pods the Gantt chart shows: evenly spread, failures kept, always the same."""

from __future__ import annotations

import pytest

from asyncpod.report import Task, evenly, gantt_sample
from asyncpod.results import Outcome


@pytest.mark.parametrize(
    ("count", "wanted", "expected"),
    [
        (10, 0, []),
        (0, 3, []),
        (3, 5, [0, 1, 2]),
        (10, 1, [0]),
        (10, 2, [0, 9]),
        (11, 3, [0, 5, 10]),
    ],
)
def test_evenly_spreads_distinct_indexes_over_the_range(
    count: int, wanted: int, expected: list[int]
) -> None:
    assert evenly(count, wanted) == expected


def test_evenly_gives_distinct_indexes_for_every_size() -> None:
    for count in range(1, 60):
        for wanted in range(1, count + 1):
            chosen = evenly(count, wanted)
            assert len(set(chosen)) == wanted == len(chosen)
            assert chosen[0] == 0
            assert chosen[-1] == (count - 1 if wanted > 1 else 0)


def tasks(count: int, failing: set[int]) -> list[Task]:
    return [
        Task(
            key=f"t{i:04d}",
            name=f"p{i}",
            outcome=Outcome.FAILED if i in failing else Outcome.SUCCEEDED,
            created=float(count - i),  # given newest first: the sample sorts them
        )
        for i in range(count)
    ]


def test_a_small_run_is_shown_whole_in_creation_order_without_untimed_pods() -> None:
    run = [*tasks(5, set()), Task(key="x", name="x", outcome=Outcome.ERROR)]
    assert [t.key for t in gantt_sample(run, 10)] == ["t0004", "t0003", "t0002", "t0001", "t0000"]


def test_a_large_run_keeps_the_first_the_last_and_a_quarter_for_failures() -> None:
    failing = {17, 400, 401, 999}
    sample = gantt_sample(tasks(1000, failing), 40)
    keys = [t.key for t in sample]
    assert len(sample) == 40
    assert len(set(keys)) == 40
    assert keys[0] == "t0999"  # created first
    assert keys[-1] == "t0000"  # created last
    assert {f"t{i:04d}" for i in failing} <= set(keys)
    created = [t.created or 0.0 for t in sample]
    assert created == sorted(created)


def test_failures_take_at_most_a_quarter_of_the_sample() -> None:
    failing = set(range(0, 1000, 2))
    sample = gantt_sample(tasks(1000, failing), 40)
    assert len(sample) == 40
    assert sum(t.outcome is Outcome.FAILED for t in sample) >= 10


def test_the_same_input_gives_the_same_sample() -> None:
    run = tasks(5000, {3, 4000})
    assert gantt_sample(run, 50) == gantt_sample(list(reversed(run)), 50)
