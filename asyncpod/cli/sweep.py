"""Which of a batch's pods a resumed batch deletes before it starts: those whose
results are already in the results file.

Why a module of its own: a batch records each result before its pod goes
(:attr:`asyncpod.cli.batch.BatchConfig.run_options`). A process killed between the
line and the delete leaves a pod whose attempt is recorded; the resumed batch must
neither reattach to it (its result is on file: that would record it twice) nor leave
it behind. The decision is pure, from the listed pods and the recorded attempts, so
every case is a unit test (tests/unit/cli/test_sweep.py); the CLI lists and deletes.

What it deliberately does not do: touch a pod of another task (a shard's neighbours)
or of an attempt not recorded yet (the resumed batch reattaches to that one).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from asyncpod.core.policy import Cleanup, deleted_after_record
from asyncpod.core.scheduler import ATTEMPT_ANNOTATION
from asyncpod.results import Outcome
from asyncpod.spec import TASK_KEY_ANNOTATION

__all__ = ["Sweep", "attempt_of", "sweep"]


@dataclass(frozen=True, slots=True)
class Sweep:
    """What to do with the pods of a run found at start-up."""

    delete: tuple[tuple[str, str | None], ...] = ()
    """``(name, uid)`` of recorded pods that the user's cleanup deletes."""
    recorded: frozenset[str] = frozenset()
    """Names of every pod whose attempt is recorded (deleted or kept): none is reattached."""


def attempt_of(annotations: Mapping[str, str]) -> int:
    """The attempt number a pod's annotations give (1 when absent or unreadable)."""
    try:
        return int(annotations.get(ATTEMPT_ANNOTATION, "1"))
    except ValueError:
        return 1


def sweep(
    pods: Iterable[dict[str, Any]],
    *,
    recorded_attempts: Mapping[str, int],
    tasks: Collection[str],
    cleanup: Cleanup,
) -> Sweep:
    """Decide, for a run's listed ``pods``, which are recorded and which of those go.

    A pod is recorded when its task (one of ``tasks``) has a line for its attempt or
    a later one. It goes as ``cleanup`` (the user's ``--cleanup``) would have had it
    go right after its line: judged by its phase, since the pod is all there is.
    Pods already being deleted are left alone.
    """
    delete: list[tuple[str, str | None]] = []
    recorded: set[str] = set()
    for pod in pods:
        metadata = pod.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        key = annotations.get(TASK_KEY_ANNOTATION)
        if key is None or key not in tasks:
            continue
        if attempt_of(annotations) > recorded_attempts.get(key, 0):
            continue
        name = metadata.get("name")
        if not name:
            continue
        recorded.add(name)
        if metadata.get("deletionTimestamp"):
            continue
        phase = (pod.get("status") or {}).get("phase")
        outcome = {"Succeeded": Outcome.SUCCEEDED, "Failed": Outcome.FAILED}.get(
            phase or "",
            Outcome.TIMED_OUT,  # recorded and still running: a timeout's pod
        )
        if deleted_after_record(
            cleanup,
            outcome,
            succeeded=outcome is Outcome.SUCCEEDED,
            pod_finished=outcome is not Outcome.TIMED_OUT,
        ):
            delete.append((name, metadata.get("uid")))
    return Sweep(delete=tuple(delete), recorded=frozenset(recorded))
