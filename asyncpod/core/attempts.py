"""What a launcher's tasks are made of, between the launcher and its pipelines.

Why a module of its own: the launcher (:mod:`asyncpod.core.scheduler`) and the
pipeline that carries its tasks (:mod:`asyncpod.core.pipeline`) both speak of
attempts, a resumed task's history and a stopped batch; here those words are defined
once, with no behaviour, so neither module imports the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asyncpod.errors import AsyncpodError
from asyncpod.results import PodResult

__all__ = ["ATTEMPT_ANNOTATION", "Attempt", "StoppedError", "TaskHistory"]

ATTEMPT_ANNOTATION = "asyncpod.dev/attempt"
"""The attempt number (1, 2, ...) of a launcher's pod, on the pod."""


@dataclass(frozen=True, slots=True)
class TaskHistory:
    """What an earlier process recorded of a task: where a resumed batch goes on.

    ``next_attempt`` is the attempt to run (its pod may exist: it is reattached);
    ``spent`` the attempts that count against the policy's limit so far.
    """

    next_attempt: int = 1
    spent: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a task: its result, and what follows it."""

    result: PodResult
    task_key: str
    index: int
    """The task's position in the input."""
    attempt: int
    """1 for the first pod of the task, 2 for its first retry, ..."""
    final: bool
    """No other attempt follows: ``result`` is the task's."""
    decision: str | None = None
    """Why: the rule that matched (``retry:reason=Evicted matched``), or ``no rule matched``."""
    retry_in: float | None = None
    """Seconds until the next attempt (a retry)."""
    log: Path | None = None
    """The kept log (``keep_logs``)."""
    log_missing: str | None = None
    """Why (part of) the log could not be kept."""


class StoppedError(AsyncpodError):
    """The batch stopped before this attempt could take a slot."""
