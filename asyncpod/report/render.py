"""Write a report: read the results file, compute, draw, and write the HTML (and PNGs).

Why a module apart from the package's pure parts: it is the one that imports
matplotlib (the ``report`` extra), so ``import asyncpod.report`` and the pure
functions work, and are tested, without it; the CLI imports this module only when it
writes a report, and names the extra when the import fails.

What it deliberately does not do: print, or decide where the report goes by default
(the CLI does both).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asyncpod.report import _plots
from asyncpod.report._bins import histogram
from asyncpod.report._page import PageFacts, page
from asyncpod.report._phases import (
    Phase,
    failed,
    in_flight,
    outcome_counts,
    phase_stats,
    phase_values,
    reason_counts,
    slowest,
    span,
)
from asyncpod.report._records import Loaded, read_tasks
from asyncpod.report._sampling import gantt_sample

__all__ = ["GANTT_SAMPLE", "SLOWEST", "Written", "draw", "write_report"]

GANTT_SAMPLE = 50
"""Pods in the Gantt chart by default: each bar stays tall enough to read."""
SLOWEST = 15


@dataclass(frozen=True, slots=True)
class Written:
    """What :func:`write_report` wrote, and what it read."""

    html: Path
    pngs: tuple[Path, ...]
    loaded: Loaded


def draw(
    loaded: Loaded, *, title: str, source: str, sample: int = GANTT_SAMPLE
) -> tuple[str, dict[str, bytes]]:
    """The HTML page and its pictures (name → PNG bytes) for ``loaded``."""
    # How tasks ended is read from their last lines; when and how long, from every pod
    # (a retried task's earlier attempts were pods in flight too).
    tasks, pods = loaded.tasks, loaded.pods
    series = in_flight(pods)
    run_span = span(pods)
    chosen = gantt_sample(pods, sample)
    figures: dict[str, bytes] = {}
    if tasks:
        if run_span is not None:
            axis = _plots.TimeAxis(run_span[0], run_span[1] - run_span[0])
            figures["timeline"] = _plots.timeline(series, axis)
            if chosen:
                figures["gantt"] = _plots.gantt(chosen, axis, of=len(pods))
        histograms = [(phase, histogram(phase_values(pods, phase))) for phase in Phase]
        if any(histo is not None for _, histo in histograms):
            figures["phases"] = _plots.histograms(histograms)
        figures["outcomes"] = _plots.outcomes(outcome_counts(tasks), reason_counts(tasks))
    facts = PageFacts(
        title=title,
        source=source,
        loaded=loaded,
        stats=[phase_stats(pods, phase) for phase in Phase],
        slowest=slowest(tasks, SLOWEST),
        failed=failed(tasks),
        span=run_span,
        peak=series.peak,
        sampled=len(chosen),
    )
    return page(facts, figures), figures


def write_report(
    results: Path,
    out: Path,
    *,
    png: bool = False,
    sample: int = GANTT_SAMPLE,
    title: str | None = None,
) -> Written:
    """Read ``results``, write the report to ``out`` (and ``out``'s stem + ``-NAME.png``
    beside it when ``png``). Raises ``OSError`` when a file cannot be read or written."""
    loaded = read_tasks(results)
    text, figures = draw(
        loaded,
        title=title or f"asyncpod report: {results.name}",
        source=str(results),
        sample=sample,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    written: list[Path] = []
    if png:
        for name, data in figures.items():
            path = out.with_name(f"{out.stem}-{name}.png")
            path.write_bytes(data)
            written.append(path)
    return Written(out, tuple(written), loaded)
