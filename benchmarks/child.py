"""One contender, alone in its own process: ``python -m benchmarks.child CONFIG OUT [SERIES]``.

Why a process per contender: peak RSS (``VmHWM``) is per process and never goes down,
CPU seconds must be the contender's alone, and a contender that stalls its event loop
must not stall another's (or the runner's watch that timestamps every pod). The runner
(:mod:`benchmarks.run`) writes CONFIG (a :class:`ChildConfig` as JSON) and reads OUT.

The measured window starts after the contender's libraries are imported and an idle
half second (the loop-lag baseline); it ends when the contender returns, fails, or
reaches the time cap: then it is cancelled, reported as ``capped``, and its per-pod
records say how far it got. SERIES, if given, receives a sample per second from a
thread (:class:`benchmarks.probe.Sampler`) even while the loop is blocked.

``BENCH_PROFILE=DIR`` in the environment runs the contender under :mod:`cProfile` and
writes ``DIR/<contender>-<pods>x<duration>.prof`` (read it with ``python -m pstats``):
where its CPU goes, not how much (the profiler's own cost inflates the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio

from benchmarks.contenders import BY_NAME, load
from benchmarks.probe import LoopProbe, Sampler, cpu_seconds, current_rss_kib, peak_rss_kib
from benchmarks.workload import ChildConfig, PodTimes, pod_names

__all__ = ["main", "measure"]


async def measure(cfg: ChildConfig, series_path: str | None = None) -> dict[str, Any]:
    for module in BY_NAME[cfg.contender].preload:
        importlib.import_module(module)
    run = load(cfg.contender)
    # The stream mode's input is generated lazily by the contender: no record per spec.
    times = [] if cfg.stream_specs else [PodTimes(name) for name in pod_names(cfg.pods)]
    probe = LoopProbe()
    status, failure, extra = "ok", None, {}
    series = Path(series_path) if series_path else None
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await anyio.sleep(0.5)
        idle = probe.summary()
        probe.reset()
        rss_before = current_rss_kib()
        peak_before = peak_rss_kib()
        cpu_before = cpu_seconds()
        started = time.time()
        with contextlib.ExitStack() as stack:
            if series is not None:
                stack.enter_context(Sampler(series, asyncio.get_running_loop(), probe))
            with anyio.move_on_after(cfg.cap_seconds) as cap:
                try:
                    extra = await run(cfg, times)
                except Exception:  # noqa: BLE001 - reported with its traceback
                    status, failure = "crashed", traceback.format_exc()[-4000:]
        if cap.cancelled_caught:
            status = "capped"
        ended = time.time()
        cpu = cpu_seconds() - cpu_before
        rss_max = max(probe.rss_max_kib, current_rss_kib())
        loop = probe.summary()
        tg.cancel_scope.cancel()
    return {
        "contender": cfg.contender,
        "status": status,
        "failure": failure,
        "started": started,
        "ended": ended,
        "cpu_s": cpu,
        "rss_before_kib": rss_before,
        "rss_max_kib": rss_max,
        "rss_peak_before_kib": peak_before,
        "rss_peak_kib": peak_rss_kib(),
        "loop_lag": {**loop, "max_at": probe.worst_at},
        "idle_loop_lag": idle,
        "pods": [asdict(t) for t in times],
        "extra": extra,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print("usage: python -m benchmarks.child CONFIG.json OUT.json [SERIES.jsonl]",
              file=sys.stderr)  # fmt: skip
        return 2
    cfg = ChildConfig.from_json(json.loads(Path(args[0]).read_text()))
    series = args[2] if len(args) == 3 else None
    profile_dir = os.environ.get("BENCH_PROFILE")
    if profile_dir:
        name = f"{cfg.contender}-{cfg.pods}x{cfg.duration:g}.prof"
        with cProfile.Profile() as profile:
            report = anyio.run(measure, cfg, series)
        profile.dump_stats(Path(profile_dir) / name)
    else:
        report = anyio.run(measure, cfg, series)
    Path(args[1]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
