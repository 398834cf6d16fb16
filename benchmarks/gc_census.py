"""``python -m benchmarks.gc_census``: what the garbage collector walks at N runs in flight.

Why it exists: the longest event-loop stalls at 1,000 runs in flight are CPython's full
(generation 2) collections, whose cost grows with the number of GC-tracked objects in
the process (docs/architecture.md, "Loop stalls and the garbage collector"). This
census says where those objects come from, so a change that adds or removes some per
run shows up as a number:

- tracked objects before the burst and with all N pods running, and the difference per
  run, by type;
- every generation-2 pass during the burst (``gc.callbacks``): how long, how much found;
- the longest stall of a 10 ms ticker on the same loop.

``--trigger`` takes the same census of N of asyncpod's Airflow triggers
(``AsyncpodPodTrigger``) on one loop, as a triggerer hosts them, each following a pod
made beforehand (what a worker does): the objects a triggerer's full GC pass walks per
deferred task. Airflow is imported before the first count, as in a triggerer.

``--freeze`` applies the first part of the batch command's policy (``gc.freeze()``
before the first pod; ``asyncpod/cli/heap.py`` also turns the automatic full pass off,
which this census leaves on to time the passes). One process, one local control
plane, pods simulated by kwok for 10 minutes (the census is taken long before they end,
then the session is closed, which deletes them)::

    python -m benchmarks.gc_census --pods 1000
    python -m benchmarks.gc_census --pods 1000 --freeze
    python -m benchmarks.gc_census --pods 5000 --trigger
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

__all__ = ["main"]


def _census() -> Counter[str]:
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


class _Passes:
    """Generation-2 passes seen through ``gc.callbacks``: (seconds, objects collected)."""

    def __init__(self) -> None:
        self.full: list[tuple[float, int]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif info["generation"] == 2:
            self.full.append((time.perf_counter() - self._started, info["collected"]))


async def _ticker(stalls: list[float]) -> None:
    last = time.perf_counter()
    while True:
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        stalls.append(now - last - 0.01)
        last = now


def _bytes_by_line(before: Any, after: Any, pods: int) -> list[tuple[str, int]]:
    """Bytes per run allocated and still held at peak: in all, by file, by line."""

    def where(stat: Any, *, line: bool) -> str:
        frame = stat.traceback[0]
        name = frame.filename.rsplit("/", 2)[-1]
        return f"{name}:{frame.lineno}" if line else name

    by_file = after.compare_to(before, "filename")
    by_line = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in by_file)
    return (
        [("(all)", total // pods)]
        + [(where(s, line=False), s.size_diff // pods) for s in by_file[:12]]
        + [(where(s, line=True), s.size_diff // pods) for s in by_line[:30]]
    )


async def _take(
    kubeconfig: str,
    pods: int,
    freeze: bool,
    ramp_limit: float,
    trace: bool,
    on_peak: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    import asyncpod
    from asyncpod import Launcher, PodSpec
    from asyncpod.core.cluster import MANAGED_SELECTOR
    from asyncpod.testing import outcome

    passes = _Passes()
    stalls: list[float] = []
    async with asyncpod.connect(kubeconfig, namespace="default", qps=None) as cluster:
        launcher = Launcher(cluster, max_in_flight=pods, run_id="gc-census")
        specs = (
            PodSpec("busybox:1.36", task_key=f"t{i}", annotations=outcome(duration="600s"))
            for i in range(pods)
        )
        gc.collect()
        if freeze:
            gc.freeze()
        before = _census()
        rss_before = _rss_kib()
        traced_per_run: list[tuple[str, int]] = []
        if trace:
            tracemalloc.start()
            traced_before = tracemalloc.take_snapshot()
        gc.callbacks.append(passes)
        started = time.monotonic()
        running = 0
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_ticker, stalls)

                async def consume() -> None:
                    async for _ in launcher.as_completed(specs):
                        pass

                group.start_soon(consume)
                # The runs' own informer: a second one would hold a second copy of
                # every pod and count it as the runs' memory.
                informer = cluster.informer("default", selector=MANAGED_SELECTOR)
                while running < pods and time.monotonic() - started < ramp_limit:
                    await asyncio.sleep(1)
                    running = sum(
                        1
                        for pod in informer.pods()
                        if (pod.get("status") or {}).get("phase") == "Running"
                    )
                ramp = time.monotonic() - started
                at_peak = _census()
                rss_at_peak = _rss_kib()
                if trace:
                    gc.collect()
                    traced_at_peak = tracemalloc.take_snapshot()
                    traced_per_run = _bytes_by_line(traced_before, traced_at_peak, pods)
                    tracemalloc.stop()
                row = _row(
                    pods, running, ramp, before, at_peak, rss_before, rss_at_peak, passes,
                    stalls, traced_per_run, freeze=freeze,
                )  # fmt: skip
                # Reported before the session closes: deleting 20,000 pods takes minutes.
                on_peak(row)
                group.cancel_scope.cancel()
        finally:
            gc.callbacks.remove(passes)
            if freeze:
                gc.unfreeze()
    return row


async def _take_triggers(
    kubeconfig: str, pods: int, ramp_limit: float, on_peak: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """The census of ``pods`` triggers, each following a pod made before the first count."""
    import asyncpod
    from asyncpod import PodSpec
    from asyncpod.airflow.triggers import AsyncpodPodTrigger, load_machinery
    from asyncpod.kube.pods import Pods
    from asyncpod.testing import outcome

    await load_machinery()
    passes = _Passes()
    stalls: list[float] = []
    made: list[dict[str, Any]] = []
    # The worker's part, in a session of its own, closed before the first count.
    async with asyncpod.connect(kubeconfig, namespace="default", qps=None) as worker:
        api = Pods(worker.client)
        limiter = anyio.CapacityLimiter(50)

        async def make(i: int) -> None:
            spec = PodSpec("busybox:1.36", annotations=outcome(duration="600s"))
            manifest = spec.to_manifest(namespace="default", name=f"census-t{i}")
            async with limiter:
                made.append(await api.create("default", manifest))

        async with anyio.create_task_group() as group:
            for i in range(pods):
                group.start_soon(make, i)
    triggers = [
        AsyncpodPodTrigger(
            pod_name=pod["metadata"]["name"],
            pod_namespace="default",
            pod_uid=pod["metadata"]["uid"],
            pod_resource_version=pod["metadata"]["resourceVersion"],
            config_file=kubeconfig,
            base_container_name="main",
            get_logs=False,
            startup_timeout=ramp_limit + 600,
        )
        for pod in made
    ]
    made.clear()
    gc.collect()
    before = _census()
    rss_before = _rss_kib()
    gc.callbacks.append(passes)
    started = time.monotonic()
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_ticker, stalls)

            async def follow(trigger: Any) -> None:
                async for _ in trigger.run():
                    return

            for trigger in triggers:
                group.start_soon(follow, trigger)
            from asyncpod.airflow.sessions import session_statistics

            # Every trigger is in the shared session, then attached from its informer.
            while time.monotonic() - started < ramp_limit:
                await asyncio.sleep(1)
                if session_statistics().users >= pods:
                    break
            await asyncio.sleep(10)
            users = session_statistics().users
            row = _row(
                pods, users, time.monotonic() - started, before, _census(), rss_before,
                _rss_kib(), passes, stalls, [], freeze=False,
            )  # fmt: skip
            on_peak(row)
            group.cancel_scope.cancel()
    finally:
        gc.callbacks.remove(passes)
    return row


def _row(
    pods: int,
    running: int,
    ramp: float,
    before: Counter[str],
    at_peak: Counter[str],
    rss_before: int,
    rss_at_peak: int,
    passes: _Passes,
    stalls: list[float],
    traced_per_run: list[tuple[str, int]],
    *,
    freeze: bool,
) -> dict[str, Any]:
    grown = at_peak - before
    return {
        "pods": pods,
        "running": running,
        "ramp_s": round(ramp, 1),
        "freeze": freeze,
        "tracked_before": sum(before.values()),
        "tracked_at_peak": sum(at_peak.values()),
        "rss_growth_kib": rss_at_peak - rss_before,
        "rss_per_run_bytes": round((rss_at_peak - rss_before) * 1024 / pods),
        "per_run": round((sum(at_peak.values()) - sum(before.values())) / pods, 1),
        "per_run_by_type": [(name, round(n / pods, 2)) for name, n in grown.most_common(20)],
        "full_passes": [(round(s * 1000), found) for s, found in passes.full],
        "longest_stall_ms": round(max(stalls, default=0.0) * 1000),
        "bytes_per_run_by_line": traced_per_run,
    }


def _rss_kib() -> int:
    """This process's resident memory (Linux), KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def report(row: dict[str, Any]) -> str:
    passes = ", ".join(f"{ms} ms ({found} found)" for ms, found in row["full_passes"])
    lines = [
        (
            f"{row['running']:,} of {row['pods']:,} pods running after {row['ramp_s']} s; "
            f"GC {'frozen before the first pod' if row['freeze'] else 'as Python leaves it'}"
        ),
        (
            f"tracked objects: {row['tracked_before']:,} before, {row['tracked_at_peak']:,} "
            f"at peak, {row['per_run']} per run"
        ),
        (
            f"RSS growth: {row['rss_growth_kib'] / 1024:,.1f} MiB, "
            f"{row['rss_per_run_bytes']:,} bytes per run in flight"
        ),
        f"generation-2 passes during the burst: {passes or 'none'}",
        f"longest loop stall (10 ms ticker): {row['longest_stall_ms']} ms",
        "per run, by type: "
        + ", ".join(f"{name.rsplit('.', 1)[-1]} {n}" for name, n in row["per_run_by_type"]),
    ]
    if row["bytes_per_run_by_line"]:
        lines.append("bytes per run held at peak (tracemalloc; all, by file, by line):")
        lines += [f"  {n:>6,} B  {where}" for where, n in row["bytes_per_run_by_line"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from asyncpod.testing import LocalControlPlane

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gc_census", description=__doc__)
    parser.add_argument("--pods", type=int, default=1_000, help="runs in flight (1,000)")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() before the burst")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="bytes per run by allocating line (slow)"
    )
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to ramp up")
    parser.add_argument(
        "--trigger", action="store_true", help="N Airflow triggers instead of a launcher's runs"
    )
    args = parser.parse_args(argv)
    plane = LocalControlPlane(
        nodes=max(3, args.pods // 500 + 1),
        node_capacity={"cpu": "1000", "memory": "4Ti", "pods": "1000"},
        apiserver_args=("--max-requests-inflight=2000", "--max-mutating-requests-inflight=1000"),
        scheduler_args=("--kube-api-qps=1000", "--kube-api-burst=2000"),
        ready_timeout=120.0,
    )
    with plane:

        def at_peak(row: dict[str, Any]) -> None:
            print(report(row), flush=True)
            if args.out is not None:
                args.out.write_text(json.dumps(row, indent=1) + "\n")

        if args.trigger:
            kubeconfig = str(plane.kubeconfig)
            row = asyncio.run(_take_triggers(kubeconfig, args.pods, args.timeout, at_peak))
            return 0 if row["running"] >= row["pods"] else 1
        row = asyncio.run(
            _take(
                str(plane.kubeconfig),
                args.pods,
                args.freeze,
                args.timeout,
                args.tracemalloc,
                at_peak,
            )
        )
    return 0 if row["running"] == row["pods"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
