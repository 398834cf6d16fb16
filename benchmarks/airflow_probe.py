"""A trigger that measures the triggerer's event loop from inside it.

Why it exists: Airflow's own watchdog (``block_watchdog``) only says that the loop was
blocked for more than ``blocked_main_thread_warning_threshold`` (0.2 s); the benchmark
(:mod:`benchmarks.airflow_deployment`) also wants the longest block under that, and a
count. This trigger runs in the measured triggerer beside the pod triggers: it sleeps
``period`` seconds again and again and records by how much each sleep overran (the time
the loop was busy elsewhere), writing its figures to ``<out_dir>/probe-<pid>.json``
about once a second (one file per triggerer process, so a SIGKILLed triggerer's figures
survive it and its successor's start fresh). It fires when ``stop_file`` exists.

It also times the process's garbage collections (``gc.callbacks``): each block over
0.2 s is listed with when it ended, and each collection over 50 ms with its generation
and when, so a block can be matched with a full GC pass (or not).

What it deliberately does not do: import anything but Airflow's trigger base (Airflow
imports it on the loop it measures), or say which trigger blocked the loop.
"""

from __future__ import annotations

import asyncio
import gc
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
#: Blocks and garbage collections at least this long are listed with their time.
LISTED_BLOCK = 0.2
LISTED_COLLECTION = 0.05


class _Collections:
    """``gc.callbacks`` entry: every collection's duration, the long ones listed."""

    def __init__(self) -> None:
        self.started = 0.0
        self.longest = {0: 0.0, 1: 0.0, 2: 0.0}
        self.count = {0: 0, 1: 0, 2: 0}
        self.long: list[dict[str, Any]] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        took = time.perf_counter() - self.started
        generation = int(info.get("generation", 2))
        self.count[generation] += 1
        self.longest[generation] = max(self.longest[generation], round(took, 4))
        if took >= LISTED_COLLECTION and len(self.long) < 200:
            self.long.append({"at": time.time(), "generation": generation, "s": round(took, 4)})

    def figures(self) -> dict[str, Any]:
        return {"count": self.count, "longest_s": self.longest, "long": self.long}


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
            "blocks": [],
        }
        collections = _Collections()
        gc.callbacks.append(collections)
        try:
            async for event in self._measure(out, stop, figures, collections):
                yield event
        finally:
            gc.callbacks.remove(collections)

    async def _measure(
        self, out: Path, stop: Path, figures: dict[str, Any], collections: _Collections
    ) -> AsyncIterator[TriggerEvent]:
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
            if late >= LISTED_BLOCK and len(figures["blocks"]) < 200:
                figures["blocks"].append({"at": time.time(), "s": round(late, 4)})
            if now - written >= 1.0:
                figures["updated"] = time.time()
                figures["collections"] = collections.figures()
                out.write_text(json.dumps(figures))  # noqa: ASYNC240 - once a second, small
                written = now
        figures["collections"] = collections.figures()
        out.write_text(json.dumps(figures))  # noqa: ASYNC240 - once, at the end
        yield TriggerEvent(figures)  # type: ignore[no-untyped-call]
