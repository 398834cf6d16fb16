"""A results file read for a report: its tasks and their pods, whatever the file went through.

Why its own reader: ``asyncpod batch --resume`` refuses a results file with a bad line,
but a report is asked for exactly when something went wrong. A retried task has one
line per attempt, each attempt a pod of its own; a batch that was interrupted and
resumed may record an attempt twice (the last line wins, as for ``--resume``); a killed
one leaves a last line cut short, a cancelled run a result without container times;
files of several runs may have been put together (a task is its run id and task key).
Here every line that holds a result counts, every other one is a
:attr:`Loaded.problems` entry, and nothing is refused. A report shows how each task
ended (:attr:`Loaded.tasks`) and every pod the batch ran (:attr:`Loaded.pods`).

A :class:`Task` keeps what the report draws and lists, as POSIX seconds: it is small
(10,000 of them are read in well under a second) and the plots need plain numbers.

What it deliberately does not do: judge outcomes or compute phases (:mod:`._phases`),
or write anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from asyncpod.errors import SpecError
from asyncpod.results import Outcome, PodResult

__all__ = ["Loaded", "Task", "read_tasks", "task_of", "tasks_of"]


@dataclass(frozen=True, slots=True)
class Task:
    """One task's last recorded result, its times in POSIX seconds (``None``: not known).

    ``running`` is when the main container started (the pod's start if no container
    reported one); ``recorded`` is when the batch wrote the line, the end of a run that
    never finished (cancelled, deleted, timed out while pending). ``attempt`` counts
    the task's pods (a retried task's second pod is attempt 2).
    """

    key: str
    name: str
    outcome: Outcome
    attempt: int = 1
    reason: str | None = None
    message: str | None = None
    exit_code: int | None = None
    node: str | None = None
    created: float | None = None
    scheduled: float | None = None
    running: float | None = None
    finished: float | None = None
    recorded: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED

    @property
    def end(self) -> float | None:
        """When the task stopped being in flight: finished, else when its result was written."""
        return self.finished if self.finished is not None else self.recorded


@dataclass
class Loaded:
    """What a results file holds, for a report."""

    tasks: list[Task] = field(default_factory=list)
    """The last line of each task: how it ended."""
    pods: list[Task] = field(default_factory=list)
    """The last line of each attempt of each task: every pod the batch ran."""
    retried: int = 0
    """Tasks with more than one attempt."""
    lines: int = 0
    """Non-empty lines read."""
    duplicates: int = 0
    """Lines superseded by a later line of the same attempt (an interrupted, resumed run)."""
    run_ids: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    """Lines that hold no result, each as ``FILE:LINE: why``."""


def _seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def task_of(result: PodResult, *, recorded: float | None = None, attempt: int = 1) -> Task:
    """The report's view of one result."""
    main = result.main
    running = main.started_at if main is not None and main.started_at else result.started_at
    return Task(
        key=result.task_key or result.name,
        name=result.name,
        outcome=result.outcome,
        attempt=attempt,
        reason=result.reason,
        message=result.message,
        exit_code=result.exit_code,
        node=result.node_name,
        created=_seconds(result.created_at),
        scheduled=_seconds(result.scheduled_at),
        running=_seconds(running),
        finished=_seconds(result.finished_at),
        recorded=recorded,
    )


def tasks_of(results: Iterable[PodResult]) -> list[Task]:
    """Tasks from results in memory (the last result of a key wins)."""
    by_key: dict[str, Task] = {}
    for result in results:
        task = task_of(result)
        by_key.pop(task.key, None)  # re-inserted: the order is that of the last lines
        by_key[task.key] = task
    return list(by_key.values())


def _recorded_at(record: dict[str, object]) -> float | None:
    text = record.get("recorded_at")
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return value.timestamp() if value.tzinfo is not None else None


def read_tasks(path: Path) -> Loaded:
    """Read ``path`` (raises ``OSError`` when it cannot be read)."""
    loaded = Loaded()
    # Keyed by run too: files of different runs put together are different tasks.
    by_key: dict[tuple[str | None, str], Task] = {}
    by_attempt: dict[tuple[str | None, str, int], Task] = {}
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            loaded.lines += 1
            try:
                record = orjson.loads(line)
                result = PodResult.from_dict(record)  # a non-object raises SpecError too
            except (orjson.JSONDecodeError, SpecError) as error:
                cut = "" if line.endswith(b"\n") else " (cut short: the batch was killed?)"
                loaded.problems.append(f"{path}:{number}: {error}{cut}")
                continue
            run_id = record.get("run_id")
            if not isinstance(run_id, str):
                run_id = None
            else:
                loaded.run_ids.add(run_id)
            attempt = record.get("attempt")
            if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
                attempt = 1  # written before batches retried
            task = task_of(result, recorded=_recorded_at(record), attempt=attempt)
            by_key.pop((run_id, task.key), None)  # re-inserted: the order of last lines
            by_key[(run_id, task.key)] = task
            if by_attempt.pop((run_id, task.key, attempt), None) is not None:
                loaded.duplicates += 1
            by_attempt[(run_id, task.key, attempt)] = task
    loaded.tasks = list(by_key.values())
    loaded.pods = list(by_attempt.values())
    loaded.retried = len({(run, key) for run, key, n in by_attempt if n > 1})
    return loaded
