"""The batch summary's arithmetic (counts, percentiles) and what its rendering shows."""

from __future__ import annotations

import io
import random
import statistics
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from rich.console import Console

from asyncpod.cli.summary import (
    DurationStats,
    format_seconds,
    percentile,
    render,
    summarize,
)
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult, Reason

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)


def result(
    key: str,
    outcome: Outcome = Outcome.SUCCEEDED,
    *,
    seconds: float | None = 1.0,
    reason: str | None = None,
    message: str | None = None,
    exit_code: int | None = None,
    **fields: Any,
) -> PodResult:
    started = T0
    finished = None if seconds is None else T0 + timedelta(seconds=seconds)
    containers: tuple[ContainerResult, ...] = ()
    if exit_code is not None:
        containers = (
            ContainerResult("main", ContainerKind.MAIN, state="terminated", exit_code=exit_code),
        )
    return PodResult(
        "ns",
        f"pod-{key}",
        f"uid-{key}",
        outcome=outcome,
        reason=reason,
        message=message,
        started_at=started,
        finished_at=finished,
        containers=containers,
        task_key=key,
        **fields,
    )


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 95, 5.0),
        ([1.0, 2.0], 50, 1.5),
        ([3.0, 1.0, 2.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 25, 1.75),
        (list(map(float, range(1, 21))), 95, 19.05),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_agrees_with_statistics_inclusive_quantiles() -> None:
    rng = random.Random(7)
    for size in (2, 3, 10, 101, 1000):
        values = [rng.uniform(0, 100) for _ in range(size)]
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        assert percentile(values, 50) == pytest.approx(cuts[49])
        assert percentile(values, 95) == pytest.approx(cuts[94])


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_rejects_nonsense(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


def test_summarize_counts_outcomes_reasons_and_durations() -> None:
    results = [
        *(result(f"ok{i}", seconds=float(i + 1)) for i in range(10)),  # 1..10s
        result("e1", Outcome.FAILED, reason=Reason.ERROR, message="exit 3", seconds=20.0),
        result("e2", Outcome.FAILED, reason=Reason.ERROR, message="exit 4", seconds=30.0),
        result("oom", Outcome.FAILED, reason=Reason.OOM_KILLED, message="oom", seconds=2.0),
        result("late", Outcome.TIMED_OUT, reason=Reason.RUN_TIMEOUT, seconds=500.0),
        result("pull", Outcome.FAILED, reason=Reason.IMAGE_PULL_BACK_OFF, seconds=None),
    ]
    summary = summarize(results, total=20, recorded=3, elapsed=10.0, run_id="r1")
    assert summary.finished == 15
    assert summary.by_outcome == {
        Outcome.SUCCEEDED: 10,
        Outcome.FAILED: 4,
        Outcome.TIMED_OUT: 1,
    }
    assert list(summary.by_outcome) == [Outcome.SUCCEEDED, Outcome.FAILED, Outcome.TIMED_OUT]
    assert (summary.succeeded, summary.not_succeeded, summary.unfinished) == (10, 5, 5)
    assert not summary.ok
    # Most frequent first; the first task of each kind is the example.
    assert [(r.outcome, r.reason, r.count) for r in summary.reasons] == [
        (Outcome.FAILED, "Error", 2),
        (Outcome.FAILED, "ImagePullBackOff", 1),
        (Outcome.FAILED, "OOMKilled", 1),
        (Outcome.TIMED_OUT, "RunTimeout", 1),
    ]
    assert summary.reasons[0].example == "e1: exit 3"
    # Durations: only pods that ran to an exit (the timed-out 500s one is excluded).
    durations = [float(i + 1) for i in range(10)] + [20.0, 30.0, 2.0]
    assert summary.durations == DurationStats(
        13, percentile(durations, 50), percentile(durations, 95), 30.0
    )
    assert summary.durations.p50 == 6.0
    # This invocation ran 12 of the 15 in 10s.
    assert summary.ran_now == 12
    assert summary.rate == pytest.approx(1.2)


def test_summary_of_a_complete_successful_batch_is_ok() -> None:
    summary = summarize([result("a"), result("b")], total=2)
    assert summary.ok
    assert summary.reasons == ()
    assert summary.rate is None  # no elapsed time given


def test_summary_with_unfinished_tasks_is_not_ok() -> None:
    summary = summarize([result("a")], total=2)
    assert (summary.unfinished, summary.ok) == (1, False)


def test_summary_of_nothing() -> None:
    summary = summarize([], total=0)
    assert summary.ok
    assert summary.durations is None
    assert summary.by_outcome == {}


def test_a_missing_reason_is_grouped_as_a_dash_and_example_falls_back() -> None:
    summary = summarize([result("x", Outcome.CANCELLED, seconds=None)], total=1)
    (row,) = summary.reasons
    assert (row.reason, row.count) == ("-", 1)
    assert row.example.startswith("x: pod ns/pod-x cancelled")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0s"), (2.26, "2.3s"), (42.4, "42s"), (61, "1m01s"), (3725, "1h02m")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_render_shows_the_numbers() -> None:
    results = [
        result("a", seconds=1.0),
        result("b", seconds=3.0),
        result("c", Outcome.FAILED, reason=Reason.OOM_KILLED, message="killed", exit_code=137),
    ]
    summary = summarize(results, total=4, elapsed=2.0, run_id="run-1")
    buffer = io.StringIO()
    render(summary, Console(file=buffer, width=120), title="asyncpod batch")
    text = buffer.getvalue()
    assert "asyncpod batch: 3/4 finished · run run-1 · 2.0s · 1.5 pods/s" in text
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "succeeded 2 50.0%" in lines
    assert "failed 1 25.0%" in lines
    assert "not finished 1 25.0%" in lines
    assert "failed OOMKilled 1 c: killed" in lines
    assert "pod durations, start to finish (n=3): p50 1.0s · p95 2.8s · max 3.0s" in lines
