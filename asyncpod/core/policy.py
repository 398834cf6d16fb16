"""The runner's decisions, as pure functions: no I/O, no awaits, no clock reads.

Why a module of its own: :mod:`asyncpod.core.runner` performs requests and waits;
*what* to do on each pod state, each deadline and each answer of the API server is
decided here, from values passed in, so every decision is pinned by a unit test
without a server or an event loop (as httpcore keeps its pool decisions apart from
its I/O). The runner reads the clock and calls these.

What it deliberately does not do: read ``time``, talk to the API server, or keep
state between calls (the :class:`RunClock` is the caller's).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncpod.core import lifecycle
from asyncpod.errors import (
    ApiError,
    AsyncpodError,
    ConflictError,
    ForbiddenError,
    OptionError,
    ServerUnreachableError,
    TransientError,
    UnauthorizedError,
)
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import RUN_ID_LABEL, TASK_KEY_ANNOTATION

__all__ = [
    "Cleanup",
    "ConflictVerdict",
    "RunClock",
    "RunOptions",
    "Verdict",
    "clock_from_pod",
    "created_nothing",
    "deleted_after_record",
    "judge",
    "judge_deletion",
    "may_retry",
    "next_deadline",
    "refusal_message",
    "resolve_conflict",
    "should_collect_events",
    "should_delete",
]

#: A random token per create (kept across retries of that create): proof that a pod
#: found after a lost answer or a cut-off POST is the one this run made.
CREATE_ATTEMPT_ANNOTATION = "asyncpod.dev/create-attempt"


class Cleanup(str, enum.Enum):
    """What happens to the pod once its run is over."""

    DELETE = "delete"
    """Always delete it (the default: nothing outlives the run)."""
    KEEP = "keep"
    """Never delete it, not even on cancellation (for debugging)."""
    DELETE_ON_SUCCESS = "delete-on-success"
    """Delete it when it succeeded; keep failed pods for inspection."""
    RECORD_FIRST = "record-first"
    """Keep the pod of every result the run hands over (succeeded, failed, timed out),
    for a caller that records results before their pods go: it deletes each pod once
    the result is safe (:func:`deleted_after_record`), so a process killed in between
    finds the pod on resume instead of neither pod nor result. A cancelled or failed
    run hands over nothing final and deletes its pod as DELETE does. The batch
    launcher's mode; not a ``--cleanup`` choice."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Policies for one run. Timeouts are seconds; ``None`` turns one off.

    ``schedule_timeout``: from creation until the pod is bound to a node.
    ``startup_timeout``: from binding until a main container runs (init containers and
    image pulls included). ``image_pull_timeout``: how long ErrImagePull /
    ImagePullBackOff may last before the run fails (registries hiccup; a typo does
    not fix itself). ``deadline``: the whole run, from creation. A timed-out pod is
    deleted (unless cleanup is KEEP) and its result says which limit passed. After a
    reattach, every limit counts from the pod's own timestamps (creation, scheduling,
    start), not from the reattach.
    ``log_drain_timeout`` bounds how long cleanup waits for open log readers to
    read what the containers wrote before the pod is deleted. ``create_retry_window``
    and ``delete_retry_window`` are how long a create or delete meeting an unreachable
    or restarting API server is retried before the error is reported; a create is
    retried with the same name and attempt token, so it never makes a second pod.
    """

    schedule_timeout: float | None = 300.0
    startup_timeout: float | None = 600.0
    image_pull_timeout: float | None = 120.0
    deadline: float | None = None
    cleanup: Cleanup = Cleanup.DELETE
    delete_grace_period: int | None = None
    collect_events: bool = True
    log_drain_timeout: float = 30.0
    delete_retry_window: float = 60.0
    create_retry_window: float = 60.0

    def __post_init__(self) -> None:
        for name in ("schedule_timeout", "startup_timeout", "image_pull_timeout", "deadline"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise OptionError(f"RunOptions.{name} must be positive or None, got {value}")
        for name in ("log_drain_timeout", "delete_retry_window", "create_retry_window"):
            if getattr(self, name) < 0:
                raise OptionError(f"RunOptions.{name} must not be negative")
        if self.delete_grace_period is not None and self.delete_grace_period < 0:
            raise OptionError("RunOptions.delete_grace_period must not be negative")
        if not isinstance(self.cleanup, Cleanup):
            raise OptionError(
                f"RunOptions.cleanup must be a Cleanup ({', '.join(c.value for c in Cleanup)})"
            )


@dataclass(slots=True)
class RunClock:
    """Monotonic instants of the milestones the timeouts are measured from."""

    created: float
    scheduled: float | None = None
    started: float | None = None
    blocked_since: float | None = None
    last_state: lifecycle.PodState | None = None  # what judge saw the time before


def clock_from_pod(pod: dict[str, Any], *, now: float, wall_now: datetime) -> RunClock:
    """A clock for a pod we reattach to: milestones from the pod's own timestamps.

    Server timestamps are mapped onto the monotonic clock through ``now``/``wall_now``
    (taken together by the caller) and never put in the future, so a client clock
    slightly behind the server's cannot extend a deadline.
    """

    def at(moment: datetime | None) -> float | None:
        if moment is None:
            return None
        return now - max((wall_now - moment).total_seconds(), 0.0)

    def parse(value: object) -> datetime | None:
        # A malformed server timestamp counts as unknown (then: now), never as an error.
        try:
            return lifecycle.parse_time(value) if isinstance(value, str) else None
        except ValueError:
            return None

    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    created = at(parse(metadata.get("creationTimestamp"))) or now
    scheduled = None
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "True":
            scheduled = at(parse(condition.get("lastTransitionTime"))) or now
    started = None
    # Bound but still pulling images or running init containers (SCHEDULED) is not
    # started: the startup and image-pull limits must still apply after a reattach.
    waiting = (lifecycle.PodState.PENDING, lifecycle.PodState.SCHEDULED)
    if lifecycle.pod_state(pod) not in waiting or _any_started(status):
        starts = [
            parse(((item.get("state") or {}).get("running") or {}).get("startedAt"))
            for item in status.get("containerStatuses") or ()
        ]
        known = [s for s in starts if s is not None]
        started = at(min(known)) if known else now
    if started is not None and scheduled is None:
        scheduled = started
    return RunClock(created=created, scheduled=scheduled, started=started)


def _any_started(status: dict[str, Any]) -> bool:
    return any(
        "running" in (item.get("state") or {}) for item in status.get("containerStatuses") or ()
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The run is over: how (``outcome``), and why when a limit or a wait decided it."""

    outcome: Outcome | None  # None: as the pod's own terminal state says
    reason: str | None = None
    message: str | None = None


