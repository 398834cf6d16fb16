"""What the triggerer's shared sessions do, reported through Airflow's own metrics.

Why it exists: a deployment already ships Airflow's metrics somewhere (StatsD, or
OpenTelemetry, as ``[metrics]`` in its configuration says) and looks at them there;
Airflow counts its triggers (``triggers.running``, ``triggers.blocked_main_thread``)
but nothing of the pods behind them. :class:`AirflowStats` takes the hooks of
:mod:`asyncpod.metrics` (the same calls the Prometheus :class:`asyncpod.Metrics`
answers) and sends them to ``airflow.sdk.observability.stats``, under the ``asyncpod.``
prefix (Airflow adds its own ``[metrics] statsd_prefix``, ``airflow.`` by default):

* ``asyncpod.triggerer.pods_followed`` (gauge): runs the triggerer's sessions follow;
* ``asyncpod.runs.<outcome>`` (counter): runs ended, by outcome
  (``succeeded``, ``failed``, ``deleted``, ``timed_out``, ``cancelled``, ``error``);
* ``asyncpod.api_requests.<verb>`` (counter): API requests (``GET``, ``LIST``,
  ``WATCH``, ``POST``, ``DELETE``, ...);
* ``asyncpod.api_throttled`` (counter): 429 answers;
* ``asyncpod.watch.reconnects`` and ``asyncpod.watch.relists`` (counters).

Names carry only bounded values (outcomes and verbs), never a pod or task name.

What it deliberately does not do: histograms (StatsD timers per pod phase would be one
packet per pod and phase; the Prometheus metrics have them), or anything when Airflow's
metrics are off (Airflow's own no-op logger answers then).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from asyncpod.metrics import MetricsOff, request_labels
from asyncpod.results import PodResult

__all__ = ["PREFIX", "AirflowStats", "stat_names_of_run", "triggerer_stats"]

PREFIX: Final = "asyncpod"


def stat_names_of_run(result: PodResult | None, error: BaseException | None) -> str:
    """The counter a run's end increments: ``asyncpod.runs.<outcome>``."""
    if result is not None:
        outcome = result.outcome.value
    else:
        outcome = "error" if error is not None else "cancelled"
    return f"{PREFIX}.runs.{outcome}"


def _airflow_stats() -> Any:
    """Airflow's stats: the SDK's module where it exists, else ``airflow.stats.Stats``."""
    try:
        from airflow.sdk.observability import stats
    except ImportError:  # Airflow before the SDK's observability package
        from airflow.stats import Stats

        return Stats
    # 3.3's module has the functions; 3.2's only re-exports the Stats class that has them.
    return stats if hasattr(stats, "incr") else stats.Stats


@functools.cache
def triggerer_stats() -> AirflowStats:
    """The one :class:`AirflowStats` of this process: every shared session reports
    through it, so ``pods_followed`` counts the whole triggerer."""
    return AirflowStats()


class AirflowStats(MetricsOff):
    """The metrics hooks, sent to Airflow's ``Stats`` (see the module doc)."""

    __slots__ = ("_followed", "_stats")

    def __init__(self, stats: Any = None) -> None:
        self._stats = stats if stats is not None else _airflow_stats()
        self._followed = 0

    def api_request(
        self, method: str, path: str, query: Mapping[str, str] | None, status: int
    ) -> None:
        verb = request_labels(method, path, query)[0]
        self._stats.incr(f"{PREFIX}.api_requests.{verb}")

    def api_throttled(self) -> None:
        self._stats.incr(f"{PREFIX}.api_throttled")

    def watch_reconnect(self) -> None:
        self._stats.incr(f"{PREFIX}.watch.reconnects")

    def watch_relist(self) -> None:
        self._stats.incr(f"{PREFIX}.watch.relists")

    def run_started(self) -> None:
        self._followed += 1
        self._stats.gauge(f"{PREFIX}.triggerer.pods_followed", self._followed)

    def run_ended(self, result: PodResult | None, error: BaseException | None, seen: float) -> None:
        self._followed = max(0, self._followed - 1)
        self._stats.gauge(f"{PREFIX}.triggerer.pods_followed", self._followed)
        self._stats.incr(stat_names_of_run(result, error))
