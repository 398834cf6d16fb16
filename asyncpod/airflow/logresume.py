"""Log lines into the task log exactly once, across triggerer restarts and fail-overs.

Why it exists: a trigger streams its pod's logs into the task log while deferred. When
the triggerer restarts, or the trigger moves to another triggerer on another host (an
HA deployment; the reference's old pain, apache/airflow#33498), the new trigger must
start where the old one stopped: not from the first line (duplicates), not from "now"
(lost lines).

The resume point lives on the pod itself, in the :data:`RESUME_ANNOTATION`
annotation: per container, the last timestamp logged and digests of the texts logged
at exactly that timestamp (several lines may share one). Any triggerer that can see
the pod can resume from it; nothing is kept on a triggerer's disk.

Exactly once, not "at most a few seconds repeated": accepted lines wait in
:class:`CommittedLog` until the resume point *after* them is committed, and are
written to the task log only then. The commit is a compare-and-swap
(:meth:`asyncpod.kube.pods.Pods.swap_annotation`), so two triggers following the
same pod at once (a fail-over that overlaps) never both write a line: the one whose
swap fails adopts the other's point and drops what that one already logged. A
triggerer killed before a commit leaves those lines to its successor; one killed
after it has already handed them to Airflow's log writer. Lines reach the task log up
to :data:`COMMIT_INTERVAL` seconds late.

Cost: one PATCH per pod and interval, only while the pod writes lines (a silent pod
costs nothing). Without the ``patch`` verb on pods (or when the API server will not
answer), the trigger says so once and logs at once, uncommitted: a fail-over may then
repeat lines.

:class:`ResumeFilter`, :func:`encode_points` and :func:`decode_points` are pure
(tested alone); :class:`ResumeCommits` is the I/O.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

from asyncpod.core.retrying import until_answered
from asyncpod.errors import AsyncpodError, InvalidRequestError
from asyncpod.kube.logs import LogLine, timestamp_key
from asyncpod.kube.pods import Pods

__all__ = [
    "COMMIT_INTERVAL",
    "RESUME_ANNOTATION",
    "CommitUnavailableError",
    "CommittedLog",
    "ResumeCommits",
    "ResumeFilter",
    "ResumePoint",
    "decode_points",
    "encode_points",
    "text_digest",
]

#: The pod annotation that holds the log resume point of every followed container.
RESUME_ANNOTATION = "asyncpod.dev/log-resume"

#: Seconds accepted lines may wait for their commit (a chatty pod: one PATCH per interval).
COMMIT_INTERVAL = 2.0

#: Accepted lines that make a commit happen before the interval is over.
MAX_PENDING = 5000

#: Seconds a commit keeps trying through an API server outage before logging uncommitted.
COMMIT_WINDOW = 60.0

logger = logging.getLogger("asyncpod.airflow")


def text_digest(text: str) -> str:
    """A short digest of a log line's text: what the resume point remembers of it."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


@dataclass(slots=True)
class ResumePoint:
    """The last timestamp logged for a container, and digests of the texts logged at it."""

    timestamp: str
    seen: Counter[str] = field(default_factory=Counter)


class ResumeFilter:
    """Decides, line by line, what is new; keeps the resume point of every container."""

    def __init__(self, points: dict[str, ResumePoint] | None = None) -> None:
        self.points: dict[str, ResumePoint] = {
            c: ResumePoint(p.timestamp, Counter(p.seen)) for c, p in (points or {}).items()
        }
        # Digests still to drop at the resume timestamp, per container.
        self._replay = {c: Counter(p.seen) for c, p in self.points.items()}

    def since(self) -> dict[str, str]:
        return {c: p.timestamp for c, p in self.points.items()}

    def accept(self, line: LogLine) -> bool:
        digest = text_digest(line.text)
        point = self.points.get(line.container)
        replay = self._replay.get(line.container)
        if point is not None and replay is not None:
            key, resume = timestamp_key(line.timestamp), timestamp_key(point.timestamp)
            if key < resume:
                return False
            if key == resume and replay[digest] > 0:
                replay[digest] -= 1
                return False
            del self._replay[line.container]  # past the resume point
        if point is not None and point.timestamp == line.timestamp:
            point.seen[digest] += 1
        else:
            self.points[line.container] = ResumePoint(line.timestamp, Counter((digest,)))
        return True


def encode_points(points: dict[str, ResumePoint], writer: str = "") -> str:
    """The annotation's value: compact JSON ``{"w": writer, "p": {container: [timestamp,
    {digest: count}]}}``. The writer tells a trigger's own earlier write (whose answer
    was lost) from another trigger's write of the same point."""
    body = {c: [p.timestamp, dict(sorted(p.seen.items()))] for c, p in sorted(points.items())}
    return orjson.dumps({"w": writer, "p": body}).decode()


