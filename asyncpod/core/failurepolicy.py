"""What to do when a task's pod fails: retry it, fail the task, or stop the batch.

Why a module of its own: a batch of 100,000 pods meets evictions, lost nodes and pods
deleted by an autoscaler; those say nothing about the program and are worth another
try, while a program's own non-zero exit usually is not. Which is which is the user's
call, written as a small policy modelled on Kubernetes' ``podFailurePolicy`` and
``backoffLimitPerIndex``: ordered :class:`FailureRule` s, each matching the result's
outcome, reason and exit codes (``In``/``NotIn``), each with an :class:`FailureAction`. The
first rule that matches decides; no rule matching fails the task.

Every decision here is a pure function of values (a :class:`~asyncpod.PodResult`, the
attempt number, a random number in [0, 1)), tested without a loop or a cluster:
:func:`decide` (which rule matches and what follows), :func:`backoff_delay` (how long
before the next attempt) and :func:`attempt_pod_name` (the next attempt's pod name,
deterministic from run id, task key and attempt, so a crashed and resumed batch finds
the pod of the attempt it was in instead of making another).

The default (:data:`DEFAULT_RULES`, :class:`FailurePolicy` with no arguments) retries
what the infrastructure did to a pod, up to 3 attempts in all: a pod deleted by someone
else (the eviction API, a drain, an autoscaler: outcome ``deleted``), evicted by its
kubelet (``Evicted``), disrupted (a ``DisruptionTarget`` condition: preemption, taint
eviction, pod GC), or on a lost or shut-down node. An application's exit code, an
``OOMKilled``, an image that never pulled, a timeout: not retried unless a rule says so.

Rules as text (the CLI's ``--retry-on``, a batch file's ``retry_on``)::

    reason=Evicted,DisruptionTarget       # any of these reasons
    exit-code=75                          # In: the pod failed with exit code 75
    exit-code!=1,2                        # NotIn: a non-zero exit code other than 1 and 2
    outcome=deleted                       # failed, timed_out, deleted or error
    reason=Error;exit-code=75             # every field must match (';' joins them)
    fail:reason=OOMKilled                 # an action first: retry (default), fail, stop

What it deliberately does not do: sleep, create pods or read files (the launcher does);
retry a cancelled run (cancelling is the caller's own decision) or a succeeded one.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

from asyncpod.errors import UsageError
from asyncpod.results import Outcome, PodResult, Reason
from asyncpod.spec import deterministic_pod_name

__all__ = [
    "DEFAULT_RULES",
    "DISRUPTION_REASONS",
    "KNOWN_REASONS",
    "Decision",
    "ExitCodes",
    "FailureAction",
    "FailurePolicy",
    "FailureRule",
    "attempt_pod_name",
    "backoff_delay",
    "decide",
    "with_disruption",
]


class FailureAction(str, Enum):
    """What a matching rule does with a failed attempt."""

    RETRY = "retry"
    """Run the task again in a new pod (within the policy's attempt limit)."""
    FAIL = "fail"
    """The task has failed: no other attempt."""
    STOP = "stop"
    """The task has failed and the batch stops: no new pods, those in flight cancelled."""


DISRUPTION_REASONS: Final = frozenset(
    {
        "EvictionByEvictionAPI",
        "PreemptionByScheduler",
        "DeletionByTaintManager",
        "TerminationByKubelet",
        "DeletionByPodGC",
        "Disrupted",
    }
)
"""Reasons of a ``DisruptionTarget`` condition (what :func:`asyncpod.core.lifecycle.pod_reason`
reports for a failed pod carrying one); ``reason=DisruptionTarget`` matches any of them."""

_NODE_LOST: Final = frozenset({"NodeLost", "NodeShutdown", "Shutdown", "Terminated"})

_FAMILIES: Final[Mapping[str, frozenset[str]]] = {
    "DisruptionTarget": DISRUPTION_REASONS,
    "NodeLost": _NODE_LOST,
    Reason.IMAGE_PULL_BACK_OFF: frozenset({Reason.IMAGE_PULL_BACK_OFF, Reason.ERR_IMAGE_PULL}),
}
"""A name in a rule that matches several reasons the results carry."""

KNOWN_REASONS: Final = frozenset(
    {value for key, value in vars(Reason).items() if key.isupper() and isinstance(value, str)}
    | DISRUPTION_REASONS
    | _NODE_LOST
    | set(_FAMILIES)
) - {Reason.COMPLETED, Reason.CANCELLED}
"""Reasons a rule may name: the results' own (:class:`asyncpod.Reason`), the disruption
reasons, node loss, and ``DisruptionTarget``. Anything else is a typo (a UsageError)."""

_MATCHABLE_OUTCOMES: Final = (Outcome.FAILED, Outcome.TIMED_OUT, Outcome.DELETED, Outcome.ERROR)

_INFRASTRUCTURE_REASONS: Final = frozenset({Reason.EVICTED, "DisruptionTarget", "NodeLost"})


@dataclass(frozen=True, slots=True)
class ExitCodes:
    """Exit codes a rule matches, as ``podFailurePolicy.onExitCodes`` does.

    The codes looked at are the non-zero exit codes of the result's containers (init
    containers and sidecars too). ``In``: some code is in ``values``. ``NotIn``: some
    code is not. A result with no non-zero code (a deletion, an image that never
    pulled) matches neither.
    """

    operator: Literal["In", "NotIn"]
    values: frozenset[int]

    def __post_init__(self) -> None:
        if self.operator not in ("In", "NotIn"):
            raise UsageError(f"exit_codes.operator must be In or NotIn, got {self.operator!r}")
        values = self.values
        if not isinstance(values, frozenset):
            object.__setattr__(self, "values", frozenset(values))
        if not self.values:
            raise UsageError("exit_codes.values must name at least one exit code")
        for code in self.values:
            if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
                raise UsageError(f"exit_codes.values: {code!r} is not an exit code (0-255)")
        if self.operator == "In" and 0 in self.values:
            raise UsageError("exit_codes.values: 0 cannot be used with In (a success)")

    def matches(self, result: PodResult) -> bool:
        codes = [c.exit_code for c in result.containers if c.exit_code]
        if not codes:
            return False
        if self.operator == "In":
            return any(code in self.values for code in codes)
        return any(code not in self.values for code in codes)

    def __str__(self) -> str:
        joined = ",".join(str(code) for code in sorted(self.values))
        return f"exit-code{'=' if self.operator == 'In' else '!='}{joined}"


@dataclass(frozen=True, slots=True)
class FailureRule:
    """One rule: when every given field matches a failed attempt, ``action`` follows.

    ``outcomes`` (failed, timed_out, deleted, error) and ``reasons`` match when the
    attempt's is one of them; ``exit_codes`` as :class:`ExitCodes` says. A field left
    empty matches anything; a rule with no field matches every failure.
    """

    action: FailureAction = FailureAction.RETRY
    outcomes: frozenset[Outcome] = frozenset()
    reasons: frozenset[str] = frozenset()
    exit_codes: ExitCodes | None = None
    name: str | None = None
    """How messages name the rule (default: its text, ``retry:reason=Evicted``)."""

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}" if self.name else "rule"
        try:
            action = FailureAction(self.action)
        except ValueError:
            choices = ", ".join(a.value for a in FailureAction)
            raise UsageError(f"{where}: action {self.action!r} is not one of {choices}") from None
        object.__setattr__(self, "action", action)
        if isinstance(self.outcomes, str) or isinstance(self.reasons, str):
            raise UsageError(f"{where}: outcomes and reasons must be collections, not a string")
        outcomes = set()
        for value in self.outcomes:
            try:
                outcome = Outcome(value)
            except ValueError:
                outcome = None
            if outcome not in _MATCHABLE_OUTCOMES:
                choices = ", ".join(o.value for o in _MATCHABLE_OUTCOMES)
                raise UsageError(f"{where}: outcome {value!r} is not one of {choices}")
            outcomes.add(outcome)
        object.__setattr__(self, "outcomes", frozenset(outcomes))
        for reason in self.reasons:
            if reason not in KNOWN_REASONS:
                raise UsageError(
                    f"{where}: reason {reason!r} is not a reason asyncpod reports; "
                    f"known: {', '.join(sorted(KNOWN_REASONS))}"
                )
        object.__setattr__(self, "reasons", frozenset(self.reasons))
        if self.exit_codes is not None and not isinstance(self.exit_codes, ExitCodes):
            raise UsageError(f"{where}: exit_codes must be an ExitCodes")

    def matches(self, result: PodResult) -> bool:
        if self.outcomes and result.outcome not in self.outcomes:
            return False
        if self.reasons and not _reason_matches(result.reason, self.reasons):
            return False
        return self.exit_codes is None or self.exit_codes.matches(result)

    def __str__(self) -> str:
        if self.name:
            return self.name
        fields = []
        if self.outcomes:
            fields.append("outcome=" + ",".join(sorted(o.value for o in self.outcomes)))
        if self.reasons:
            fields.append("reason=" + ",".join(sorted(self.reasons)))
        if self.exit_codes is not None:
            fields.append(str(self.exit_codes))
        return f"{self.action.value}:{';'.join(fields) or 'any'}"

    # ------------------------------------------------------------------ reading rules
    @classmethod
    def parse(cls, text: str, *, action: FailureAction | str | None = None) -> FailureRule:
        """A rule from its text (see the module docstring); UsageError naming the field.

        ``action`` applies when the text does not start with one (``--retry-on``
        passes ``retry``); the text's own prefix wins.
        """
        if not isinstance(text, str) or not text.strip():
            raise UsageError(f"rule {text!r}: empty")
        body = text.strip()
        head, colon, rest = body.partition(":")
        if colon and "=" not in head:
            action, body = head.strip(), rest.strip()
        try:
            chosen = FailureAction(action or FailureAction.RETRY)
        except ValueError:
            choices = ", ".join(a.value for a in FailureAction)
            raise UsageError(f"rule {text!r}: action {action!r} is not one of {choices}") from None
        outcomes: set[str] = set()
        reasons: set[str] = set()
        exit_codes: ExitCodes | None = None
        for part in (p.strip() for p in body.split(";")):
            if part in ("", "any"):
                continue
            match = re.fullmatch(r"([a-z_-]+)\s*(!=|=)\s*(.*)", part)
            if match is None:
                raise UsageError(
                    f"rule {text!r}: {part!r} is not FIELD=VALUES "
                    "(fields: outcome, reason, exit-code)"
                )
            key, op, raw = match.group(1).replace("_", "-"), match.group(2), match.group(3)
            values = [v.strip() for v in raw.split(",") if v.strip()]
            if not values:
                raise UsageError(f"rule {text!r}: field {key!r} has no values")
            if key in ("outcome", "outcomes", "reason", "reasons") and op == "!=":
                raise UsageError(f"rule {text!r}: field {key!r} takes '=', not '!='")
            if key in ("outcome", "outcomes"):
                outcomes.update(values)
            elif key in ("reason", "reasons"):
                reasons.update(values)
            elif key in ("exit-code", "exit-codes"):
                if exit_codes is not None:
                    raise UsageError(f"rule {text!r}: field 'exit-code' given twice")
                exit_codes = _exit_codes(values, "NotIn" if op == "!=" else "In", f"rule {text!r}")
            else:
                raise UsageError(
                    f"rule {text!r}: unknown field {key!r} (fields: outcome, reason, exit-code)"
                )
        try:
            return cls(
                chosen,
                outcomes=frozenset(outcomes),  # type: ignore[arg-type]  # checked in __post_init__
                reasons=frozenset(reasons),
                exit_codes=exit_codes,
                name=None,
            )
        except UsageError as error:
            raise UsageError(f"rule {text!r}: {_without_rule_prefix(error)}") from None

    @classmethod
    def from_value(cls, value: object, *, where: str = "rule") -> FailureRule:
        """A rule from a batch file: its text, or a mapping.

        A mapping has ``action`` (default retry), ``outcome(s)``, ``reason(s)`` (a
        string or a list) and ``exit_codes`` (``{in: [75]}`` or ``{not_in: [1, 2]}``).
        """
        if isinstance(value, str):
            try:
                return cls.parse(value)
            except UsageError as error:
                raise UsageError(f"{where}: {error}") from None
        if not isinstance(value, Mapping):
            raise UsageError(
                f"{where}: a rule is a string or a mapping, got {type(value).__name__}"
            )
        unknown = set(value) - {"action", "outcome", "outcomes", "reason", "reasons", "exit_codes"}
        if unknown:
            raise UsageError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        exit_codes = None
        raw_codes = value.get("exit_codes")
        if raw_codes is not None:
            if not isinstance(raw_codes, Mapping) or len(raw_codes) != 1:
                raise UsageError(f"{where}.exit_codes: write {{in: [75]}} or {{not_in: [1, 2]}}")
            ((op, codes),) = raw_codes.items()
            operator = {"in": "In", "not_in": "NotIn", "In": "In", "NotIn": "NotIn"}.get(op)
            if operator is None:
                raise UsageError(f"{where}.exit_codes: {op!r} is not in or not_in")
            values = codes if isinstance(codes, list) else [codes]
            exit_codes = _exit_codes(values, operator, f"{where}.exit_codes")
        try:
            return cls(
                value.get("action", FailureAction.RETRY),
                outcomes=frozenset(_strings(value, "outcome", where)),  # type: ignore[arg-type]
                reasons=frozenset(_strings(value, "reason", where)),
                exit_codes=exit_codes,
            )
        except UsageError as error:
            raise UsageError(f"{where}: {_without_rule_prefix(error)}") from None


