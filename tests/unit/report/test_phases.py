"""The report's numbers: phases, pods in flight, counts and rankings, from hand-made tasks."""

from __future__ import annotations

import pytest

from asyncpod.report import (
    Phase,
    Task,
    duration,
    failed,
    in_flight,
    outcome_counts,
    percentile,
    phase_stats,
    phase_values,
    reason_counts,
    slowest,
    span,
    total,
)
from asyncpod.results import Outcome


def task(
    key: str,
    created: float | None = 0.0,
    scheduled: float | None = None,
    running: float | None = None,
    finished: float | None = None,
    *,
    outcome: Outcome = Outcome.SUCCEEDED,
    reason: str | None = None,
    recorded: float | None = None,
) -> Task:
    return Task(
        key=key, name=f"pod-{key}", outcome=outcome, reason=reason, created=created,
        scheduled=scheduled, running=running, finished=finished, recorded=recorded,
    )  # fmt: skip


def test_each_phase_runs_between_its_two_timestamps() -> None:
    t = task("a", 100.0, 102.0, 105.0, 115.0)
    assert duration(t, Phase.SCHEDULE) == 2.0
    assert duration(t, Phase.STARTUP) == 3.0
    assert duration(t, Phase.RUN) == 10.0
    assert total(t) == 15.0


def test_a_phase_with_an_unknown_end_is_left_out_and_a_negative_one_is_zero() -> None:
    pending = task("p", 100.0, 101.0, recorded=130.0)  # cancelled before it ran
    skewed = task("s", 100.0, 99.0, 99.0, 104.0)  # another component's clock, a second early
    assert duration(pending, Phase.STARTUP) is None
    assert duration(pending, Phase.RUN) is None
    assert total(pending) == 30.0  # it was in flight until its result was written
    assert duration(skewed, Phase.SCHEDULE) == 0.0
    tasks = [pending, skewed]
    assert phase_values(tasks, Phase.SCHEDULE) == [1.0, 0.0]
    assert phase_values(tasks, Phase.RUN) == [5.0]
    assert phase_stats(tasks, Phase.STARTUP).count == 1
    assert phase_stats([pending], Phase.RUN).p50 is None


def test_percentiles_interpolate_between_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    stats = phase_stats([task(str(i), 0.0, float(i)) for i in range(101)], Phase.SCHEDULE)
    assert (stats.count, stats.p50, stats.p90, stats.p99, stats.max) == (101, 50, 90, 99, 100)


def test_pods_in_flight_count_pending_then_running() -> None:
    series = in_flight(
        [
            task("a", 0.0, 1.0, 2.0, 10.0),
            task("b", 1.0, 1.0, 5.0, 6.0),
            task("c", 2.0, recorded=4.0, outcome=Outcome.CANCELLED),  # never ran
            task("d", None, finished=3.0),  # no creation time: not counted
        ]
    )
    assert series.times == (0.0, 1.0, 2.0, 4.0, 5.0, 6.0, 10.0)
    assert series.pending == (1, 2, 2, 1, 0, 0, 0)
    assert series.running == (0, 0, 1, 1, 2, 1, 0)
    assert series.peak == 3
    assert series.uncounted == 1


def test_a_pod_that_ends_when_it_starts_counts_as_pending_only() -> None:
    series = in_flight([task("a", 0.0, 0.0, 3.0, 3.0), task("b", 0.0, 0.0, 5.0, 2.0)])
    assert series.running == (0, 0, 0)
    assert series.pending == (2, 1, 0)


def test_span_runs_from_the_first_creation_to_the_last_end() -> None:
    assert span([]) is None
    assert span([task("a", 5.0, finished=9.0), task("b", 3.0, recorded=7.0)]) == (3.0, 9.0)
    assert span([task("a", 5.0)]) == (5.0, 5.0)


def test_counts_by_outcome_and_by_reason() -> None:
    tasks = [
        task("a"),
        task("b", outcome=Outcome.FAILED, reason="OOMKilled"),
        task("c", outcome=Outcome.FAILED, reason="OOMKilled"),
        task("d", outcome=Outcome.FAILED, reason="Error"),
        task("e", outcome=Outcome.ERROR),
    ]
    assert outcome_counts(tasks) == [
        (Outcome.SUCCEEDED, 1),
        (Outcome.FAILED, 3),
        (Outcome.ERROR, 1),
    ]
    assert reason_counts(tasks) == [
        (Outcome.FAILED, "OOMKilled", 2),
        (Outcome.FAILED, "Error", 1),
        (Outcome.ERROR, "-", 1),
    ]


def test_slowest_by_total_time_and_failed_in_creation_order() -> None:
    tasks = [
        task("fast", 0.0, finished=1.0),
        task("slow", 0.0, finished=50.0, outcome=Outcome.FAILED),
        task("tie-b", 0.0, finished=20.0),
        task("tie-a", 0.0, finished=20.0),
        task("unknown", None, outcome=Outcome.ERROR),
    ]
    assert [t.key for t in slowest(tasks, 3)] == ["slow", "tie-a", "tie-b"]
    assert [t.key for t in failed(tasks)] == ["slow", "unknown"]
