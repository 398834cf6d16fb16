"""AirflowStats: the metrics hooks as Airflow stat names, bounded values only."""

from __future__ import annotations

from typing import Any

from asyncpod.airflow.stats import AirflowStats, stat_names_of_run
from asyncpod.errors import ApiError
from asyncpod.results import Outcome, PodResult, Reason


class Recorder:
    """Stands in for airflow.sdk.observability.stats: the calls, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def incr(self, stat: str, count: int = 1) -> None:
        self.calls.append(("incr", stat, count))

    def gauge(self, stat: str, value: float) -> None:
        self.calls.append(("gauge", stat, value))


def _result(outcome: Outcome) -> PodResult:
    return PodResult("ns", "pod-a", "uid-a", outcome=outcome, reason=Reason.CANCELLED)


def test_a_run_is_followed_then_counted_by_its_outcome() -> None:
    recorder = Recorder()
    stats = AirflowStats(recorder)
    stats.run_started()
    stats.run_started()
    stats.run_ended(_result(Outcome.SUCCEEDED), None, 0.0)
    stats.run_ended(None, ApiError("boom", status=500), 0.0)
    assert recorder.calls == [
        ("gauge", "asyncpod.triggerer.pods_followed", 1),
        ("gauge", "asyncpod.triggerer.pods_followed", 2),
        ("gauge", "asyncpod.triggerer.pods_followed", 1),
        ("incr", "asyncpod.runs.succeeded", 1),
        ("gauge", "asyncpod.triggerer.pods_followed", 0),
        ("incr", "asyncpod.runs.error", 1),
    ]


def test_requests_are_counted_by_verb_never_by_pod() -> None:
    recorder = Recorder()
    stats = AirflowStats(recorder)
    stats.api_request("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, 200)
    stats.api_request("GET", "/api/v1/namespaces/ns/pods", None, 200)
    stats.api_request("GET", "/api/v1/namespaces/ns/pods/pod-a", None, 200)
    stats.api_request("DELETE", "/api/v1/namespaces/ns/pods/pod-a", None, 200)
    stats.api_throttled()
    stats.watch_reconnect()
    stats.watch_relist()
    names = [stat for _, stat, _ in recorder.calls]
    assert names == [
        "asyncpod.api_requests.WATCH",
        "asyncpod.api_requests.LIST",
        "asyncpod.api_requests.GET",
        "asyncpod.api_requests.DELETE",
        "asyncpod.api_throttled",
        "asyncpod.watch.reconnects",
        "asyncpod.watch.relists",
    ]
    assert not any("pod-a" in name or "ns" in name.split(".") for name in names)


def test_the_end_of_a_run_without_a_result() -> None:
    assert stat_names_of_run(None, None) == "asyncpod.runs.cancelled"
    assert stat_names_of_run(_result(Outcome.DELETED), None) == "asyncpod.runs.deleted"


def test_the_followed_gauge_never_goes_negative() -> None:
    recorder = Recorder()
    AirflowStats(recorder).run_ended(None, None, 0.0)
    assert recorder.calls[0] == ("gauge", "asyncpod.triggerer.pods_followed", 0)
