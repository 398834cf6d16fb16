"""The end-of-batch summary: counts by outcome and reason, duration percentiles.

Why a module of its own: the numbers a user acts on after 10,000 pods ("how many
failed, why, how long did they take") must be right, so the arithmetic is a pure
function of the results (:func:`summarize`, :func:`percentile`), tested without a
cluster; :func:`render` only lays it out with rich.

Durations are each pod's own, from the Kubernetes timestamps of its result (container
start to finish; creation to finish if it never started). Kubernetes stores them with
one-second resolution, so sub-second pods show as 0s or 1s; the wall-clock rate of
the whole batch is measured by the launcher side instead.

What it deliberately does not do: read files or talk to a cluster; it is handed the
final result of each task (a resumed run passes the ones recorded before, too).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from asyncpod.results import Outcome, PodResult

__all__ = [
    "DurationStats",
    "ReasonRow",
    "Summary",
    "format_seconds",
    "percentile",
    "render",
    "summarize",
]

_OUTCOME_ORDER = tuple(Outcome)
_STYLE = {
    Outcome.SUCCEEDED: "green",
    Outcome.FAILED: "red",
    Outcome.TIMED_OUT: "yellow",
    Outcome.CANCELLED: "yellow",
    Outcome.DELETED: "magenta",
    Outcome.ERROR: "red",
}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks.

    The same definition as ``numpy.percentile``'s default and Python's
    ``statistics.quantiles(method="inclusive")``: p0 is the minimum, p100 the maximum,
    and p50 of an even count is the mean of the middle two.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class DurationStats:
    count: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> DurationStats | None:
        if not seconds:
            return None
        return cls(len(seconds), percentile(seconds, 50), percentile(seconds, 95), max(seconds))


@dataclass(frozen=True, slots=True)
class ReasonRow:
    outcome: Outcome
    reason: str
    count: int
    example: str
    """The first such task: ``task_key: message``."""


@dataclass(frozen=True, slots=True)
class Summary:
    """What happened to a batch, as numbers.

    ``total`` is the number of tasks in the input; ``finished`` those with a result
    (``recorded`` of them carried over from an earlier attempt of a resumed run).
    ``unfinished`` = total - finished: cancelled in flight or never started.
    """

    total: int
    finished: int
    by_outcome: dict[Outcome, int]
    reasons: tuple[ReasonRow, ...]
    durations: DurationStats | None
    recorded: int = 0
    elapsed: float | None = None
    ran_now: int = 0
    run_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> int:
        return self.by_outcome.get(Outcome.SUCCEEDED, 0)

    @property
    def not_succeeded(self) -> int:
        return self.finished - self.succeeded

    @property
    def unfinished(self) -> int:
        return self.total - self.finished

    @property
    def ok(self) -> bool:
        """Every task finished and succeeded."""
        return self.unfinished == 0 and self.not_succeeded == 0

    @property
    def rate(self) -> float | None:
        """Pods finished per second by this invocation (wall clock)."""
        if not self.elapsed or self.elapsed <= 0:
            return None
        return self.ran_now / self.elapsed


def summarize(
    results: Iterable[PodResult],
    *,
    total: int,
    recorded: int = 0,
    elapsed: float | None = None,
    run_id: str | None = None,
) -> Summary:
    """Count ``results`` (one per task: the last one if a task has several)."""
    by_outcome: Counter[Outcome] = Counter()
    reason_counts: Counter[tuple[Outcome, str]] = Counter()
    examples: dict[tuple[Outcome, str], str] = {}
    durations: list[float] = []
    finished = 0
    for result in results:
        finished += 1
        by_outcome[result.outcome] += 1
        duration = result.duration
        if duration is not None and result.outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
            durations.append(duration.total_seconds())
        if result.ok:
            continue
        key = (result.outcome, result.reason or "-")
        reason_counts[key] += 1
        if key not in examples:
            who = result.task_key or result.name or "?"
            examples[key] = f"{who}: {_one_line(result.message or result.describe())}"
    rows = sorted(
        (ReasonRow(o, r, n, examples[(o, r)]) for (o, r), n in reason_counts.items()),
        key=lambda row: (-row.count, _OUTCOME_ORDER.index(row.outcome), row.reason),
    )
    return Summary(
        total=total,
        finished=finished,
        by_outcome={o: by_outcome[o] for o in _OUTCOME_ORDER if by_outcome[o]},
        reasons=tuple(rows),
        durations=DurationStats.of(durations),
        recorded=recorded,
        elapsed=elapsed,
        ran_now=finished - recorded,
        run_id=run_id,
    )


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _one_line(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render(summary: Summary, console: Console, *, title: str = "asyncpod batch") -> None:
    """Print the summary: a headline, outcomes, reasons of failures, durations."""
    head = Text(f"{title}: ", style="bold")
    head.append(f"{summary.finished}/{summary.total} finished")
    if summary.run_id:
        head.append(f" · run {summary.run_id}")
    if summary.elapsed is not None:
        head.append(f" · {format_seconds(summary.elapsed)}")
    if summary.rate is not None and summary.ran_now:
        head.append(f" · {summary.rate:.1f} pods/s")
    if summary.recorded:
        head.append(f" · {summary.recorded} recorded by an earlier attempt")

    outcomes = Table(title=None, box=None, pad_edge=False, show_edge=False)
    outcomes.add_column("outcome")
    outcomes.add_column("pods", justify="right")
    outcomes.add_column("share", justify="right")
    for outcome, count in summary.by_outcome.items():
        share = f"{100 * count / summary.total:.1f}%" if summary.total else "-"
        outcomes.add_row(Text(outcome.value, style=_STYLE[outcome]), str(count), share)
    if summary.unfinished:
        share = f"{100 * summary.unfinished / summary.total:.1f}%"
        outcomes.add_row(Text("not finished", style="dim"), str(summary.unfinished), share)

    parts: list[Table | Text] = [head, outcomes]
    if summary.reasons:
        reasons = Table(box=None, pad_edge=False, show_edge=False, title_justify="left")
        # The example gives way (one line, cut with an ellipsis), never the numbers.
        widest = max(len(row.reason) for row in summary.reasons)
        reasons.add_column("not succeeded", no_wrap=True, min_width=13)
        reasons.add_column("reason", no_wrap=True, min_width=max(6, widest))
        reasons.add_column("pods", justify="right", no_wrap=True, min_width=4)
        room = max(20, console.width - (13 + max(6, widest) + 4 + 3 * 2))
        reasons.add_column("first example", no_wrap=True, overflow="ellipsis", max_width=room)
        for row in summary.reasons:
            reasons.add_row(
                Text(row.outcome.value, style=_STYLE[row.outcome]),
                row.reason,
                str(row.count),
                row.example,
            )
        parts.append(reasons)
    if summary.durations is not None:
        d = summary.durations
        parts.append(
            Text(
                f"pod durations, start to finish (n={d.count}): p50 {format_seconds(d.p50)} · "
                f"p95 {format_seconds(d.p95)} · max {format_seconds(d.max)}"
            )
        )
    for key, value in summary.extra.items():
        parts.append(Text(f"{key}: {value}"))
    console.print(Group(*(_spaced(parts))))


def _spaced(parts: list[Table | Text]) -> list[Table | Text]:
    out: list[Table | Text] = []
    for index, part in enumerate(parts):
        if index > 1:
            out.append(Text(""))
        out.append(part)
    return out
