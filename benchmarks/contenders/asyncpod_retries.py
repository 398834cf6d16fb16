"""asyncpod's launcher with retries: ``Launcher(..., retry=policy).attempts(specs)``.

The same session and launcher as :mod:`benchmarks.contenders.asyncpod_launcher`
(``qps=None``, one shared watch, ``max_in_flight``, the batch command's GC policy), but
under the failure policy of ``asyncpod batch --retries N``
(:func:`asyncpod.cli.batch.failure_policy`: the default rules, which retry evictions,
disruptions and external deletions, N + 1 attempts, 1 s backoff doubling with ±50 %
jitter), or none (``cfg.retries`` ``None``: the launcher's default, no retry), and
iterating :meth:`~asyncpod.Launcher.attempts` so that every attempt is counted, not
only the final ones. Each task's final attempt fills its :class:`PodTimes` (an error if
it did not succeed with exit code 0, or if a task had two final attempts); the extras
say how many attempts each task took and what the non-final ones were.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from benchmarks.contenders import gc_policy
from benchmarks.workload import ChildConfig, PodTimes

__all__ = ["run"]


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    import asyncpod
    from asyncpod import Launcher, PodSpec
    from asyncpod.cli.batch import failure_policy

    by_key = {t.name: t for t in times}
    # Named like every other contender's pods (a retry's pod is "<name>-a<n>"), so the
    # runner's evictor knows each task's first pod by its task key.
    specs = (PodSpec(**cfg.pod["spec"], name=t.name, task_key=t.name) for t in times)
    policy = None if cfg.retries is None else failure_policy(cfg.retries, ())
    attempts_of: Counter[str] = Counter()
    not_final: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"policy": None if policy is None else repr(policy)}
    async with asyncpod.connect(cfg.kubeconfig, namespace=cfg.namespace, qps=None) as cluster:
        launcher = Launcher(
            cluster, max_in_flight=cfg.max_in_flight or cfg.pods, run_id="bench", retry=policy
        )
        with gc_policy(cfg.gc_policy):
            async for attempt in launcher.attempts(specs):
                now = time.time()
                key = attempt.task_key
                attempts_of[key] += 1
                result = attempt.result
                if not attempt.final:
                    not_final.append({
                        "task_key": key, "attempt": attempt.attempt, "pod": result.name,
                        "outcome": result.outcome.value, "reason": result.reason,
                        "decision": attempt.decision, "retry_in": attempt.retry_in,
                    })  # fmt: skip
                    continue
                t = by_key[key]
                if t.done is not None:
                    t.error = "a second final attempt for the same task key"
                    continue
                t.seen = t.done = now
                t.phase = result.phase
                if result.outcome.value != "succeeded" or result.exit_code != 0:
                    t.error = f"{result.outcome.value}: {result.reason} {result.message or ''}"[
                        :200
                    ]
        stats = cluster.statistics()
        extra["launcher"] = asdict(launcher.statistics())
        extra["informers"] = [asdict(i) for i in stats.informers]
        extra["client_requests_sent"] = dict(stats.client.requests_sent)
        extra["client_retries"] = stats.client.retries
        extra["client_throttled_429"] = stats.client.throttled
    extra["attempts"] = sum(attempts_of.values())
    extra["attempts_histogram"] = {
        str(n): count for n, count in sorted(Counter(attempts_of.values()).items())
    }
    extra["tasks_with_more_than_one_attempt"] = {k: n for k, n in attempts_of.items() if n > 1}
    extra["not_final"] = not_final
    return extra
