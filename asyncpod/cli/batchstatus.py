"""``asyncpod batch status RUN_ID``: an in-cluster batch's progress, read from the API only.

Why: the shards write their results to a volume the user's machine cannot read, and a
status command that started a pod to read it would be slow and heavy. Each shard
publishes its counts as an annotation on its own pod (:data:`PROGRESS_ANNOTATION`,
throttled: :mod:`asyncpod.cli.shardprogress`); the Job's status says which indexes
completed or failed. This module turns the Job, the shard pods and the submission into
rows and a total, and the rows into text. Pure: dicts in, values out.

A shard's progress is its newest pod's annotation (a replaced pod starts from what its
results file recorded, so its counts include its predecessor's); a pod that has not
published yet shows its predecessor's last counts, marked as such.

What it does not do: count task pods (the shards know their tasks; listing thousands of
pods to count them is the polling this library avoids), or read results (``results``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asyncpod.cli.submitplan import PROGRESS_ANNOTATION

__all__ = ["INDEX_ANNOTATION", "ShardRow", "StatusReport", "job_state", "render", "report"]

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True, slots=True)
class ShardRow:
    index: int
    tasks: int
    done: int
    ok: int
    failed: int
    in_flight: int
    pod: str | None
    phase: str
    pods: int
    """Pods this index has had (1 + replacements), as far as they still exist."""
    stale: bool = False
    """The counts are a replaced pod's: the current one has not published yet."""


@dataclass(frozen=True, slots=True)
class StatusReport:
    run_id: str
    job: str
    rows: tuple[ShardRow, ...]
    tasks: int

    @property
    def done(self) -> int:
        return sum(r.done for r in self.rows)

    @property
    def ok(self) -> int:
        return sum(r.ok for r in self.rows)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.rows)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.rows)


def job_state(job: Mapping[str, Any] | None) -> str:
    """Complete, Failed, Suspended, Running (active pods) or Pending; ``gone`` without a Job."""
    if not job:
        return "gone (cancelled or deleted)"
    status = job.get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("status") != "True":
            continue
        kind = condition.get("type")
        if kind in ("Complete", "Failed"):
            why = condition.get("reason")
            return f"{kind}" + (f" ({why})" if why and kind == "Failed" else "")
        if kind == "Suspended":
            return "Suspended"
    if status.get("active"):
        return f"Running ({status['active']} shard pods active)"
    return "Pending"


def _progress(pod: Mapping[str, Any]) -> dict[str, int] | None:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(PROGRESS_ANNOTATION)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {k: int(v) for k, v in value.items() if isinstance(v, int)}


def _index(pod: Mapping[str, Any]) -> int | None:
    metadata = pod.get("metadata") or {}
    text = (metadata.get("annotations") or {}).get(INDEX_ANNOTATION)
    if text is None:
        text = (metadata.get("labels") or {}).get(INDEX_ANNOTATION)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def report(
    run_id: str,
    *,
    submission: Mapping[str, Any],
    job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
) -> StatusReport:
    """Rows per shard from the submission (tasks per shard), the Job and its pods."""
    per_shard = list(submission.get("per_shard") or [])
    by_index: dict[int, list[Mapping[str, Any]]] = {}
    for pod in pods:
        index = _index(pod)
        if index is not None:
            by_index.setdefault(index, []).append(pod)
    rows = []
    for index, tasks in enumerate(per_shard):
        history = sorted(
            by_index.get(index, []),
            key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "",
        )
        newest = history[-1] if history else None
        counts = _progress(newest) if newest is not None else None
        stale = False
        if counts is None:
            for older in reversed(history[:-1]):
                counts = _progress(older)
                if counts is not None:
                    stale = True
                    break
        counts = counts or {}
        phase = "no pod"
        if newest is not None:
            phase = str((newest.get("status") or {}).get("phase") or "Pending")
            if (newest.get("metadata") or {}).get("deletionTimestamp"):
                phase = "Terminating"
        rows.append(
            ShardRow(
                index=index,
                tasks=int(tasks),
                done=counts.get("done", 0),
                ok=counts.get("ok", 0),
                failed=counts.get("failed", 0),
                in_flight=0 if phase in ("Succeeded", "Failed") else counts.get("in_flight", 0),
                pod=(newest.get("metadata") or {}).get("name") if newest is not None else None,
                phase=phase,
                pods=len(history),
                stale=stale,
            )
        )
    job_name = str(((job or {}).get("metadata") or {}).get("name") or "-")
    return StatusReport(
        run_id=run_id, job=job_name, rows=tuple(rows), tasks=int(submission.get("tasks") or 0)
    )


def render(status: StatusReport, job: Mapping[str, Any] | None) -> str:
    """Plain text: a line per shard and a total line, then the Job's state."""
    lines = [f"batch {status.run_id} · Job {status.job}: {job_state(job)}"]
    for row in status.rows:
        note = " (a replaced pod's counts)" if row.stale else ""
        restarts = f" · {row.pods - 1} replaced" if row.pods > 1 else ""
        lines.append(
            f"  shard {row.index}: {row.done}/{row.tasks} done ({row.ok} succeeded, "
            f"{row.failed} failed) · {row.in_flight} in flight · pod "
            f"{row.pod or '-'} {row.phase}{restarts}{note}"
        )
    lines.append(
        f"  total: {status.done}/{status.tasks} done ({status.ok} succeeded, "
        f"{status.failed} failed) · {status.in_flight} in flight"
    )
    return "\n".join(lines)