def _without_rule_prefix(error: UsageError) -> str:
    text = str(error)
    return text[len("rule: ") :] if text.startswith("rule: ") else text


def _strings(value: Mapping[str, Any], key: str, where: str) -> list[str]:
    found: list[str] = []
    for name in (key, key + "s"):
        item = value.get(name)
        if item is None:
            continue
        items = [item] if isinstance(item, str) else item
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise UsageError(f"{where}.{name}: a string or a list of strings")
        found += items
    return found


def _exit_codes(values: Iterable[object], operator: str, where: str) -> ExitCodes:
    codes: set[int] = set()
    for value in values:
        try:
            code = int(str(value))
        except ValueError:
            raise UsageError(f"{where}: exit code {value!r} is not a whole number") from None
        codes.add(code)
    try:
        return ExitCodes(operator, frozenset(codes))  # type: ignore[arg-type]
    except UsageError as error:
        raise UsageError(f"{where}: {error}") from None


def _reason_matches(reason: str | None, wanted: frozenset[str]) -> bool:
    if reason is None:
        return False
    if reason in wanted:
        return True
    return any(reason in _FAMILIES.get(name, ()) for name in wanted)


DEFAULT_RULES: Final = (
    FailureRule(
        FailureAction.RETRY, outcomes=frozenset({Outcome.DELETED}), name="retry:outcome=deleted"
    ),
    FailureRule(
        FailureAction.RETRY,
        reasons=_INFRASTRUCTURE_REASONS,
        name="retry:reason=Evicted,DisruptionTarget,NodeLost",
    ),
)
"""Retry what the infrastructure did to a pod: deleted by someone else (the eviction
API, a drain), evicted by its kubelet, disrupted, or on a lost node."""


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """Ordered rules, an attempt limit and the backoff between attempts.

    ``max_attempts`` counts every attempt of a task, the first included (3: two
    retries). The delay before retry *n* (1, 2, ...) is ``backoff * 2**(n-1)`` capped
    at ``max_backoff``, then spread by ``±jitter`` (a fraction) so that tasks evicted
    together do not come back together. ``rules`` are tried in order; the defaults
    (:data:`DEFAULT_RULES`) retry infrastructure failures only. To keep them after
    your own rules: ``FailurePolicy(rules=(*mine, *DEFAULT_RULES))``.
    """

    rules: tuple[FailureRule, ...] = DEFAULT_RULES
    max_attempts: int = 3
    backoff: float = 1.0
    max_backoff: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.rules, FailureRule) or not isinstance(self.rules, Iterable):
            raise UsageError("FailurePolicy.rules must be a sequence of FailureRule")
        rules = tuple(self.rules)
        for index, rule in enumerate(rules):
            if not isinstance(rule, FailureRule):
                raise UsageError(
                    f"FailurePolicy.rules[{index}] must be a FailureRule, got {type(rule).__name__}"
                )
        object.__setattr__(self, "rules", rules)
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise UsageError(
                f"FailurePolicy.max_attempts must be at least 1, got {self.max_attempts!r}"
            )
        for name in ("backoff", "max_backoff"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"FailurePolicy.{name} must be seconds >= 0, got {value!r}")
        if not isinstance(self.jitter, (int, float)) or not 0 <= self.jitter <= 1:
            raise UsageError(f"FailurePolicy.jitter must be within 0..1, got {self.jitter!r}")

    @classmethod
    def never(cls) -> FailurePolicy:
        """No retries at all: every failure is final (``--retries 0``)."""
        return cls(rules=(), max_attempts=1)