def judge(
    pod: dict[str, Any],
    clock: RunClock,
    options: RunOptions,
    *,
    now: float,
    main_container: str | None,
) -> Verdict | None:
    """Decide from the latest pod and the clock whether the run is over.

    Updates ``clock`` with milestones first seen in ``pod`` (the only mutation).
    """
    # Deleted by somebody else, then stopped by the kubelet: a deletion, whatever phase
    # the exit codes gave it (a real kubelet sets one; kwok goes straight to DELETED).
    if lifecycle.ended_by_deletion(clock.last_state, pod, main_container=main_container):
        return Verdict(Outcome.DELETED)
    # Terminal, or the main container exited while ordinary sidecars keep the pod
    # Running: either way the run is over (cleanup stops the sidecars).
    if lifecycle.is_terminal(pod) or lifecycle.main_finished(pod, main_container=main_container):
        return Verdict(None)
    state = clock.last_state = lifecycle.pod_state(pod)
    if clock.scheduled is None and state is not lifecycle.PodState.PENDING:
        clock.scheduled = now
    if clock.started is None and state is lifecycle.PodState.RUNNING:
        clock.started = now
    blocked = lifecycle.blocking_reason(pod) if clock.started is None else None
    if blocked is not None:
        reason, message = blocked
        if lifecycle.is_fatal_wait(reason):
            return Verdict(Outcome.FAILED, reason, message)
        if reason in (Reason.ERR_IMAGE_PULL, Reason.IMAGE_PULL_BACK_OFF):
            clock.blocked_since = clock.blocked_since if clock.blocked_since is not None else now
            limit = options.image_pull_timeout
            if limit is not None and now - clock.blocked_since >= limit:
                return Verdict(Outcome.FAILED, reason, message)
    else:
        clock.blocked_since = None
    if options.deadline is not None and now - clock.created >= options.deadline:
        return Verdict(
            Outcome.TIMED_OUT,
            Reason.RUN_TIMEOUT,
            f"the run took longer than its {options.deadline:g}s deadline",
        )
    if clock.scheduled is None:
        limit = options.schedule_timeout
        if limit is not None and now - clock.created >= limit:
            if blocked is not None and blocked[0] == Reason.UNSCHEDULABLE:
                return Verdict(Outcome.TIMED_OUT, *blocked)
            return Verdict(
                Outcome.TIMED_OUT, Reason.SCHEDULE_TIMEOUT, f"not scheduled within {limit:g}s"
            )
    elif clock.started is None:
        limit = options.startup_timeout
        if limit is not None and now - clock.scheduled >= limit:
            if blocked is not None:
                return Verdict(Outcome.TIMED_OUT, *blocked)
            return Verdict(
                Outcome.TIMED_OUT,
                Reason.STARTUP_TIMEOUT,
                f"no container running within {limit:g}s of scheduling",
            )
    return None


