"""Which pods the Gantt chart shows: a readable number out of thousands, chosen by rule.

Why: a chart of 10,000 bars is a grey smear, so the chart shows a sample, and the
sample must not hide what a person looks for. It is spread evenly over the run in
creation order (the first and last pods included: the ramp-up and the tail), and up
to a quarter of it is reserved for pods that did not succeed, spread evenly over them
too, so a few failures among thousands of successes still appear. The choice is
deterministic: the same file gives the same chart.

What it deliberately does not do: random sampling (two reports of one file would
differ), or draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asyncpod.report._records import Task
from asyncpod.results import Outcome

__all__ = ["evenly", "gantt_sample"]


def evenly(count: int, wanted: int) -> list[int]:
    """``wanted`` distinct indexes spread evenly over ``range(count)``, first and last included."""
    if wanted <= 0 or count <= 0:
        return []
    if wanted >= count:
        return list(range(count))
    if wanted == 1:
        return [0]
    step = (count - 1) / (wanted - 1)
    return [round(i * step) for i in range(wanted)]


def gantt_sample(tasks: Iterable[Task], limit: int) -> list[Task]:
    """At most ``limit`` tasks with a creation time, in creation order (see the module)."""
    timed: Sequence[Task] = sorted(
        (task for task in tasks if task.created is not None),
        key=lambda task: (task.created, task.key),
    )
    if len(timed) <= limit:
        return list(timed)
    bad = [i for i, task in enumerate(timed) if task.outcome is not Outcome.SUCCEEDED]
    chosen = {bad[i] for i in evenly(len(bad), min(len(bad), limit // 4))}
    rest = [i for i in range(len(timed)) if i not in chosen]
    chosen.update(rest[i] for i in evenly(len(rest), limit - len(chosen)))
    return [timed[i] for i in sorted(chosen)]
