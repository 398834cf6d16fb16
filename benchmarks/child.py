"""One contender, alone in its own process: ``python -m benchmarks.child CONFIG OUT``.

Why a process per contender: peak RSS (``VmHWM``) is per process and never goes down,
CPU seconds must be the contender's alone, and a contender that stalls its event loop
must not stall another's (or the runner's watch that timestamps every pod). The runner
(:mod:`benchmarks.run`) writes CONFIG (a :class:`ChildConfig` as JSON) and reads OUT.

The measured window starts after the contender's libraries are imported and an idle
half second (the loop-lag baseline); it ends when the contender returns, fails, or
reaches the time cap: then it is cancelled, reported as ``capped``, and its per-pod
records say how far it got.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio

from benchmarks.contenders import BY_NAME, load
from benchmarks.probe import LoopProbe, cpu_seconds, current_rss_kib, peak_rss_kib
from benchmarks.workload import ChildConfig, PodTimes, pod_names

__all__ = ["main", "measure"]


async def measure(cfg: ChildConfig) -> dict[str, Any]:
    for module in BY_NAME[cfg.contender].preload:
        importlib.import_module(module)
    run = load(cfg.contender)
    # The stream mode's input is generated lazily by the contender: no record per spec.
    times = [] if cfg.stream_specs else [PodTimes(name) for name in pod_names(cfg.pods)]
    probe = LoopProbe()
    status, failure, extra = "ok", None, {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await anyio.sleep(0.5)
        idle = probe.summary()
        probe.reset()
        rss_before = current_rss_kib()
        peak_before = peak_rss_kib()
        cpu_before = cpu_seconds()
        started = time.time()
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
        series = [asdict(s) for s in probe.series]
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
        "series": series,
        "pods": [asdict(t) for t in times],
        "extra": extra,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks.child CONFIG.json OUT.json", file=sys.stderr)
        return 2
    cfg = ChildConfig.from_json(json.loads(Path(args[0]).read_text()))
    report = anyio.run(measure, cfg)
    Path(args[1]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
