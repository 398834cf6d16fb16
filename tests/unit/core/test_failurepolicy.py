"""The failure policy's decisions, as pure functions: which rule matches, the backoff,
the next attempt's pod name, and rules read from text and from a batch file."""

from __future__ import annotations

import pytest

from asyncpod.core.failurepolicy import (
    DEFAULT_RULES,
    ExitCodes,
    FailureAction,
    FailurePolicy,
    FailureRule,
    attempt_pod_name,
    backoff_delay,
    decide,
    with_disruption,
)
from asyncpod.errors import UsageError
from asyncpod.results import ContainerKind, ContainerResult, Outcome, PodResult, Reason
from asyncpod.spec import deterministic_pod_name
from asyncpod.spec._naming import dns_label_problem


def result(
    outcome: Outcome = Outcome.FAILED,
    reason: str | None = Reason.ERROR,
    exit_code: int | None = 1,
    *,
    init_exit_code: int | None = None,
) -> PodResult:
    containers = []
    if init_exit_code is not None:
        containers.append(ContainerResult("init", ContainerKind.INIT, exit_code=init_exit_code))
    if exit_code is not None:
        containers.append(ContainerResult("main", ContainerKind.MAIN, exit_code=exit_code))
    return PodResult(
        "ns", "pod", "uid", outcome=outcome, reason=reason, containers=tuple(containers)
    )


EVICTED = result(Outcome.FAILED, Reason.EVICTED, 137)
DELETED = result(Outcome.DELETED, Reason.DELETED_EXTERNALLY, None)
PREEMPTED = result(Outcome.FAILED, "PreemptionByScheduler", None)
EXIT_1 = result(Outcome.FAILED, Reason.ERROR, 1)
EXIT_75 = result(Outcome.FAILED, Reason.ERROR, 75)
OOM = result(Outcome.FAILED, Reason.OOM_KILLED, 137)
PULL = result(Outcome.FAILED, Reason.ERR_IMAGE_PULL, None)


# ---------------------------------------------------------------------- the default
@pytest.mark.parametrize(
    "failed", [EVICTED, DELETED, PREEMPTED], ids=["evicted", "deleted", "disrupted"]
)
def test_the_default_retries_what_the_infrastructure_did(failed: PodResult) -> None:
    decision = decide(FailurePolicy(), failed, attempts=1)
    assert decision.action is FailureAction.RETRY
    assert not decision.final


@pytest.mark.parametrize(
    "failed",
    [EXIT_1, EXIT_75, OOM, PULL, result(Outcome.TIMED_OUT, Reason.DEADLINE_EXCEEDED, None)],
    ids=["exit-1", "exit-75", "oomkilled", "image-pull", "deadline"],
)
def test_the_default_never_retries_an_application_failure(failed: PodResult) -> None:
    decision = decide(FailurePolicy(), failed, attempts=1)
    assert decision.action is FailureAction.FAIL
    assert decision.why == "no rule matched"


def test_success_and_cancellation_are_final_and_match_no_rule() -> None:
    catch_all = FailurePolicy(rules=(FailureRule(FailureAction.RETRY),))
    for outcome in (Outcome.SUCCEEDED, Outcome.CANCELLED):
        decision = decide(catch_all, result(outcome, None, 0), attempts=1)
        assert decision.action is None
        assert decision.final


def test_a_retry_past_the_attempt_limit_fails_the_task_and_says_so() -> None:
    policy = FailurePolicy(max_attempts=3)
    assert decide(policy, EVICTED, attempts=2).retry
    last = decide(policy, EVICTED, attempts=3)
    assert last.action is FailureAction.FAIL
    assert "had its 3 attempts" in last.why


def test_never_retries_nothing() -> None:
    assert decide(FailurePolicy.never(), EVICTED, attempts=1).action is FailureAction.FAIL


# ---------------------------------------------------------------------- rules
def test_rules_are_tried_in_order_the_first_match_decides() -> None:
    policy = FailurePolicy(
        rules=(
            FailureRule.parse("fail:reason=OOMKilled"),
            FailureRule.parse("retry:exit-code=75,137"),
            *DEFAULT_RULES,
        )
    )
    oom = decide(policy, OOM, attempts=1)
    assert oom.action is FailureAction.FAIL
    assert oom.rule == "fail:reason=OOMKilled"
    assert decide(policy, EXIT_75, attempts=1).retry
    assert decide(policy, EXIT_1, attempts=1).action is FailureAction.FAIL
    assert decide(policy, EVICTED, attempts=1).retry  # 137 too, but the rule said retry


def test_exit_codes_in_and_not_in_look_at_every_non_zero_container() -> None:
    not_1 = ExitCodes("NotIn", frozenset({1}))
    assert not_1.matches(EXIT_75)
    assert not not_1.matches(EXIT_1)
    assert not not_1.matches(DELETED)  # no exit code: neither In nor NotIn
    init_failed = result(exit_code=None, init_exit_code=75)
    assert ExitCodes("In", frozenset({75})).matches(init_failed)


def test_every_field_of_a_rule_must_match() -> None:
    rule = FailureRule.parse("reason=Error;exit-code=75")
    assert rule.matches(EXIT_75)
    assert not rule.matches(EXIT_1)
    assert not rule.matches(result(Outcome.FAILED, Reason.OOM_KILLED, 75))


def test_reason_families_match_their_members() -> None:
    assert FailureRule.parse("reason=DisruptionTarget").matches(PREEMPTED)
    assert FailureRule.parse("reason=ImagePullBackOff").matches(PULL)
    assert FailureRule.parse("reason=NodeLost").matches(result(Outcome.FAILED, "NodeLost", None))


