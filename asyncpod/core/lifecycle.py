"""Pure functions from a pod, as the API server sends it, to states and results.

Why this module exists: every decision about a pod's progress (is it stuck? done?
why did it fail? what changed since the last watch event?) is a function of the pod
object alone. Keeping those functions here, free of I/O and awaits, means the
informer, the runner, the Airflow trigger and the CLI all read pods the same way,
and the logic is unit-tested from JSON fixtures without an event loop.

Inputs are raw pod dicts exactly as orjson decodes them from the API (camelCase keys,
RFC 3339 strings). No typed Kubernetes models anywhere: building a ``V1Pod`` costs
~100x the decode (docs/architecture.md, "Facts"), and :func:`pod_state`, :func:`is_terminal` and
:func:`transition` run once per watch event across thousands of pods. Those three
stay cheap: a few dict lookups and a loop over the container statuses, no copies, no
time parsing.

What it deliberately does not do: no timers, no clocks, no policy. Whether an image
pull that keeps failing should end the run is the runner's call: :func:`is_fatal_wait`
separates reasons that will never fix themselves from those that may, and the runner
applies its image-pull grace period to the latter. Nothing here mutates its input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Final

from asyncpod.errors import OptionError
from asyncpod.results import (
    ContainerKind,
    ContainerResult,
    Outcome,
    PodEvent,
    PodResult,
    Reason,
)
from asyncpod.spec import DEFAULT_CONTAINER_ANNOTATION, DEFAULT_CONTAINER_NAME, TASK_KEY_ANNOTATION

__all__ = [
    "BLOCKING_WAIT_REASONS",
    "FATAL_WAIT_REASONS",
    "PodState",
    "StateChange",
    "blocking_reason",
    "build_result",
    "container_results",
    "events_from_list",
    "is_fatal_wait",
    "is_terminal",
    "main_container_name",
    "main_finished",
    "parse_time",
    "pod_reason",
    "pod_state",
    "project",
    "transition",
]

Pod = Mapping[str, Any]

_EMPTY: Final[Mapping[str, Any]] = {}
_TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})


class PodState(str, Enum):
    """Where a pod is in its life, as the runner and ``handle.states()`` report it.

    Finer than the Kubernetes phase where it matters to a waiting caller: a Pending
    pod is ``PENDING`` until bound to a node, then ``SCHEDULED`` (pulling images,
    running init containers). ``TERMINATING`` is a non-terminal pod with a deletion
    timestamp; ``DELETED`` comes only from a watch DELETED event.
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    TERMINATING = "terminating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DELETED = "deleted"

    @property
    def terminal(self) -> bool:
        """No further change will come: succeeded, failed or deleted."""
        return self in _TERMINAL_STATES


_TERMINAL_STATES: Final = frozenset({PodState.SUCCEEDED, PodState.FAILED, PodState.DELETED})

#: Container waiting reasons that mean the pod is stuck rather than on its way.
BLOCKING_WAIT_REASONS: Final = frozenset(
    {
        Reason.ERR_IMAGE_PULL,
        Reason.IMAGE_PULL_BACK_OFF,
        Reason.INVALID_IMAGE_NAME,
        Reason.ERR_IMAGE_NEVER_PULL,
        Reason.CREATE_CONTAINER_CONFIG_ERROR,
        Reason.CREATE_CONTAINER_ERROR,
        "ImageInspectError",
        "RegistryUnavailable",
        "SignatureValidationFailed",
    }
)

#: The subset of :data:`BLOCKING_WAIT_REASONS` that no amount of waiting will fix:
#: the spec or the cluster must change (a malformed image name, a pull policy of
#: Never for an absent image, a missing Secret/ConfigMap key or a runAsNonRoot
#: conflict). ErrImagePull, ImagePullBackOff, RegistryUnavailable and
#: CreateContainerError are *not* here: registries rate-limit and hiccup, so the
#: runner treats them as fatal only after its image-pull grace period.
FATAL_WAIT_REASONS: Final = frozenset(
    {
        Reason.INVALID_IMAGE_NAME,
        Reason.ERR_IMAGE_NEVER_PULL,
        Reason.CREATE_CONTAINER_CONFIG_ERROR,
        "ImageInspectError",
        "SignatureValidationFailed",
    }
)

