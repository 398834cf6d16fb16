"""What happened: :class:`PodResult` and its parts, as plain immutable values.

Why this module exists: a pod's end is more than a phase. Callers need to know *why*
(OOMKilled, Evicted, an image that never pulled, a deadline, a deletion by someone
else), *which* container failed with what exit code, *when* each step happened, and
what Kubernetes said about it (its Events and the main container's termination
message, a cheap way to return a small value). A result is what every front end
shows and stores: Python callers get it from ``await``, the CLI prints it, the batch
launcher writes it as JSONL (:meth:`PodResult.to_dict`) and reads it back to resume
(:meth:`PodResult.from_dict`), and Airflow serialises it across the trigger boundary.

What it deliberately does not do: it never looks at a pod dict. Turning the API
server's JSON into a result is :mod:`asyncpod.core.lifecycle`'s job; this module only
defines the values, so it has no dependencies beyond :mod:`asyncpod.errors`. A failed
run is a normal value here, not an exception: only :meth:`PodResult.raise_for_outcome`
raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Final, TypeVar

from asyncpod.errors import PodFailedError, SpecError

__all__ = [
    "ContainerKind",
    "ContainerResult",
    "Outcome",
    "PodEvent",
    "PodResult",
    "Reason",
]


class Outcome(str, Enum):
    """How a run ended, from the caller's point of view."""

    SUCCEEDED = "succeeded"
    """The pod completed successfully (phase Succeeded, or the main container exited 0)."""
    FAILED = "failed"
    """The pod ran and failed: non-zero exit, OOMKilled, Evicted, an image that never pulled."""
    TIMED_OUT = "timed_out"
    """A deadline passed: asyncpod's schedule/startup/run timeouts, or the pod's own
    ``activeDeadlineSeconds`` (reason DeadlineExceeded)."""
    CANCELLED = "cancelled"
    """The caller cancelled the run; the pod was deleted per the cleanup policy."""
    DELETED = "deleted"
    """Someone else deleted the pod before it finished."""
    ERROR = "error"
    """The pod could not be created or followed (API error, forbidden, invalid)."""


class ContainerKind(str, Enum):
    INIT = "init"
    MAIN = "main"
    SIDECAR = "sidecar"


class Reason:
    """Well-known values of :attr:`PodResult.reason` (and container reasons).

    The set is open: Kubernetes may report others (``NodeLost``, ``Shutdown``, ...),
    and they are passed through unchanged.
    """

    # Reported by Kubernetes.
    COMPLETED: Final = "Completed"
    ERROR: Final = "Error"
    OOM_KILLED: Final = "OOMKilled"
    EVICTED: Final = "Evicted"
    DEADLINE_EXCEEDED: Final = "DeadlineExceeded"
    UNSCHEDULABLE: Final = "Unschedulable"
    ERR_IMAGE_PULL: Final = "ErrImagePull"
    IMAGE_PULL_BACK_OFF: Final = "ImagePullBackOff"
    INVALID_IMAGE_NAME: Final = "InvalidImageName"
    ERR_IMAGE_NEVER_PULL: Final = "ErrImageNeverPull"
    CREATE_CONTAINER_CONFIG_ERROR: Final = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR: Final = "CreateContainerError"
    CONTAINER_CANNOT_RUN: Final = "ContainerCannotRun"
    # Decided by asyncpod.
    DELETED_EXTERNALLY: Final = "DeletedExternally"
    SCHEDULE_TIMEOUT: Final = "ScheduleTimeout"
    STARTUP_TIMEOUT: Final = "StartupTimeout"
    RUN_TIMEOUT: Final = "RunTimeout"
    CANCELLED: Final = "Cancelled"
    CREATE_FAILED: Final = "CreateFailed"
    CLUSTER_UNREACHABLE: Final = "ClusterUnreachable"
    """A fleet's cluster whose API server stopped answering (:mod:`asyncpod.core.routing`)."""


