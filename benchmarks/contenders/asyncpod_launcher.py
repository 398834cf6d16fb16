"""asyncpod's launcher: every pod through one ``Launcher``, all in flight at once.

``asyncpod.connect(kubeconfig, qps=None)`` (no client-side rate limit, like every
peer), then ``Launcher(cluster, max_in_flight=N).as_completed(specs)``: the way a
batch is meant to be run. All pods of the namespace are followed by the session's one
shared watch. The awaiting code learns of a pod's end when ``as_completed`` yields its
result, which is after asyncpod has deleted the pod, so ``seen`` and ``done`` are the
same moment here (for the peers ``seen`` comes before their delete).

With ``cfg.metrics`` the session counts with an :class:`asyncpod.Metrics` on a registry
of its own, scraped once at the end (its CPU is reported apart): the cost of metrics
on (:mod:`benchmarks.metrics_cost`).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from benchmarks.contenders import gc_policy
from benchmarks.workload import ChildConfig, PodTimes

__all__ = ["run"]


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    import asyncpod
    from asyncpod import Launcher, PodSpec

    by_key = {t.name: t for t in times}
    # Named like every other contender's pods, so the runner's watch can match them.
    specs = (PodSpec(**cfg.pod["spec"], name=t.name, task_key=t.name) for t in times)
    extra: dict[str, Any] = {}
    metrics = None
    if cfg.metrics:
        from prometheus_client import CollectorRegistry

        metrics = asyncpod.Metrics(CollectorRegistry())
    async with asyncpod.connect(
        cfg.kubeconfig, namespace=cfg.namespace, qps=None, metrics=metrics
    ) as cluster:
        launcher = Launcher(cluster, max_in_flight=cfg.max_in_flight or cfg.pods, run_id="bench")
        with gc_policy(cfg.gc_policy):
            async for result in launcher.as_completed(specs):
                now = time.time()
                t = by_key[result.task_key or ""]
                if t.done is not None:
                    t.error = "a second result for the same task key"
                    continue
                t.seen = t.done = now
                t.phase = result.phase
                if result.outcome.value != "succeeded" or result.exit_code != 0:
                    t.error = f"{result.outcome.value}: {result.reason} {result.message or ''}"[
                        :200
                    ]
        stats = cluster.statistics()
        extra["informers"] = [asdict(i) for i in stats.informers]
        extra["client_requests_sent"] = dict(stats.client.requests_sent)
        extra["client_retries"] = stats.client.retries
        extra["client_throttled_429"] = stats.client.throttled
    if metrics is not None:
        extra["metrics"] = scrape_once(metrics)
    return extra


def scrape_once(metrics: Any) -> dict[str, Any]:
    """One scrape of ``metrics``: its CPU, its size, and the totals it shows."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    cpu = time.process_time()
    text = generate_latest(metrics.registry).decode()
    cpu = time.process_time() - cpu
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return {"scrape_cpu_s": cpu, "scrape_bytes": len(text), "totals": totals}
