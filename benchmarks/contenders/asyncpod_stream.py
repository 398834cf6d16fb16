"""asyncpod's launcher fed a lazily generated input (a million specs), stopped after a while.

Why: a batch of 100,000 or 1,000,000 items must cost memory and tasks in proportion to
what is in flight, not to the input. The generator yields specs one at a time as the
launcher asks; after ``stop_after_seconds`` or ``stop_after_pods`` results the consumer
walks away (``break``), which must cancel the runs in flight and delete their pods. The
child's probe samples RSS and ``len(asyncio.all_tasks())`` every second meanwhile.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from benchmarks.contenders import gc_policy
from benchmarks.workload import ChildConfig, PodTimes

__all__ = ["run"]


async def run(cfg: ChildConfig, times: list[PodTimes]) -> dict[str, Any]:
    import asyncpod
    from asyncpod import Launcher, PodSpec

    total = cfg.stream_specs or 1_000_000
    generated = 0

    def specs() -> Iterator[PodSpec]:
        nonlocal generated
        for index in range(total):
            generated += 1
            yield PodSpec(**cfg.pod["spec"], name=f"s-{index:07d}", task_key=f"s-{index:07d}")

    outcomes: Counter[str] = Counter()
    wrong: list[str] = []
    started = time.monotonic()
    stop_seconds = cfg.stop_after_seconds or 150.0
    stop_pods = cfg.stop_after_pods or total
    async with asyncpod.connect(cfg.kubeconfig, namespace=cfg.namespace, qps=None) as cluster:
        launcher = Launcher(cluster, max_in_flight=cfg.max_in_flight or 100, run_id="stream")
        results = launcher.as_completed(specs())
        with gc_policy(cfg.gc_policy):
            try:
                async for result in results:
                    outcomes[result.outcome.value] += 1
                    if result.outcome.value != "succeeded" and len(wrong) < 10:
                        wrong.append(f"{result.name}: {result.outcome.value} {result.reason}")
                    done = sum(outcomes.values())
                    if done >= stop_pods or time.monotonic() - started >= stop_seconds:
                        break
            finally:
                # Walking away: closing the iterator cancels the runs in flight (pods deleted).
                stopping = time.monotonic()
                await results.aclose()
        stopped = time.monotonic()
        in_flight_after = launcher.statistics().in_flight
    closed = time.monotonic()
    return {
        "results": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "not_succeeded": wrong,
        "specs_generated": generated,
        "input_length": total,
        "ran_s": stopping - started,
        "stop_s": stopped - stopping,
        "close_s": closed - stopped,
        "launcher_in_flight_after_stop": in_flight_after,
    }