def judge_deletion(pod: dict[str, Any], *, cancel_requested: bool) -> Verdict:
    """The run is over because its pod is gone from the API server: how.

    A pod that had already finished ended as its containers say (it was deleted
    afterwards, by us or by a TTL). Otherwise it was stopped: CANCELLED when this
    run asked for that, else DELETED (somebody else deleted it, or it was evicted and
    removed).
    """
    if lifecycle.is_terminal(pod):
        return Verdict(None)
    return Verdict(Outcome.CANCELLED if cancel_requested else Outcome.DELETED)


def may_retry(error: AsyncpodError, *, restarted: bool, past_deadline: bool) -> bool:
    """Whether the runner tries a create, read or delete again after ``error``.

    Within the request's window (``past_deadline`` False): a transient failure (the
    API server unreachable, restarting, overloaded) always; a 401/403 only when the
    server was unreachable during this run (``restarted``): a kube-apiserver that has
    just restarted denies requests until its authorizer has synced RBAC (seen here:
    403 with "clusterrole ... not found" for a few seconds). Without that, a denial
    is a missing permission, said at once. Anything else (409, 404, 422, a server
    never reached) is an answer, not a failure to retry.
    """
    if past_deadline:
        return False
    if isinstance(error, TransientError):
        return True
    return restarted and isinstance(error, (ForbiddenError, UnauthorizedError))


def created_nothing(error: AsyncpodError) -> bool:
    """Whether a create attempt that failed with ``error`` certainly made no pod. Pure.

    An answer refusing it (a 4xx: a terminating namespace, a quota, a missing
    permission, an invalid spec, 429) made nothing, and a server never reached was sent
    nothing. A 409 is the one 4xx that says a pod exists (the caller looks at it). A cut
    or timed-out request, a 5xx or a connection lost may have made the pod before the
    answer was lost: then a run that ends without its pod must look for it
    (``Start.find_cut_create``), and one that never had such a failure need not.
    """
    if isinstance(error, ServerUnreachableError):
        return True
    if isinstance(error, ConflictError):
        return False
    return isinstance(error, ApiError) and 400 <= error.status < 500


def next_deadline(clock: RunClock, options: RunOptions, *, now: float) -> float | None:
    """Seconds until the earliest limit that could still pass (never negative), or None."""
    candidates: list[float] = []
    if options.deadline is not None:
        candidates.append(clock.created + options.deadline - now)
    if clock.scheduled is None and options.schedule_timeout is not None:
        candidates.append(clock.created + options.schedule_timeout - now)
    if clock.scheduled is not None and clock.started is None and options.startup_timeout:
        candidates.append(clock.scheduled + options.startup_timeout - now)
    if clock.blocked_since is not None and options.image_pull_timeout is not None:
        candidates.append(clock.blocked_since + options.image_pull_timeout - now)
    return max(min(candidates), 0.0) if candidates else None


class ConflictVerdict(enum.Enum):
    """What a pod found under the name a create got 409 for means to this run."""

    OURS = "ours"
    """Our own create, whose answer was lost: adopt it."""
    REATTACH = "reattach"
    """A pod of the same run and task from an earlier process: follow it."""
    OTHER_NAME = "other-name"
    """A namesake of a randomly drawn name: draw another."""
    BEING_DELETED = "being-deleted"
    """Same run and task, but on its way out: refuse (retry later)."""
    FOREIGN = "foreign"
    """Somebody else's pod: refuse."""


