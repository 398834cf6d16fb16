"""Log lines into the task log exactly once, even across a triggerer restart.

Why it exists: a trigger streams its pod's logs into the task log while deferred. When
the triggerer restarts (or the trigger moves to another one), the new trigger must
start where the old one stopped: not from the first line (duplicates), not from "now"
(lost lines). asyncpod's log reader already resumes within one process; across
processes this module keeps, per pod and container, the last timestamp logged and the
texts logged at exactly that timestamp (several lines may share one), in a small JSON
file, and drops replayed lines on resume.

:class:`ResumeFilter` is the pure part (tested alone); :class:`ResumeStore` the file.
Writes are throttled (at most one per ``interval`` per pod, plus one when the trigger
stops), so a thousand chatty triggers do not turn the loop into a disk writer; a
crash without the final write repeats at most ``interval`` seconds of lines, never
loses one.

What it deliberately does not do: share state between hosts. A trigger resumed on a
triggerer with another state directory (``ASYNCPOD_AIRFLOW_STATE_DIR``, default
``$AIRFLOW_HOME/asyncpod-state``) starts the log from the beginning.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from asyncpod.kube.logs import LogLine, timestamp_key

__all__ = ["ResumeFilter", "ResumePoint", "ResumeStore", "default_state_dir"]


@dataclass(slots=True)
class ResumePoint:
    """The last timestamp logged for a container, and the texts logged at it."""

    timestamp: str
    seen: Counter[str] = field(default_factory=Counter)


class ResumeFilter:
    """Decides, line by line, what is new; keeps the resume point of every container."""

    def __init__(self, points: dict[str, ResumePoint] | None = None) -> None:
        self.points: dict[str, ResumePoint] = dict(points or {})
        # Texts still to drop at the resume timestamp, per container.
        self._replay = {c: Counter(p.seen) for c, p in self.points.items()}

    def since(self) -> dict[str, str]:
        return {c: p.timestamp for c, p in self.points.items()}

    def accept(self, line: LogLine) -> bool:
        point = self.points.get(line.container)
        replay = self._replay.get(line.container)
        if point is not None and replay is not None:
            key, resume = timestamp_key(line.timestamp), timestamp_key(point.timestamp)
            if key < resume:
                return False
            if key == resume and replay[line.text] > 0:
                replay[line.text] -= 1
                return False
            del self._replay[line.container]  # past the resume point
        if point is not None and point.timestamp == line.timestamp:
            point.seen[line.text] += 1
        else:
            self.points[line.container] = ResumePoint(line.timestamp, Counter((line.text,)))
        return True


def default_state_dir() -> Path:
    explicit = os.environ.get("ASYNCPOD_AIRFLOW_STATE_DIR")
    if explicit:
        return Path(explicit)
    home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    return Path(home) / "asyncpod-state"


class ResumeStore:
    """The resume points of one pod, in ``<dir>/<uid>.json`` (small, atomic writes)."""

    def __init__(self, directory: Path, uid: str, *, interval: float = 2.0) -> None:
        self.path = directory / f"{uid}.json"
        self._interval = interval
        self._last_save: float | None = None
        self._dirty = False

    def load(self) -> dict[str, ResumePoint]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {
                str(c): ResumePoint(str(v["timestamp"]), Counter(v["seen"])) for c, v in raw.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def changed(self, points: dict[str, ResumePoint]) -> None:
        """Note new lines; save if the last save is older than the interval."""
        self._dirty = True
        if self._last_save is None or time.monotonic() - self._last_save >= self._interval:
            self.save(points)

    def save(self, points: dict[str, ResumePoint]) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self._last_save = time.monotonic()
        body = {c: {"timestamp": p.timestamp, "seen": dict(p.seen)} for c, p in points.items()}
        with contextlib.suppress(OSError):  # losing the file repeats lines; never fail a task
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(body), encoding="utf-8")
            tmp.replace(self.path)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