# The kubelet alternates between these two while it backs off; for change detection
# they are one condition, or every back-off cycle would be reported as news.
_BLOCK_FAMILY: Final = {Reason.IMAGE_PULL_BACK_OFF: Reason.ERR_IMAGE_PULL}


# --------------------------------------------------------------------------------------
# State (hot path)
# --------------------------------------------------------------------------------------


def pod_state(pod: Pod) -> PodState:
    """The :class:`PodState` of a pod object. Hot path: dict lookups only."""
    status = pod.get("status") or _EMPTY
    phase = status.get("phase")
    if phase == "Succeeded":
        return PodState.SUCCEEDED
    if phase == "Failed":
        return PodState.FAILED
    if (pod.get("metadata") or _EMPTY).get("deletionTimestamp"):
        return PodState.TERMINATING
    if phase == "Running":
        return PodState.RUNNING
    if phase == "Unknown":
        return PodState.UNKNOWN
    if (pod.get("spec") or _EMPTY).get("nodeName"):
        return PodState.SCHEDULED
    return PodState.PENDING


def is_terminal(pod: Pod) -> bool:
    """True once the pod's phase is Succeeded or Failed (it will not run again).

    A pod with ordinary (non-native) sidecars can stay Running after its main
    container exits; see :func:`main_finished` for that case.
    """
    return (pod.get("status") or _EMPTY).get("phase") in _TERMINAL_PHASES


def main_finished(pod: Pod, *, main_container: str | None = None) -> bool:
    """True once the main container has terminated, whatever the pod phase says."""
    name = main_container_name(pod, main_container)
    for status in (pod.get("status") or _EMPTY).get("containerStatuses") or ():
        if status.get("name") == name:
            return "terminated" in (status.get("state") or _EMPTY)
    return False


def ended_by_deletion(
    previous: PodState | None, pod: Pod, *, main_container: str | None = None
) -> bool:
    """True when a pod already seen TERMINATING has now ended (phase or main container).

    A real kubelet answers a DELETE by stopping the containers (SIGTERM, SIGKILL after
    the grace period) and then sets the phase from their exit codes: a process that
    exits 0 on SIGTERM turns a deleted pod "Succeeded", one killed by the signal
    "Failed" (tests/unit/pods/recorded/real/deleted-while-running.json; kwok goes
    straight to DELETED instead). Such a pod did not finish by itself: a runner that
    saw the deletion first should report it as deleted (or cancelled, if it deleted
    the pod itself), keeping the containers' exit codes in the result.
    """
    if previous is not PodState.TERMINATING:
        return False
    return is_terminal(pod) or main_finished(pod, main_container=main_container)


_KEPT_CONTAINER_FIELDS: Final = ("name", "image", "restartPolicy")


