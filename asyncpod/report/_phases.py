"""The numbers of a report: each task's phases, pods in flight over time, counts, rankings.

Why pure: what a person reads off a report ("p90 schedule latency 4 s", "at most 100
pods in flight", "these 12 failed, OOMKilled") must be right, so it is computed here
from :class:`~._records.Task` values and tested without matplotlib; the plots only
draw these numbers.

Phases, from the Kubernetes timestamps of a result (whole seconds):

- schedule latency: created → scheduled (bound to a node);
- startup: scheduled → running (image pull, init containers, container start);
- run time: running → finished.

A phase whose two ends are not both known is left out of its histogram (a cancelled
pod that never ran has a schedule latency and nothing else). Clocks of different
components may disagree by a second: a negative phase counts as zero.

What it deliberately does not do: decide what to sample for the Gantt chart
(:mod:`._sampling`), bin histograms (:mod:`._bins`) or draw.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from asyncpod.report._records import Task
from asyncpod.results import Outcome

__all__ = [
    "InFlight",
    "Phase",
    "PhaseStats",
    "duration",
    "failed",
    "in_flight",
    "outcome_counts",
    "percentile",
    "phase_stats",
    "phase_values",
    "reason_counts",
    "slowest",
    "span",
    "total",
]


class Phase(str, Enum):
    """The three phases of a pod a report shows, with their ends' :class:`Task` fields."""

    SCHEDULE = "schedule latency"
    STARTUP = "startup"
    RUN = "run time"

    @property
    def ends(self) -> tuple[str, str]:
        return _ENDS[self]


_ENDS = {
    Phase.SCHEDULE: ("created", "scheduled"),
    Phase.STARTUP: ("scheduled", "running"),
    Phase.RUN: ("running", "finished"),
}


def _between(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def duration(task: Task, phase: Phase) -> float | None:
    """Seconds ``task`` spent in ``phase``; None when either end is unknown."""
    first, last = phase.ends
    value: float | None = _between(getattr(task, first), getattr(task, last))
    return value


def total(task: Task) -> float | None:
    """Created to end (finished, or when the result was written)."""
    return _between(task.created, task.end)


def phase_values(tasks: Iterable[Task], phase: Phase) -> list[float]:
    """The known durations of ``phase``, in task order."""
    values = (duration(task, phase) for task in tasks)
    return [value for value in values if value is not None]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted ``values``, by linear interpolation
    between closest ranks (numpy's default): p0 the minimum, p100 the maximum."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    rank = (len(values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """How long one phase took over the tasks whose both ends are known."""

    phase: Phase
    count: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None


def phase_stats(tasks: Sequence[Task], phase: Phase) -> PhaseStats:
    values = sorted(phase_values(tasks, phase))
    if not values:
        return PhaseStats(phase, 0)
    return PhaseStats(
        phase,
        len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        max=values[-1],
    )


@dataclass(frozen=True, slots=True)
class InFlight:
    """Pods in flight as step functions: at ``times[i]`` (and until ``times[i + 1]``)
    ``pending[i]`` pods were created and not yet running, ``running[i]`` running.

    A task counts from its creation to its end (finished, or when its result was
    written); one without a creation time or an end is not counted (``uncounted``).
    """

    times: tuple[float, ...]
    pending: tuple[int, ...]
    running: tuple[int, ...]
    uncounted: int

    @property
    def peak(self) -> int:
        return max((p + r for p, r in zip(self.pending, self.running, strict=True)), default=0)


def in_flight(tasks: Iterable[Task]) -> InFlight:
    """The step functions of :class:`InFlight`, one step per distinct timestamp."""
    # (time, Δpending, Δrunning); at equal times every change applies before the count.
    changes: dict[float, list[int]] = {}

    def change(at: float, pending: int, running: int) -> None:
        delta = changes.setdefault(at, [0, 0])
        delta[0] += pending
        delta[1] += running

    uncounted = 0
    for task in tasks:
        start, end = task.created, task.end
        if start is None or end is None:
            uncounted += 1
            continue
        end = max(start, end)
        running = task.running
        if running is None or running >= end:
            change(start, 1, 0)
            change(end, -1, 0)
            continue
        running = max(start, running)
        change(start, 1, 0)
        change(running, -1, 1)
        change(end, 0, -1)
    times: list[float] = []
    pending: list[int] = []
    runs: list[int] = []
    now_pending = now_running = 0
    for at in sorted(changes):
        delta_pending, delta_running = changes[at]
        now_pending += delta_pending
        now_running += delta_running
        times.append(at)
        pending.append(now_pending)
        runs.append(now_running)
    return InFlight(tuple(times), tuple(pending), tuple(runs), uncounted)


def span(tasks: Iterable[Task]) -> tuple[float, float] | None:
    """The first creation and the last end of the run; None when no task has times."""
    starts = [t.created for t in tasks if t.created is not None]
    ends = [t.end for t in tasks if t.end is not None]
    if not starts:
        return None
    return min(starts), max([*ends, *starts])


def outcome_counts(tasks: Iterable[Task]) -> list[tuple[Outcome, int]]:
    """Tasks per outcome, in :class:`Outcome`'s order, outcomes with none left out."""
    counts = Counter(task.outcome for task in tasks)
    return [(outcome, counts[outcome]) for outcome in Outcome if counts[outcome]]


def reason_counts(tasks: Iterable[Task]) -> list[tuple[Outcome, str, int]]:
    """(outcome, reason, tasks) for every task that did not succeed, most frequent first."""
    counts = Counter(
        (task.outcome, task.reason or "-")
        for task in tasks
        if task.outcome is not Outcome.SUCCEEDED
    )
    order = {outcome: index for index, outcome in enumerate(Outcome)}
    rows = sorted(counts.items(), key=lambda item: (-item[1], order[item[0][0]], item[0][1]))
    return [(outcome, reason, count) for (outcome, reason), count in rows]


def slowest(tasks: Iterable[Task], limit: int) -> list[Task]:
    """The ``limit`` tasks with the longest time from creation to end, longest first
    (ties by key, so the same file gives the same list)."""
    timed = [(value, task) for task in tasks if (value := total(task)) is not None]
    timed.sort(key=lambda item: (-item[0], item[1].key))
    return [task for _, task in timed[:limit]]


def failed(tasks: Iterable[Task]) -> list[Task]:
    """Every task that did not succeed, in the order they were created; those never
    created (no time) last, in the order given (the results file's)."""
    bad = [task for task in tasks if task.outcome is not Outcome.SUCCEEDED]
    bad.sort(key=lambda task: (task.created is None, task.created or 0.0))
    return bad