@dataclass(frozen=True, slots=True)
class ContainerResult:
    """The last known state of one container (init containers and sidecars included).

    ``state`` is ``"waiting"``, ``"running"``, ``"terminated"`` or ``None`` (never
    reported). ``reason`` and ``message`` are Kubernetes' own words for that state
    (``Completed``/``Error``/``OOMKilled``, ``ImagePullBackOff``, ...).
    ``termination_message`` is what the container wrote to its termination-message
    path (or, with ``FallbackToLogsOnError``, its last log lines).
    """

    name: str
    kind: ContainerKind
    _: KW_ONLY
    state: str | None = None
    image: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    termination_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "state": self.state,
            "image": self.image,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "reason": self.reason,
            "message": self.message,
            "termination_message": self.termination_message,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "restart_count": self.restart_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "container") -> ContainerResult:
        reader = _Reader(data, path)
        return cls(
            reader.req_str("name"),
            reader.choice("kind", ContainerKind),
            state=reader.opt_str("state"),
            image=reader.opt_str("image"),
            exit_code=reader.opt_int("exit_code"),
            signal=reader.opt_int("signal"),
            reason=reader.opt_str("reason"),
            message=reader.opt_str("message"),
            termination_message=reader.opt_str("termination_message"),
            started_at=reader.time("started_at"),
            finished_at=reader.time("finished_at"),
            restart_count=reader.opt_int("restart_count") or 0,
        )


@dataclass(frozen=True, slots=True)
class PodEvent:
    """One Kubernetes Event about the pod (``kubectl describe``'s Events table).

    ``count`` is how many times the API server aggregated it; ``source`` is the
    reporting component (``default-scheduler``, ``kubelet``, ...).
    """

    type: str
    reason: str
    message: str
    _: KW_ONLY
    count: int = 1
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "reason": self.reason,
            "message": self.message,
            "count": self.count,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "event") -> PodEvent:
        reader = _Reader(data, path)
        return cls(
            reader.req_str("type"),
            reader.req_str("reason"),
            reader.req_str("message"),
            count=reader.opt_int("count") or 1,
            first_seen=reader.time("first_seen"),
            last_seen=reader.time("last_seen"),
            source=reader.opt_str("source"),
        )


