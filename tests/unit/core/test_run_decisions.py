"""The run's decisions that live apart from its I/O: a deletion, a failed request,
the one retry loop, and when a container's log can be read.

Pure functions tested alone (``policy.judge_deletion``, ``policy.may_retry``,
``policy.created_nothing``,
``runlogs.container_*``), and :func:`retrying.until_answered` with a stand-in call:
which failures it retries, until when, and that it raises the last one.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from asyncpod.core.policy import Verdict, created_nothing, judge_deletion, may_retry
from asyncpod.core.retrying import backoff, until_answered
from asyncpod.core.runlogs import container_finished, container_names, container_started
from asyncpod.errors import (
    ApiConnectionError,
    ApiTimeoutError,
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    OptionError,
    ServerError,
    ServerUnreachableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from asyncpod.results import Outcome
from tests.unit.core.test_policy import T0, pod


def test_a_pod_deleted_after_it_finished_ends_as_its_containers_say() -> None:
    finished = pod("Failed", node="n", terminated=3)
    assert judge_deletion(finished, cancel_requested=False) == Verdict(None)
    assert judge_deletion(finished, cancel_requested=True) == Verdict(None)


def test_a_pod_deleted_while_running_is_deleted_unless_this_run_asked_for_it() -> None:
    running = pod("Running", node="n", running_since=T0)
    assert judge_deletion(running, cancel_requested=False) == Verdict(Outcome.DELETED)
    assert judge_deletion(running, cancel_requested=True) == Verdict(Outcome.CANCELLED)


def _forbidden() -> ForbiddenError:
    return ForbiddenError("no", status=403, reason="Forbidden")


@pytest.mark.parametrize(
    ("error", "restarted", "retried"),
    [
        (ApiConnectionError("refused"), False, True),  # an outage: ride it out
        (ServerError("503", status=503, reason="ServiceUnavailable"), False, True),
        (_forbidden(), False, False),  # a missing permission: say so at once
        (_forbidden(), True, True),  # a restarted server's RBAC not yet synced
        (UnauthorizedError("no", status=401, reason="Unauthorized"), True, True),
        (ConflictError("taken", status=409, reason="AlreadyExists"), True, False),
        (NotFoundError("gone", status=404, reason="NotFound"), True, False),
        (ServerUnreachableError("typo", server="https://s", source="K"), True, False),
    ],
)
def test_may_retry_within_the_window(error: Any, restarted: bool, retried: bool) -> None:
    assert may_retry(error, restarted=restarted, past_deadline=False) is retried
    assert may_retry(error, restarted=restarted, past_deadline=True) is False


@pytest.mark.parametrize(
    ("error", "nothing"),
    [
        # Refusals: the namespace terminating, a quota, a permission, a bad spec, 429.
        (_forbidden(), True),
        (NotFoundError("no namespace", status=404, reason="NotFound"), True),
        (InvalidRequestError("bad", status=422, reason="Invalid"), True),
        (TooManyRequestsError("slow down", status=429, reason="TooManyRequests"), True),
        (ServerUnreachableError("typo", server="https://s", source="K"), True),  # never sent
        # A pod exists, or may: the answer was lost, or the server failed midway.
        (ConflictError("taken", status=409, reason="AlreadyExists"), False),
        (ServerError("etcd timed out", status=504, reason="Timeout"), False),
        (ApiConnectionError("cut"), False),
        (ApiTimeoutError("no answer in 60 s"), False),
    ],
)
def test_a_create_refused_by_an_answer_made_nothing_a_lost_answer_may_have(
    error: Any, nothing: bool
) -> None:
    assert created_nothing(error) is nothing


def test_backoff_doubles_to_a_cap() -> None:
    assert [backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


class Calls:
    """A request that fails with the given errors, then answers ``answer``."""

    def __init__(self, *errors: Exception, answer: str = "ok") -> None:
        self.errors = list(errors)
        self.answer = answer
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


async def test_until_answered_rides_through_transient_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("asyncpod.core.retrying.anyio.sleep", sleep)
    call = Calls(ApiConnectionError("refused"), ApiConnectionError("refused"))

    answer = await until_answered(
        call, deadline=time.monotonic() + 60, restarted=lambda: False, what="create of ns/p"
    )

    assert (answer, call.count) == ("ok", 3)
    assert slept == [backoff(1), backoff(2)]


async def test_until_answered_raises_an_answer_at_once_and_the_last_failure_at_the_deadline() -> (
    None
):
    refused = Calls(_forbidden())
    with pytest.raises(ForbiddenError):
        await until_answered(
            refused, deadline=time.monotonic() + 60, restarted=lambda: False, what="x"
        )
    assert refused.count == 1

    late = Calls(ApiConnectionError("first"), ApiConnectionError("last"))
    with pytest.raises(ApiConnectionError, match="first"):
        # Past its deadline already: the first failure is the last.
        await until_answered(late, deadline=time.monotonic() - 1, restarted=lambda: False, what="x")
    assert late.count == 1


def test_a_container_has_a_log_once_it_runs_or_ran() -> None:
    assert not container_started(pod("Pending"), "main")
    assert not container_started(None, "main")
    assert container_started(pod("Running", node="n", running_since=T0), "main")
    assert container_started(pod("Failed", node="n", terminated=1), "main")
    assert not container_started(pod("Running", node="n", running_since=T0), "other")


def test_a_container_is_finished_when_it_terminated_or_its_pod_did() -> None:
    assert not container_finished(pod("Running", node="n", running_since=T0), "main")
    assert container_finished(pod("Running", node="n", terminated=0), "main")
    assert container_finished(pod("Failed", node="n"), "never-started")


def test_container_names_keeps_init_containers_apart_and_names_unknown_ones() -> None:
    two = {
        "spec": {
            "initContainers": [{"name": "setup"}],
            "containers": [{"name": "main"}, {"name": "side"}],
        }
    }
    assert container_names(two, None, ref="ns/p") == (["setup"], ["main", "side"])
    assert container_names(two, ["side"], ref="ns/p") == ([], ["side"])
    with pytest.raises(OptionError, match=r"pod ns/p has no container \['nope'\]"):
        container_names(two, ["main", "nope"], ref="ns/p")