def test_stop_is_an_action() -> None:
    decision = decide(
        FailurePolicy(rules=(FailureRule.parse("stop:reason=OOMKilled"),)), OOM, attempts=1
    )
    assert decision.action is FailureAction.STOP
    assert decision.final


def test_a_rule_reads_back_as_its_text() -> None:
    assert str(FailureRule.parse("exit-code!=2,1")) == "retry:exit-code!=1,2"
    assert str(FailureRule.parse("fail:outcome=timed_out;reason=DeadlineExceeded")) == (
        "fail:outcome=timed_out;reason=DeadlineExceeded"
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("reason=Evictd", "reason 'Evictd' is not a reason asyncpod reports"),
        ("retry:exit-code=abc", "exit code 'abc' is not a whole number"),
        ("exit-code=0", "0 cannot be used with In"),
        ("exit-code=300", "300 is not an exit code"),
        (
            "outcome=succeeded",
            "outcome 'succeeded' is not one of failed, timed_out, deleted, error",
        ),
        ("reboot:reason=Evicted", "action 'reboot' is not one of retry, fail, stop"),
        ("colour=red", "unknown field 'colour'"),
        ("reason", "'reason' is not FIELD=VALUES"),
        ("reason=", "field 'reason' has no values"),
        ("reason!=Evicted", "field 'reason' takes '=', not '!='"),
        ("", "empty"),
    ],
)
def test_a_bad_rule_is_a_usage_error_naming_the_rule_and_field(text: str, named: str) -> None:
    with pytest.raises(UsageError) as caught:
        FailureRule.parse(text)
    assert f"rule {text!r}" in str(caught.value)
    assert named in str(caught.value)


def test_rules_from_a_batch_file_mapping_or_text() -> None:
    rule = FailureRule.from_value(
        {"action": "retry", "reason": ["Error"], "exit_codes": {"in": [75]}}, where="retry_on[0]"
    )
    assert rule == FailureRule.parse("retry:reason=Error;exit-code=75")
    assert FailureRule.from_value("fail:reason=OOMKilled") == FailureRule.parse(
        "fail:reason=OOMKilled"
    )
    with pytest.raises(UsageError, match=r"retry_on\[1\]: unknown field 'reasonz'"):
        FailureRule.from_value({"reasonz": "Evicted"}, where="retry_on[1]")
    with pytest.raises(
        UsageError, match=r"retry_on\[2\]\.exit_codes: 'between' is not in or not_in"
    ):
        FailureRule.from_value({"exit_codes": {"between": [1, 2]}}, where="retry_on[2]")
    with pytest.raises(UsageError, match=r"retry_on\[3\]: reason 'Evictd'"):
        FailureRule.from_value({"reason": "Evictd"}, where="retry_on[3]")


def test_a_bad_policy_is_a_usage_error_naming_the_field() -> None:
    with pytest.raises(UsageError, match="max_attempts"):
        FailurePolicy(max_attempts=0)
    with pytest.raises(UsageError, match="jitter"):
        FailurePolicy(jitter=2)
    with pytest.raises(UsageError, match=r"rules\[0\]"):
        FailurePolicy(rules=("reason=Evicted",))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="reason 'Evictd'"):
        FailureRule(FailureAction.RETRY, reasons=frozenset({"Evictd"}))


# ---------------------------------------------------------------------- backoff
def test_backoff_doubles_up_to_its_cap_and_jitter_spreads_it_both_ways() -> None:
    policy = FailurePolicy(backoff=1.0, max_backoff=10.0, jitter=0.5)
    middle = [backoff_delay(policy, n, random=0.5) for n in range(1, 7)]
    assert middle == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(policy, 2, random=0.0) == 1.0
    assert backoff_delay(policy, 2, random=0.999999) == pytest.approx(3.0, abs=1e-4)
    assert backoff_delay(FailurePolicy(jitter=0), 1, random=0.9) == 1.0
    assert backoff_delay(policy, 10_000, random=0.5) == 10.0  # no overflow


# ---------------------------------------------------------------------- names
def test_attempt_names_are_deterministic_distinct_and_dns_labels() -> None:
    assert attempt_pod_name("run-1", "shard-7", 1) == deterministic_pod_name("run-1", "shard-7")
    second = attempt_pod_name("run-1", "shard-7", 2)
    assert second == attempt_pod_name("run-1", "shard-7", 2)
    assert "-a2-" in second
    names = {attempt_pod_name("run-1", key, n) for key in ("x", "x-a2", "y") for n in (1, 2, 3)}
    assert len(names) == 9
    long = attempt_pod_name("a-very-long-run-identifier", "k" * 200 + "/ü", 12)
    assert len(long) <= 63
    assert dns_label_problem(long) is None
    assert attempt_pod_name("r", "x", 3) != attempt_pod_name("s", "x", 3)


# ---------------------------------------------------------------------- disruptions
def test_a_deleted_pod_with_a_disruption_target_condition_is_named_by_it() -> None:
    evicted = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "EvictionByEvictionAPI",
                    "message": "Eviction API: evicting",
                },
            ]
        }
    }
    named = with_disruption(DELETED, evicted)
    assert (named.outcome, named.reason) == (Outcome.DELETED, "EvictionByEvictionAPI")
    assert named.message == "the pod was deleted before it finished: Eviction API: evicting"
    assert FailureRule.parse("reason=DisruptionTarget").matches(named)
    assert decide(FailurePolicy(), named, attempts=1).retry
    assert with_disruption(DELETED, {"status": {"conditions": []}}) is DELETED
    assert with_disruption(DELETED, None) is DELETED
    assert with_disruption(EXIT_1, evicted) is EXIT_1  # only deletions