@dataclass(frozen=True, slots=True)
class PodResult:
    """Everything known about a finished (or abandoned) run of one pod.

    ``phase`` is the pod's last Kubernetes phase (``None`` if it was never created).
    ``reason``/``message`` explain the outcome at pod level (see :class:`Reason`).
    Times are timezone-aware UTC: created (``metadata.creationTimestamp``), scheduled
    (bound to a node), started (accepted by the kubelet) and finished (the last
    container exit). ``events`` are collected when the pod did not succeed.
    """

    namespace: str
    name: str
    uid: str | None
    _: KW_ONLY
    outcome: Outcome
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    containers: tuple[ContainerResult, ...] = ()
    created_at: datetime | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    events: tuple[PodEvent, ...] = ()
    termination_message: str | None = None
    node_name: str | None = None
    task_key: str | None = None

    @property
    def ok(self) -> bool:
        """True only when the outcome is :attr:`Outcome.SUCCEEDED`."""
        return self.outcome is Outcome.SUCCEEDED

    @property
    def ref(self) -> str:
        """``namespace/name``, as errors and logs print a pod."""
        return f"{self.namespace}/{self.name}"

    @property
    def main(self) -> ContainerResult | None:
        """The main container's result, if it was reported."""
        for container in self.containers:
            if container.kind is ContainerKind.MAIN:
                return container
        return None

    @property
    def exit_code(self) -> int | None:
        """The main container's exit code (``None`` if it never terminated)."""
        main = self.main
        return None if main is None else main.exit_code

    @property
    def duration(self) -> timedelta | None:
        """From start (or creation, if it never started) to finish."""
        start = self.started_at or self.created_at
        if start is None or self.finished_at is None:
            return None
        return self.finished_at - start

    def container(self, name: str) -> ContainerResult | None:
        for container in self.containers:
            if container.name == name:
                return container
        return None

    def raise_for_outcome(self) -> PodResult:
        """Raise :class:`~asyncpod.errors.PodFailedError` unless :attr:`ok`; else ``self``."""
        if not self.ok:
            raise PodFailedError(self)
        return self

    def describe(self) -> str:
        """A one-line human summary, e.g. for logs and :class:`PodFailedError`.

        ``pod ns/train-3 failed (OOMKilled, exit code 137) after 12.3s on node-1:
        container main was OOM-killed``
        """
        details = [self.reason] if self.reason else []
        code = self.exit_code
        if code is not None:
            details.append(f"exit code {code}")
        text = f"pod {self.ref} {self.outcome.value}"
        if details:
            text += f" ({', '.join(details)})"
        duration = self.duration
        if duration is not None:
            text += f" after {_format_duration(duration)}"
        if self.node_name:
            text += f" on {self.node_name}"
        if self.message:
            text += f": {_one_line(self.message, 300)}"
        termination = self.termination_message
        if not self.ok and termination and termination.strip() != (self.message or "").strip():
            text += f"; termination message: {_one_line(termination, 200)!r}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ISO-8601 times, enum values, plus derived fields.

        ``ok``, ``exit_code`` and ``duration_seconds`` are included for readers of the
        JSON; :meth:`from_dict` ignores them.
        """
        duration = self.duration
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "task_key": self.task_key,
            "outcome": self.outcome.value,
            "ok": self.ok,
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
            "exit_code": self.exit_code,
            "termination_message": self.termination_message,
            "node_name": self.node_name,
            "created_at": _iso(self.created_at),
            "scheduled_at": _iso(self.scheduled_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_seconds": None if duration is None else duration.total_seconds(),
            "containers": [c.to_dict() for c in self.containers],
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PodResult:
        """Rebuild a result from :meth:`to_dict`'s output (e.g. a JSONL line).

        Unknown keys are ignored so that files written by a newer asyncpod still
        load; a wrong type raises :class:`~asyncpod.errors.SpecError` naming the field.
        """
        reader = _Reader(data, "")
        containers = reader.items("containers")
        events = reader.items("events")
        return cls(
            reader.req_str("namespace"),
            reader.req_str("name"),
            reader.opt_str("uid"),
            outcome=reader.choice("outcome", Outcome),
            phase=reader.opt_str("phase"),
            reason=reader.opt_str("reason"),
            message=reader.opt_str("message"),
            containers=tuple(
                ContainerResult.from_dict(item, path=f"containers[{i}]")
                for i, item in enumerate(containers)
            ),
            created_at=reader.time("created_at"),
            scheduled_at=reader.time("scheduled_at"),
            started_at=reader.time("started_at"),
            finished_at=reader.time("finished_at"),
            events=tuple(
                PodEvent.from_dict(item, path=f"events[{i}]") for i, item in enumerate(events)
            ),
            termination_message=reader.opt_str("termination_message"),
            node_name=reader.opt_str("node_name"),
            task_key=reader.opt_str("task_key"),
        )


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_E = TypeVar("_E", bound=Enum)


class _Reader:
    """Typed access to one mapping of a stored result; errors name the field."""

    __slots__ = ("_data", "_path")

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise SpecError(path or "result", f"must be a mapping, got {type(data).__name__}")
        self._data = data
        self._path = path

    def _where(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _get(self, key: str, types: type | tuple[type, ...], what: str) -> Any:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else ()):
            raise SpecError(self._where(key), f"must be {what}, got {value!r}")
        if not isinstance(value, types):
            raise SpecError(self._where(key), f"must be {what}, got {type(value).__name__}")
        return value

    def req_str(self, key: str) -> str:
        value = self.opt_str(key)
        if value is None:
            raise SpecError(self._where(key), "is required")
        return value

    def opt_str(self, key: str) -> str | None:
        value: str | None = self._get(key, str, "a string")
        return value

    def opt_int(self, key: str) -> int | None:
        value: int | None = self._get(key, int, "an integer")
        return value

    def items(self, key: str) -> list[Any]:
        value: list[Any] | None = self._get(key, list, "a list")
        return value or []

    def choice(self, key: str, enum: type[_E]) -> _E:
        value = self.req_str(key)
        try:
            return enum(value)
        except ValueError:
            choices = ", ".join(member.value for member in enum)
            raise SpecError(self._where(key), f"{value!r} is not one of {choices}") from None

    def time(self, key: str) -> datetime | None:
        text = self.opt_str(key)
        if text is None:
            return None
        try:
            # Python 3.10's fromisoformat does not accept a trailing "Z".
            value = datetime.fromisoformat(
                text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
            )
        except ValueError:
            raise SpecError(self._where(key), f"{text!r} is not an ISO-8601 time") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value
