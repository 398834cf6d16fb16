"""Which cluster of a fleet gets the next task, and what a lost cluster's attempts mean.

Why a module of its own: a batch spread over several clusters (:class:`asyncpod.Fleet`)
makes three decisions that must be right and are easy to get subtly wrong, so each
is a pure function of values, tested without a loop or a cluster:

- :func:`shares`: how ``max_in_flight`` splits between clusters by weight (largest
  remainders, every cluster at least one pod in flight);
- :func:`choose`: which cluster takes the next task: among the usable clusters with a
  free slot, the one with the most free capacity for its share (so clusters fill in
  proportion to their weights, and a cluster that finishes pods faster gets more);
- :func:`is_lost` and :func:`lost_result`: a cluster whose API server has not answered
  for its window is lost; an attempt it held becomes an error with reason
  ``ClusterUnreachable`` that the failure policy decides on like any other, because
  its pod may still be running there and running the task elsewhere may run it twice.

What it deliberately does not do: sleep, probe a server or create pods (the fleet
does), or move a task on its own authority (the failure policy says whether a lost
cluster's attempt may run again elsewhere).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Final

from asyncpod.errors import OptionError
from asyncpod.results import Outcome, PodResult, Reason

__all__ = [
    "CLUSTER_UNREACHABLE",
    "choose",
    "is_lost",
    "lost_result",
    "never_started",
    "shares",
    "unanswered_create",
]

CLUSTER_UNREACHABLE: Final = Reason.CLUSTER_UNREACHABLE
"""The reason of an attempt whose cluster was lost (``reason=ClusterUnreachable`` in a rule)."""


def shares(max_in_flight: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split ``max_in_flight`` between clusters in proportion to ``weights``.

    Largest remainders (Hamilton's method): each cluster gets the whole part of its
    exact share, then the slots left go to the largest fractions (ties: the order
    given). Every cluster gets at least one slot (taken from the largest share), so
    ``max_in_flight`` must be at least the number of clusters. The shares add up to
    ``max_in_flight``.
    """
    if not weights:
        raise OptionError("a fleet needs at least one cluster")
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise OptionError(f"the weight of cluster {name!r} must be at least 1, got {weight!r}")
    if max_in_flight < len(weights):
        raise OptionError(
            f"max_in_flight {max_in_flight} is less than the number of clusters "
            f"({len(weights)}): each needs at least one pod in flight"
        )
    names = list(weights)
    total = sum(weights.values())
    exact = {name: max_in_flight * weights[name] / total for name in names}
    given = {name: int(exact[name]) for name in names}
    left = max_in_flight - sum(given.values())
    by_fraction = sorted(names, key=lambda n: (-(exact[n] - int(exact[n])), names.index(n)))
    for name in by_fraction[:left]:
        given[name] += 1
    # A cluster whose share rounds to nothing gets one slot, from the largest share.
    for name in names:
        if given[name] == 0:
            richest = max(names, key=lambda n: (given[n], -names.index(n)))
            given[richest] -= 1
            given[name] = 1
    return given


def choose(
    free: Mapping[str, int], share: Mapping[str, int], *, usable: Collection[str]
) -> str | None:
    """The cluster that takes the next task, or None while none has a free slot.

    Among ``usable`` clusters with ``free[name] > 0``: the largest ``free / share``
    (the emptiest for its weight); ties go to the larger share, then the order of
    ``share``. Clusters not in ``usable`` (lost ones) never get a task.
    """
    best: str | None = None
    best_key: tuple[float, int, int] | None = None
    for position, name in enumerate(share):
        if name not in usable or free.get(name, 0) <= 0:
            continue
        key = (free[name] / share[name], share[name], -position)
        if best_key is None or key > best_key:
            best, best_key = name, key
    return best


def is_lost(*, last_answer: float, now: float, window: float) -> bool:
    """Whether a cluster whose API server last answered at ``last_answer`` is lost at
    ``now``: no answer for longer than ``window`` seconds (its create retry window)."""
    return now - last_answer > window


def lost_result(result: PodResult, *, cluster: str, window: float) -> PodResult:
    """The result of an attempt held by a lost cluster: an error naming the cluster.

    Succeeded and failed results that were known before the loss are kept as they
    are (the pod did finish); a cancelled attempt (the fleet cancels a lost cluster's
    runs) or a create that never got an answer becomes outcome error, reason
    ``ClusterUnreachable``, with the original message kept.
    """
    if result.outcome not in (Outcome.CANCELLED, Outcome.ERROR):
        return result
    if result.outcome is Outcome.ERROR and result.reason not in (
        Reason.CREATE_FAILED,
        CLUSTER_UNREACHABLE,
    ):
        return result
    if result.reason == CLUSTER_UNREACHABLE:
        return result
    return dataclasses.replace(
        result,
        outcome=Outcome.ERROR,
        reason=CLUSTER_UNREACHABLE,
        message=(
            f"cluster {cluster}: its API server did not answer for {window:g} s; "
            f"the pod may still be running there ({result.message or result.outcome.value})"
        ),
    )


_UNANSWERED: Final = frozenset(
    {"ApiConnectionError", "ApiTimeoutError", "ServerUnreachableError", "WatchStalledError"}
)


def unanswered_create(result: PodResult) -> bool:
    """Whether ``result`` is a create that failed for want of an answer (the create
    retry window ran out on a refused or cut connection, or a timeout), not one the
    server refused: the sign of a cluster that may be lost."""
    if result.outcome is not Outcome.ERROR or result.reason != Reason.CREATE_FAILED:
        return False
    kind = (result.message or "").partition(":")[0]
    return kind in _UNANSWERED


def never_started(result: PodResult) -> bool:
    """Whether a launcher's cancelled ``result`` is of an attempt stopped before its
    run existed (no create was sent): moving that task makes no second pod."""
    return (
        result.outcome is Outcome.CANCELLED
        and result.uid is None
        and (result.message or "").startswith("not started:")
    )
