"""``asyncpod report``'s engine: a batch's results file turned into a page a person reads.

Why a package of its own: a report needs only the results file, never a cluster, so
it sits beside the vocabulary (``results.py``) rather than in a layer: it imports no
``core``, ``kube``, ``cli`` or ``airflow`` (import-linter checks that). Its parts are
small and mostly pure:

- ``_records``: the file read leniently (duplicates, cut lines, missing times);
- ``_phases``: phases, pods in flight, counts, rankings (pure);
- ``_sampling``: which pods the Gantt chart shows (pure);
- ``_bins``: readable histogram bins (pure);
- ``_page``: the self-contained HTML (pure);
- ``_plots`` and :mod:`asyncpod.report.render`: matplotlib, from the ``report`` extra.

Importing this package does not import matplotlib; :mod:`asyncpod.report.render` does.
"""

from __future__ import annotations

from asyncpod.report._bins import Histogram, histogram, nice_width
from asyncpod.report._phases import (
    InFlight,
    Phase,
    PhaseStats,
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
from asyncpod.report._records import Loaded, Task, read_tasks, task_of, tasks_of
from asyncpod.report._sampling import evenly, gantt_sample

__all__ = [
    "Histogram",
    "InFlight",
    "Loaded",
    "Phase",
    "PhaseStats",
    "Task",
    "duration",
    "evenly",
    "failed",
    "gantt_sample",
    "histogram",
    "in_flight",
    "nice_width",
    "outcome_counts",
    "percentile",
    "phase_stats",
    "phase_values",
    "read_tasks",
    "reason_counts",
    "slowest",
    "span",
    "task_of",
    "tasks_of",
    "total",
]

#: What ``pip install 'asyncpod[report]'`` adds (pyproject.toml), by import name.
REPORT_EXTRA = frozenset({"matplotlib"})