@dataclass(frozen=True, slots=True)
class Decision:
    """What follows one attempt: its ``action``, the rule that said so, and why."""

    action: FailureAction | None
    """None: the attempt succeeded or was cancelled (nothing to decide)."""
    rule: str | None
    why: str

    @property
    def retry(self) -> bool:
        return self.action is FailureAction.RETRY

    @property
    def final(self) -> bool:
        return self.action is not FailureAction.RETRY


def decide(policy: FailurePolicy, result: PodResult, *, attempts: int) -> Decision:
    """What follows ``result``, the attempt that made ``attempts`` attempts so far.

    Succeeded and cancelled attempts are final and match no rule. Otherwise the first
    rule that matches decides; none matching fails the task. A retry beyond
    ``policy.max_attempts`` fails the task instead (and says so).
    """
    if result.outcome in (Outcome.SUCCEEDED, Outcome.CANCELLED):
        return Decision(None, None, result.outcome.value)
    for rule in policy.rules:
        if not rule.matches(result):
            continue
        if rule.action is FailureAction.RETRY and attempts >= policy.max_attempts:
            return Decision(
                FailureAction.FAIL,
                str(rule),
                f"{rule} matched, but the task had its {policy.max_attempts} attempts",
            )
        return Decision(rule.action, str(rule), f"{rule} matched")
    return Decision(FailureAction.FAIL, None, "no rule matched")


