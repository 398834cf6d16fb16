"""A trigger that measures the triggerer's event loop from inside it.

Why it exists: Airflow's own watchdog (``block_watchdog``) only says that the loop was
blocked for more than ``blocked_main_thread_warning_threshold`` (0.2 s); the benchmark
(:mod:`benchmarks.airflow_deployment`) also wants the longest block under that, and a
count. This trigger runs in the measured triggerer beside the pod triggers: it sleeps
``period`` seconds again and again and records by how much each sleep overran (the time
the loop was busy elsewhere), writing its figures to ``<out_dir>/probe-<pid>.json``
about once a second (one file per triggerer process, so a SIGKILLed triggerer's figures
survive it and its successor's start fresh). It fires when ``stop_file`` exists.

What it deliberately does not do: import anything but Airflow's trigger base (Airflow
imports it on the loop it measures), or say which trigger blocked the loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = ["OVER", "LoopProbe"]

#: Overruns counted apart (seconds): Airflow warns above 0.2 s.
OVER = (0.05, 0.1, 0.2, 0.5, 1.0)


class LoopProbe(BaseTrigger):
    """Sleeps ``period`` over and over; records how late each wake-up was."""

    def __init__(self, *, out_dir: str, stop_file: str, period: float = 0.05) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.out_dir = out_dir
        self.stop_file = stop_file
        self.period = period

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "benchmarks.airflow_probe.LoopProbe", {
            "out_dir": self.out_dir,
            "stop_file": self.stop_file,
            "period": self.period,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        out = Path(self.out_dir) / f"probe-{os.getpid()}.json"
        stop = Path(self.stop_file)
        figures: dict[str, Any] = {
            "pid": os.getpid(),
            "started": time.time(),
            "samples": 0,
            "longest_s": 0.0,
            "longest_at": None,
            "over": {str(limit): 0 for limit in OVER},
        }
        written = time.monotonic()
        while not stop.exists():  # noqa: ASYNC240 - one stat per 50 ms is what it measures around
            before = time.monotonic()
            await asyncio.sleep(self.period)
            now = time.monotonic()
            late = now - before - self.period
            figures["samples"] += 1
            if late > figures["longest_s"]:
                figures["longest_s"] = round(late, 4)
                figures["longest_at"] = time.time()
            for limit in OVER:
                if late > limit:
                    figures["over"][str(limit)] += 1
            if now - written >= 1.0:
                figures["updated"] = time.time()
                out.write_text(json.dumps(figures))
                written = now
        out.write_text(json.dumps(figures))
        yield TriggerEvent(figures)  # type: ignore[no-untyped-call]
