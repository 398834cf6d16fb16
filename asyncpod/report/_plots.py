"""The report's pictures, drawn with matplotlib into PNG bytes.

Why PNG from matplotlib: the report must open from disk with no server, no network
and no script, so every plot is an image inlined as a data URI; the same bytes are
what ``--png`` writes. matplotlib draws 10,000 pods' timeline in well under a second
(Agg simplifies long paths) and ships its own font, so the pictures are the same on
every machine. Only :class:`matplotlib.figure.Figure` is used, never ``pyplot``: no
global figure registry, no GUI backend chosen from the environment.

What it deliberately does not do: compute what it draws (:mod:`._phases`,
:mod:`._sampling`, :mod:`._bins` do), or know of HTML.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from asyncpod.report._bins import Histogram
from asyncpod.report._phases import InFlight, Phase
from asyncpod.report._records import Task
from asyncpod.results import Outcome

__all__ = ["COLORS", "TimeAxis", "gantt", "histograms", "outcomes", "timeline"]

COLORS = {
    Outcome.SUCCEEDED: "#2e9d4a",
    Outcome.FAILED: "#d03b3b",
    Outcome.TIMED_OUT: "#e08a1e",
    Outcome.CANCELLED: "#b8a200",
    Outcome.DELETED: "#a03ca8",
    Outcome.ERROR: "#7a1f1f",
}
PENDING = "#b9c4d0"
RUNNING = "#3b78c2"
DPI = 100


class TimeAxis:
    """Seconds since the run's first creation, shown in s, min or h by the run's length."""

    def __init__(self, start: float, length: float) -> None:
        self.start = start
        if length > 2 * 3600:
            self.scale, self.unit = 3600.0, "h"
        elif length > 600:
            self.scale, self.unit = 60.0, "min"
        else:
            self.scale, self.unit = 1.0, "s"

    def __call__(self, at: float) -> float:
        return (at - self.start) / self.scale

    @property
    def label(self) -> str:
        return f"time since the first pod was created ({self.unit})"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.set_facecolor("white")
    return figure


def timeline(series: InFlight, axis: TimeAxis) -> bytes:
    """Pods in flight over time, pending under running, stacked."""
    figure = _figure(11, 3.6)
    ax = figure.add_subplot()
    times = [axis(t) for t in series.times]
    total = [p + r for p, r in zip(series.pending, series.running, strict=True)]
    ax.fill_between(times, 0, series.running, step="post", color=RUNNING, label="running")
    ax.fill_between(
        times, series.running, total, step="post", color=PENDING, label="pending (not yet running)"
    )
    ax.step(times, total, where="post", color="#223", linewidth=0.8)
    ax.set_xlabel(axis.label)
    ax.set_ylabel("pods in flight")
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=min(times, default=0.0))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    figure.legend(loc="outside lower center", ncols=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Pods in flight (peak {series.peak:,})", loc="left")
    return _png(figure)


def gantt(sample: Sequence[Task], axis: TimeAxis, *, of: int) -> bytes:
    """One bar per sampled pod: pending (created → running), then running coloured by outcome."""
    rows = len(sample)
    figure = _figure(11, min(max(2.5, 0.9 + 0.16 * rows), 30.0))  # --sample 5000 stays 3,000 px
    ax = figure.add_subplot()
    # One collection of rectangles for all the bars: an artist per bar costs ~4 ms to draw,
    # 12 s for --sample 3000.
    boxes: list[list[tuple[float, float]]] = []
    colors: list[str] = []

    def bar(row: int, start: float, stop: float, color: str) -> None:
        left, right = axis(start), axis(max(stop, start))
        top, bottom = row - 0.4, row + 0.4
        boxes.append([(left, top), (right, top), (right, bottom), (left, bottom)])
        colors.append(color)

    for row, task in enumerate(sample):
        created = task.created if task.created is not None else 0.0
        end = task.end if task.end is not None else created
        running = task.running if task.running is not None and task.running < end else None
        bar(row, created, running if running is not None else end, PENDING)
        if running is not None:
            bar(row, running, end, COLORS[task.outcome])
    ax.add_collection(PolyCollection(boxes, facecolors=colors, edgecolors="none"))
    ax.autoscale_view()
    ax.set_ylim(rows - 0.5, -0.5)
    if rows <= 60:
        ax.set_yticks(range(rows), [_label(task) for task in sample], fontsize=7)
    else:
        ax.set_ylabel("pods, in creation order")
    ax.set_xlabel(axis.label)
    ax.grid(axis="x", alpha=0.3)
    handles = [_patch(PENDING, "pending")]
    shown = sorted(
        {
            t.outcome
            for t in sample
            if t.running is not None and t.end is not None and t.running < t.end
        },
        key=list(Outcome).index,
    )
    handles += [_patch(COLORS[o], f"running, {o.value}") for o in shown]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    ax.set_title(f"{rows:,} of {of:,} pods: pending, then running", loc="left")
    return _png(figure)


def histograms(histos: Sequence[tuple[Phase, Histogram | None]]) -> bytes:
    """One histogram per phase, side by side; the overflow bar past the axis in red."""
    figure = _figure(11, 3.2)
    axes = figure.subplots(1, len(histos))
    for ax, (phase, histo) in zip(axes, histos, strict=True):
        ax.set_title(phase.value, loc="left")
        ax.set_xlabel("seconds")
        if histo is None:
            ax.text(0.5, 0.5, "no pod with both times", ha="center", va="center")
            ax.set_axis_off()
            continue
        ax.stairs(histo.counts, histo.edges, fill=True, color=RUNNING)
        if histo.overflow:
            ax.bar(
                histo.edges[-1] + histo.width,
                histo.overflow,
                width=histo.width,
                color=COLORS[Outcome.FAILED],
                label=f"{histo.overflow:,} beyond {histo.edges[-1]:g} s",
            )
            ax.legend(frameon=False, fontsize=8)
        ax.set_ylabel("pods")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", alpha=0.3)
    return _png(figure)


def outcomes(
    by_outcome: Sequence[tuple[Outcome, int]], by_reason: Sequence[tuple[Outcome, str, int]]
) -> bytes:
    """Pods per outcome, and the reasons of those that did not succeed (the 12 most frequent)."""
    figure = _figure(11, 3.2)
    left, right = figure.subplots(1, 2)
    names = [o.value for o, _ in by_outcome]
    left.barh(names, [n for _, n in by_outcome], color=[COLORS[o] for o, _ in by_outcome])
    left.invert_yaxis()
    left.set_title("outcomes", loc="left")
    left.set_xlabel("pods")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    for index, (_, count) in enumerate(by_outcome):
        left.annotate(f" {count:,}", (count, index), va="center", fontsize=8)
    reasons = list(by_reason[:12])
    if reasons:
        right.barh(
            [_short(f"{reason} ({o.value})", 40) for o, reason, _ in reasons],
            [n for _, _, n in reasons],
            color=[COLORS[o] for o, _, _ in reasons],
        )
        right.invert_yaxis()
        right.tick_params(axis="y", labelsize=8)
        right.set_xlabel("pods")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        right.text(0.5, 0.5, "every pod succeeded", ha="center", va="center")
        right.set_axis_off()
    right.set_title("reasons of the pods that did not succeed", loc="left")
    return _png(figure)


def _patch(color: str, label: str) -> Patch:
    return Patch(facecolor=color, label=label)


def _label(task: Task) -> str:
    attempt = f" #{task.attempt}" if task.attempt > 1 else ""
    return _short(task.key, 28 - len(attempt)) + attempt


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
