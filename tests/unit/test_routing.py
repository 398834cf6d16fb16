"""The fleet's routing decisions: shares by weight, the next cluster, a lost cluster."""

from __future__ import annotations

import pytest

from asyncpod import Outcome, PodResult, Reason
from asyncpod.core.failurepolicy import DEFAULT_RULES, FailurePolicy, FailureRule, decide
from asyncpod.core.routing import (
    CLUSTER_UNREACHABLE,
    choose,
    is_lost,
    lost_result,
    never_started,
    shares,
    unanswered_create,
)
from asyncpod.errors import OptionError


def result(outcome: Outcome, reason: str | None = None, message: str | None = None) -> PodResult:
    return PodResult("ns", "pod", None, outcome=outcome, reason=reason, message=message)


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, {"a": 1}, {"a": 100}),
        (100, {"a": 3, "b": 1}, {"a": 75, "b": 25}),
        (10, {"a": 1, "b": 1, "c": 1}, {"a": 4, "b": 3, "c": 3}),
        (2, {"a": 100, "b": 1}, {"a": 1, "b": 1}),
        (7, {"a": 2, "b": 1}, {"a": 5, "b": 2}),
    ],
)
def test_shares_add_up_follow_the_weights_and_give_each_at_least_one(
    total: int, weights: dict[str, int], expected: dict[str, int]
) -> None:
    got = shares(total, weights)
    assert got == expected
    assert sum(got.values()) == total


@pytest.mark.parametrize(
    ("total", "weights", "named"),
    [
        (1, {"a": 1, "b": 1}, "number of clusters"),
        (10, {"a": 0}, "'a'"),
        (10, {"a": 1, "b": -2}, "'b'"),
        (10, {}, "at least one cluster"),
    ],
)
def test_bad_shares_name_what_is_wrong(total: int, weights: dict[str, int], named: str) -> None:
    with pytest.raises(OptionError, match=named):
        shares(total, weights)


def test_choose_takes_the_emptiest_cluster_for_its_share() -> None:
    share = {"a": 3, "b": 1}
    assert choose({"a": 3, "b": 1}, share, usable={"a", "b"}) == "a"  # ties: larger share
    assert choose({"a": 1, "b": 1}, share, usable={"a", "b"}) == "b"  # 1/1 beats 1/3
    assert choose({"a": 0, "b": 1}, share, usable={"a", "b"}) == "b"
    assert choose({"a": 0, "b": 0}, share, usable={"a", "b"}) is None
    assert choose({"a": 3, "b": 1}, share, usable={"b"}) == "b"  # a is lost
    assert choose({"a": 3, "b": 0}, share, usable={"b"}) is None


def test_filling_from_empty_follows_the_weights() -> None:
    share = {"a": 3, "b": 1}
    free = dict(share)
    order = []
    while (name := choose(free, share, usable=set(share))) is not None:
        free[name] -= 1
        order.append(name)
    assert sorted(order) == ["a", "a", "a", "b"]


def test_is_lost_after_its_window_without_an_answer() -> None:
    assert not is_lost(last_answer=100.0, now=150.0, window=60.0)
    assert not is_lost(last_answer=100.0, now=160.0, window=60.0)
    assert is_lost(last_answer=100.0, now=160.5, window=60.0)


def test_a_lost_clusters_cancelled_or_unanswered_attempt_becomes_cluster_unreachable() -> None:
    cancelled = result(Outcome.CANCELLED, Reason.CANCELLED, "cancelled: the batch stopped")
    lost = lost_result(cancelled, cluster="east", window=60)
    assert lost.outcome is Outcome.ERROR
    assert lost.reason == CLUSTER_UNREACHABLE == "ClusterUnreachable"
    assert "east" in (lost.message or "")
    assert "may still be running" in (lost.message or "")
    create = result(Outcome.ERROR, Reason.CREATE_FAILED, "ApiConnectionError: refused")
    assert lost_result(create, cluster="east", window=60).reason == CLUSTER_UNREACHABLE
    assert lost_result(lost, cluster="east", window=60) == lost


@pytest.mark.parametrize(
    "kept",
    [
        result(Outcome.SUCCEEDED, Reason.COMPLETED),
        result(Outcome.FAILED, Reason.ERROR),
        result(Outcome.DELETED, Reason.DELETED_EXTERNALLY),
        result(Outcome.ERROR, Reason.CREATE_FAILED.replace("Create", "Other")),
    ],
)
def test_results_known_before_the_loss_are_kept(kept: PodResult) -> None:
    assert lost_result(kept, cluster="east", window=60) is kept


def test_the_default_policy_does_not_move_a_lost_clusters_task_a_rule_does() -> None:
    lost = lost_result(result(Outcome.CANCELLED, Reason.CANCELLED), cluster="east", window=60)
    assert not decide(FailurePolicy(), lost, attempts=1).retry
    rule = FailureRule.parse("reason=ClusterUnreachable")
    assert decide(FailurePolicy(rules=(rule, *DEFAULT_RULES)), lost, attempts=1).retry


def test_unanswered_creates_and_never_started_attempts() -> None:
    assert unanswered_create(
        result(Outcome.ERROR, Reason.CREATE_FAILED, "ApiConnectionError: connection refused")
    )
    assert unanswered_create(result(Outcome.ERROR, Reason.CREATE_FAILED, "ApiTimeoutError: x"))
    assert not unanswered_create(
        result(Outcome.ERROR, Reason.CREATE_FAILED, "InvalidRequestError: bad")
    )
    assert not unanswered_create(result(Outcome.FAILED, Reason.ERROR, "ApiConnectionError: x"))
    assert never_started(
        result(Outcome.CANCELLED, Reason.CANCELLED, "not started: the batch stopped (x)")
    )
    assert not never_started(
        result(Outcome.CANCELLED, Reason.CANCELLED, "cancelled: the batch stopped (x)")
    )