def with_disruption(result: PodResult, pod: Mapping[str, Any] | None) -> PodResult:
    """A deleted attempt's result, naming the disruption that deleted it. Pure.

    The eviction API, preemption, the taint manager and pod GC mark a pod with a
    ``DisruptionTarget`` condition before deleting it; the run only sees the pod go
    (outcome deleted, reason DeletedExternally). When the pod's last version carries
    that condition, its reason (``EvictionByEvictionAPI``, ...) becomes the result's,
    so a rule on ``reason=DisruptionTarget`` matches it and the summary says why.
    """
    if result.outcome is not Outcome.DELETED or result.reason != Reason.DELETED_EXTERNALLY:
        return result
    status = (pod or {}).get("status") or {}
    for condition in status.get("conditions") or ():
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            why = condition.get("message") or condition.get("reason") or "a disruption"
            return dataclasses.replace(
                result,
                reason=condition.get("reason") or "Disrupted",
                message=f"the pod was deleted before it finished: {why}",
            )
    return result


def backoff_delay(policy: FailurePolicy, retry: int, *, random: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the second attempt).

    ``random`` is a number in [0, 1) (``random.random()``): pure, so tests pass it.
    """
    if retry < 1:
        raise UsageError(f"retry numbers start at 1, got {retry}")
    base = min(policy.max_backoff, policy.backoff * 2 ** min(retry - 1, 62))
    spread = 1 + policy.jitter * (2 * random - 1)
    return max(0.0, float(base * spread))


_HASH_CHARS: Final = 13


def attempt_pod_name(run_id: str, task_key: str, attempt: int) -> str:
    """The pod name of ``attempt`` (1, 2, ...) of a task: the same inputs, the same name.

    Attempt 1 is :func:`asyncpod.spec.deterministic_pod_name` (so batches started
    before retries existed resume unchanged); a later attempt adds ``a<n>`` to the
    readable part and hashes (run id, task key, attempt). A DNS-1123 label of at most
    63 characters.
    """
    if attempt < 1:
        raise UsageError(f"attempts start at 1, got {attempt}")
    if attempt == 1:
        return deterministic_pod_name(run_id, task_key)
    digest = (
        base64.b32encode(hashlib.sha256(f"{run_id}\x00{task_key}\x00{attempt}".encode()).digest())
        .decode("ascii")
        .lower()
        .rstrip("=")[:_HASH_CHARS]
    )
    suffix = f"a{attempt}"
    run = _slug(run_id)[:12].rstrip("-")
    room = 63 - _HASH_CHARS - 1 - len(suffix) - 1 - (len(run) + 1 if run else 0)
    task = _slug(task_key)[: max(room, 0)].rstrip("-")
    parts = [part for part in (run, task) if part] or ["asyncpod"]
    return "-".join([*parts, suffix, digest])


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
