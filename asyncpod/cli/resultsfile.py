"""The batch results file: one JSON line per attempt, appended as it finishes.

Why: it is the batch's memory. A crash (even SIGKILL) loses at most the line being
written: each line goes to the file in one unbuffered ``write``. ``--resume`` reads it
back to skip the tasks that already have a result; the pods of the others are still
found through their deterministic names.

A line is :meth:`asyncpod.PodResult.to_dict` (name, uid, task_key, outcome, phase,
reason, message, exit_code, termination_message, node, timestamps, duration_seconds,
containers with their exit codes, events of failed pods) plus ``run_id``,
``exit_codes`` (container name → exit code) and ``recorded_at`` (UTC)::

    {"run_id": "jobs-1a2b3c4d", "task_key": "shard-7", "name": "jobs-1a2b3c4d-shard-7-...",
     "uid": "...", "outcome": "failed", "reason": "OOMKilled", "exit_code": 137,
     "exit_codes": {"main": 137}, "duration_seconds": 12.0, ...}

With retries, a task has one line per attempt: ``attempt`` (1, 2, ...) and ``final``
(false when another attempt follows; then ``retry_in_seconds``); ``decision`` says
which rule decided (``retry:reason=Evicted matched``). With kept logs, ``log`` names
the file and ``log_missing`` says what could not be read and why. Lines written before
attempts existed read as attempt 1, final. A batch over several clusters adds
``cluster``: the name of the cluster that ran the attempt (its context, or its
kubeconfig path).

A task may appear more than once (retried, or a run interrupted and resumed): the
last line wins, and a resumed batch goes on after the last attempt recorded (a task
whose last line is not final runs its next attempt).

What it deliberately does not do: fsync each line (a crash of the process is covered;
a power cut is the storage's business), or lock the file against two batches appending
at once (use one results file per run).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import orjson

from asyncpod.errors import SpecError, UsageError
from asyncpod.results import Outcome, PodResult

__all__ = ["RecordedResults", "ResultsWriter", "read_results", "record_of"]

RERUN_ON_RESUME = frozenset({Outcome.CANCELLED, Outcome.ERROR})
"""Outcomes that do not count as done: a resumed run tries these tasks again."""


def record_of(
    result: PodResult, *, run_id: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON object of one results line (``extra``: attempt, final, log, ...)."""
    record: dict[str, Any] = {"run_id": run_id}
    record.update(result.to_dict())
    record["exit_codes"] = {
        c.name: c.exit_code for c in result.containers if c.exit_code is not None
    }
    if extra:
        record.update({k: v for k, v in extra.items() if v is not None})
    record["recorded_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    return record


class ResultsWriter:
    """Append results to ``path``; each line reaches the OS before :meth:`write` returns."""

    def __init__(self, path: Path, *, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self.written = 0
        self._file: BinaryIO | None = None

    def open(self) -> ResultsWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_cut_line(self.path)
        self._file = self.path.open("ab", buffering=0)
        return self

    def __enter__(self) -> ResultsWriter:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, result: PodResult, *, extra: Mapping[str, Any] | None = None) -> None:
        if self._file is None:
            raise ValueError("the results file is not open")
        record = record_of(result, run_id=self.run_id, extra=extra)
        self._file.write(orjson.dumps(record) + b"\n")
        self.written += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _drop_cut_line(path: Path) -> None:
    """Remove a last line cut short by a crash: it holds no whole result, and what
    follows must start on a line of its own."""
    try:
        with path.open("rb") as reader:
            data = reader.read()
    except FileNotFoundError:
        return
    if data and not data.endswith(b"\n"):
        os.truncate(path, data.rfind(b"\n") + 1)


@dataclass
class RecordedResults:
    """What a results file holds: the last result of each task, and its problems."""

    results: dict[str, PodResult] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    """The highest attempt recorded of each task."""
    spent: dict[str, int] = field(default_factory=dict)
    """Attempts of each task that count against a retry limit (not cancelled ones)."""
    final: dict[str, bool] = field(default_factory=dict)
    """Whether the last line of each task was final."""
    run_ids: set[str] = field(default_factory=set)
    clusters: dict[str, str] = field(default_factory=dict)
    """The cluster of each task's last line (batches over several clusters)."""
    lines: int = 0
    truncated_line: int | None = None
    """The number of a last line cut short by a crash (ignored)."""
    problems: list[str] = field(default_factory=list)

    def done_keys(self) -> set[str]:
        """Tasks a resumed run skips: a final line whose outcome is not cancelled or error."""
        return {
            k
            for k, r in self.results.items()
            if r.outcome not in RERUN_ON_RESUME and self.final.get(k, True)
        }

    def next_attempt(self, key: str) -> tuple[int, int]:
        """``(attempt, spent)`` where a resumed task goes on: after its last recorded
        attempt, or at 1 for a task never recorded. The attempt that was running when
        the batch stopped has that number: its pod, if alive, is reattached."""
        last = self.attempts.get(key)
        if last is None:
            return 1, 0
        return last + 1, self.spent.get(key, 0)

    def retried_keys(self) -> set[str]:
        """Tasks with more than one attempt recorded."""
        return {k for k, n in self.attempts.items() if n > 1}


def read_results(path: Path) -> RecordedResults:
    """Read a results file; a missing file reads as empty.

    Only a regular file: it is read whole, then appended to. A device or a pipe is
    refused with a :class:`~asyncpod.errors.UsageError` before anything runs (read,
    ``/dev/full`` or ``/dev/zero`` never ends, and the process grew until the kernel
    killed it; ``/dev/stdout`` cannot be read back to resume).
    """
    recorded = RecordedResults()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return recorded
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise UsageError(
            f"the results file {path} is {kind}: name a file (it is appended to, and "
            "read back by --resume)"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # removed since
        return recorded
    lines = data.split(b"\n")
    last = len(lines)
    if lines and lines[-1] == b"":
        lines.pop()
        last = len(lines)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        recorded.lines += 1
        try:
            record = orjson.loads(line)
            result = PodResult.from_dict(record)  # a non-object raises SpecError too
        except (orjson.JSONDecodeError, SpecError) as error:
            if number == last and not data.endswith(b"\n"):
                recorded.truncated_line = number  # the crash cut it; the task reruns
                continue
            recorded.problems.append(f"{path}:{number}: {error}")
            continue
        run_id = record.get("run_id")
        if isinstance(run_id, str):
            recorded.run_ids.add(run_id)
        if result.task_key is None:
            recorded.problems.append(f"{path}:{number}: no task_key")
            continue
        key = result.task_key
        attempt = record.get("attempt")
        attempt = attempt if isinstance(attempt, int) and attempt >= 1 else 1
        final = record.get("final")
        recorded.results[key] = result
        cluster = record.get("cluster")
        if isinstance(cluster, str):
            recorded.clusters[key] = cluster
        recorded.final[key] = final if isinstance(final, bool) else True
        recorded.attempts[key] = max(attempt, recorded.attempts.get(key, 0))
        if result.outcome is not Outcome.CANCELLED:
            recorded.spent[key] = recorded.spent.get(key, 0) + 1
    return recorded
