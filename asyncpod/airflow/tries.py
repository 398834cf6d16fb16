"""Which pod belongs to which try of a task instance (pure functions).

Why it exists: creation must be idempotent per try - a retried create of the same try
(a worker or triggerer restart) must find the pod it made, a new try must make a new
one, and a new try must be able to tell the pods of earlier tries. Both the worker
(:mod:`asyncpod.airflow.operators`) and the triggerer
(:class:`~asyncpod.airflow.triggers.AsyncpodPodStartTrigger`) create pods, so the
rules live here, once.

What it deliberately does not do: talk to a cluster.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TI_LABEL",
    "TRY_LABEL",
    "TryKey",
    "earlier_tries",
    "pod_name_for",
]

#: Labels on every pod the operator makes: the task instance (a hash, the same for all
#: its tries) and the try number.
TI_LABEL = "asyncpod.dev/airflow-ti"
TRY_LABEL = "asyncpod.dev/airflow-try"

_SUFFIX_CHARS = 8


@dataclass(frozen=True, slots=True)
class TryKey:
    """One try of one task instance."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, ti: Any) -> TryKey:
        """From an Airflow task instance (worker, triggerer or dag.test flavour)."""
        map_index = getattr(ti, "map_index", -1)
        return cls(
            str(ti.dag_id),
            str(ti.task_id),
            str(ti.run_id),
            -1 if map_index is None else int(map_index),
            int(ti.try_number),
        )

    def ti_hash(self) -> str:
        """A label-safe key of the task instance, the same for all its tries."""
        raw = f"{self.dag_id}\0{self.task_id}\0{self.run_id}\0{self.map_index}"
        return hashlib.sha256(raw.encode()).hexdigest()[:40]

    def labels(self) -> dict[str, str]:
        return {TI_LABEL: self.ti_hash(), TRY_LABEL: str(self.try_number)}

    def task_key(self) -> str:
        """asyncpod's task key: a 409 on the name reattaches only to this try's pod."""
        return f"{self.dag_id}/{self.task_id}/{self.run_id}/{self.map_index}/{self.try_number}"


def pod_name_for(
    base: str, *, dag_id: str, task_id: str, run_id: str, map_index: int, try_number: int,
    random_suffix: bool = True,
) -> str:  # fmt: skip
    """The deterministic pod name of one try (a DNS-1123 label, at most 63 chars)."""
    if not random_suffix:
        return base
    key = TryKey(dag_id, task_id, run_id, map_index, try_number)
    slug = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-") or "pod"
    tail = f"-{key.ti_hash()[:_SUFFIX_CHARS]}-{try_number}"
    return slug[: 63 - len(tail)].rstrip("-") + tail


def earlier_tries(pods: Iterable[Mapping[str, Any]], try_number: int) -> list[Mapping[str, Any]]:
    """The live pods of tries before ``try_number`` (pure)."""
    found = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        labels = metadata.get("labels") or {}
        try:
            their_try = int(labels.get(TRY_LABEL, ""))
        except ValueError:
            continue
        if their_try < try_number and not metadata.get("deletionTimestamp"):
            found.append(pod)
    return found