def decode_points(value: str | None) -> dict[str, ResumePoint]:
    """The resume points in an annotation's value; none for a missing or unreadable one."""
    if not value:
        return {}
    try:
        raw = orjson.loads(value)["p"]
        return {
            str(c): ResumePoint(str(ts), Counter({str(d): int(n) for d, n in seen.items()}))
            for c, (ts, seen) in raw.items()
        }
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return {}


def annotation_of(pod: dict[str, Any] | None) -> str | None:
    """The pod's resume annotation, if it has one."""
    metadata = (pod or {}).get("metadata") or {}
    value = (metadata.get("annotations") or {}).get(RESUME_ANNOTATION)
    return value if isinstance(value, str) else None


class CommitUnavailableError(Exception):
    """The resume point cannot be committed (no permission, no answer, a replaced pod)."""


class ResumeCommits:
    """Commits one pod's resume point to its annotation, by compare-and-swap."""

    def __init__(
        self, pods: Pods, namespace: str, name: str, uid: str, committed: str | None
    ) -> None:
        self._pods = pods
        self._namespace = namespace
        self._name = name
        self._uid = uid
        self._writer = secrets.token_hex(6)
        self.committed = committed

    async def commit(self, points: dict[str, ResumePoint]) -> dict[str, ResumePoint] | None:
        """Make ``points`` the committed point: None when they are; else the points that
        another trigger committed meanwhile (adopt them). Raises
        :class:`CommitUnavailableError`."""
        if points == decode_points(self.committed):
            return None
        value = encode_points(points, self._writer)
        expected = self.committed
        try:
            await until_answered(
                lambda: self._pods.swap_annotation(
                    self._namespace,
                    self._name,
                    RESUME_ANNOTATION,
                    expected=expected,
                    value=value,
                    uid=self._uid,
                ),
                deadline=time.monotonic() + COMMIT_WINDOW,
                restarted=lambda: False,
                what=f"commit the log resume point of {self._namespace}/{self._name}",
            )
        except InvalidRequestError:
            return await self._after_failed_test(expected, value)
        except AsyncpodError as error:
            raise CommitUnavailableError(str(error)) from error
        self.committed = value
        return None

    async def _after_failed_test(
        self, expected: str | None, value: str
    ) -> dict[str, ResumePoint] | None:
        try:
            pod = await self._pods.get(self._namespace, self._name)
        except AsyncpodError as error:
            raise CommitUnavailableError(str(error)) from error
        if (pod.get("metadata") or {}).get("uid") != self._uid:
            raise CommitUnavailableError(f"pod {self._namespace}/{self._name} was replaced")
        current = annotation_of(pod)
        self.committed = current
        if current == value:  # our own earlier attempt, whose answer was lost
            return None
        if current == expected:  # the test held: the patch failed for another reason
            raise CommitUnavailableError(
                f"the API server refused the annotation {RESUME_ANNOTATION}"
            )
        return decode_points(current)


class CommittedLog:
    """Accepted lines wait here until their resume point is committed, then are emitted.

    The reader calls :meth:`offer` for every line read and :meth:`flush` when it
    answers True (full); a timer calls :meth:`flush` every :data:`COMMIT_INTERVAL`,
    and the trigger once more when the logs end. Flushes never overlap.
    """

    def __init__(
        self,
        commits: ResumeCommits,
        emit: Callable[[LogLine], None],
        *,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.filter = ResumeFilter(decode_points(commits.committed))
        self._commits = commits
        self._emit = emit
        self._max_pending = max_pending
        self._pending: list[LogLine] = []
        self._lock = anyio.Lock()
        self.uncommitted = False

    def offer(self, line: LogLine) -> bool:
        """Take a line read from the pod; True when enough wait that a flush should run now."""
        if not self.filter.accept(line):
            return False
        if self.uncommitted:
            self._emit(line)
            return False
        self._pending.append(line)
        return len(self._pending) >= self._max_pending

    async def flush(self) -> None:
        async with self._lock:
            while self._pending and not self.uncommitted:
                batch, self._pending = self._pending, []
                try:
                    adopted = await self._commits.commit(self.filter.points)
                except CommitUnavailableError as error:
                    logger.warning(
                        "cannot record where the log stopped (%s): lines are logged at once, "
                        "and a triggerer fail-over may repeat some (grant 'patch' on pods)",
                        error,
                    )
                    self.uncommitted = True
                    batch, self._pending = batch + self._pending, []
                    for line in batch:
                        self._emit(line)
                    return
                if adopted is None:
                    for line in batch:
                        self._emit(line)
                    return
                # Another trigger logged past us: go on from its point, not ours.
                self.filter = ResumeFilter(adopted)
                again = batch + self._pending
                self._pending = [line for line in again if self.filter.accept(line)]

    def discard(self) -> None:
        """Forget lines not yet committed (the trigger stops: its successor logs them)."""
        self._pending.clear()
