"""The report's HTML: one file, its pictures inlined, no script, no request.

Why no script and no external anything: the file is mailed, attached to tickets and
opened from disk years later, so it must need nothing but itself. Pictures are
``data:`` URIs, the style sheet is inline, and every text from the results file
(task keys, messages) is escaped.

What it deliberately does not do: compute numbers or draw (the callers hand both in).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from asyncpod.report._phases import Phase as _Phase
from asyncpod.report._phases import PhaseStats, duration, total
from asyncpod.report._records import Loaded, Task

__all__ = ["FIGURES", "PageFacts", "page"]

#: The pictures, in page order: file-name part, heading, alt text.
FIGURES = (
    ("timeline", "Timeline", "pods in flight over time, pending and running"),
    ("gantt", "A sample of pods", "a Gantt chart of sampled pods: pending, then running"),
    ("phases", "Phase durations", "histograms of schedule latency, startup and run time"),
    ("outcomes", "Outcomes and reasons", "pods per outcome, and per reason of failure"),
)

FAILED_SHOWN = 200
"""Failed tasks listed in the table; the rest are counted."""

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1140px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde}
.meta{color:#556}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{border:1px solid #dde;border-radius:6px;padding:8px 12px;flex:1 1 90px}
.card b{display:block;font-size:18px;white-space:nowrap}
img{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef;vertical-align:top}
th{background:#f4f6fa}.n{text-align:right;font-variant-numeric:tabular-nums}
.note{background:#fff7e0;border:1px solid #ecd9a0;padding:6px 10px;border-radius:4px}
.o-succeeded{color:#2e9d4a}.o-failed,.o-error{color:#d03b3b}
"""


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What the page says besides its pictures."""

    title: str
    source: str
    loaded: Loaded
    stats: Sequence[PhaseStats]
    slowest: Sequence[Task]
    failed: Sequence[Task]
    span: tuple[float, float] | None
    peak: int
    sampled: int


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s" if value % 1 else f"{value:.0f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _card(label: str, value: str) -> str:
    return f'<div class="card">{_e(label)}<b>{_e(value)}</b></div>'


def _task_row(task: Task, *, message: bool) -> str:
    cells = [
        f"<td>{_e(task.key)}</td>",
        f'<td class="o-{_e(task.outcome.value)}">{_e(task.outcome.value)}</td>',
        f'<td class="n">{task.attempt}</td>',
        f"<td>{_e(task.reason or '-')}</td>",
        f'<td class="n">{_e("-" if task.exit_code is None else task.exit_code)}</td>',
    ]
    cells += [f'<td class="n">{_seconds(duration(task, phase))}</td>' for phase in _Phase]
    cells.append(f'<td class="n">{_seconds(total(task))}</td>')
    cells.append(f"<td>{_e(task.node or '-')}</td>")
    if message:
        text = " ".join((task.message or "").split())
        cells.append(f"<td>{_e(text[:300] + ('…' if len(text) > 300 else ''))}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _task_table(tasks: Sequence[Task], *, message: bool) -> str:
    head = ["task", "outcome", "attempt", "reason", "exit", *(p.value for p in _Phase)]
    head += ["total", "node"]
    if message:
        head.append("message")
    rows = "".join(_task_row(task, message=message) for task in tasks)
    numeric = {"attempt", "exit", "total", *(p.value for p in _Phase)}
    header = "".join(f"<th{' class=n' if h in numeric else ''}>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"


def _stats_table(stats: Sequence[PhaseStats]) -> str:
    rows = "".join(
        f"<tr><td>{_e(s.phase.value)}</td><td class='n'>{s.count:,}</td>"
        + "".join(f"<td class='n'>{_seconds(v)}</td>" for v in (s.p50, s.p90, s.p99, s.max))
        + "</tr>"
        for s in stats
    )
    return (
        "<table><thead><tr><th>phase</th><th class=n>pods</th><th class=n>p50</th>"
        "<th class=n>p90</th><th class=n>p99</th><th class=n>max</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def page(facts: PageFacts, figures: Mapping[str, bytes]) -> str:
    """The whole HTML document."""
    loaded = facts.loaded
    tasks = loaded.tasks
    succeeded = sum(1 for t in tasks if t.ok)
    length = None if facts.span is None else facts.span[1] - facts.span[0]
    rate = f"{len(tasks) / length * 60:,.1f} pods/min" if length else "-"
    runs = ", ".join(sorted(loaded.run_ids)) or "-"
    when = "no times" if facts.span is None else f"{_when(facts.span[0])} → {_when(facts.span[1])}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(facts.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(facts.title)}</h1>",
        f'<p class="meta">{_e(facts.source)} · run {_e(runs)} · {_e(when)}</p>',
        '<div class="cards">',
        _card("tasks", f"{len(tasks):,}"),
        _card("succeeded", f"{succeeded:,}"),
        _card("did not succeed", f"{len(tasks) - succeeded:,}"),
        *(
            [
                _card("pods (attempts)", f"{len(loaded.pods):,}"),
                _card("retried", f"{loaded.retried:,}"),
            ]
            if len(loaded.pods) != len(tasks)
            else []
        ),
        _card("peak in flight", f"{facts.peak:,}"),
        _card("wall time", _seconds(length)),
        _card("throughput", rate),
        "</div>",
    ]
    notes = []
    if loaded.duplicates:
        notes.append(
            f"{loaded.duplicates:,} lines were superseded by a later line of the same attempt "
            "(an interrupted or resumed batch); the last line of each is shown."
        )
    if loaded.problems:
        shown = "".join(f"<li>{_e(p)}</li>" for p in loaded.problems[:20])
        more = len(loaded.problems) - 20
        extra = f"<li>… and {more:,} more</li>" if more > 0 else ""
        notes.append(
            f"{len(loaded.problems):,} lines hold no result and were skipped:"
            f"<ul>{shown}{extra}</ul>"
        )
    parts += [f'<p class="note">{note}</p>' for note in notes]
    if not tasks:
        parts.append("<p>The results file holds no result yet.</p></body></html>")
        return "\n".join(parts)
    if facts.span is None:
        parts.append(
            '<p class="note">No result has a creation time: no pod was created (see the '
            "messages below), so there is no timeline and no phase to show.</p>"
        )
    for name, heading, alt in FIGURES:
        data = figures.get(name)
        if data is None:
            continue
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(f"<h2>{_e(heading)}</h2>")
        if name == "gantt":
            parts.append(
                f'<p class="meta">{facts.sampled:,} of {len(loaded.pods):,} pods, spread evenly '
                "over the run in creation order, up to a quarter of them pods that did not "
                "succeed (a retried task's attempts are pods of their own: #2, #3).</p>"
            )
        parts.append(
            f'<img id="plot-{_e(name)}" alt="{_e(alt)}" src="data:image/png;base64,{encoded}">'
        )
        if name == "phases":
            parts.append(_stats_table(facts.stats))
            if len(loaded.pods) != len(tasks):
                parts.append(
                    f'<p class="meta">Over every pod: {len(loaded.pods):,} attempts of '
                    f"{len(tasks):,} tasks.</p>"
                )
    if facts.slowest:
        parts.append(f"<h2>The slowest {len(facts.slowest)} tasks (creation to end)</h2>")
        parts.append(_task_table(facts.slowest, message=False))
    failed = facts.failed
    parts.append(f"<h2>Tasks that did not succeed ({len(failed):,})</h2>")
    if failed:
        parts.append(_task_table(failed[:FAILED_SHOWN], message=True))
        if len(failed) > FAILED_SHOWN:
            parts.append(f"<p>… and {len(failed) - FAILED_SHOWN:,} more (in the results file).</p>")
    else:
        parts.append("<p>None: every task succeeded.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