def resolve_conflict(
    existing: dict[str, Any],
    *,
    token: str,
    generated_name: bool,
    run_id: str | None,
    task_key: str | None,
    run_id_label: str,
    task_key_annotation: str,
) -> ConflictVerdict:
    """Classify the pod that holds the name our create was refused (409) for."""
    metadata = existing.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    if annotations.get(CREATE_ATTEMPT_ANNOTATION) == token:
        return ConflictVerdict.OURS
    if generated_name:
        return ConflictVerdict.OTHER_NAME
    same_run = run_id is None or labels.get(run_id_label) == run_id
    same_task = annotations.get(task_key_annotation) == task_key
    if not (same_run and same_task):
        return ConflictVerdict.FOREIGN
    if metadata.get("deletionTimestamp"):
        return ConflictVerdict.BEING_DELETED
    return ConflictVerdict.REATTACH


def refusal_message(verdict: ConflictVerdict, existing: dict[str, Any], ref: str) -> str:
    """Why a create may not take the name another pod holds (BEING_DELETED, FOREIGN).

    ``existing`` is that pod; ``ref`` names it (``namespace/name``). Pure: the words of
    the runner's and the Airflow worker's ``ConflictError`` alike.
    """
    if verdict is ConflictVerdict.BEING_DELETED:
        return f"pod {ref} from an earlier attempt is being deleted; retry later"
    metadata = existing.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    return (
        f"pod {ref} exists but belongs to another run or task (run-id "
        f"{labels.get(RUN_ID_LABEL)!r}, task {annotations.get(TASK_KEY_ANNOTATION)!r})"
    )


def should_collect_events(
    options: RunOptions, result: PodResult | None, *, cancelled: bool
) -> bool:
    """Whether cleanup lists the pod's Events into its result: for a failure, when
    ``collect_events`` asks for them, but never for a cancelled run. Its Events tell
    nothing of why it was cancelled, and a cancellation comes by the thousand (a
    Ctrl-C, a triggerer shutting down): one LIST each would hold up every ending.
    """
    if not options.collect_events or cancelled or result is None:
        return False
    return not result.ok and result.outcome is not Outcome.CANCELLED


def should_delete(
    options: RunOptions, outcome: Outcome | None, *, succeeded: bool, pod_finished: bool
) -> bool:
    """Whether cleanup deletes the pod, given how the run ended.

    ``outcome`` is None when the run ended without a result (an error). A pod deleted
    by somebody else is not deleted again; DELETE_ON_SUCCESS keeps a pod that finished
    and failed, but never one that is still running (that would leak it); RECORD_FIRST
    deletes only the pods of runs that hand over nothing final.
    """
    if options.cleanup is Cleanup.RECORD_FIRST:
        return outcome is None or outcome in _UNRECORDED_OUTCOMES
    return _deletes(options.cleanup, outcome, succeeded=succeeded, pod_finished=pod_finished)


#: Outcomes a RECORD_FIRST run deletes the pod of itself: nothing final is handed over.
_UNRECORDED_OUTCOMES = frozenset({Outcome.CANCELLED, Outcome.ERROR})


def deleted_after_record(
    cleanup: Cleanup, outcome: Outcome, *, succeeded: bool, pod_finished: bool
) -> bool:
    """Whether a caller whose runs used RECORD_FIRST deletes the pod once it has
    recorded the result, following the user's ``cleanup`` (DELETE, DELETE_ON_SUCCESS
    or KEEP): never for a pod the run deleted itself (cancelled, error) or somebody
    else did; otherwise what :func:`should_delete` says of a run with that cleanup."""
    if outcome in _UNRECORDED_OUTCOMES or cleanup is Cleanup.RECORD_FIRST:
        return False
    return _deletes(cleanup, outcome, succeeded=succeeded, pod_finished=pod_finished)


def _deletes(
    cleanup: Cleanup, outcome: Outcome | None, *, succeeded: bool, pod_finished: bool
) -> bool:
    if cleanup is Cleanup.KEEP or outcome is Outcome.DELETED:
        return False
    if cleanup is Cleanup.DELETE_ON_SUCCESS:
        return outcome is None or succeeded or not pod_finished
    return True