def project(pod: Mapping[str, Any]) -> dict[str, Any]:
    """What asyncpod keeps of a watched pod: all that its decisions and results read.

    Metadata (without ``managedFields``) and status whole; of the spec, its scalar
    fields (``nodeName``, ``restartPolicy``, ...) and each container's and init
    container's name, image and restart policy. Dropped: volumes, tolerations,
    affinity, the containers' env, mounts, probes and resources - about half of a
    pod's memory and of the objects the garbage collector walks, for every pod a
    session follows. Every function of this module gives the same answer for
    ``project(pod)`` as for ``pod`` (tests/unit/test_lifecycle_project.py).
    """
    metadata = pod.get("metadata") or _EMPTY
    spec = pod.get("spec") or _EMPTY
    kept_spec: dict[str, Any] = {
        key: value for key, value in spec.items() if not isinstance(value, (dict, list))
    }
    for key in ("initContainers", "containers"):
        containers = spec.get(key)
        if containers:
            kept_spec[key] = [
                {field: c[field] for field in _KEPT_CONTAINER_FIELDS if field in c}
                for c in containers
            ]
    projected: dict[str, Any] = {key: value for key, value in pod.items() if key != "spec"}
    if "managedFields" in metadata:
        projected["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    projected["spec"] = kept_spec
    return projected


@dataclass(frozen=True, slots=True)
class StateChange:
    """Something observable happened to a pod between two versions of it.

    ``state`` is the new state and ``previous`` the old one (``None`` on first sight;
    equal to ``state`` when only containers changed). ``started``/``terminated`` name
    the containers seen running/terminated since the previous version; a container
    that ran and exited between two watch events shows up only in ``terminated``.
    ``blocked`` is the pod's current :func:`blocking_reason`. ``pod`` is the new pod
    object itself (not a copy; do not mutate it).
    """

    state: PodState
    previous: PodState | None
    _: KW_ONLY
    started: tuple[str, ...] = ()
    terminated: tuple[str, ...] = ()
    blocked: tuple[str, str] | None = None
    pod: Pod = field(default_factory=dict, compare=False, repr=False)

    @property
    def state_changed(self) -> bool:
        return self.state is not self.previous

    @property
    def resource_version(self) -> str | None:
        version = (self.pod.get("metadata") or _EMPTY).get("resourceVersion")
        return version if isinstance(version, str) else None


def transition(old: Pod | None, new: Pod, *, deleted: bool = False) -> StateChange | None:
    """What changed from ``old`` to ``new`` that is worth reporting, or ``None``.

    Worth reporting: the first sight of a pod (``old`` is ``None``), a change of
    :class:`PodState`, a container that started or terminated (restarts included),
    and the pod becoming blocked, unblocked or blocked for a different reason
    (ErrImagePull and ImagePullBackOff count as one reason). ``deleted=True`` marks
    ``new`` as the last version from a watch DELETED event (or a relist that no longer
    has the pod); that is always reported, as :attr:`PodState.DELETED`.

    Hot path: called per watch event; reads only phases, container states and
    restart counts, and looks for a blocking reason only in non-terminal pods.
    """
    if old is new and not deleted:
        return None
    state = PodState.DELETED if deleted else pod_state(new)
    blocked = None if deleted else blocking_reason(new)
    new_marks = _container_marks(new)
    if old is None:
        return StateChange(
            state,
            None,
            started=tuple(n for n, (s, _) in new_marks.items() if s == "running"),
            terminated=tuple(n for n, (s, _) in new_marks.items() if s == "terminated"),
            blocked=blocked,
            pod=new,
        )
    previous = pod_state(old)
    old_marks = _container_marks(old)
    started: list[str] = []
    terminated: list[str] = []
    for name, mark in new_marks.items():
        before = old_marks.get(name)
        if mark == before:
            continue
        if mark[0] == "running":
            started.append(name)
        elif mark[0] == "terminated" or (before is not None and before[0] == "running"):
            # running → waiting can only mean it exited and waits to restart.
            terminated.append(name)
    old_blocked = blocking_reason(old)
    same_block = _block_family(old_blocked) == _block_family(blocked)
    if not deleted and state is previous and same_block and not started and not terminated:
        return None
    return StateChange(
        state,
        previous,
        started=tuple(started),
        terminated=tuple(terminated),
        blocked=blocked,
        pod=new,
    )


def _container_marks(pod: Pod) -> dict[str, tuple[str, int]]:
    """name → (waiting | running | terminated, restartCount), init containers included."""
    status = pod.get("status") or _EMPTY
    marks: dict[str, tuple[str, int]] = {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for item in status.get(key) or ():
            state = item.get("state") or _EMPTY
            if "terminated" in state:
                which = "terminated"
            elif "running" in state:
                which = "running"
            else:
                which = "waiting"
            marks[item.get("name")] = (which, item.get("restartCount") or 0)
    return marks


def _block_family(blocked: tuple[str, str] | None) -> str | None:
    if blocked is None:
        return None
    return _BLOCK_FAMILY.get(blocked[0], blocked[0])


# --------------------------------------------------------------------------------------
# Why a pod is stuck, or why it ended
# --------------------------------------------------------------------------------------


def blocking_reason(pod: Pod) -> tuple[str, str] | None:
    """``(reason, message)`` when a non-terminal pod is stuck, else ``None``.

    Stuck means unschedulable (the PodScheduled condition is False with reason
    Unschedulable) or a container waiting for a reason in
    :data:`BLOCKING_WAIT_REASONS`; init containers are looked at first, since they
    block the others. The message names the container.
    """
    status = pod.get("status") or _EMPTY
    if status.get("phase") in _TERMINAL_PHASES:
        return None
    # Only an unbound pod can be unschedulable; skip the conditions once it is bound.
    conditions = () if (pod.get("spec") or _EMPTY).get("nodeName") else status.get("conditions")
    for condition in conditions or ():
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == Reason.UNSCHEDULABLE
        ):
            return Reason.UNSCHEDULABLE, condition.get("message") or ""
    for key in ("initContainerStatuses", "containerStatuses"):
        for item in status.get(key) or ():
            waiting = (item.get("state") or _EMPTY).get("waiting")
            if waiting is None:
                continue
            reason = waiting.get("reason")
            if reason in BLOCKING_WAIT_REASONS:
                detail = waiting.get("message") or reason
                return reason, f"container {item.get('name')}: {detail}"
    return None


def is_fatal_wait(reason: str | None) -> bool:
    """True for a waiting reason that will not resolve without a change.

    ErrImagePull and ImagePullBackOff return False: they may clear up (a registry
    outage, a rate limit, an image pushed a moment later). The runner decides they
    are fatal only once they have lasted longer than its image-pull grace period.
    """
    return reason in FATAL_WAIT_REASONS


def pod_reason(pod: Pod, *, main_container: str | None = None) -> tuple[str | None, str | None]:
    """``(reason, message)`` explaining a pod at pod level.

    For a terminal pod, in order of precedence: the pod's own ``status.reason``
    (Evicted, DeadlineExceeded, NodeLost, ...); a DisruptionTarget condition
    (preemption, taint eviction, the eviction API); OOMKilled if any container was;
    Completed for a succeeded pod; otherwise the first failing container (init
    containers first, then the main container, then sidecars) with its reason,
    usually Error. For a non-terminal pod: its :func:`blocking_reason`, or the main
    container's end if it has exited (ordinary sidecars keep such a pod Running), or
    ``(None, None)``.
    """
    status = pod.get("status") or _EMPTY
    phase = status.get("phase")
    main = main_container_name(pod, main_container)
    if phase not in _TERMINAL_PHASES:
        blocked = blocking_reason(pod)
        if blocked is not None:
            return blocked
        for name, kind, item in _statuses_in_order(pod, main):
            terminated = (item.get("state") or _EMPTY).get("terminated")
            if kind is ContainerKind.MAIN and terminated is not None:
                return _terminated_reason(name, kind, terminated)
        return None, None
    if status.get("reason"):
        return status["reason"], status.get("message")
    for condition in status.get("conditions") or ():
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            return condition.get("reason") or "Disrupted", condition.get("message")
    ordered = list(_statuses_in_order(pod, main))
    for name, kind, item in ordered:
        terminated = _last_termination(item)
        if terminated is not None and terminated.get("reason") == Reason.OOM_KILLED:
            return _terminated_reason(name, kind, terminated)
    if phase == "Succeeded":
        return Reason.COMPLETED, None
    for name, kind, item in ordered:
        terminated = _last_termination(item)
        if terminated is not None and terminated.get("exitCode") not in (0, None):
            return _terminated_reason(name, kind, terminated)
    for name, _kind, item in ordered:
        waiting = (item.get("state") or _EMPTY).get("waiting")
        if waiting is not None and waiting.get("reason"):
            detail = waiting.get("message") or waiting["reason"]
            return waiting["reason"], f"container {name}: {detail}"
    return Reason.ERROR, status.get("message")


_KIND_WORDS: Final = {
    ContainerKind.INIT: "init container",
    ContainerKind.MAIN: "container",
    ContainerKind.SIDECAR: "sidecar",
}


def _terminated_reason(
    name: str, kind: ContainerKind, terminated: Mapping[str, Any]
) -> tuple[str, str]:
    code = terminated.get("exitCode")
    reason = terminated.get("reason") or (Reason.COMPLETED if code == 0 else Reason.ERROR)
    who = f"{_KIND_WORDS[kind]} {name}"
    if reason == Reason.OOM_KILLED:
        return reason, f"{who} was OOM-killed (exit code {code}): it exceeded its memory limit"
    message = f"{who} exited with code {code}"
    signal = terminated.get("signal")
    if signal:
        message += f" (signal {signal})"
    detail = terminated.get("message")
    # For Error/Completed the message is the termination message, kept separately;
    # for StartError, ContainerCannotRun and friends it is the runtime's explanation.
    if detail and reason not in (Reason.ERROR, Reason.COMPLETED):
        message += f": {detail.strip()}"
    return reason, message


def _last_termination(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The container's current termination, or its previous one while it waits."""
    state = item.get("state") or _EMPTY
    terminated = state.get("terminated")
    if terminated is None and "running" not in state:
        terminated = (item.get("lastState") or _EMPTY).get("terminated")
    return terminated


# --------------------------------------------------------------------------------------
# Containers and results
# --------------------------------------------------------------------------------------


def main_container_name(pod: Pod, main_container: str | None = None) -> str:
    """The pod's main container: the one given, else the one the pod names.

    The one rule, used by results, the runner and reattach: an explicit name wins;
    then the ``kubectl.kubernetes.io/default-container`` annotation (asyncpod sets
    it); then asyncpod's default name if the pod has such a container; then the
    first container (a pod made by somebody else, e.g. Airflow's ``base``).
    """
    if main_container is not None:
        return main_container
    annotations = (pod.get("metadata") or _EMPTY).get("annotations") or _EMPTY
    name = annotations.get(DEFAULT_CONTAINER_ANNOTATION)
    if isinstance(name, str) and name:
        return name
    containers = (pod.get("spec") or _EMPTY).get("containers") or ()
    names = [c.get("name") for c in containers]
    if not names or DEFAULT_CONTAINER_NAME in names:
        return DEFAULT_CONTAINER_NAME
    return str(names[0])


def _statuses_in_order(
    pod: Pod, main: str
) -> Iterable[tuple[str, ContainerKind, Mapping[str, Any]]]:
    """(name, kind, status) for every container in the spec, in result order.

    Init containers, then the main container, then sidecars: native ones (init
    containers with ``restartPolicy: Always``) before ordinary ones. A container in
    the spec without a status yet gets an empty status; a status without a spec
    entry (a trimmed pod object) is still reported.
    """
    spec = pod.get("spec") or _EMPTY
    status = pod.get("status") or _EMPTY
    init_status = {s.get("name"): s for s in status.get("initContainerStatuses") or ()}
    main_status = {s.get("name"): s for s in status.get("containerStatuses") or ()}
    inits: list[tuple[str, ContainerKind, Mapping[str, Any]]] = []
    mains: list[tuple[str, ContainerKind, Mapping[str, Any]]] = []
    sidecars: list[tuple[str, ContainerKind, Mapping[str, Any]]] = []
    for container in spec.get("initContainers") or ():
        name = container.get("name")
        item = init_status.pop(name, _EMPTY)
        if container.get("restartPolicy") == "Always":
            sidecars.append((name, ContainerKind.SIDECAR, item))
        else:
            inits.append((name, ContainerKind.INIT, item))
    inits += [(name, ContainerKind.INIT, item) for name, item in init_status.items()]
    classic: list[tuple[str, ContainerKind, Mapping[str, Any]]] = []
    names = [c.get("name") for c in spec.get("containers") or ()]
    names += [name for name in main_status if name not in names]
    for name in names:
        item = main_status.get(name, _EMPTY)
        if name == main:
            mains.append((name, ContainerKind.MAIN, item))
        else:
            classic.append((name, ContainerKind.SIDECAR, item))
    return [*inits, *mains, *sidecars, *classic]


def container_results(
    pod: Pod, *, main_container: str | None = None
) -> tuple[ContainerResult, ...]:
    """One :class:`ContainerResult` per container: init, then main, then sidecars.

    ``main_container`` defaults to the pod's ``kubectl.kubernetes.io/default-container``
    annotation (asyncpod sets it), else ``"main"``. Exit code, times and termination
    message come from ``state.terminated``; for a container waiting to restart
    (CrashLoopBackOff, a native sidecar between runs) they come from
    ``lastState.terminated`` while ``reason``/``message`` say why it waits.
    """
    spec = pod.get("spec") or _EMPTY
    images = {
        c.get("name"): c.get("image")
        for key in ("initContainers", "containers")
        for c in spec.get(key) or ()
    }
    return tuple(
        _container_result(name, kind, item, images.get(name))
        for name, kind, item in _statuses_in_order(pod, main_container_name(pod, main_container))
    )


def _container_result(
    name: str, kind: ContainerKind, item: Mapping[str, Any], image: str | None
) -> ContainerResult:
    state = item.get("state") or _EMPTY
    terminated = state.get("terminated")
    running = state.get("running")
    waiting = state.get("waiting")
    restarts = item.get("restartCount") or 0
    image = image or item.get("image")
    if terminated is not None:
        return ContainerResult(
            name,
            kind,
            state="terminated",
            image=image,
            exit_code=terminated.get("exitCode"),
            signal=terminated.get("signal"),
            reason=terminated.get("reason"),
            message=terminated.get("message"),
            termination_message=terminated.get("message"),
            started_at=_time(terminated.get("startedAt")),
            finished_at=_time(terminated.get("finishedAt")),
            restart_count=restarts,
        )
    if running is not None:
        return ContainerResult(
            name,
            kind,
            state="running",
            image=image,
            started_at=_time(running.get("startedAt")),
            restart_count=restarts,
        )
    if waiting is not None:
        last = (item.get("lastState") or _EMPTY).get("terminated") or _EMPTY
        return ContainerResult(
            name,
            kind,
            state="waiting",
            image=image,
            exit_code=last.get("exitCode"),
            signal=last.get("signal"),
            reason=waiting.get("reason"),
            message=waiting.get("message"),
            termination_message=last.get("message"),
            started_at=_time(last.get("startedAt")),
            finished_at=_time(last.get("finishedAt")),
            restart_count=restarts,
        )
    return ContainerResult(name, kind, image=image, restart_count=restarts)


_DEFAULT_REASONS: Final = {
    Outcome.CANCELLED: (Reason.CANCELLED, "the run was cancelled"),
    Outcome.DELETED: (Reason.DELETED_EXTERNALLY, "the pod was deleted before it finished"),
    Outcome.TIMED_OUT: (Reason.RUN_TIMEOUT, "the run's deadline passed"),
}


def build_result(
    pod: Pod,
    *,
    main_container: str | None = None,
    outcome: Outcome | None = None,
    reason: str | None = None,
    message: str | None = None,
    events: Iterable[PodEvent] = (),
) -> PodResult:
    """Turn the last known version of a pod into a :class:`PodResult`.

    ``outcome`` defaults from the pod: Succeeded → SUCCEEDED; Failed → FAILED, or
    TIMED_OUT when the pod's own ``activeDeadlineSeconds`` ran out (DeadlineExceeded);
    a pod still Running whose main container exited (ordinary sidecars) → by its exit
    code. For any other pod the caller must say what happened (CANCELLED, DELETED,
    TIMED_OUT ...), or ``ValueError`` is raised: guessing would hide a runner bug.

    ``reason``/``message`` default to :func:`pod_reason`; for CANCELLED and DELETED
    they default to Cancelled/DeletedExternally (the pod's own state is still in
    ``containers``).

    Times: created from ``metadata.creationTimestamp``; scheduled from the
    PodScheduled condition's ``lastTransitionTime`` once True; started from
    ``status.startTime``, else the earliest container start; finished is the latest
    container ``finishedAt``, else, for a terminal pod no container of which ever ran,
    the latest condition transition.
    """
    metadata = pod.get("metadata") or _EMPTY
    status = pod.get("status") or _EMPTY
    spec = pod.get("spec") or _EMPTY
    phase = status.get("phase")
    main = main_container_name(pod, main_container)
    containers = container_results(pod, main_container=main)
    main_result = next((c for c in containers if c.kind is ContainerKind.MAIN), None)

    if outcome is None:
        if phase == "Succeeded":
            outcome = Outcome.SUCCEEDED
        elif phase == "Failed":
            deadline = status.get("reason") == Reason.DEADLINE_EXCEEDED
            outcome = Outcome.TIMED_OUT if deadline else Outcome.FAILED
        elif main_result is not None and main_result.state == "terminated":
            outcome = Outcome.SUCCEEDED if main_result.exit_code == 0 else Outcome.FAILED
        else:
            raise OptionError(
                f"pod {metadata.get('namespace')}/{metadata.get('name')} has not finished"
                f" (phase {phase}); pass outcome= to say what happened to it"
            )
    if reason is None:
        default_message: str | None
        if outcome in (Outcome.CANCELLED, Outcome.DELETED):
            reason, default_message = _DEFAULT_REASONS[outcome]
        else:
            reason, default_message = pod_reason(pod, main_container=main)
            if reason is None and outcome in _DEFAULT_REASONS:
                reason, default_message = _DEFAULT_REASONS[outcome]
        if message is None:
            message = default_message

    scheduled_at = None
    transitions: list[datetime] = []
    for condition in status.get("conditions") or ():
        changed = _time(condition.get("lastTransitionTime"))
        if changed is not None:
            transitions.append(changed)
        if condition.get("type") == "PodScheduled" and condition.get("status") == "True":
            scheduled_at = changed
    starts = [c.started_at for c in containers if c.started_at is not None]
    ends = [c.finished_at for c in containers if c.finished_at is not None]
    started_at = _time(status.get("startTime")) or (min(starts) if starts else None)
    finished_at = max(ends) if ends else None
    if finished_at is None and phase in _TERMINAL_PHASES and transitions:
        finished_at = max(transitions)

    annotations = metadata.get("annotations") or _EMPTY
    task_key = annotations.get(TASK_KEY_ANNOTATION)
    return PodResult(
        metadata.get("namespace") or "",
        metadata.get("name") or "",
        metadata.get("uid"),
        outcome=outcome,
        phase=phase,
        reason=reason,
        message=message,
        containers=containers,
        created_at=_time(metadata.get("creationTimestamp")),
        scheduled_at=scheduled_at,
        started_at=started_at,
        finished_at=finished_at,
        events=tuple(events),
        termination_message=None if main_result is None else main_result.termination_message,
        node_name=spec.get("nodeName"),
        task_key=task_key if isinstance(task_key, str) else None,
    )


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


def events_from_list(event_list_body: Mapping[str, Any]) -> tuple[PodEvent, ...]:
    """The Events of an EventList response body, oldest first.

    Handles both generations of Event fields: core/v1's ``firstTimestamp``,
    ``lastTimestamp``, ``count`` and ``source``, and the newer ``eventTime``,
    ``series`` (``count``, ``lastObservedTime``) and ``reportingComponent`` that
    recent components fill instead (and events.k8s.io/v1's ``note`` and
    ``deprecated*`` names). Ordered by first occurrence, then last; events without
    any time come first, in list order. Times compare at whole seconds (see below).
    """
    events: list[PodEvent] = []
    for item in event_list_body.get("items") or ():
        metadata = item.get("metadata") or _EMPTY
        series = item.get("series") or _EMPTY
        first = (
            _time(item.get("firstTimestamp"))
            or _time(item.get("deprecatedFirstTimestamp"))
            or _time(item.get("eventTime"))
            or _time(metadata.get("creationTimestamp"))
        )
        last = (
            _time(series.get("lastObservedTime"))
            or _time(item.get("lastTimestamp"))
            or _time(item.get("deprecatedLastTimestamp"))
            or first
        )
        count = series.get("count") or item.get("count") or item.get("deprecatedCount") or 1
        source = (item.get("source") or item.get("deprecatedSource") or _EMPTY).get("component")
        events.append(
            PodEvent(
                item.get("type") or "Normal",
                item.get("reason") or "",
                item.get("message") or item.get("note") or "",
                count=count,
                first_seen=first,
                last_seen=last,
                source=source or item.get("reportingComponent") or item.get("reportingController"),
            )
        )
    # Whole seconds only: the scheduler writes microsecond eventTimes, kubelets whole
    # seconds, so finer keys would put a kubelet event before the Scheduled event of
    # the same second. Python's sort is stable: ties keep the API server's list order,
    # which is creation order.
    events.sort(key=lambda e: (_whole_second(e.first_seen), _whole_second(e.last_seen)))
    return tuple(events)


def _whole_second(moment: datetime | None) -> datetime:
    return (moment or _EPOCH).replace(microsecond=0)


# --------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------

_TIME_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2}))"
)


def parse_time(value: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp as Kubernetes writes it, into an aware UTC datetime.

    Accepts ``Z`` or a numeric offset and 0-9 fractional digits (MicroTime has 6, log
    timestamps 9; digits past microseconds are truncated). ``None`` and ``""`` give
    ``None``; anything else malformed raises ``ValueError``. Written by hand because
    Python 3.10's ``fromisoformat`` rejects ``Z`` and fractions other than 3 or 6 digits.
    """
    if not value:
        return None
    match = _TIME_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    micro = int((fraction + "00000")[:6]) if fraction else 0
    try:
        parsed = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second), 59),  # a leap second is clamped, not rejected
            micro,
            tzinfo=timezone.utc,
        )
    except ValueError:
        raise ValueError(f"{value!r} is not a valid date and time") from None
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        parsed = parsed - offset if sign == "+" else parsed + offset
    return parsed


def _time(value: object) -> datetime | None:
    """Lenient :func:`parse_time` for server data: a bad timestamp is unknown, not fatal."""
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
